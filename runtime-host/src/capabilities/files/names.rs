//! Which file names a guest (or an upload) may use. Names are untrusted:
//! a name is a relative path of plain components separated by `/`, so it
//! can only ever point below the scope's own directory.

use super::store::FilesError;

/// Most bytes of a whole name.
pub const MAX_NAME_BYTES: usize = 512;
/// Most bytes of one component (most file systems' own limit).
pub const MAX_COMPONENT_BYTES: usize = 255;
/// Most components (directories plus the file).
pub const MAX_DEPTH: usize = 16;

/// Checks a file name and returns its components. Refused: empty names,
/// absolute paths, `.` and `..`, empty components (`a//b`, a trailing
/// `/`), components starting with `.` (hidden; the store keeps its
/// temporary files there), backslashes, NUL and other control
/// characters, and names over the length and depth limits.
pub fn components(name: &str) -> Result<Vec<&str>, FilesError> {
    let invalid = |why: &str| Err(FilesError::Invalid(format!("the file name `{}` {why}", shown(name))));
    if name.is_empty() {
        return Err(FilesError::Invalid("the file name is empty".into()));
    }
    if name.len() > MAX_NAME_BYTES {
        return invalid(&format!("is {} bytes; names have at most {MAX_NAME_BYTES}", name.len()));
    }
    if name.contains('\0') {
        return invalid("contains a NUL character");
    }
    if name.chars().any(char::is_control) {
        return invalid("contains a control character");
    }
    if name.contains('\\') {
        return invalid("contains a backslash; separate directories with `/`");
    }
    if name.starts_with('/') {
        return invalid("is absolute; names are relative to the tenant's storage");
    }
    let parts: Vec<&str> = name.split('/').collect();
    if parts.len() > MAX_DEPTH {
        return invalid(&format!("has {} components; at most {MAX_DEPTH} are allowed", parts.len()));
    }
    for part in &parts {
        if part.is_empty() {
            return invalid("has an empty component (`//` or a trailing `/`)");
        }
        if *part == "." || *part == ".." {
            return invalid("contains `.` or `..`; names cannot leave the tenant's storage");
        }
        if part.starts_with('.') {
            return invalid("has a component starting with `.`; hidden names are reserved");
        }
        if part.len() > MAX_COMPONENT_BYTES {
            return invalid(&format!("has a component over {MAX_COMPONENT_BYTES} bytes"));
        }
    }
    Ok(parts)
}

/// Checks a listing prefix: like a name, but it may be empty and may end
/// in `/` or in part of a component.
pub fn check_prefix(prefix: &str) -> Result<(), FilesError> {
    if prefix.is_empty() {
        return Ok(());
    }
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    // A partial last component (`rep` for `reports/`) is fine; the rules
    // for whole components apply to all of it.
    components(trimmed).map(|_| ())
}

/// A name for messages: at most 120 characters, control characters escaped.
pub fn shown(name: &str) -> String {
    let mut out: String = name.chars().take(120).flat_map(char::escape_debug).collect();
    if name.chars().count() > 120 {
        out.push('…');
    }
    out
}

/// An uploaded file's name as a single safe component: its last path
/// component (browsers send `C:\fakepath\x.txt` or `dir/x.txt`), control
/// characters dropped, leading dots and spaces removed, cut to fit. `None`
/// when nothing usable is left.
pub fn upload_component(filename: &str) -> Option<String> {
    let last = filename.rsplit(['/', '\\']).next().unwrap_or(filename);
    let cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim().trim_start_matches(['.', ' ']);
    let mut out = String::new();
    for c in cleaned.chars() {
        if out.len() + c.len_utf8() > 200 {
            break;
        }
        out.push(c);
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass() {
        assert_eq!(components("a.txt").expect("ok"), ["a.txt"]);
        assert_eq!(components("flow/2026_x y.md").expect("ok"), ["flow", "2026_x y.md"]);
    }

    #[test]
    fn hostile_names_are_refused() {
        for name in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../b",
            "a/./b",
            "..",
            "a//b",
            "a/",
            ".hidden",
            "a/.tmp-1",
            "a\\..\\b",
            "a\0b",
            "a\nb",
            &"x".repeat(600),
            &format!("{}/a", "y".repeat(300)),
            "a/".repeat(20).trim_end_matches('/'),
        ] {
            assert!(components(name).is_err(), "`{}` must be refused", shown(name));
        }
    }

    #[test]
    fn prefixes() {
        assert!(check_prefix("").is_ok());
        assert!(check_prefix("reports/").is_ok());
        assert!(check_prefix("rep").is_ok());
        assert!(check_prefix("../").is_err());
        assert!(check_prefix("/etc").is_err());
    }

    #[test]
    fn upload_names_become_one_component() {
        assert_eq!(upload_component("C:\\fakepath\\cv.txt").as_deref(), Some("cv.txt"));
        assert_eq!(upload_component("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(upload_component("..").as_deref(), None);
        assert_eq!(upload_component(" .bashrc").as_deref(), Some("bashrc"));
        assert_eq!(upload_component("a\0b\n.txt").as_deref(), Some("ab.txt"));
    }
}
