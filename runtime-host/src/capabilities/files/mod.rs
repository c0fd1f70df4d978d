//! `sandflow:host/files`: the run's attachments and the tenant's stored files.
//!
//! Configure (operator): a [`FileStore`] rooted at a directory
//! (`<data dir>/files` for `sandflow serve`, `--files-dir`), with caps per
//! file and per tenant (`--files-max-bytes`, `--files-max-tenant-bytes`).
//! Prepare (per run): [`RunFiles`] binds the store to the run's tenant and
//! agent. Host: `read`, `read-text`, `list-names` and `write` on that
//! scope only.
//!
//! `read-text` extracts a PDF's or DOCX's text on the host
//! ([`sandflow_doc_index::extract`], the control plane's extractor): the
//! parsers are native code that would not fit the sandbox's budgets, so the
//! host bounds them instead ([`extract::Limits`]: pages, bytes a stream or
//! part may decompress to, text kept, time capped by the run's deadline),
//! catches a parser's panic, and names the file in every refusal.
//!
//! Isolation: the guest names only a file. Tenant and agent come from the
//! run, so a name (even another tenant's stored name, character for
//! character) resolves inside the run's own directory; names are checked
//! and walked without following symbolic links (see [`store`]). Uploads
//! (`POST /api/v1/files/upload/{flow}`) land in the same scope, taken from
//! the API key, which is how a run reads its attachments.

pub mod names;
pub mod store;

pub use store::{
    DIRECTORY_BYTES, FileStore, FilesConfig, FilesError, FilesScope, ListedFile, OpenedFile, StoredFile, TenantUsage,
};

use super::io;
use crate::bindings::node::sandflow::host::files::{File, Host};
use crate::bindings::node::sandflow::host::types::CapabilityError;
use crate::sandbox::RunState;
use sandflow_doc_index::extract::{self, Kind};

/// The files of one run: the host's store, scoped to the run's tenant and agent.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunFiles {
    store: Option<(FileStore, FilesScope)>,
}

impl RunFiles {
    /// Binds `store` (if the host has one) to `tenant` and `agent`.
    pub fn prepare(store: Option<&FileStore>, tenant: &str, agent: &str) -> Self {
        let scope = FilesScope { tenant: tenant.to_owned(), agent: agent.to_owned() };
        Self { store: store.map(|s| (s.clone(), scope)) }
    }
}

impl From<FilesError> for CapabilityError {
    fn from(error: FilesError) -> Self {
        match error {
            FilesError::Invalid(m) | FilesError::NotFound(m) => Self::Invalid(m),
            FilesError::Denied(m) | FilesError::TooLarge(m) => Self::Denied(m),
            FilesError::Io(error) => {
                // The file system's own words stay in the host's log.
                tracing::error!(%error, "file store call failed");
                Self::Failed("the file store is unavailable; try again later".into())
            }
        }
    }
}

impl RunState {
    /// Runs one store operation on a blocking thread of the I/O runtime,
    /// waiting at most until the run's deadline.
    fn files_call<T: Send + 'static>(
        &self,
        operation: impl FnOnce(FileStore, FilesScope) -> Result<T, FilesError> + Send + 'static,
    ) -> Result<T, CapabilityError> {
        let (store, scope) = self.caps.files.store.clone().ok_or_else(|| {
            CapabilityError::NotConfigured(
                "the `files` capability is not configured on this host; the operator sets --files-dir".into(),
            )
        })?;
        let remaining =
            self.caps.remaining().ok_or_else(|| CapabilityError::Denied("the run's deadline has passed".into()))?;
        let outcome = io::block_on(async move {
            tokio::time::timeout(remaining, tokio::task::spawn_blocking(move || operation(store, scope))).await
        });
        match outcome {
            Ok(Ok(result)) => result.map_err(CapabilityError::from),
            Ok(Err(panic)) => {
                tracing::error!(%panic, "file store call panicked");
                Err(CapabilityError::Failed("the file store failed".into()))
            }
            Err(_) => Err(CapabilityError::Denied("the file store did not answer before the run's deadline".into())),
        }
    }
}

impl Host for RunState {
    fn read(&mut self, name: String) -> Result<File, CapabilityError> {
        let span = tracing::info_span!("runtime_host.files", operation = "read", bytes = tracing::field::Empty);
        let _entered = span.enter();
        let file = self.files_call(move |store, scope| store.read(&scope, &name))?;
        span.record("bytes", file.content.len());
        Ok(File { name: file.name, content_type: file.content_type, content: file.content })
    }

    fn read_text(&mut self, name: String) -> Result<String, CapabilityError> {
        let span = tracing::info_span!(
            "runtime_host.files",
            operation = "read_text",
            bytes = tracing::field::Empty,
            text_bytes = tracing::field::Empty
        );
        let _entered = span.enter();
        let max_time = self.caps.remaining().unwrap_or_default();
        let limits =
            extract::Limits { max_time: max_time.min(extract::Limits::default().max_time), ..Default::default() };
        let span_inner = span.clone();
        self.files_call(move |store, scope| {
            let file = store.read(&scope, &name)?;
            span_inner.record("bytes", file.content.len());
            let text = document_text(&name, &file.content, &limits)?;
            span_inner.record("text_bytes", text.len());
            Ok(text)
        })
    }

    fn list_names(&mut self, prefix: String) -> Result<Vec<String>, CapabilityError> {
        let span = tracing::info_span!("runtime_host.files", operation = "list", names = tracing::field::Empty);
        let _entered = span.enter();
        let names = self.files_call(move |store, scope| store.list(&scope, &prefix))?;
        span.record("names", names.len());
        Ok(names)
    }

    fn write(&mut self, file: File) -> Result<String, CapabilityError> {
        let span = tracing::info_span!("runtime_host.files", operation = "write", bytes = file.content.len());
        let _entered = span.enter();
        self.files_call(move |store, scope| store.write(&scope, &file.name, &file.content))
    }
}

/// The text of the stored PDF or DOCX `name`, extracted within `limits`;
/// a parser's panic is a refusal like any other unreadable file.
fn document_text(name: &str, content: &[u8], limits: &extract::Limits) -> Result<String, FilesError> {
    let kind = Kind::from_extension(name).filter(|k| k.is_binary()).ok_or_else(|| {
        FilesError::Invalid(format!("'{name}' is not a PDF or DOCX document: only those are read as text"))
    })?;
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| extract::extract_with(kind, content, limits)));
    match outcome {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(why)) => Err(FilesError::Invalid(format!("cannot read '{name}': {why}"))),
        Err(_) => {
            tracing::warn!(file = %name, "document parser panicked");
            Err(FilesError::Invalid(format!(
                "cannot read '{name}': the {} parser failed on it; the file is probably corrupt",
                kind.as_str().to_ascii_uppercase()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_documents_are_read_as_text_and_refusals_name_the_file() {
        let limits = extract::Limits::default();
        let error = document_text("f/notes.txt", b"x", &limits).expect_err("not a document");
        assert!(error.to_string().contains("'f/notes.txt' is not a PDF or DOCX"), "{error}");
        let error = document_text("f/report.pdf", b"%PDF-1.4 garbage", &limits).expect_err("corrupt");
        assert!(error.to_string().contains("cannot read 'f/report.pdf': the PDF could not be read"), "{error}");
        let error = document_text("f/memo.DOCX", b"garbage", &limits).expect_err("not a zip");
        assert!(error.to_string().contains("cannot read 'f/memo.DOCX': the file is not a DOCX"), "{error}");
    }
}
