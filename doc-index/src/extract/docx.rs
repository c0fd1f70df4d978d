//! DOCX text: the body's paragraphs of `word/document.xml`, as python-docx's
//! `Document.paragraphs` and `Paragraph.text` give them (Langflow 1.13's
//! File component joins them with a blank line): a paragraph's text is its
//! runs' (and its hyperlinks' runs') `w:t`, with `w:tab` as a tab and
//! `w:br` / `w:cr` as a line break. Tables, headers and footnotes are not
//! paragraphs of the body, so they are left out, as python-docx does.

use super::{Budget, ExtractError, mib};
use quick_xml::Reader;
use quick_xml::events::Event;
use std::io::{Cursor, Read};

/// The part of the package that holds the document's body.
const DOCUMENT_PART: &str = "word/document.xml";

/// Most nested elements followed; deeper XML is refused.
const MAX_DEPTH: usize = 256;

/// The body's paragraphs joined by a blank line.
pub(super) fn text(bytes: &[u8], budget: &mut Budget<'_>) -> Result<String, ExtractError> {
    if !bytes.starts_with(b"PK") {
        return Err(ExtractError("the file is not a DOCX document (not a ZIP package)".into()));
    }
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| ExtractError(format!("the DOCX document could not be opened: {e}")))?;
    if archive.len() > budget.limits.max_zip_entries {
        return Err(ExtractError(format!(
            "the DOCX package lists {} parts, more than the {} accepted",
            archive.len(),
            budget.limits.max_zip_entries
        )));
    }
    let limit = budget.limits.max_expanded_bytes;
    let part = archive.by_name(DOCUMENT_PART).map_err(|_| {
        ExtractError(format!(
            "the file is not a DOCX document: it has no {DOCUMENT_PART} (is it another Office format?)"
        ))
    })?;
    // The declared size can lie: the read is capped whatever it says.
    if part.size() > limit as u64 {
        return Err(too_large(limit));
    }
    let mut xml = Vec::new();
    part.take(limit as u64 + 1)
        .read_to_end(&mut xml)
        .map_err(|e| ExtractError(format!("the DOCX document could not be decompressed: {e}")))?;
    if xml.len() > limit {
        return Err(too_large(limit));
    }
    paragraphs(&xml, budget)
}

fn too_large(limit: usize) -> ExtractError {
    ExtractError(format!(
        "the DOCX document's {DOCUMENT_PART} decompresses to more than {}: the file is refused as a decompression \
         bomb",
        mib(limit)
    ))
}

/// Where an element sits, as far as text goes.
fn counts_text(stack: &[String]) -> bool {
    // …/body/p/r/t or …/body/p/hyperlink/r/t
    let names: Vec<&str> = stack.iter().rev().take(5).map(String::as_str).collect();
    matches!(names.as_slice(), ["t", "r", "p", "body", ..] | ["t", "r", "hyperlink", "p", "body", ..])
}

fn in_run(stack: &[String]) -> bool {
    let names: Vec<&str> = stack.iter().rev().take(4).map(String::as_str).collect();
    matches!(names.as_slice(), ["r", "p", "body", ..] | ["r", "hyperlink", "p", "body", ..])
}

fn paragraphs(xml: &[u8], budget: &mut Budget<'_>) -> Result<String, ExtractError> {
    let malformed = |e: &dyn std::fmt::Display| ExtractError(format!("the DOCX document's XML is malformed: {e}"));
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut paragraphs: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    loop {
        let event = reader.read_event_into(&mut buf).map_err(|e| malformed(&e))?;
        match event {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_owned();
                if name == "p" && stack.last().is_some_and(|n| n == "body") {
                    current = Some(String::new());
                }
                stack.push(name);
                if stack.len() > MAX_DEPTH {
                    return Err(ExtractError(format!(
                        "the DOCX document nests elements deeper than {MAX_DEPTH} levels"
                    )));
                }
            }
            Event::Empty(e) => {
                let name = e.local_name();
                if let Some(text) = current.as_mut().filter(|_| in_run(&stack)) {
                    match name.as_ref() {
                        "tab" | "ptab" => text.push('\t'),
                        "br" | "cr" => text.push('\n'),
                        "noBreakHyphen" => text.push('-'),
                        _ => {}
                    }
                }
                if name.as_ref() == "p" && stack.last().is_some_and(|n| n == "body") {
                    paragraphs.push(String::new());
                }
            }
            Event::End(_) => {
                let name = stack.pop().unwrap_or_default();
                if name == "p" && stack.last().is_some_and(|n| n == "body") {
                    let text = current.take().unwrap_or_default();
                    budget.charge(text.len() + 2, "DOCX document")?;
                    paragraphs.push(text);
                }
            }
            Event::Text(t) if counts_text(&stack) => {
                if let Some(text) = current.as_mut() {
                    text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) if counts_text(&stack) => {
                if let Some(text) = current.as_mut() {
                    text.push_str(&t);
                }
            }
            Event::GeneralRef(r) if counts_text(&stack) => {
                let c = match r.resolve_char_ref().map_err(|e| malformed(&e))? {
                    Some(c) => c,
                    None => match r.as_ref() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => return Err(malformed(&format!("unknown entity &{other};"))),
                    },
                };
                if let Some(text) = current.as_mut() {
                    text.push(c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return Err(malformed(&"the document ends inside an element"));
    }
    Ok(paragraphs.join("\n\n"))
}

#[cfg(test)]
mod tests {
    use super::super::{Kind, Limits, extract, extract_with};
    use std::io::Write;

    /// A DOCX package holding `body` as its document's body.
    pub(crate) fn docx(body: &str) -> Vec<u8> {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<w:document \
             xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>{body}</w:body></w:document>"
        );
        let mut out = Vec::new();
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(&mut out));
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("[Content_Types].xml", options).expect("entry");
        zip.write_all(b"<Types/>").expect("write");
        zip.start_file("word/document.xml", options).expect("entry");
        zip.write_all(xml.as_bytes()).expect("write");
        zip.finish().expect("zip");
        out
    }

    #[test]
    fn paragraphs_as_python_docx_reads_them() {
        let body = "<w:p><w:r><w:t>Revenue &amp; profit</w:t></w:r><w:r><w:tab/><w:t xml:space=\"preserve\"> up \
                    12%</w:t></w:r></w:p><w:p/><w:p><w:hyperlink><w:r><w:t>link</w:t></w:r></w:hyperlink><w:r><w:br/>\
                    <w:t>&#x263A;</w:t></w:r></w:p><w:tbl><w:tr><w:tc><w:p><w:r><w:t>cell</w:t></w:r></w:p></w:tc>\
                    </w:tr></w:tbl><w:p><w:r><w:instrText>PAGE</w:instrText></w:r></w:p>";
        let text = extract(Kind::Docx, &docx(body)).expect("text");
        assert_eq!(text, "Revenue & profit\t up 12%\n\n\n\nlink\n☺\n\n");
    }

    #[test]
    fn broken_packages_say_what_is_wrong() {
        assert!(extract(Kind::Docx, b"hello").expect_err("not zip").0.contains("not a DOCX"));
        assert!(extract(Kind::Docx, b"PK\x03\x04garbage").expect_err("corrupt").0.contains("could not be opened"));
        let error = extract(Kind::Docx, &docx("<w:p><w:r><w:t>unclosed</w:r></w:p>")).expect_err("bad xml");
        assert!(error.0.contains("malformed"), "{error}");
        assert!(extract(Kind::Docx, &docx("<w:p/>")).expect_err("empty").0.contains("no text"));
    }

    #[test]
    fn a_part_that_expands_too_far_is_refused() {
        let body = format!("<w:p><w:r><w:t>{}</w:t></w:r></w:p>", "a".repeat(100_000));
        let limits = Limits { max_expanded_bytes: 50_000, ..Limits::default() };
        let error = extract_with(Kind::Docx, &docx(&body), &limits).expect_err("bomb");
        assert!(error.0.contains("decompression bomb"), "{error}");
        let limits = Limits { max_text_bytes: 50_000, ..Limits::default() };
        let error = extract_with(Kind::Docx, &docx(&body), &limits).expect_err("too much text");
        assert!(error.0.contains("more than"), "{error}");
    }
}
