//! Just enough HTML and XML for the web nodes: a forgiving tokenizer, the
//! text of an HTML page as BeautifulSoup's `get_text()` gives it (the
//! parser Langflow's URL and Web Search components use), the page's title,
//! description, language and links, and a small XML tree for RSS and Atom
//! feeds.
//!
//! BeautifulSoup's text: every string of the document in order, except
//! comments, declarations and the contents of `script`, `style` and
//! `template`; entities decoded; a string of nothing but ASCII whitespace
//! becomes `"\n"` if it holds a newline and `" "` otherwise, unless it is
//! inside `pre` or `textarea`.

/// One piece of markup.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// `<name attr=…>`; names are lower case in HTML mode.
    Start { name: String, attrs: Vec<(String, String)>, self_closing: bool },
    /// `</name>`.
    End(String),
    /// Text between tags, entities decoded.
    Text(String),
    /// `<![CDATA[…]]>` content, as is.
    CData(String),
}

/// Elements whose content is text up to their end tag (HTML).
const RAW_TEXT: &[&str] = &["script", "style", "title", "textarea", "xmp", "noembed", "noframes"];

/// Tokens of `source`. In HTML mode names are lower-cased and the
/// content of [`RAW_TEXT`] elements is not parsed for tags; comments,
/// declarations and processing instructions are dropped.
pub fn tokens(source: &str, html: bool) -> Vec<Token> {
    let source = source.replace("\r\n", "\n");
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut text_start = 0;
    let mut at = 0;
    let flush = |out: &mut Vec<Token>, from: usize, to: usize| {
        if to > from {
            out.push(Token::Text(decode_entities(&source[from..to])));
        }
    };
    while at < bytes.len() {
        if bytes[at] != b'<' {
            at += 1;
            continue;
        }
        let rest = &source[at..];
        if let Some(body) = rest.strip_prefix("<!--") {
            flush(&mut out, text_start, at);
            at += 4 + body.find("-->").map_or(body.len(), |e| e + 3);
            text_start = at;
        } else if let Some(body) = rest.strip_prefix("<![CDATA[") {
            flush(&mut out, text_start, at);
            let end = body.find("]]>").unwrap_or(body.len());
            if !html {
                out.push(Token::CData(body[..end].to_owned()));
            }
            at += 9 + (end + 3).min(body.len());
            text_start = at;
        } else if rest.starts_with("<!") || rest.starts_with("<?") {
            flush(&mut out, text_start, at);
            at += rest.find('>').map_or(rest.len(), |e| e + 1);
            text_start = at;
        } else if let Some(body) = rest.strip_prefix("</") {
            if !body.starts_with(|c: char| c.is_ascii_alphabetic()) {
                at += 1;
                continue;
            }
            flush(&mut out, text_start, at);
            let end = body.find('>').map_or(body.len(), |e| e + 1);
            let name: String = body.chars().take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/').collect();
            out.push(Token::End(if html { name.to_ascii_lowercase() } else { name }));
            at += 2 + end;
            text_start = at;
        } else if rest[1..].starts_with(|c: char| c.is_ascii_alphabetic()) {
            flush(&mut out, text_start, at);
            let (token, used) = start_tag(rest, html);
            at += used;
            text_start = at;
            if let Token::Start { name, self_closing: false, .. } = &token
                && html
                && RAW_TEXT.contains(&name.as_str())
            {
                let name = name.clone();
                out.push(token);
                let body = &source[at..];
                let end = find_ascii_case_insensitive(body, &format!("</{name}")).unwrap_or(body.len());
                if end > 0 {
                    let content = &body[..end];
                    // script and style are raw text; the others decode entities.
                    let text = if matches!(name.as_str(), "script" | "style" | "xmp") {
                        content.to_owned()
                    } else {
                        decode_entities(content)
                    };
                    out.push(Token::Text(text));
                }
                at += end;
                text_start = at;
                continue;
            }
            out.push(token);
        } else {
            at += 1;
        }
    }
    flush(&mut out, text_start, bytes.len());
    out
}

fn find_ascii_case_insensitive(haystack: &str, needle: &str) -> Option<usize> {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    (0..h.len().saturating_sub(n.len() - 1)).find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// A start tag at the beginning of `rest` and the bytes it used.
fn start_tag(rest: &str, html: bool) -> (Token, usize) {
    let bytes = rest.as_bytes();
    let mut at = 1;
    let name_end = rest[at..].find(|c: char| c.is_whitespace() || c == '>' || c == '/').map_or(rest.len(), |e| e + at);
    let mut name = rest[at..name_end].to_owned();
    if html {
        name.make_ascii_lowercase();
    }
    at = name_end;
    let mut attrs = Vec::new();
    let mut self_closing = false;
    while at < bytes.len() {
        match bytes[at] {
            b'>' => {
                at += 1;
                break;
            }
            b'/' => {
                self_closing = bytes.get(at + 1) == Some(&b'>');
                at += 1;
            }
            c if c.is_ascii_whitespace() => at += 1,
            _ => {
                let end = rest[at..]
                    .find(|c: char| c.is_whitespace() || c == '=' || c == '>' || c == '/')
                    .map_or(rest.len(), |e| e + at);
                let mut key = rest[at..end].to_owned();
                if html {
                    key.make_ascii_lowercase();
                }
                at = end;
                while at < bytes.len() && bytes[at].is_ascii_whitespace() {
                    at += 1;
                }
                let mut value = String::new();
                if bytes.get(at) == Some(&b'=') {
                    at += 1;
                    while at < bytes.len() && bytes[at].is_ascii_whitespace() {
                        at += 1;
                    }
                    match bytes.get(at) {
                        Some(&quote @ (b'"' | b'\'')) => {
                            let close = rest[at + 1..].find(quote as char).map_or(rest.len(), |e| e + at + 1);
                            value = decode_entities(&rest[at + 1..close]);
                            at = (close + 1).min(rest.len());
                        }
                        _ => {
                            let end =
                                rest[at..].find(|c: char| c.is_whitespace() || c == '>').map_or(rest.len(), |e| e + at);
                            value = decode_entities(&rest[at..end]);
                            at = end;
                        }
                    }
                }
                if !key.is_empty() && !attrs.iter().any(|(k, _)| *k == key) {
                    attrs.push((key, value));
                }
            }
        }
    }
    (Token::Start { name, attrs, self_closing }, at.min(rest.len()))
}

/// Decodes character references: numeric ones and the common named ones
/// (HTML 4's set, with or without the closing `;` for the classic five).
pub fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match entity(rest) {
            Some((decoded, used)) => {
                out.push_str(&decoded);
                rest = &rest[used..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The entity at the start of `text` (which starts with `&`).
fn entity(text: &str) -> Option<(String, usize)> {
    if let Some(num) = text.strip_prefix("&#") {
        let (digits, radix, skip) = match num.strip_prefix(['x', 'X']) {
            Some(hex) => (hex.chars().take_while(char::is_ascii_hexdigit).collect::<String>(), 16, 3),
            None => (num.chars().take_while(char::is_ascii_digit).collect::<String>(), 10, 2),
        };
        if digits.is_empty() {
            return None;
        }
        let code = u32::from_str_radix(&digits, radix).ok()?;
        let c = match code {
            0 => '\u{fffd}',
            // Windows-1252 in the C1 range, as browsers and libxml2 read it.
            0x80..=0x9f => cp1252(code).unwrap_or('\u{fffd}'),
            _ => char::from_u32(code).unwrap_or('\u{fffd}'),
        };
        let mut used = skip + digits.len();
        if text[used..].starts_with(';') {
            used += 1;
        }
        return Some((c.to_string(), used));
    }
    let name: String = text[1..].chars().take_while(char::is_ascii_alphanumeric).take(10).collect();
    let value = NAMED.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)?;
    let with_semicolon = text[1 + name.len()..].starts_with(';');
    if !with_semicolon && !matches!(name.as_str(), "amp" | "lt" | "gt" | "quot" | "nbsp") {
        return None;
    }
    Some((value.to_owned(), 1 + name.len() + usize::from(with_semicolon)))
}

fn cp1252(code: u32) -> Option<char> {
    const TABLE: [u16; 32] = [
        0x20ac, 0, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0, 0x17d, 0, 0,
        0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0, 0x17e, 0x178,
    ];
    let mapped = TABLE[(code - 0x80) as usize];
    (mapped != 0).then(|| char::from_u32(u32::from(mapped))).flatten()
}

#[rustfmt::skip]
const NAMED: &[(&str, &str)] = &[
    ("amp", "&"), ("lt", "<"), ("gt", ">"), ("quot", "\""), ("apos", "'"), ("nbsp", "\u{a0}"), ("iexcl", "¡"),
    ("cent", "¢"), ("pound", "£"), ("curren", "¤"), ("yen", "¥"), ("brvbar", "¦"), ("sect", "§"),
    ("uml", "¨"), ("copy", "©"), ("ordf", "ª"), ("laquo", "«"), ("not", "¬"), ("shy", "\u{ad}"), ("reg", "®"),
    ("macr", "¯"), ("deg", "°"), ("plusmn", "±"), ("sup2", "²"), ("sup3", "³"), ("acute", "´"),
    ("micro", "µ"), ("para", "¶"), ("middot", "·"), ("cedil", "¸"), ("sup1", "¹"), ("ordm", "º"),
    ("raquo", "»"), ("frac14", "¼"), ("frac12", "½"), ("frac34", "¾"), ("iquest", "¿"), ("Agrave", "À"),
    ("Aacute", "Á"), ("Acirc", "Â"), ("Atilde", "Ã"), ("Auml", "Ä"), ("Aring", "Å"), ("AElig", "Æ"),
    ("Ccedil", "Ç"), ("Egrave", "È"), ("Eacute", "É"), ("Ecirc", "Ê"), ("Euml", "Ë"), ("Igrave", "Ì"),
    ("Iacute", "Í"), ("Icirc", "Î"), ("Iuml", "Ï"), ("ETH", "Ð"), ("Ntilde", "Ñ"), ("Ograve", "Ò"),
    ("Oacute", "Ó"), ("Ocirc", "Ô"), ("Otilde", "Õ"), ("Ouml", "Ö"), ("times", "×"), ("Oslash", "Ø"),
    ("Ugrave", "Ù"), ("Uacute", "Ú"), ("Ucirc", "Û"), ("Uuml", "Ü"), ("Yacute", "Ý"), ("THORN", "Þ"),
    ("szlig", "ß"), ("agrave", "à"), ("aacute", "á"), ("acirc", "â"), ("atilde", "ã"), ("auml", "ä"),
    ("aring", "å"), ("aelig", "æ"), ("ccedil", "ç"), ("egrave", "è"), ("eacute", "é"), ("ecirc", "ê"),
    ("euml", "ë"), ("igrave", "ì"), ("iacute", "í"), ("icirc", "î"), ("iuml", "ï"), ("eth", "ð"),
    ("ntilde", "ñ"), ("ograve", "ò"), ("oacute", "ó"), ("ocirc", "ô"), ("otilde", "õ"), ("ouml", "ö"),
    ("divide", "÷"), ("oslash", "ø"), ("ugrave", "ù"), ("uacute", "ú"), ("ucirc", "û"), ("uuml", "ü"),
    ("yacute", "ý"), ("thorn", "þ"), ("yuml", "ÿ"), ("OElig", "Œ"), ("oelig", "œ"), ("Scaron", "Š"),
    ("scaron", "š"), ("Yuml", "Ÿ"), ("fnof", "ƒ"), ("circ", "ˆ"), ("tilde", "˜"), ("ensp", "\u{2002}"),
    ("emsp", "\u{2003}"), ("thinsp", "\u{2009}"), ("zwnj", "\u{200c}"), ("zwj", "\u{200d}"),
    ("lrm", "\u{200e}"), ("rlm", "\u{200f}"), ("ndash", "–"), ("mdash", "—"), ("lsquo", "‘"), ("rsquo", "’"),
    ("sbquo", "‚"), ("ldquo", "“"), ("rdquo", "”"), ("bdquo", "„"), ("dagger", "†"), ("Dagger", "‡"),
    ("bull", "•"), ("hellip", "…"), ("permil", "‰"), ("prime", "′"), ("Prime", "″"), ("lsaquo", "‹"),
    ("rsaquo", "›"), ("oline", "‾"), ("frasl", "⁄"), ("euro", "€"), ("trade", "™"), ("larr", "←"),
    ("uarr", "↑"), ("rarr", "→"), ("darr", "↓"), ("harr", "↔"), ("minus", "−"), ("le", "≤"), ("ge", "≥"),
    ("ne", "≠"), ("asymp", "≈"), ("infin", "∞"), ("alpha", "α"), ("beta", "β"), ("gamma", "γ"),
    ("delta", "δ"), ("pi", "π"), ("sigma", "σ"), ("omega", "ω"), ("mu", "μ"), ("lambda", "λ"), ("theta", "θ"),
];

/// What a page says about itself, as Langflow's URL component reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// BeautifulSoup's `get_text()`.
    pub text: String,
    /// The first `<title>`'s string.
    pub title: String,
    /// The first `<meta name="description">`'s content.
    pub description: String,
    /// The `<html lang>` attribute.
    pub language: String,
    /// `href` of every `<a>`, in order.
    pub links: Vec<String>,
}

/// Reads an HTML page.
pub fn page(html: &str) -> Page {
    let mut page = Page::default();
    let mut skipping: Vec<String> = Vec::new();
    let mut preserving = 0usize;
    let mut seen_tag = false;
    let mut title: Option<Vec<String>> = None;
    let mut title_done = false;
    for token in tokens(html, true) {
        match token {
            Token::Start { name, attrs, self_closing } => {
                seen_tag = true;
                let attr = |key: &str| attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
                match name.as_str() {
                    "a" => page.links.extend(attr("href")),
                    "html" if page.language.is_empty() => page.language = attr("lang").unwrap_or_default(),
                    "meta" if page.description.is_empty() && attr("name").as_deref() == Some("description") => {
                        page.description = attr("content").unwrap_or_default();
                    }
                    "title" if !title_done && !self_closing => title = Some(Vec::new()),
                    _ => {}
                }
                if self_closing {
                    continue;
                }
                if matches!(name.as_str(), "script" | "style" | "template") {
                    skipping.push(name);
                } else if matches!(name.as_str(), "pre" | "textarea") {
                    preserving += 1;
                }
            }
            Token::End(name) => {
                if skipping.last() == Some(&name) {
                    skipping.pop();
                } else if matches!(name.as_str(), "pre" | "textarea") {
                    preserving = preserving.saturating_sub(1);
                } else if name == "title"
                    && let Some(strings) = title.take()
                {
                    // `.string` exists only when the title holds exactly one string.
                    page.title = if strings.len() == 1 { strings[0].clone() } else { String::new() };
                    title_done = true;
                }
            }
            Token::Text(text) => {
                if !skipping.is_empty() || (!seen_tag && is_blank(&text)) {
                    continue;
                }
                let text = if preserving == 0 && is_blank(&text) {
                    if text.contains('\n') { "\n".to_owned() } else { " ".to_owned() }
                } else {
                    text
                };
                if let Some(strings) = title.as_mut() {
                    strings.push(text.clone());
                }
                page.text.push_str(&text);
            }
            Token::CData(_) => {}
        }
    }
    page
}

/// BeautifulSoup's `get_text(separator=" ", strip=True)`: every string
/// stripped, empty ones dropped, joined by spaces.
pub fn stripped_text(html: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut skipping = 0usize;
    for token in tokens(html, true) {
        match token {
            Token::Start { name, self_closing: false, .. }
                if matches!(name.as_str(), "script" | "style" | "template") =>
            {
                skipping += 1;
            }
            Token::End(name) if matches!(name.as_str(), "script" | "style" | "template") => {
                skipping = skipping.saturating_sub(1);
            }
            Token::Text(text) if skipping == 0 => {
                let trimmed = text.trim();
                if !trimmed.is_empty() {
                    parts.push(trimmed.to_owned());
                }
            }
            _ => {}
        }
    }
    parts.join(" ")
}

/// Markdown of an HTML page's body, in the manner of MarkItDown (which
/// Langflow's `Markdown` format uses, through markdownify): ATX headings,
/// paragraphs apart, `*` bullets and numbered items, `**bold**`,
/// `*emphasis*`, `` `code` `` and fenced `pre`, `[text](href)` links
/// (only http(s), relative and mailto targets), `![alt](src)` images, `---`
/// rules; whitespace collapsed outside `pre`; scripts, styles and the head
/// left out. An approximation: tables come out as their text.
pub fn markdown(html: &str) -> String {
    let mut out = String::new();
    let mut skipping = 0usize;
    let mut pre = 0usize;
    let mut links: Vec<(usize, Option<String>)> = Vec::new();
    let mut lists: Vec<(bool, usize)> = Vec::new();
    for token in tokens(html, true) {
        match token {
            Token::Start { name, attrs, self_closing } => {
                let attr = |key: &str| attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
                match name.as_str() {
                    "script" | "style" | "template" | "head" | "title" if !self_closing => skipping += 1,
                    _ if skipping > 0 => {}
                    "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                        let level = usize::from(name.as_bytes()[1] - b'0');
                        out.push_str(&format!("\n\n{} ", "#".repeat(level)));
                    }
                    "p" | "blockquote" => out.push_str("\n\n"),
                    "div" | "section" | "article" | "tr" => out.push('\n'),
                    "br" => out.push_str("  \n"),
                    "hr" => out.push_str("\n\n---\n\n"),
                    "strong" | "b" => out.push_str("**"),
                    "em" | "i" => out.push('*'),
                    "code" if pre == 0 => out.push('`'),
                    "pre" => {
                        pre += 1;
                        out.push_str("\n\n```\n");
                    }
                    "ul" | "ol" => {
                        if lists.is_empty() {
                            out.push_str("\n\n");
                        }
                        lists.push((name == "ol", 0));
                    }
                    "li" => {
                        let depth = lists.len().saturating_sub(1);
                        let bullet = match lists.last_mut() {
                            Some((true, n)) => {
                                *n += 1;
                                format!("{n}.")
                            }
                            _ => "*".to_owned(),
                        };
                        out.push_str(&format!("\n{}{bullet} ", "  ".repeat(depth)));
                    }
                    "a" => {
                        let href = attr("href").filter(|h| {
                            let lower = h.to_ascii_lowercase();
                            !lower.contains(':') || ["http:", "https:", "mailto:"].iter().any(|s| lower.starts_with(s))
                        });
                        links.push((out.len(), href));
                    }
                    "img" => {
                        if let Some(src) = attr("src") {
                            out.push_str(&format!("![{}]({src})", attr("alt").unwrap_or_default()));
                        }
                    }
                    _ => {}
                }
            }
            Token::End(name) => match name.as_str() {
                "script" | "style" | "template" | "head" | "title" => skipping = skipping.saturating_sub(1),
                _ if skipping > 0 => {}
                "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "p" | "blockquote" => out.push_str("\n\n"),
                "strong" | "b" => out.push_str("**"),
                "em" | "i" => out.push('*'),
                "code" if pre == 0 => out.push('`'),
                "pre" => {
                    pre = pre.saturating_sub(1);
                    out.push_str(if out.ends_with('\n') { "```\n\n" } else { "\n```\n\n" });
                }
                "ul" | "ol" => {
                    lists.pop();
                    if lists.is_empty() {
                        out.push_str("\n\n");
                    }
                }
                "a" => {
                    if let Some((start, Some(href))) = links.pop() {
                        let text = out.split_off(start.min(out.len()));
                        let text = text.trim();
                        if text.is_empty() {
                            continue;
                        }
                        out.push_str(&format!("[{text}]({href})"));
                    }
                }
                _ => {}
            },
            Token::Text(text) if skipping == 0 => {
                if pre > 0 {
                    out.push_str(&text);
                } else {
                    let collapsed = text.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
                    let lead = text.starts_with(|c: char| c.is_ascii_whitespace()) && !collapsed.is_empty();
                    let trail = text.ends_with(|c: char| c.is_ascii_whitespace());
                    if (lead || (collapsed.is_empty() && trail)) && !out.ends_with([' ', '\n']) && !out.is_empty() {
                        out.push(' ');
                    }
                    out.push_str(&collapsed);
                    if trail && !collapsed.is_empty() {
                        out.push(' ');
                    }
                }
            }
            _ => {}
        }
    }
    let lines: Vec<&str> =
        out.lines().map(|l| if l.trim().is_empty() { "" } else { l.trim_end_matches(' ') }).collect();
    let mut joined = String::new();
    let mut blank = 0;
    for line in lines {
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !joined.is_empty() {
            joined.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        joined.push_str(line);
    }
    joined
}

fn is_blank(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b' ' | b'\n' | b'\t' | b'\x0c' | b'\r'))
}

/// An XML element: its name as written (`arxiv:comment`), its namespace
/// URI, attributes and children.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Element {
    /// Local name, without prefix.
    pub name: String,
    /// Namespace URI, empty for none.
    pub namespace: String,
    /// Attributes as written.
    pub attrs: Vec<(String, String)>,
    /// Text before the first child element (ElementTree's `text`).
    pub text: String,
    /// Child elements.
    pub children: Vec<Element>,
    /// All text inside, children included.
    pub all_text: String,
}

impl Element {
    /// The first child called `name` in `namespace` (any namespace when `None`).
    pub fn child(&self, name: &str, namespace: Option<&str>) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name && namespace.is_none_or(|ns| c.namespace == ns))
    }

    /// The children called `name` in `namespace` (any namespace when `None`).
    pub fn children_named<'a>(
        &'a self,
        name: &'a str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name && namespace.is_none_or(|ns| c.namespace == ns))
    }

    /// Every element below this one called `name` (any namespace), in document order.
    pub fn descendants_named<'a>(&'a self, name: &'a str, found: &mut Vec<&'a Element>) {
        for child in &self.children {
            if child.name == name {
                found.push(child);
            }
            child.descendants_named(name, found);
        }
    }

    /// Attribute `key`.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Parses an XML document into its root element; `None` when there is no
/// element at all. Mismatched end tags close what they can.
pub fn xml(source: &str) -> Option<Element> {
    // The stack holds open elements and, per element, its prefix map.
    let mut stack: Vec<(Element, Vec<(String, String)>)> = vec![(Element::default(), Vec::new())];
    for token in tokens(source, false) {
        match token {
            Token::Start { name, attrs, self_closing } => {
                let declared: Vec<(String, String)> = attrs
                    .iter()
                    .filter_map(|(k, v)| {
                        if k == "xmlns" {
                            Some((String::new(), v.clone()))
                        } else {
                            k.strip_prefix("xmlns:").map(|p| (p.to_owned(), v.clone()))
                        }
                    })
                    .collect();
                let (prefix, local) = name.split_once(':').map_or(("", name.as_str()), |(p, l)| (p, l));
                let namespace = declared
                    .iter()
                    .chain(stack.iter().rev().flat_map(|(_, d)| d.iter()))
                    .find(|(p, _)| p == prefix)
                    .map(|(_, uri)| uri.clone())
                    .unwrap_or_default();
                let element = Element { name: local.to_owned(), namespace, attrs, ..Element::default() };
                if self_closing {
                    if let Some((parent, _)) = stack.last_mut() {
                        parent.children.push(element);
                    }
                } else {
                    stack.push((element, declared));
                }
            }
            Token::End(name) => {
                let local = name.rsplit(':').next().unwrap_or(&name).to_owned();
                if let Some(open) = stack.iter().skip(1).rposition(|(e, _)| e.name == local) {
                    while stack.len() > open + 1 {
                        let Some((element, _)) = stack.pop() else { break };
                        if let Some((parent, _)) = stack.last_mut() {
                            parent.all_text.push_str(&element.all_text);
                            parent.children.push(element);
                        }
                    }
                }
            }
            Token::Text(text) | Token::CData(text) => {
                if let Some((element, _)) = stack.last_mut() {
                    if element.children.is_empty() {
                        element.text.push_str(&text);
                    }
                    element.all_text.push_str(&text);
                }
            }
        }
    }
    while stack.len() > 1 {
        let Some((element, _)) = stack.pop() else { break };
        if let Some((parent, _)) = stack.last_mut() {
            parent.children.push(element);
        }
    }
    stack.pop().and_then(|(document, _)| document.children.into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_text_follows_beautifulsoup() {
        let html = "<html>\n<head>\n<title>T &amp; U</title>\n<meta name=\"description\" content=\"Desc\">\n\
                    <style>p{color:red}</style>\n<script>var x='<p>';</script>\n</head>\n<body>\n<h1>Hello</h1>\n\
                    <p>World &lt;3 &#169; &copy; &nbsp;x</p>\n<!-- comment -->\n<ul>\n  <li>one</li>\n  <li>two</li>\n\
                    </ul>\n</body>\n</html>";
        let page = page(html);
        assert_eq!(page.text, "\n\nT & U\n\n\n\n\n\nHello\nWorld <3 © © \u{a0}x\n\n\none\ntwo\n\n\n");
        assert_eq!((page.title.as_str(), page.description.as_str()), ("T & U", "Desc"));
        assert_eq!(super::page("<p>a<b>b</b>c</p><p>d</p>").text, "abcd");
        assert_eq!(
            super::page(
                "<pre>  a\n    b</pre><template>hidden</template><noscript>ns</noscript><textarea>ta</textarea>"
            )
            .text,
            "  a\n    bnsta"
        );
        assert_eq!(
            super::page("<p>unclosed <b>bold<p>next &unknown; &amp &#x41;</p>").text,
            "unclosed boldnext &unknown; & A"
        );
        let page =
            super::page("<!DOCTYPE html><html lang=\"en\"><body><a href='/a'>A</a><a href=b.html>B</a></body></html>");
        assert_eq!((page.language.as_str(), page.links.clone()), ("en", vec!["/a".to_owned(), "b.html".to_owned()]));
    }

    /// Against `tests/langflow/url-text.json`, recorded with BeautifulSoup
    /// and lxml by `scripts/langflow/record_url_text.py`.
    #[test]
    fn matches_langflows_recorded_extraction() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/langflow/url-text.json");
        let cases: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("the recording")).expect("JSON");
        assert!(cases.len() >= 10);
        for case in cases {
            let html = case["html"].as_str().expect("html");
            let page = page(html);
            assert_eq!(crate::web::clean_string(&page.text), case["text"].as_str().expect("text"), "{html:?}");
            assert_eq!(page.title, case["title"].as_str().expect("title"), "{html:?}");
            assert_eq!(page.description, case["description"].as_str().expect("description"), "{html:?}");
            assert_eq!(page.language, case["language"].as_str().expect("language"), "{html:?}");
        }
    }

    #[test]
    fn markdown_keeps_the_structure() {
        let html = "<html><head><title>T</title><style>x</style></head><body><h1>Title</h1>\n<p>Some <b>bold</b> and \
                    <a href=\"/docs\">a  link</a>.</p><ul><li>one</li><li>two</li></ul><pre>let x = 1;\n</pre>\
                    <a href=\"javascript:alert(1)\">js</a></body></html>";
        assert_eq!(
            markdown(html),
            "# Title\n\nSome **bold** and [a link](/docs).\n\n* one\n* two\n\n```\nlet x = 1;\n```\n\njs"
        );
    }

    #[test]
    fn stripped_text_joins_with_spaces() {
        assert_eq!(stripped_text("<p> a </p>\n<script>x</script><p>b&amp;c</p>"), "a b&c");
    }

    #[test]
    fn parses_feeds_with_namespaces() {
        let feed = r#"<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom">
            <entry><title>  A &amp; B </title><arxiv:comment>5 pages</arxiv:comment>
            <author><name>Ada</name></author><link rel="alternate" href="http://x/1"/></entry></feed>"#;
        let root = xml(feed).expect("a root");
        assert_eq!(root.name, "feed");
        let entry = root.child("entry", Some("http://www.w3.org/2005/Atom")).expect("an entry");
        assert_eq!(entry.child("title", None).map(|t| t.text.trim()), Some("A & B"));
        assert_eq!(
            entry.child("comment", Some("http://arxiv.org/schemas/atom")).map(|t| t.text.as_str()),
            Some("5 pages")
        );
        assert!(entry.child("comment", Some("http://www.w3.org/2005/Atom")).is_none());
        assert_eq!(entry.child("link", None).and_then(|l| l.attr("href")), Some("http://x/1"));
        let rss = "<rss><channel><item><title>T</title><description><![CDATA[<b>bold</b>]]></description></item></channel></rss>";
        let mut items = Vec::new();
        let root = xml(rss).expect("a root");
        root.descendants_named("item", &mut items);
        assert_eq!(items[0].child("description", None).map(|d| d.text.as_str()), Some("<b>bold</b>"));
    }
}
