//! Finds where a JSON pointer points in the uploaded text, for diagnostics
//! with line and column. A small scanner rather than a span-keeping parser:
//! it only runs when a diagnostic is rendered, never on the compile path.

/// Line and column (1-based, column in characters) of the value `pointer`
/// designates in `source`, or of its deepest existing ancestor.
pub fn line_col(source: &str, pointer: &str) -> Option<(usize, usize)> {
    let offset = offset_of(source, pointer)?;
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, col))
}

/// Byte offset of the value `pointer` designates (or its deepest existing ancestor).
pub fn offset_of(source: &str, pointer: &str) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut pos = skip_ws(bytes, 0);
    if pos >= bytes.len() {
        return None;
    }
    if pointer.is_empty() {
        return Some(pos);
    }
    for raw in pointer.split('/').skip(1) {
        let token = raw.replace("~1", "/").replace("~0", "~");
        match bytes[pos] {
            b'{' => match find_member(source, pos, &token) {
                Some(p) => pos = p,
                None => return Some(pos),
            },
            b'[' => {
                let Ok(index) = token.parse::<usize>() else {
                    return Some(pos);
                };
                match find_element(bytes, pos, index) {
                    Some(p) => pos = p,
                    None => return Some(pos),
                }
            }
            _ => return Some(pos),
        }
    }
    Some(pos)
}

fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    while pos < bytes.len() && matches!(bytes[pos], b' ' | b'\t' | b'\n' | b'\r') {
        pos += 1;
    }
    pos
}

/// End (exclusive) of the string starting at `pos` (which holds `"`).
fn string_end(bytes: &[u8], pos: usize) -> Option<usize> {
    let mut i = pos + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// End (exclusive) of the value starting at `pos`, without recursion.
fn value_end(bytes: &[u8], pos: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = pos;
    loop {
        let b = *bytes.get(i)?;
        match b {
            b'"' => {
                i = string_end(bytes, i)?;
                if depth == 0 {
                    return Some(i);
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            b',' | b' ' | b'\t' | b'\n' | b'\r' if depth == 0 => return Some(i),
            _ => {}
        }
        i += 1;
    }
}

fn find_member(source: &str, object: usize, key: &str) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut i = skip_ws(bytes, object + 1);
    while i < bytes.len() && bytes[i] == b'"' {
        let end = string_end(bytes, i)?;
        let name: String = serde_json::from_str(&source[i..end]).ok()?;
        i = skip_ws(bytes, end);
        if bytes.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(bytes, i + 1);
        if name == key {
            return Some(i);
        }
        i = skip_ws(bytes, value_end(bytes, i)?);
        if bytes.get(i) == Some(&b',') {
            i = skip_ws(bytes, i + 1);
        }
    }
    None
}

fn find_element(bytes: &[u8], array: usize, index: usize) -> Option<usize> {
    let mut i = skip_ws(bytes, array + 1);
    for _ in 0..index {
        i = skip_ws(bytes, value_end(bytes, i)?);
        if bytes.get(i) != Some(&b',') {
            return None;
        }
        i = skip_ws(bytes, i + 1);
    }
    (i < bytes.len() && bytes[i] != b']').then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_members_and_elements() {
        let src = "{\n  \"data\": {\n    \"nodes\": [1, {\"id\": \"a/b\"}]\n  }\n}";
        assert_eq!(line_col(src, "/data/nodes/1/id"), Some((3, 25)));
        assert_eq!(line_col(src, "/data/nodes/0"), Some((3, 15)));
        // Missing member: the deepest ancestor that exists.
        assert_eq!(line_col(src, "/data/edges"), Some((2, 11)));
        assert_eq!(line_col(src, ""), Some((1, 1)));
    }

    #[test]
    fn escaped_tokens_and_strings_with_braces() {
        let src = r#"{"a/b": {"x": "}{\"", "y~": 2}}"#;
        assert_eq!(offset_of(src, "/a~1b/y~0"), Some(28));
    }
}
