//! `sandflow run`: one run of a flow, locally, with its usage.

use super::load;
use sandflow_runtime_host::{InputType, Limits, RunContext, RunRequest, Runtime, RuntimeConfig, Value};
use std::path::Path;
use std::process::ExitCode;

/// Runs the flow at `path` once on `input` and prints the answer and the usage.
pub fn run(
    path: &Path,
    input: Option<String>,
    session: Option<String>,
    text_input: bool,
    capabilities: &super::CapabilityArgs,
) -> anyhow::Result<ExitCode> {
    let artifact = load::artifact(path)?;
    let runtime = Runtime::new(&RuntimeConfig {
        cache_dir: Some(super::cache_dir()),
        capabilities: capabilities.config()?,
        ..RuntimeConfig::default()
    })?;
    let flow = runtime.load_flow(&artifact.component)?;
    let run_id = uuid::Uuid::new_v4().to_string();
    let request = RunRequest {
        input_value: input,
        input_type: if text_input { InputType::Text } else { InputType::Chat },
        session_id: session.unwrap_or_else(|| run_id.clone()),
        ..RunRequest::default()
    };
    let limits = Limits::default();
    // Local runs belong to the tenant `local`; the agent is the flow, so a
    // session's history (with --memory-url) carries over between runs.
    let agent = artifact.plan.flow_id.clone().unwrap_or_else(|| path.display().to_string());
    let context = RunContext { tenant: "local".into(), agent, ..RunContext::default() };
    let started = std::time::Instant::now();
    let mut sandbox = runtime.sandbox_for(limits, context);
    let result = sandbox.run_flow(&flow, &request);
    let elapsed = started.elapsed();
    // A failed run used fuel and time too: counted from the sandbox, as
    // the data plane's usage records count them.
    let (tokens, fuel) = (sandbox.tokens(), sandbox.fuel_consumed());
    let (outcome, code) = match &result {
        Ok(outcome) => {
            for output in &outcome.outputs {
                match &output.value {
                    Value::Message(m) => println!("{}", m.text),
                    other => println!("{other:?}"),
                }
            }
            ("completed".to_owned(), ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("error: {error}");
            (format!("failed: {error}"), ExitCode::FAILURE)
        }
    };
    let usage = serde_json::json!({
        "idempotency_key": run_id,
        "agent": path.display().to_string(),
        "flow_version": flow.digest(),
        "session_id": request.session_id,
        "fuel": fuel,
        "tokens_in": tokens.input,
        "tokens_out": tokens.output,
        "wall_ms": elapsed.as_secs_f64() * 1e3,
        "outcome": outcome,
    });
    eprintln!("usage: {usage}");
    Ok(code)
}
