//! PDF text with lopdf, page by page, every stream's decompression bounded.

use super::{Budget, ExtractError, mib};
use lopdf::{DecompressError, Document, Error, LoadOptions};

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
    let pages: Vec<u32> = document.get_pages().keys().copied().collect();
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
    for page in pages {
        // Each page's content streams (and its fonts' maps) together
        // decompress to at most `limit` bytes.
        let page_text = document.extract_text_with_limit(&[page], limit).map_err(|e| match e {
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

fn too_large(limit: usize) -> ExtractError {
    ExtractError(format!(
        "a stream of the PDF decompresses to more than {}: the file is refused as a decompression bomb",
        mib(limit)
    ))
}
