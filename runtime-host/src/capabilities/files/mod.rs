//! `sandflow:host/files`: the run's attachments and the tenant's stored files.
//!
//! Configure (operator): a [`FileStore`] rooted at a directory
//! (`<data dir>/files` for `sandflow serve`, `--files-dir`), with caps per
//! file and per tenant (`--files-max-bytes`, `--files-max-tenant-bytes`).
//! Prepare (per run): [`RunFiles`] binds the store to the run's tenant and
//! agent. Host: `read`, `list-names` and `write` on that scope only.
//!
//! Isolation: the guest names only a file. Tenant and agent come from the
//! run, so a name (even another tenant's stored name, character for
//! character) resolves inside the run's own directory; names are checked
//! and walked without following symbolic links (see [`store`]). Uploads
//! (`POST /api/v1/files/upload/{flow}`) land in the same scope, taken from
//! the API key, which is how a run reads its attachments.

pub mod names;
pub mod store;

pub use store::{FileStore, FilesConfig, FilesError, FilesScope, StoredFile};

use super::io;
use crate::bindings::node::sandflow::host::files::{File, Host};
use crate::bindings::node::sandflow::host::types::CapabilityError;
use crate::sandbox::RunState;

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
