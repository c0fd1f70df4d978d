//! Plan parameters and tweaks (JSON) as node field values.

use crate::{Field, Value};
use sandflow_flow_compiler::ir::{Param, ParamValue};

/// The fields of one parameter. A secret's value never enters the sandbox:
/// the capability that needs it resolves the variable on the host, so the
/// field is left out.
pub fn param_fields(param: &Param) -> Vec<Field> {
    match &param.value {
        ParamValue::Value(v) => fields(&param.name, v),
        ParamValue::Secret(_) => Vec::new(),
    }
}

/// A JSON value as field values: scalars map to their kind, an array of
/// scalars to one entry each (a list field), anything else to JSON text.
pub fn fields(name: &str, value: &serde_json::Value) -> Vec<Field> {
    match value {
        serde_json::Value::Array(items) if items.iter().all(|v| !v.is_array() && !v.is_object()) => {
            items.iter().map(|v| Field { name: name.to_owned(), value: scalar(v) }).collect()
        }
        other => vec![Field { name: name.to_owned(), value: scalar(other) }],
    }
}

fn scalar(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::None,
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::Text(s.clone()),
        other => Value::Json(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_expand_and_objects_stay_json() {
        let f = fields("urls", &serde_json::json!(["a", "b"]));
        assert_eq!(f.len(), 2);
        assert!(matches!(&f[1].value, Value::Text(t) if t == "b"));
        let f = fields("headers", &serde_json::json!([{"k": 1}]));
        assert!(matches!(&f[0].value, Value::Json(t) if t == r#"[{"k":1}]"#));
        assert!(matches!(fields("n", &serde_json::json!(2.5))[0].value, Value::Number(n) if n == 2.5));
    }
}
