//! Prompt / Prompt Template (`Prompt`, `Prompt Template`): renders the
//! template with its variables, as Langflow's `build_prompt` does through
//! `Message.from_template_and_variables`.
//!
//! Two syntaxes, as in Langflow: Python f-string (`{var}`, `{{` and `}}` for
//! literal braces; the default) and mustache (`{{var}}`, when
//! `use_double_brackets` is on). A variable's value is its field converted to
//! text the way Langflow's inputs convert (a Message gives its text).

use sandflow_sdk::{
    Descriptor, Invocation, NodeError, Output, Value, as_text, flag, message, output, port, text_or, value,
};

/// Type name in the library.
pub const NAME: &str = "prompt";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Prompt Template".into(),
        description: "Create a prompt template with dynamic variables.".into(),
        inputs: vec![port("template", &[], true), port("use_double_brackets", &[], false)],
        outputs: vec![port("prompt", &["Message"], false)],
    }
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let template = text_or(inv, "template", "");
    let lookup = |name: &str| value(inv, name).and_then(as_text);
    let text = if flag(inv, "use_double_brackets", false) {
        render_mustache(&template, lookup)?
    } else {
        render_f_string(&template, lookup)?
    };
    Ok(vec![output("prompt", Value::Message(message(text, "", "", &inv.session_id)))])
}

/// Python `str.format` with named fields only, which is what Langflow's
/// f-string prompts accept. A variable without a value renders empty.
pub fn render_f_string(template: &str, vars: impl Fn(&str) -> Option<String>) -> Result<String, NodeError> {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().is_some_and(|&(_, n)| n == '{') => {
                chars.next();
                out.push('{');
            }
            '{' => {
                let rest = &template[i + 1..];
                let end = rest.find('}').ok_or_else(|| invalid("Single '{' encountered in format string"))?;
                let field = &rest[..end];
                // `{name!r}` and `{name:spec}`: the name is what precedes them.
                let name = field.split(['!', ':']).next().unwrap_or_default().trim();
                if name.is_empty() || name.contains('{') {
                    return Err(invalid("Format strings need a variable name between braces, e.g. {question}"));
                }
                out.push_str(&vars(name).unwrap_or_default());
                for _ in 0..=end {
                    chars.next();
                }
            }
            '}' if chars.peek().is_some_and(|&(_, n)| n == '}') => {
                chars.next();
                out.push('}');
            }
            '}' => return Err(invalid("Single '}' encountered in format string")),
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Mustache as Langflow allows it (`lfx.utils.mustache_security`): only
/// simple variables `{{name}}` (a letter or `_`, then letters, digits or
/// `_`; no spaces), substituted in one pass so a value containing `{{x}}`
/// stays literal. Sections, partials, comments, triple braces and anything
/// else between `{{` and `}}` are refused.
pub fn render_mustache(template: &str, vars: impl Fn(&str) -> Option<String>) -> Result<String, NodeError> {
    const DANGEROUS: [&str; 8] = ["{{{", "{{#", "{{/", "{{^", "{{&", "{{>", "{{!", "{{."];
    if DANGEROUS.iter().any(|p| template.contains(p)) {
        return Err(invalid(
            "Complex mustache syntax is not allowed. Only simple variable substitution like {{variable}} is permitted.",
        ));
    }
    let mut at = 0;
    while let Some(start) = template[at..].find("{{").map(|i| at + i) {
        let Some(end) = template[start + 2..].find("}}").map(|i| start + 2 + i) else { break };
        let pattern = &template[start..end + 2];
        if !is_simple_name(&template[start + 2..end]) {
            return Err(invalid(&format!(
                "Invalid mustache variable: {pattern}. Only simple variable names like {{{{variable}}}} are allowed."
            )));
        }
        at = end + 2;
    }
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let name_len = after.find("}}").filter(|&end| is_simple_name(&after[..end]));
        match name_len {
            Some(end) => {
                out.push_str(&rest[..start]);
                out.push_str(&vars(&after[..end]).unwrap_or_default());
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[..start + 1]);
                rest = &rest[start + 1..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_simple_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn invalid(message: &str) -> NodeError {
    NodeError::InvalidInput(format!("the prompt template is invalid: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "a" => Some("1".into()),
            "b" => Some("{x}".into()),
            _ => None,
        }
    }

    #[test]
    fn f_string_rules() {
        assert_eq!(render_f_string("x={a}, y={b}", vars).unwrap(), "x=1, y={x}");
        assert_eq!(render_f_string("{{a}} {a!r} {a:>3}", vars).unwrap(), "{a} 1 1");
        assert_eq!(render_f_string("missing: [{zzz}]", vars).unwrap(), "missing: []");
        assert_eq!(render_f_string("héllo {a} ünïcode", vars).unwrap(), "héllo 1 ünïcode");
        assert!(render_f_string("oops }", vars).is_err());
        assert!(render_f_string("oops {a", vars).is_err());
        assert!(render_f_string("empty {}", vars).is_err());
    }

    #[test]
    fn mustache_rules() {
        assert_eq!(render_mustache("{{a}} and {{b}} and {a}", vars).unwrap(), "1 and {x} and {a}");
        assert_eq!(render_mustache("unclosed {{a", vars).unwrap(), "unclosed {{a");
        assert_eq!(render_mustache("{{missing}}!", vars).unwrap(), "!");
        assert!(render_mustache("{{ a }}", vars).is_err(), "Langflow allows no spaces");
        assert!(render_mustache("{{#items}}x{{/items}}", vars).is_err());
    }
}
