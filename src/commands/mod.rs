//! One function per subcommand; each returns the process exit code.

mod demo;
mod http;
mod load;
mod run;
mod serve;

pub use demo::demo;
pub use run::run;
pub use serve::{Role, ServeOptions, serve};

use anyhow::Context as _;
use sandflow_flow_compiler::{Artifact, CompileError, CompileOptions, Diagnostics, check, compile as compile_flow};
use std::path::Path;
use std::process::ExitCode;

/// Output format of a report.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// For people, with source snippets.
    Human,
    /// One JSON document, for machines.
    Json,
}

/// How the host's capabilities are set up (shared by `run` and `serve`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CapabilityArgs {
    /// A model provider: `NAME=BACKEND,BASE_URL[,DEFAULT_MODEL]` with BACKEND `openai` (any
    /// OpenAI-compatible server) or `anthropic`; the first is the default (repeatable;
    /// `;`-separated in the environment). Its key is read from `<NAME>_API_KEY`, e.g. `OPENAI_API_KEY`.
    #[arg(long = "llm-provider", env = "SANDFLOW_LLM_PROVIDERS", value_delimiter = ';')]
    pub llm_providers: Vec<String>,
    /// Where chat history is kept: `sqlite://PATH` or `postgres://…` (a database of its own).
    /// `serve` defaults to the SQLite file `memory.db` in the data directory; `run` keeps no
    /// history without it.
    #[arg(long = "memory-url", env = "SANDFLOW_MEMORY_URL")]
    pub memory_url: Option<String>,
    #[command(flatten)]
    pub http: http::HttpArgs,
    /// Where tenants' files live (uploads and files flows write), one directory per tenant and
    /// agent. `serve` defaults to `files` in the data directory; `run` keeps none without it.
    #[arg(long = "files-dir", env = "SANDFLOW_FILES_DIR")]
    pub files_dir: Option<std::path::PathBuf>,
    /// Most bytes of one stored file (uploads, writes and reads; default 32 MiB).
    #[arg(long = "files-max-bytes", env = "SANDFLOW_FILES_MAX_BYTES")]
    pub files_max_bytes: Option<u64>,
    /// Most bytes one tenant may store over all its agents, each directory counting 4 KiB
    /// (default 1 GiB).
    #[arg(long = "files-max-tenant-bytes", env = "SANDFLOW_FILES_MAX_TENANT_BYTES")]
    pub files_max_tenant_bytes: Option<u64>,
    /// A database flows may query, by NAME: `NAME=URL[,read-write][,tenant=ID]…` with a
    /// `sqlite:`, `postgres://` or `mysql://` URL; read-only unless `read-write`, open to every
    /// tenant unless `tenant=` names them (repeatable; `;`-separated in the environment). A
    /// flow's SQL node puts the NAME in its Database URL field.
    #[arg(long = "sql-database", env = "SANDFLOW_SQL_DATABASES", value_delimiter = ';')]
    pub sql_databases: Vec<String>,
    /// Most rows one SQL statement may return (default 1000).
    #[arg(long = "sql-max-rows", env = "SANDFLOW_SQL_MAX_ROWS")]
    pub sql_max_rows: Option<usize>,
    /// The document index (training documents, flows' knowledge bases): `sqlite://PATH` or
    /// `postgres://…` (a database of its own). `serve` defaults to `documents.db` in the data
    /// directory, which both halves of `--role all` share; split roles pass the same URL to both.
    #[arg(long = "documents-url", env = "SANDFLOW_DOCUMENTS_URL")]
    pub documents_url: Option<String>,
    /// The embedding model used when a node names none (served by the `--llm-provider`s).
    #[arg(long = "embedding-model", env = "SANDFLOW_EMBEDDING_MODEL")]
    pub embedding_model: Option<String>,
}

impl CapabilityArgs {
    /// The capability configuration: providers parsed, their keys read
    /// from the environment (never from the command line, where other
    /// users of the machine could read them).
    pub fn config(&self) -> anyhow::Result<sandflow_runtime_host::CapabilityConfig> {
        let mut config = sandflow_runtime_host::CapabilityConfig::default();
        for spec in self.llm_providers.iter().filter(|s| !s.trim().is_empty()) {
            let provider: sandflow_runtime_host::Provider = spec.parse().map_err(anyhow::Error::msg)?;
            if let Ok(key) = std::env::var(&provider.key_secret) {
                config.secrets.insert(provider.key_secret.clone(), sandflow_runtime_host::Secret::new(key));
            }
            config.llm.providers.push(provider);
        }
        if let Some(url) = self.memory_url.as_deref().filter(|u| !u.trim().is_empty()) {
            config.memory = Some(open_memory(url)?);
        }
        config.http = self.http.config()?;
        if let Some(dir) = &self.files_dir {
            config.files = Some(self.open_files(dir)?);
        }
        for spec in self.sql_databases.iter().filter(|s| !s.trim().is_empty()) {
            config.sql.databases.push(spec.parse().map_err(anyhow::Error::msg)?);
        }
        if let Some(rows) = self.sql_max_rows {
            config.sql.max_rows = rows;
        }
        if let Some(url) = self.documents_url.as_deref().filter(|u| !u.trim().is_empty()) {
            config.documents = Some(open_documents(url)?);
        }
        config.embeddings.default_model = self.embedding_model.clone().filter(|m| !m.trim().is_empty());
        Ok(config)
    }

    fn open_files(&self, dir: &Path) -> anyhow::Result<sandflow_runtime_host::FileStore> {
        let mut files = sandflow_runtime_host::FilesConfig::new(dir);
        files.max_file_bytes = self.files_max_bytes.unwrap_or(files.max_file_bytes);
        files.max_tenant_bytes = self.files_max_tenant_bytes.unwrap_or(files.max_tenant_bytes);
        sandflow_runtime_host::FileStore::open(files)
            .with_context(|| format!("cannot open the file storage in {}", dir.display()))
    }

    /// [`CapabilityArgs::config`] for a server: chat history in the data
    /// directory's `memory.db` unless `--memory-url` says otherwise (only
    /// for a server that runs flows: a SQLite store belongs to one process,
    /// and the control plane alone runs none), files in its `files` unless
    /// `--files-dir` does, the document index in its `documents.db` unless
    /// `--documents-url` does.
    pub fn serving_config(&self, runs_flows: bool) -> anyhow::Result<sandflow_runtime_host::CapabilityConfig> {
        let mut config = self.config()?;
        if config.memory.is_none() && runs_flows {
            config.memory = Some(open_memory(&sandflow_runtime_host::MemoryStore::sqlite_url_in(&data_dir()))?);
        }
        if config.files.is_none() {
            config.files = Some(self.open_files(&data_dir().join("files"))?);
        }
        if config.documents.is_none() {
            config.documents = Some(open_documents(&self.documents_url_or_default())?);
        }
        Ok(config)
    }

    /// `--documents-url`, else `documents.db` in the data directory.
    pub fn documents_url_or_default(&self) -> String {
        self.documents_url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| sandflow_runtime_host::doc_index::DocIndex::sqlite_url_in(&data_dir()))
    }
}

fn open_documents(url: &str) -> anyhow::Result<sandflow_runtime_host::doc_index::DocIndex> {
    let index = sandflow_runtime_host::open_documents_blocking(url).context("cannot open the document index")?;
    tracing::info!(index = ?index, "document index opened");
    Ok(index)
}

fn open_memory(url: &str) -> anyhow::Result<sandflow_runtime_host::MemoryStore> {
    let store = sandflow_runtime_host::MemoryStore::open_blocking(url).context("cannot open the memory store")?;
    tracing::info!(store = ?store, "chat history store opened");
    Ok(store)
}

/// The data directory: `$SANDFLOW_DATA_DIR`, or `.sandflow` in the working directory.
pub fn data_dir() -> std::path::PathBuf {
    std::env::var_os("SANDFLOW_DATA_DIR").map_or_else(|| ".sandflow".into(), std::path::PathBuf::from)
}

/// Where compiled machine code is cached.
pub fn cache_dir() -> std::path::PathBuf {
    data_dir().join("cache")
}

fn read_flow(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn report(path: &Path, source: &[u8], diags: &Diagnostics, format: Format) {
    match format {
        Format::Human => {
            let text = std::str::from_utf8(source).ok();
            eprint!("{}", diags.render(&path.display().to_string(), text));
        }
        Format::Json => {
            let doc = serde_json::json!({
                "file": path.display().to_string(),
                "valid": !diags.has_errors(),
                "errors": diags.error_count(),
                "diagnostics": diags,
            });
            println!("{doc:#}");
        }
    }
}

fn exit_for(diags: &Diagnostics) -> ExitCode {
    if diags.has_errors() { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// `sandflow validate`.
pub fn validate(path: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let source = read_flow(path)?;
    let (_, diags) = check(&source, &CompileOptions::default());
    report(path, &source, &diags, format);
    Ok(exit_for(&diags))
}

/// `sandflow compile`.
pub fn compile(path: &Path, out: &Path, print_plan: bool) -> anyhow::Result<ExitCode> {
    let source = read_flow(path)?;
    match compile_flow(&source, &CompileOptions::default()) {
        Ok((artifact, diags)) => {
            if !diags.is_empty() {
                report(path, &source, &diags, Format::Human);
            }
            artifact.write_to(out).with_context(|| format!("cannot write the artifact to {}", out.display()))?;
            if print_plan {
                print!("{}", artifact.plan.dump());
            }
            println!(
                "compiled {} -> {} ({} bytes, {})",
                path.display(),
                out.display(),
                artifact.manifest.size,
                artifact.manifest.digest
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(CompileError::Invalid(diags)) => {
            report(path, &source, &diags, Format::Human);
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

/// `sandflow inspect`.
pub fn inspect(path: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let artifact = Artifact::read(path)?;
    match format {
        Format::Json => {
            let doc = serde_json::json!({ "manifest": artifact.manifest, "plan": artifact.plan });
            println!("{doc:#}");
        }
        Format::Human => {
            let m = &artifact.manifest;
            println!("digest:       {}", m.digest);
            println!("size:         {} bytes", m.size);
            println!("compiler:     {} (plan format {})", m.compiler_version, m.plan_format);
            let names = |refs: &[sandflow_flow_compiler::artifact::NodeRef]| {
                refs.iter().map(|r| format!("{} ({})", r.id, r.display_name)).collect::<Vec<_>>().join(", ")
            };
            println!("inputs:       {}", names(&m.inputs));
            println!("outputs:      {}", names(&m.outputs));
            let caps: Vec<String> = m.capabilities.iter().map(|c| format!("{c:?}").to_lowercase()).collect();
            println!("capabilities: {}", caps.join(", "));
            println!("nodes:        {}", m.nodes.join(", "));
            if !m.variables.is_empty() {
                println!("variables:    {}", m.variables.join(", "));
            }
            print!("\n{}", artifact.plan.dump());
        }
    }
    Ok(ExitCode::SUCCESS)
}
