//! PDF text with lopdf, page by page, every stream's decompression bounded.

use super::{Budget, ExtractError, mib};
use lopdf::content::Content;
use lopdf::{DecompressError, Document, Encoding, Error, LoadOptions, Object, ObjectId};
use std::collections::BTreeMap;

/// The pages' text, trimmed at their ends and joined by a blank line.
pub(super) fn text(bytes: &[u8], budget: &mut Budget<'_>) -> Result<String, ExtractError> {
    if !bytes.starts_with(b"%PDF-") && !bytes.get(..1024).is_some_and(|head| head.windows(5).any(|w| w == b"%PDF-")) {
        return Err(ExtractError("the file is not a PDF (no %PDF- header)".into()));
    }
    let limit = budget.limits.max_expanded_bytes;
    // Object and cross-reference streams are decoded while loading: the
    // option bounds each of them.
    let options = LoadOptions { max_decompressed_size: Some(limit), ..LoadOptions::default() };
    let document = Document::load_mem_with_options(bytes, options).map_err(|e| match e {
        Error::Decompress(DecompressError::MemoryLimitExceeded { .. }) => too_large(limit),
        e => ExtractError(format!("the PDF could not be read: {e}")),
    })?;
    if document.is_encrypted() {
        return Err(ExtractError("the PDF is encrypted: upload it without a password".into()));
    }
    let pages: Vec<(u32, ObjectId)> = document.get_pages().into_iter().collect();
    if pages.is_empty() {
        return Err(ExtractError("the PDF has no pages".into()));
    }
    if pages.len() > budget.limits.max_pages {
        return Err(ExtractError(format!(
            "the PDF has {} pages, more than the {} read: split it into smaller documents",
            pages.len(),
            budget.limits.max_pages
        )));
    }
    let mut text = String::new();
    for (page, id) in pages {
        // Each page's content streams (and each of its fonts' maps)
        // decompress to at most `limit` bytes.
        let page_text = page_text(&document, id, limit).map_err(|e| match e {
            Error::Decompress(DecompressError::MemoryLimitExceeded { .. }) => too_large(limit),
            e => ExtractError(format!("the text of PDF page {page} could not be read: {e}")),
        })?;
        let page_text = page_text.trim_end();
        budget.charge(page_text.len() + 2, "PDF")?;
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(page_text);
    }
    Ok(text)
}

/// One page's text: the strings its content shows, each line of text on a
/// line of its own, as pypdf (Langflow's reader) lays them out. lopdf's own
/// `extract_text` starts a line only at `T*`, `'`, `"` and `ET`, but PDF
/// writers mostly move to the next line with `Td`, `TD` or `Tm`, which ran
/// lines together (`…2025Company: …`); here any move of the text position
/// to another line starts one. Strings are decoded with their font's
/// encoding; a font whose encoding cannot be read shows nothing.
fn page_text(document: &Document, page: ObjectId, limit: usize) -> lopdf::Result<String> {
    let encodings: BTreeMap<Vec<u8>, Encoding<'_>> = document
        .get_page_fonts(page)?
        .into_iter()
        .filter_map(|(name, font)| font.get_font_encoding_with_limit(document, limit).ok().map(|e| (name, e)))
        .collect();
    let content = Content::decode(&document.get_page_content_with_limit(page, limit)?)?;
    let mut text = String::new();
    let mut encoding = None;
    // The text line's vertical position, and where the current line's text
    // was shown: showing text anywhere else starts a new line.
    let mut y = 0.0_f32;
    let mut shown_at: Option<f32> = None;
    for operation in &content.operations {
        let operands = operation.operands.as_slice();
        let float = |at: usize| operands.get(at).and_then(|o| o.as_float().ok());
        match operation.operator.as_str() {
            "Tf" => encoding = operands.first().and_then(|f| f.as_name().ok()).and_then(|n| encodings.get(n)),
            "BT" => y = 0.0,
            "Td" | "TD" => {
                let (tx, ty) = (float(0).unwrap_or(0.0), float(1).unwrap_or(0.0));
                y += ty;
                // A move along the line that was shown on is a gap between words.
                if ty == 0.0 && tx != 0.0 && shown_at == Some(y) && !text.ends_with([' ', '\n']) {
                    text.push(' ');
                }
            }
            "Tm" => y = float(5).unwrap_or(0.0),
            "T*" | "ET" => {
                new_line(&mut text);
                shown_at = None;
            }
            "Tj" | "TJ" => {
                if shown_at.is_some_and(|at| at != y) {
                    new_line(&mut text);
                }
                shown_at = Some(y);
                show(&mut text, encoding, operands);
            }
            "'" | "\"" => {
                new_line(&mut text);
                shown_at = Some(y);
                let strings = if operation.operator == "'" { operands } else { operands.get(2..).unwrap_or_default() };
                show(&mut text, encoding, strings);
            }
            _ => {}
        }
    }
    Ok(text)
}

fn new_line(text: &mut String) {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
}

/// Appends the strings of a text-showing operator (a kerning gap wider
/// than a tenth of the font size is a space, as in lopdf).
fn show(text: &mut String, encoding: Option<&Encoding<'_>>, operands: &[Object]) {
    let Some(encoding) = encoding else { return };
    for operand in operands {
        match operand {
            Object::String(bytes, _) => {
                // Bytes the encoding cannot map are left out, not the page.
                let _ = encoding.write_to_string(bytes, text);
            }
            Object::Array(items) => show(text, Some(encoding), items),
            Object::Integer(gap) if *gap < -100 => text.push(' '),
            Object::Real(gap) if *gap < -100.0 => text.push(' '),
            _ => {}
        }
    }
}

fn too_large(limit: usize) -> ExtractError {
    ExtractError(format!(
        "a stream of the PDF decompresses to more than {}: the file is refused as a decompression bomb",
        mib(limit)
    ))
}

#[cfg(test)]
mod tests {
    use crate::extract::{Kind, extract};
    use lopdf::content::{Content, Operation};
    use lopdf::{Document, Object, Stream, dictionary};

    /// A one-page PDF whose content is `operations` (font `F1`, Helvetica).
    fn pdf(operations: Vec<Operation>) -> Vec<u8> {
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let font = doc.add_object(dictionary! {"Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica"});
        let resources = doc.add_object(dictionary! {"Font" => dictionary! {"F1" => font}});
        let content = Content { operations }.encode().expect("encodes");
        let content_id = doc.add_object(Stream::new(dictionary! {}, content));
        let page = doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content_id, "Resources" => resources,
            "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
        });
        doc.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! {"Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1}),
        );
        let catalog = doc.add_object(dictionary! {"Type" => "Catalog", "Pages" => pages_id});
        doc.trailer.set("Root", catalog);
        let mut out = Vec::new();
        doc.save_to(&mut out).expect("saves");
        out
    }

    fn op(operator: &str, operands: Vec<Object>) -> Operation {
        Operation::new(operator, operands)
    }

    fn show(text: &str) -> Operation {
        op("Tj", vec![Object::string_literal(text)])
    }

    #[test]
    fn every_move_to_another_line_starts_a_line() {
        let operations = vec![
            op("BT", vec![]),
            op("Tf", vec!["F1".into(), 12.into()]),
            op("Td", vec![72.into(), 720.into()]),
            show("Revenue: 12"),
            op("Td", vec![0.into(), (-16).into()]),
            show("EBITDA: 3"),
            op("TD", vec![0.into(), (-16).into()]),
            show("Net"),
            // Same line, further right: a space, no break.
            op("Td", vec![40.into(), 0.into()]),
            op(
                "TJ",
                vec![Object::Array(vec![Object::string_literal("income"), (-250).into(), Object::string_literal("2")])],
            ),
            op("Tm", vec![1.into(), 0.into(), 0.into(), 1.into(), 72.into(), 600.into()]),
            show("Margin"),
            op("T*", vec![]),
            show("Company"),
            op("'", vec![Object::string_literal("Northwind")]),
            op("ET", vec![]),
        ];
        let text = extract(Kind::Pdf, &pdf(operations)).expect("reads");
        assert_eq!(text, "Revenue: 12\nEBITDA: 3\nNet income 2\nMargin\nCompany\nNorthwind");
    }
}
