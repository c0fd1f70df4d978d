//! Python's `str.format` / `str.format_map` over JSON values, as Langflow's
//! Parser and Data to Message fill their templates: named fields with index
//! access (`{row[0]}`, `{data[text]}`), conversions (`!r`, `!s`, `!a`) and
//! the format-spec mini-language (fill, align, sign, `0`, width, grouping,
//! precision and the types `s d n b o x X c e E f F g G %`), nested fields
//! inside a spec (`{x:>{w}}`), `{{` and `}}`.
//!
//! Values are what `json.loads` makes of a row, plus [`Py::Float`] for the
//! floats pandas makes of numbers (`NaN` for a missing cell, `1.0` for an
//! integer in a column that also holds floats).
//!
//! Departures: attribute access (`{x.y}`) is refused, as it is for a `dict`
//! in Python; `!a` escapes like `!r` then replaces non-ASCII characters.

use crate::table_text::python_repr;
use serde_json::Value as Json;

/// A Python value a template can show.
#[derive(Debug, Clone)]
pub enum Py<'a> {
    /// A value decoded from JSON.
    Json(&'a Json),
    /// A float made by pandas (possibly `nan`).
    Float(f64),
    /// An owned JSON value (a sub-value picked by an index).
    Owned(Json),
}

/// Why a template could not be filled: Python's exception name and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    /// `KeyError`, `ValueError`, `IndexError`, `TypeError` or `AttributeError`.
    pub kind: &'static str,
    /// What Python's `str(exception)` says.
    pub message: String,
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

fn error(kind: &'static str, message: impl Into<String>) -> FormatError {
    FormatError { kind, message: message.into() }
}

/// How names are looked up: `format(**row)` refuses positional fields with
/// an `IndexError`, `format_map` with a `ValueError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `template.format(**mapping)`.
    Format,
    /// `template.format_map(mapping)`.
    FormatMap,
}

/// Fills `template` with `lookup(name)`; `lookup` returns `None` for a
/// missing name (a `KeyError`, unless the mapping supplies a default).
pub fn format<'a>(template: &str, call: Call, lookup: &dyn Fn(&str) -> Option<Py<'a>>) -> Result<String, FormatError> {
    let mut out = String::with_capacity(template.len());
    render(template, call, lookup, &mut out, 2)?;
    Ok(out)
}

fn render<'a>(
    template: &str,
    call: Call,
    lookup: &dyn Fn(&str) -> Option<Py<'a>>,
    out: &mut String,
    depth: u8,
) -> Result<(), FormatError> {
    let bytes = template.as_bytes();
    let mut i = 0;
    let mut literal_start = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => {
                out.push_str(&template[literal_start..i]);
                if bytes.get(i + 1) == Some(&b'{') {
                    out.push('{');
                    i += 2;
                    literal_start = i;
                    continue;
                }
                // The field ends at the brace that closes it (specs may nest fields).
                let mut level = 1;
                let mut j = i + 1;
                while j < bytes.len() {
                    match bytes[j] {
                        b'{' => level += 1,
                        b'}' => {
                            level -= 1;
                            if level == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                if j >= bytes.len() {
                    return Err(if i + 1 == bytes.len() {
                        error("ValueError", "Single '{' encountered in format string")
                    } else {
                        error("ValueError", "expected '}' before end of string")
                    });
                }
                if depth == 0 {
                    return Err(error("ValueError", "Max string recursion exceeded"));
                }
                field(&template[i + 1..j], call, lookup, out, depth)?;
                i = j + 1;
                literal_start = i;
            }
            b'}' => {
                out.push_str(&template[literal_start..i]);
                if bytes.get(i + 1) == Some(&b'}') {
                    out.push('}');
                    i += 2;
                    literal_start = i;
                    continue;
                }
                return Err(error("ValueError", "Single '}' encountered in format string"));
            }
            _ => i += 1,
        }
    }
    out.push_str(&template[literal_start..]);
    Ok(())
}

/// One replacement field (between the braces).
fn field<'a>(
    text: &str,
    call: Call,
    lookup: &dyn Fn(&str) -> Option<Py<'a>>,
    out: &mut String,
    depth: u8,
) -> Result<(), FormatError> {
    // The name runs to `!` or `:` outside square brackets.
    let mut end = text.len();
    let mut in_index = false;
    for (k, c) in text.char_indices() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            '!' | ':' if !in_index => {
                end = k;
                break;
            }
            _ => {}
        }
    }
    let name = &text[..end];
    let mut rest = &text[end..];
    let mut conversion = None;
    if let Some(after) = rest.strip_prefix('!') {
        let mut chars = after.chars();
        let c =
            chars.next().ok_or_else(|| error("ValueError", "end of string while looking for conversion specifier"))?;
        rest = chars.as_str();
        if !rest.is_empty() && !rest.starts_with(':') {
            return Err(error("ValueError", "expected ':' after conversion specifier"));
        }
        conversion = Some(c);
    }
    let spec_template = rest.strip_prefix(':').unwrap_or("");
    let spec = if spec_template.contains('{') {
        let mut spec = String::new();
        render(spec_template, call, lookup, &mut spec, depth - 1)?;
        spec
    } else {
        spec_template.to_owned()
    };
    let value = resolve(name, call, lookup)?;
    let shown = match conversion {
        None => return format_value(&value, &spec).map(|s| out.push_str(&s)),
        Some('s') => str_of(&value),
        Some('r') => repr_of(&value),
        Some('a') => ascii(&repr_of(&value)),
        Some(c) => return Err(error("ValueError", format!("Unknown conversion specifier {c}"))),
    };
    out.push_str(&format_str(&shown, &spec)?);
    Ok(())
}

/// The value a field name points at: a first name, then `[index]` parts.
fn resolve<'a>(name: &str, call: Call, lookup: &dyn Fn(&str) -> Option<Py<'a>>) -> Result<Py<'a>, FormatError> {
    let first_end = name.find(['[', '.']).unwrap_or(name.len());
    let first = &name[..first_end];
    if first.is_empty() || first.chars().all(|c| c.is_ascii_digit()) {
        return Err(match call {
            Call::FormatMap => error("ValueError", "Format string contains positional fields"),
            Call::Format => {
                let index = if first.is_empty() { "0" } else { first };
                error("IndexError", format!("Replacement index {index} out of range for positional args tuple"))
            }
        });
    }
    let mut value = lookup(first).ok_or_else(|| error("KeyError", python_key(first)))?;
    let mut rest = &name[first_end..];
    while !rest.is_empty() {
        if let Some(attr) = rest.strip_prefix('.') {
            let end = attr.find(['[', '.']).unwrap_or(attr.len());
            return Err(error(
                "AttributeError",
                format!("'{}' object has no attribute '{}'", type_name(&value), &attr[..end]),
            ));
        }
        let Some(inner) = rest.strip_prefix('[') else {
            return Err(error("ValueError", "Only '.' or '[' may follow ']' in format field specifier"));
        };
        let close = inner.find(']').ok_or_else(|| error("ValueError", "Missing ']' in format string"))?;
        let key = &inner[..close];
        rest = &inner[close + 1..];
        value = index(&value, key)?;
    }
    Ok(value)
}

fn index<'a>(value: &Py<'a>, key: &str) -> Result<Py<'a>, FormatError> {
    let numeric = !key.is_empty() && key.chars().all(|c| c.is_ascii_digit());
    let json = match value {
        Py::Json(j) => *j,
        Py::Owned(j) => j,
        Py::Float(_) => return Err(error("TypeError", "'float' object is not subscriptable")),
    };
    let picked = match json {
        Json::Object(map) if !numeric => map.get(key),
        Json::Object(_) => return Err(error("KeyError", key.to_owned())),
        Json::Array(items) if numeric => {
            let i: usize = key.parse().unwrap_or(usize::MAX);
            Some(items.get(i).ok_or_else(|| error("IndexError", "list index out of range"))?)
        }
        Json::String(s) if numeric => {
            let i: usize = key.parse().unwrap_or(usize::MAX);
            let c = s.chars().nth(i).ok_or_else(|| error("IndexError", "string index out of range"))?;
            return Ok(Py::Owned(Json::String(c.to_string())));
        }
        Json::Array(_) | Json::String(_) => {
            return Err(error(
                "TypeError",
                format!("{} indices must be integers or slices, not str", type_name(value)),
            ));
        }
        _ => return Err(error("TypeError", format!("'{}' object is not subscriptable", type_name(value)))),
    };
    let picked = picked.ok_or_else(|| error("KeyError", python_key(key)))?;
    Ok(Py::Owned(picked.clone()))
}

fn python_key(key: &str) -> String {
    python_repr(&Json::String(key.to_owned()))
}

fn type_name(value: &Py<'_>) -> &'static str {
    match value {
        Py::Float(_) => "float",
        Py::Json(j) => json_type_name(j),
        Py::Owned(j) => json_type_name(j),
    }
}

fn json_type_name(j: &Json) -> &'static str {
    match j {
        Json::Null => "NoneType",
        Json::Bool(_) => "bool",
        Json::Number(n) if n.is_f64() => "float",
        Json::Number(_) => "int",
        Json::String(_) => "str",
        Json::Array(_) => "list",
        Json::Object(_) => "dict",
    }
}

/// Python's `str(value)`.
pub fn str_of(value: &Py<'_>) -> String {
    match value {
        Py::Float(f) => float_repr(*f),
        Py::Json(j) => json_str(j),
        Py::Owned(j) => json_str(j),
    }
}

fn json_str(j: &Json) -> String {
    match j {
        Json::String(s) => s.clone(),
        Json::Number(n) if n.is_f64() => float_repr(n.as_f64().unwrap_or(f64::NAN)),
        other => python_repr(other),
    }
}

fn repr_of(value: &Py<'_>) -> String {
    match value {
        Py::Float(f) => float_repr(*f),
        Py::Json(j) => python_repr(j),
        Py::Owned(j) => python_repr(j),
    }
}

fn ascii(repr: &str) -> String {
    repr.chars()
        .map(|c| match c as u32 {
            0..=0x7f => c.to_string(),
            n @ 0x80..=0xff => format!("\\x{n:02x}"),
            n @ 0x100..=0xffff => format!("\\u{n:04x}"),
            n => format!("\\U{n:08x}"),
        })
        .collect()
}

/// Python's `repr(float)`: the shortest text that reads back, in fixed
/// notation for exponents from -4 to 15 and scientific outside.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let sci = format!("{f:e}"); // shortest digits: `d.ddde±x`
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let s = fixed_from_digits(&digits, exp);
        let s = if s.contains('.') { s } else { format!("{s}.0") };
        format!("{sign}{s}")
    } else {
        let (head, tail) = digits.split_at(1);
        let frac = if tail.is_empty() { String::new() } else { format!(".{tail}") };
        format!("{sign}{head}{frac}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

/// Digits `d1d2d3…` with the decimal exponent of `d1`, in fixed notation.
fn fixed_from_digits(digits: &str, exp: i32) -> String {
    if exp < 0 {
        format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            format!("{digits}{}", "0".repeat(int_len - digits.len()))
        } else {
            format!("{}.{}", &digits[..int_len], &digits[int_len..])
        }
    }
}

/// A parsed format spec.
#[derive(Debug, Default)]
struct Spec {
    fill: Option<char>,
    align: Option<char>,
    sign: Option<char>,
    alternate: bool,
    zero: bool,
    width: usize,
    grouping: Option<char>,
    precision: Option<usize>,
    kind: Option<char>,
}

fn parse_spec(spec: &str) -> Result<Spec, FormatError> {
    let chars: Vec<char> = spec.chars().collect();
    let mut s = Spec::default();
    let mut i = 0;
    let is_align = |c: char| matches!(c, '<' | '>' | '^' | '=');
    if chars.len() >= 2 && is_align(chars[1]) {
        s.fill = Some(chars[0]);
        s.align = Some(chars[1]);
        i = 2;
    } else if !chars.is_empty() && is_align(chars[0]) {
        s.align = Some(chars[0]);
        i = 1;
    }
    if let Some(&c @ ('+' | '-' | ' ')) = chars.get(i) {
        s.sign = Some(c);
        i += 1;
    }
    if chars.get(i) == Some(&'#') {
        s.alternate = true;
        i += 1;
    }
    if chars.get(i) == Some(&'0') {
        s.zero = true;
        i += 1;
    }
    let start = i;
    while chars.get(i).is_some_and(char::is_ascii_digit) {
        i += 1;
    }
    if i > start {
        s.width = chars[start..i].iter().collect::<String>().parse().map_err(|_| too_big())?;
    }
    if let Some(&c @ (',' | '_')) = chars.get(i) {
        s.grouping = Some(c);
        i += 1;
    }
    if chars.get(i) == Some(&'.') {
        i += 1;
        let start = i;
        while chars.get(i).is_some_and(char::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(error("ValueError", "Format specifier missing precision"));
        }
        s.precision = Some(chars[start..i].iter().collect::<String>().parse().map_err(|_| too_big())?);
    }
    if let Some(&c) = chars.get(i) {
        s.kind = Some(c);
        i += 1;
    }
    if i < chars.len() {
        return Err(error("ValueError", "Invalid format specifier"));
    }
    Ok(s)
}

fn too_big() -> FormatError {
    error("ValueError", "Too many decimal digits in format string")
}

/// `format(value, spec)`.
pub fn format_value(value: &Py<'_>, spec: &str) -> Result<String, FormatError> {
    let json = match value {
        Py::Float(f) => return format_float(*f, spec),
        Py::Json(j) => *j,
        Py::Owned(j) => j,
    };
    match json {
        Json::String(s) => format_str(s, spec),
        Json::Bool(b) if spec.is_empty() => Ok(if *b { "True" } else { "False" }.into()),
        Json::Bool(b) => format_int(i128::from(*b), spec),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => format_int(i128::from(i), spec),
            (None, Some(u)) => format_int(i128::from(u), spec),
            _ => format_float(n.as_f64().unwrap_or(f64::NAN), spec),
        },
        other if spec.is_empty() => Ok(python_repr(other)),
        other => {
            Err(error("TypeError", format!("unsupported format string passed to {}.__format__", json_type_name(other))))
        }
    }
}

fn format_str(s: &str, spec: &str) -> Result<String, FormatError> {
    if spec.is_empty() {
        return Ok(s.to_owned());
    }
    let p = parse_spec(spec)?;
    match p.kind {
        None | Some('s') => {}
        Some(k) => return Err(error("ValueError", format!("Unknown format code '{k}' for object of type 'str'"))),
    }
    if p.sign.is_some() {
        return Err(error("ValueError", "Sign not allowed in string format specifier"));
    }
    if p.alternate {
        return Err(error("ValueError", "Alternate form (#) not allowed in string format specifier"));
    }
    if p.align == Some('=') {
        return Err(error("ValueError", "'=' alignment not allowed in string format specifier"));
    }
    if p.grouping.is_some() {
        return Err(error("ValueError", "Cannot specify ',' with 's'."));
    }
    let text: String = match p.precision {
        Some(n) => s.chars().take(n).collect(),
        None => s.to_owned(),
    };
    let fill = p.fill.unwrap_or(if p.zero && p.align.is_none() { '0' } else { ' ' });
    Ok(pad("", &text, p.width, p.align.unwrap_or('<'), fill))
}

fn format_int(i: i128, spec: &str) -> Result<String, FormatError> {
    let p = parse_spec(spec)?;
    let kind = p.kind.unwrap_or('d');
    let digits = match kind {
        'd' | 'n' => i.unsigned_abs().to_string(),
        'b' => format!("{:b}", i.unsigned_abs()),
        'o' => format!("{:o}", i.unsigned_abs()),
        'x' => format!("{:x}", i.unsigned_abs()),
        'X' => format!("{:X}", i.unsigned_abs()),
        'c' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| error("OverflowError", "%c arg not in range(0x110000)"))?;
            return Ok(pad("", &c.to_string(), p.width, p.align.unwrap_or('<'), p.fill.unwrap_or(' ')));
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' | '%' => return format_float(i as f64, spec),
        k => return Err(error("ValueError", format!("Unknown format code '{k}' for object of type 'int'"))),
    };
    if p.precision.is_some() {
        return Err(error("ValueError", "Precision not allowed in integer format specifier"));
    }
    let prefix = if p.alternate {
        match kind {
            'b' => "0b",
            'o' => "0o",
            'x' => "0x",
            'X' => "0X",
            _ => "",
        }
    } else {
        ""
    };
    let group_every = if matches!(kind, 'd' | 'n') { 3 } else { 4 };
    let digits = match p.grouping {
        Some(g) => group(&digits, g, group_every),
        None => digits,
    };
    let sign = sign_text(i < 0, p.sign);
    Ok(finish_number(&format!("{sign}{prefix}"), &digits, &p))
}

fn sign_text(negative: bool, sign: Option<char>) -> &'static str {
    match (negative, sign) {
        (true, _) => "-",
        (false, Some('+')) => "+",
        (false, Some(' ')) => " ",
        _ => "",
    }
}

fn finish_number(sign: &str, body: &str, p: &Spec) -> String {
    let (fill, align) = match (p.fill, p.align) {
        (fill, Some(a)) => (fill.unwrap_or(if p.zero { '0' } else { ' ' }), a),
        (_, None) if p.zero => ('0', '='),
        (fill, None) => (fill.unwrap_or(' '), '>'),
    };
    pad(sign, body, p.width, align, fill)
}

fn pad(sign: &str, body: &str, width: usize, align: char, fill: char) -> String {
    let len = sign.chars().count() + body.chars().count();
    let missing = width.saturating_sub(len);
    let fills = |n: usize| std::iter::repeat_n(fill, n).collect::<String>();
    match align {
        '<' => format!("{sign}{body}{}", fills(missing)),
        '^' => format!("{}{sign}{body}{}", fills(missing / 2), fills(missing - missing / 2)),
        '=' => format!("{sign}{}{body}", fills(missing)),
        _ => format!("{}{sign}{body}", fills(missing)),
    }
}

/// `1234567` → `1,234,567` (every `every` digits from the right).
fn group(digits: &str, sep: char, every: usize) -> String {
    let n = digits.len();
    let mut out = String::with_capacity(n + n / every);
    for (k, c) in digits.chars().enumerate() {
        if k > 0 && (n - k).is_multiple_of(every) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

fn format_float(f: f64, spec: &str) -> Result<String, FormatError> {
    if spec.is_empty() {
        return Ok(float_repr(f));
    }
    let p = parse_spec(spec)?;
    let negative = f.is_sign_negative() && !f.is_nan();
    let a = f.abs();
    let upper = matches!(p.kind, Some('E' | 'F' | 'G'));
    let body = if !a.is_finite() {
        let t = if a.is_nan() { "nan" } else { "inf" };
        if upper { t.to_uppercase() } else { t.to_owned() }
    } else {
        match p.kind {
            Some('f' | 'F') => fixed(a, p.precision.unwrap_or(6), p.alternate),
            Some('e' | 'E') => sci(a, p.precision.unwrap_or(6), upper, p.alternate),
            Some('%') => format!("{}%", fixed(a * 100.0, p.precision.unwrap_or(6), p.alternate)),
            Some('g' | 'G') => general(a, p.precision.unwrap_or(6), upper, p.alternate, false),
            None | Some('n') => match p.precision {
                Some(prec) => general(a, prec, false, p.alternate, true),
                None => float_repr(a),
            },
            Some(k) => {
                return Err(error("ValueError", format!("Unknown format code '{k}' for object of type 'float'")));
            }
        }
    };
    let body = match p.grouping {
        Some(g) if a.is_finite() => {
            let split = body.find(|c: char| !c.is_ascii_digit()).unwrap_or(body.len());
            format!("{}{}", group(&body[..split], g, 3), &body[split..])
        }
        _ => body,
    };
    Ok(finish_number(sign_text(negative, p.sign), &body, &p))
}

fn fixed(a: f64, precision: usize, alternate: bool) -> String {
    let s = format!("{a:.precision$}");
    if alternate && precision == 0 { format!("{s}.") } else { s }
}

fn sci(a: f64, precision: usize, upper: bool, alternate: bool) -> String {
    let s = format!("{a:.precision$e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let dot = if alternate && precision == 0 { "." } else { "" };
    let e = if upper { 'E' } else { 'e' };
    format!("{mantissa}{dot}{e}{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

/// `g` (and the default presentation with a precision, `repr_style`).
fn general(a: f64, precision: usize, upper: bool, alternate: bool, repr_style: bool) -> String {
    let p = precision.max(1);
    if a == 0.0 {
        return if repr_style {
            "0.0".into()
        } else if alternate {
            format!("0.{}", "0".repeat(p - 1))
        } else {
            "0".into()
        };
    }
    // The exponent after rounding to `p` significant digits.
    let rounded = format!("{a:.prec$e}", prec = p - 1);
    let exp: i32 = rounded.split_once('e').and_then(|(_, e)| e.parse().ok()).unwrap_or(0);
    let limit = if repr_style { p as i32 - 1 } else { p as i32 };
    let use_fixed = -4 <= exp && exp < limit;
    let mut s = if use_fixed {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        format!("{a:.decimals$}")
    } else {
        sci(a, p - 1, upper, false)
    };
    if !alternate {
        let (m, e) = match s.find(['e', 'E']) {
            Some(k) => (s[..k].to_owned(), s[k..].to_owned()),
            None => (s.clone(), String::new()),
        };
        let m = if m.contains('.') { m.trim_end_matches('0').trim_end_matches('.').to_owned() } else { m };
        s = format!("{m}{e}");
    }
    if repr_style && use_fixed && !s.contains('.') {
        s.push_str(".0");
    }
    s
}

/// Python's `str.isspace` for one character.
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fill(template: &str, row: &Json) -> Result<String, FormatError> {
        format(template, Call::Format, &|name| row.get(name).map(Py::Json))
    }

    #[test]
    fn fields_specs_and_conversions() {
        let row = json!({"a": "x", "n": 1234567, "f": 1.23456, "b": true, "l": [1, "two"], "d": {"k": "v"}, "z": null});
        assert_eq!(
            fill("{a}|{n}|{f}|{b}|{l}|{d}|{z}", &row).unwrap(),
            "x|1234567|1.23456|True|[1, 'two']|{'k': 'v'}|None"
        );
        assert_eq!(
            fill("{a:>3}|{a:*^5}|{n:,}|{n:_x}|{f:.2f}|{f:8.3e}|{n:+d}", &row).unwrap(),
            "  x|**x**|1,234,567|12_d687|1.23|1.235e+00|+1234567"
        );
        assert_eq!(
            fill("{a!r}|{l[1]}|{d[k]}|{f:.3}|{f:g}|{n:08}|{b:d}", &row).unwrap(),
            "'x'|two|v|1.23|1.23456|01234567|1"
        );
        assert_eq!(fill("{{{a}}}", &row).unwrap(), "{x}");
        assert_eq!(fill("{a:>{n}}", &json!({"a": "x", "n": 3})).unwrap(), "  x");
    }

    #[test]
    fn python_errors() {
        let row = json!({"a": "x"});
        assert_eq!(fill("{b}", &row).unwrap_err(), error("KeyError", "'b'"));
        assert_eq!(fill("{}", &row).unwrap_err().kind, "IndexError");
        assert_eq!(fill("{a:d}", &row).unwrap_err().kind, "ValueError");
        assert_eq!(fill("x }", &row).unwrap_err().message, "Single '}' encountered in format string");
        assert_eq!(fill("x {", &row).unwrap_err().message, "Single '{' encountered in format string");
        assert_eq!(fill("x {a", &row).unwrap_err().message, "expected '}' before end of string");
        let map = format("{0}", Call::FormatMap, &|_| None).unwrap_err();
        assert_eq!(map.message, "Format string contains positional fields");
    }

    #[test]
    fn floats_print_like_python() {
        for (f, s) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e-5, "1e-05"),
            (123456.789, "123456.789"),
            (f64::NAN, "nan"),
            (-2.5, "-2.5"),
            (1.5e-7, "1.5e-07"),
        ] {
            assert_eq!(float_repr(f), s);
        }
    }
}
