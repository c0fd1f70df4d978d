//! If-Else (`ConditionalRouter`): compares `input_text` with `match_text`
//! and routes a message to `true_result` or `false_result`; the other
//! output is not produced, which stops its branch (the compiled schedule
//! skips every node downstream of a missing output).
//!
//! Operators as Langflow 1.13 has them: `equals`, `not equals`,
//! `contains`, `starts with`, `ends with`, `regex` (Python's `re.match`:
//! anchored at the start only; an invalid pattern is false; never
//! case-folded) and the numeric `less than`, `less than or equal`,
//! `greater than`, `greater than or equal` (both sides as Python's
//! `float()`; text that is not a number is false). Without
//! `case_sensitive` both texts are lower-cased first.
//!
//! The message sent is `true_case_message` / `false_case_message` when it
//! has text, else a Message of the input text. `max_iterations` and
//! `default_route` act as Langflow's `iterate_and_stop_once` does on the
//! router's first (and, without cycles, only) pass of a run:
//! `max_iterations` ≤ 1 makes the router take `default_route` (with an
//! empty message when the condition pointed the other way).
//!
//! Departure: patterns use the `regex` crate's syntax; Python-only
//! constructs (look-around, back-references) do not compile, so they are
//! false.

use sandflow_sdk::{
    Descriptor, Invocation, Message, NodeError, Output, Value, as_text, flag, message, number, output, port, value,
};

/// Type name in the library.
pub const NAME: &str = "conditional-router";

const TRUE: &str = "true_result";
const FALSE: &str = "false_result";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "If-Else".into(),
        description: "Routes an input message to a corresponding output based on text comparison.".into(),
        inputs: vec![
            port("input_text", &["Message"], true),
            port("operator", &[], false),
            port("match_text", &["Message"], true),
            port("case_sensitive", &[], false),
            port("true_case_message", &["Message"], false),
            port("false_case_message", &["Message"], false),
            port("max_iterations", &[], false),
            port("default_route", &[], false),
        ],
        outputs: vec![port(TRUE, &["Message"], false), port(FALSE, &["Message"], false)],
    }
}

/// `evaluate_condition`.
pub fn evaluate(input: &str, pattern: &str, operator: &str, case_sensitive: bool) -> bool {
    let (input, pattern) = if !case_sensitive && operator != "regex" {
        (input.to_lowercase(), pattern.to_lowercase())
    } else {
        (input.to_owned(), pattern.to_owned())
    };
    match operator {
        "equals" => input == pattern,
        "not equals" => input != pattern,
        "contains" => input.contains(&pattern),
        "starts with" => input.starts_with(&pattern),
        "ends with" => input.ends_with(&pattern),
        "regex" => regex::Regex::new(&format!(r"\A(?:{pattern})")).is_ok_and(|re| re.is_match(&input)),
        "less than" | "less than or equal" | "greater than" | "greater than or equal" => {
            let (Some(a), Some(b)) = (python_float(&input), python_float(&pattern)) else { return false };
            match operator {
                "less than" => a < b,
                "less than or equal" => a <= b,
                "greater than" => a > b,
                _ => a >= b,
            }
        }
        _ => false,
    }
}

/// Python's `float(text)`: surrounding whitespace, `_` between digits,
/// `inf`, `infinity` and `nan` in any case.
pub fn python_float(text: &str) -> Option<f64> {
    let t = text.trim_matches(crate::pyfmt::is_py_space);
    if t.contains('_') {
        let bytes = t.as_bytes();
        let ok = bytes.iter().enumerate().all(|(i, &b)| {
            b != b'_'
                || (i > 0 && i + 1 < bytes.len() && bytes[i - 1].is_ascii_digit() && bytes[i + 1].is_ascii_digit())
        });
        if !ok {
            return None;
        }
    }
    let t = t.replace('_', "");
    let lower = t.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if lower.len() - unsigned.len() > 1 {
        return None;
    }
    // Rust also reads `infinity`, `inf` and `nan`; it refuses what Python refuses otherwise.
    if !(unsigned.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'))
        || matches!(unsigned, "inf" | "infinity" | "nan"))
    {
        return None;
    }
    lower.parse().ok()
}

/// Which outputs the router produces, and with what: Langflow's
/// `true_response` and `false_response` run in output order on the
/// outputs the flow uses, `iterate_and_stop_once` stopping one branch.
pub fn route(
    result: bool,
    max_iterations: i64,
    default_true: bool,
    wanted: (bool, bool),
    true_message: impl Fn() -> Message,
    false_message: impl Fn() -> Message,
) -> (Option<Message>, Option<Message>) {
    let mut iteration = 0i64;
    let mut updated = false;
    let mut stopped = (false, false);
    let mut stop_once = |route_true: bool, stopped: &mut (bool, bool)| {
        if updated {
            return;
        }
        iteration += 1;
        updated = true;
        let route_true =
            if iteration >= max_iterations && route_true == default_true { !route_true } else { route_true };
        if route_true {
            stopped.0 = true;
        } else {
            stopped.1 = true;
        }
    };
    let empty = || message(String::new(), "", "", "");
    let mut produced = (None, None);
    if wanted.0 {
        // `force_output`: read before this pass counts (0 on a run's first pass).
        let force = 0 >= max_iterations && default_true;
        produced.0 = Some(if result || force {
            if !force {
                stop_once(false, &mut stopped);
            }
            true_message()
        } else {
            stop_once(true, &mut stopped);
            empty()
        });
    }
    if wanted.1 {
        produced.1 = Some(if result {
            stop_once(false, &mut stopped);
            empty()
        } else {
            stop_once(true, &mut stopped);
            false_message()
        });
    }
    (produced.0.filter(|_| !stopped.0), produced.1.filter(|_| !stopped.1))
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let text = |name: &str| value(inv, name).and_then(as_text).unwrap_or_default();
    let input = text("input_text");
    let operator = value(inv, "operator").and_then(as_text).unwrap_or_else(|| "equals".into());
    let result = evaluate(&input, &text("match_text"), &operator, flag(inv, "case_sensitive", true));
    let case = |name: &str| match value(inv, name) {
        Some(Value::Message(m)) if !m.text.is_empty() || !m.files.is_empty() => m.clone(),
        Some(Value::Text(t)) if !t.is_empty() => message(t.clone(), "", "", &inv.session_id),
        _ => message(input.clone(), "", "", &inv.session_id),
    };
    let wants = |name: &str| inv.wanted.is_empty() || inv.wanted.iter().any(|w| w == name);
    let default_true = value(inv, "default_route").and_then(as_text).is_some_and(|r| r == TRUE);
    let (on_true, on_false) = route(
        result,
        number(inv, "max_iterations").map_or(10, |n| n as i64),
        default_true,
        (wants(TRUE), wants(FALSE)),
        || case("true_case_message"),
        || case("false_case_message"),
    );
    let with_session = |mut m: Message| {
        if m.session_id.is_empty() {
            m.session_id.clone_from(&inv.session_id);
        }
        Value::Message(m)
    };
    let mut outputs = Vec::new();
    if let Some(m) = on_true {
        outputs.push(output(TRUE, with_session(m)));
    }
    if let Some(m) = on_false {
        outputs.push(output(FALSE, with_session(m)));
    }
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators() {
        assert!(evaluate("Hello", "hello", "equals", false));
        assert!(!evaluate("Hello", "hello", "equals", true));
        assert!(evaluate("abc", "b", "contains", true));
        assert!(evaluate("abc", "a.", "regex", true));
        assert!(!evaluate("xabc", "b", "regex", true), "re.match is anchored");
        assert!(!evaluate("abc", "(", "regex", true));
        assert!(evaluate("10", "9.5", "greater than", true));
        assert!(evaluate(" 1_000 ", "1e3", "greater than or equal", true));
        assert!(!evaluate("ten", "9", "greater than", true));
    }

    fn m(text: &str) -> Message {
        message(text.into(), "", "", "")
    }

    #[test]
    fn one_branch_is_produced() {
        let r = |result, max, default_true| route(result, max, default_true, (true, true), || m("T"), || m("F"));
        let (t, f) = r(true, 10, false);
        assert_eq!((t.map(|m| m.text), f.is_none()), (Some("T".into()), true));
        let (t, f) = r(false, 10, false);
        assert_eq!((t.is_none(), f.map(|m| m.text)), (true, Some("F".into())));
        // At the iteration limit the default route runs, with an empty message.
        let (t, f) = r(true, 1, false);
        assert_eq!((t.is_none(), f.map(|m| m.text)), (true, Some(String::new())));
    }
}
