//! The `sandflow` command: validate, compile and inspect Langflow flows.

mod commands;

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
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate { flow, format } => commands::validate(&flow, format),
        Command::Compile { flow, out, plan } => commands::compile(&flow, &out, plan),
        Command::Inspect { artifact, format } => commands::inspect(&artifact, format),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
