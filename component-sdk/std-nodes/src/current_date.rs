//! Current Date (`CurrentDate`): the date and time in a time zone, as
//! Langflow's component answers it: `Current date and time in
//! {timezone}: YYYY-MM-DD HH:MM:SS ABBR`, or `Error: '…'` for a zone that
//! does not exist. The same answer is the Agent's `get_current_date` tool.
//! The time comes from the host's `calendar` capability; guests have no
//! clock of their own.

use sandflow_sdk::host::calendar;
use sandflow_sdk::{
    CapabilityError, Descriptor, Invocation, NodeError, Output, Value, capability_message, message, output, port,
    text_or,
};

/// Type name in the library.
pub const NAME: &str = "current-date";

/// The Agent's built-in tool: its name, description and parameters, as
/// Langflow's `CurrentDateComponent.to_toolkit()` offers them.
pub const TOOL_NAME: &str = "get_current_date";
/// See [`TOOL_NAME`].
pub const TOOL_DESCRIPTION: &str = "Returns the current date and time in the selected timezone.";
/// See [`TOOL_NAME`].
pub const TOOL_PARAMETERS: &str = r#"{"type":"object","properties":{"timezone":{"type":"string","default":"UTC","description":"Select the timezone for the current date and time."}}}"#;

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Current Date".into(),
        description: TOOL_DESCRIPTION.into(),
        inputs: vec![port("timezone", &["Message"], false)],
        outputs: vec![port("current_date", &["Message"], false)],
    }
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let text = answer(&text_or(inv, "timezone", "UTC"));
    Ok(vec![output("current_date", Value::Message(message(text, "", "", &inv.session_id)))])
}

/// The answer for `timezone` (empty means UTC, the component's default).
pub fn answer(timezone: &str) -> String {
    let timezone = if timezone.trim().is_empty() { "UTC" } else { timezone.trim() };
    match calendar::now(timezone) {
        Ok(now) => format!("Current date and time in {timezone}: {now}"),
        // Python prints the `ZoneInfoNotFoundError` (a `KeyError`) quoted.
        Err(CapabilityError::Invalid(reason)) => format!("Error: '{reason}'"),
        Err(e) => format!("Error: {}", capability_message(&e)),
    }
}

/// The tool call's answer: `arguments` is `{"timezone": …}`, or `{}` for UTC.
pub fn call(arguments: &str) -> String {
    let timezone = serde_json::from_str::<serde_json::Value>(arguments)
        .ok()
        .and_then(|a| a.get("timezone").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_default();
    answer(&timezone)
}
