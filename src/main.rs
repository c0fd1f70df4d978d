//! The `sandflow` command: validate, compile, inspect, run and serve Langflow flows.

mod commands;

/// mimalloc: per-thread free lists suit a server whose runs allocate and
/// free on many blocking threads (glibc's malloc spent 12% of a loaded
/// server's CPU, much of it consolidating).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Sandflow: compile Langflow flows to WebAssembly components and run them sandboxed.
#[derive(Debug, Parser)]
#[command(name = "sandflow", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Checks a Langflow export and reports every problem at once (exit code 1 on errors).
    Validate {
        /// The exported flow (`.json`).
        flow: PathBuf,
        /// `human` (with source snippets) or `json` (for machines).
        #[arg(long, value_enum, default_value_t = commands::Format::Human)]
        format: commands::Format,
    },
    /// Compiles a Langflow export into an artifact directory (flow.wasm + manifest.json).
    Compile {
        /// The exported flow (`.json`).
        flow: PathBuf,
        /// Directory to write the artifact into.
        #[arg(short, long)]
        out: PathBuf,
        /// Also print the plan (the flow IR).
        #[arg(long)]
        plan: bool,
    },
    /// Runs a flow (export or artifact) once locally and prints the answer and its usage record.
    Run {
        /// The exported flow (`.json`) or an artifact.
        flow: PathBuf,
        /// The message for the flow's input.
        #[arg(long)]
        input: Option<String>,
        /// The conversation id.
        #[arg(long)]
        session: Option<String>,
        /// Send the input to Text Input nodes instead of Chat Input.
        #[arg(long)]
        text: bool,
        #[command(flatten)]
        capabilities: commands::CapabilityArgs,
    },
    /// Serves the data plane (native, Langflow- and OpenAI-compatible run APIs).
    Serve {
        /// Which parts to run: `all` (control plane and runtime on one address),
        /// `runtime` (the data plane) or `control-plane` (the management API).
        #[arg(long, value_enum, default_value_t = commands::Role::All)]
        role: commands::Role,
        /// Address to listen on.
        #[arg(long, env = "SANDFLOW_LISTEN", default_value = "127.0.0.1:7860")]
        listen: String,
        /// An agent to provision: `id=flow.json[@tenant]` (repeatable).
        #[arg(long = "agent")]
        agents: Vec<String>,
        /// A key-signing secret: `kid=secret` (repeatable; comma-separated in the environment).
        #[arg(long = "key-secret", env = "SANDFLOW_KEY_SECRETS", value_delimiter = ',', hide_env_values = true)]
        key_secrets: Vec<String>,
        /// A key sealing buyers' agent secrets in the control plane's database: `kid=<64 hex
        /// digits>` (repeatable; comma-separated in the environment; the first seals). Without
        /// one, `all` and `control-plane` keep a generated key in the data directory.
        #[arg(long = "secrets-key", env = "SANDFLOW_SECRETS_KEYS", value_delimiter = ',', hide_env_values = true)]
        secrets_keys: Vec<String>,
        /// Print an API key per tenant at start-up (for trying it out).
        #[arg(long)]
        dev_keys: bool,
        /// Requests per minute per key, unless the key says otherwise.
        #[arg(long, env = "SANDFLOW_KEY_RPM", default_value_t = 6_000)]
        key_rpm: u32,
        /// Requests per minute per tenant, unless its quota says otherwise.
        #[arg(long, env = "SANDFLOW_TENANT_RPM", default_value_t = 60_000)]
        tenant_rpm: u32,
        /// Runs of one tenant in progress (queued or running) at once; more get 429.
        #[arg(long, env = "SANDFLOW_TENANT_RUNS_IN_FLIGHT", default_value = "256")]
        tenant_runs_in_flight: std::num::NonZeroUsize,
        /// URL usage records are POSTed to (the control plane's `/api/runtime/usage/`).
        #[arg(long, env = "SANDFLOW_USAGE_SINK")]
        usage_sink: Option<String>,
        /// A token `GET /metrics` requires (`Authorization: Bearer`); without it, the metrics
        /// are open to whoever reaches the data plane.
        #[arg(long, env = "SANDFLOW_METRICS_TOKEN", hide_env_values = true)]
        metrics_token: Option<String>,
        #[command(flatten)]
        capabilities: commands::CapabilityArgs,
        /// The control plane's database: `sqlite://PATH` or `postgres://USER@HOST/DB`; without it,
        /// `control-plane.db` in the data directory (created and migrated on start).
        #[arg(long, env = "SANDFLOW_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Token runtimes present when they post usage to the control plane (generated when
        /// both run together).
        #[arg(long, env = "SANDFLOW_RUNTIME_TOKEN", hide_env_values = true)]
        runtime_token: Option<String>,
        /// For `--role runtime`: the control plane to follow (agents, revoked keys, quotas) and
        /// to deliver usage to, e.g. `http://10.0.0.5:7860`.
        #[arg(long, env = "SANDFLOW_CONTROL_PLANE")]
        control_plane: Option<String>,
    },
    /// Serves a seeded marketplace: an operator, a seller with an approved offering built from a
    /// Langflow export, and a buyer with a subscription and an API key; prints the `curl` line
    /// that calls the buyer's agent.
    Demo {
        /// The Langflow export the seller lists.
        #[arg(long, default_value = "../shared/flows/prompt-echo.json")]
        flow: PathBuf,
        /// Address to listen on.
        #[arg(long, env = "SANDFLOW_LISTEN", default_value = "127.0.0.1:7860")]
        listen: String,
        #[command(flatten)]
        capabilities: commands::CapabilityArgs,
    },
    /// Shows what a compiled artifact (directory or `.wasm`) holds.
    Inspect {
        /// Artifact directory or flow component.
        artifact: PathBuf,
        /// `human` or `json`.
        #[arg(long, value_enum, default_value_t = commands::Format::Human)]
        format: commands::Format,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("SANDFLOW_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate { flow, format } => commands::validate(&flow, format),
        Command::Compile { flow, out, plan } => commands::compile(&flow, &out, plan),
        Command::Demo { flow, listen, capabilities } => commands::demo(
            flow,
            commands::ServeOptions {
                role: commands::Role::All,
                listen,
                agents: Vec::new(),
                key_secrets: Vec::new(),
                secrets_keys: Vec::new(),
                dev_keys: false,
                limits: sandflow_runtime_host::api::DataPlaneConfig::default(),
                usage_sink: None,
                capabilities,
                database_url: None,
                runtime_token: None,
                control_plane: None,
            },
        ),
        Command::Inspect { artifact, format } => commands::inspect(&artifact, format),
        Command::Run { flow, input, session, text, capabilities } => {
            commands::run(&flow, input, session, text, &capabilities)
        }
        Command::Serve {
            role,
            listen,
            agents,
            key_secrets,
            secrets_keys,
            dev_keys,
            key_rpm,
            tenant_rpm,
            tenant_runs_in_flight,
            usage_sink,
            metrics_token,
            capabilities,
            database_url,
            runtime_token,
            control_plane,
        } => {
            let limits = sandflow_runtime_host::api::DataPlaneConfig {
                key_rpm,
                tenant_rpm,
                tenant_runs_in_flight: tenant_runs_in_flight.get(),
                metrics_token: metrics_token.map(sandflow_runtime_host::Secret::new),
            };
            commands::serve(
                commands::ServeOptions {
                    role,
                    listen,
                    agents,
                    key_secrets,
                    secrets_keys,
                    dev_keys,
                    limits,
                    usage_sink,
                    capabilities,
                    database_url,
                    runtime_token,
                    control_plane,
                },
                None,
            )
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
