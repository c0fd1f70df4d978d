//! Reading a SQL text just enough for SQLite, whose driver runs every
//! statement of a text one after the other (PostgreSQL's and MySQL's
//! prepared statements refuse a second one themselves), and which runs in
//! the host's own process, where a statement that opens another file
//! (`ATTACH`, `VACUUM INTO`) would reach the host's file system.
//!
//! This is a lexer, not a parser: it blanks out quoted strings and
//! identifiers (`'…'`, `"…"`, `` `…` ``, `[…]`) and comments (`--`,
//! `/* … */`) and looks at what is left. What it cannot read (an
//! unterminated string or comment) counts against the text, so a doubt
//! refuses rather than runs. Read-only is never decided here: the
//! database enforces it.

/// The text with quoted parts replaced by `q` and comments by spaces;
/// `None` when a quote or comment is not closed.
fn code(sql: &str) -> Option<String> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' | '"' | '`' | '[' => {
                let close = if c == '[' { ']' } else { c };
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return None,
                        Some(&d) if d == close && c != '[' && chars.get(j + 1) == Some(&close) => j += 2,
                        Some(&d) if d == close => break,
                        Some(_) => j += 1,
                    }
                }
                out.push('q');
                i = j + 1;
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                out.push(' ');
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                let mut j = i + 2;
                loop {
                    match (chars.get(j), chars.get(j + 1)) {
                        (Some('*'), Some('/')) => break,
                        (None, _) => return None,
                        _ => j += 1,
                    }
                }
                out.push(' ');
                i = j + 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Whether `sql` holds more than one statement (or cannot be read).
pub fn several(sql: &str) -> bool {
    let Some(code) = code(sql) else { return true };
    match code.split_once(';') {
        Some((_, rest)) => rest.chars().any(|c| !c.is_whitespace() && c != ';'),
        None => false,
    }
}

/// Whether `sql` would open another database file (`ATTACH`, `VACUUM
/// INTO`; any `VACUUM`, to be simple), or cannot be read.
pub fn opens_files(sql: &str) -> bool {
    let Some(code) = code(sql) else { return true };
    code.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|word| word.eq_ignore_ascii_case("attach") || word.eq_ignore_ascii_case("vacuum"))
}

#[cfg(test)]
mod tests {
    use super::{opens_files, several};

    #[test]
    fn one_statement() {
        for sql in [
            "SELECT 1",
            "SELECT 1;",
            "SELECT 1; ;  -- done\n",
            "SELECT ';' AS a, \"x;y\", [z;], `w;` FROM t /* ; */",
            "SELECT 'it''s; fine'",
            "SELECT 1 -- ; DROP TABLE t",
        ] {
            assert!(!several(sql), "{sql}");
        }
    }

    #[test]
    fn several_statements() {
        for sql in [
            "SELECT 1; DROP TABLE t",
            "SELECT 1;DROP TABLE t;",
            "SELECT 'a'; 'b'",
            "SELECT 1; /* x */ SELECT 2",
            "SELECT 'unterminated",
            "SELECT /* unterminated",
        ] {
            assert!(several(sql), "{sql}");
        }
    }

    #[test]
    fn statements_that_open_files() {
        assert!(opens_files("VACUUM INTO '/tmp/x.db'"));
        assert!(opens_files("attach database '/etc/x' as x"));
        assert!(opens_files("  /* */ Vacuum"));
        assert!(!opens_files("SELECT 'attach' AS \"vacuum\""));
        assert!(!opens_files("SELECT attached_at FROM t"));
    }
}
