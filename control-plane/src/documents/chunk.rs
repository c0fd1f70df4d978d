//! Splitting a document's text into chunks for the index: windows of at
//! most [`MAX_CHARS`] characters that end, where they can, at a paragraph
//! break (else a line break, a sentence end, a space), each starting about
//! [`OVERLAP_CHARS`] before the previous one ended (at a word start), so a
//! passage cut at a boundary is whole in one of the two chunks. Each chunk
//! keeps its byte offsets in the extracted text.

/// Longest chunk, in characters.
pub const MAX_CHARS: usize = 1_000;
/// How far a chunk reaches back into the previous one, in characters.
pub const OVERLAP_CHARS: usize = 150;

/// One chunk: `text[start..end]` of the extracted text, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// Byte after the last.
    pub end: usize,
}

/// The byte index `chars` characters after `from` (or the end).
fn advance(text: &str, from: usize, chars: usize) -> usize {
    text[from..].char_indices().nth(chars).map_or(text.len(), |(i, _)| from + i)
}

/// The byte index `chars` characters before `to` (or `floor`).
fn retreat(text: &str, floor: usize, to: usize, chars: usize) -> usize {
    text[floor..to].char_indices().rev().nth(chars.saturating_sub(1)).map_or(floor, |(i, _)| floor + i)
}

/// Where a chunk starting at `start` should end, at most at `limit`.
fn boundary(text: &str, start: usize, limit: usize) -> usize {
    if limit >= text.len() {
        return text.len();
    }
    let window = &text[start..limit];
    // Prefer a break in the second half of the window, so chunks stay long.
    let half = window.char_indices().nth(window.chars().count() / 2).map_or(0, |(i, _)| i);
    for separator in ["\n\n", "\n", ". ", "? ", "! ", "; ", " "] {
        if let Some(i) = window.rfind(separator).filter(|&i| i >= half) {
            return start + i + separator.len();
        }
    }
    window.rfind(char::is_whitespace).filter(|&i| i > 0).map_or(limit, |i| start + i)
}

/// The chunks of `text`.
pub fn chunks(text: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut start = text.len() - text.trim_start().len();
    while start < text.len() {
        let limit = advance(text, start, MAX_CHARS);
        let end = boundary(text, start, limit);
        let end = if end <= start { limit } else { end };
        let trimmed_end = start + text[start..end].trim_end().len();
        if trimmed_end > start {
            spans.push(Span { start, end: trimmed_end });
        }
        if end >= text.len() {
            break;
        }
        // Reach back into this chunk, to the start of a word.
        let back = retreat(text, start, end, OVERLAP_CHARS);
        let mut next = match text[back..end].find(char::is_whitespace) {
            Some(i) if back > start => back + i,
            _ => end,
        };
        if next <= start {
            next = end;
        }
        start = next + (text[next..].len() - text[next..].trim_start().len());
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(text: &'a str, spans: &[Span]) -> Vec<&'a str> {
        spans.iter().map(|s| &text[s.start..s.end]).collect()
    }

    #[test]
    fn short_text_is_one_chunk() {
        let text = "\n\n  Refunds within 30 days.\n\nShipping in a week.  \n";
        let spans = chunks(text);
        assert_eq!(texts(text, &spans), ["Refunds within 30 days.\n\nShipping in a week."]);
        assert!(chunks("   ").is_empty());
    }

    #[test]
    fn long_text_breaks_at_paragraphs_with_overlap() {
        let paragraph = |n: usize| format!("Paragraph {n} says {}.", "word ".repeat(60).trim_end());
        let text: String = (0..10).map(paragraph).collect::<Vec<_>>().join("\n\n");
        let spans = chunks(&text);
        assert!(spans.len() > 2, "{spans:?}");
        for (i, span) in spans.iter().enumerate() {
            let chunk = &text[span.start..span.end];
            assert!(chunk.chars().count() <= MAX_CHARS, "{chunk}");
            assert_eq!(chunk, chunk.trim());
            if i + 1 < spans.len() {
                // The next chunk starts before this one ends: they overlap.
                assert!(spans[i + 1].start < span.end, "{spans:?}");
                assert!(spans[i + 1].start > span.start);
                // Chunks end at a paragraph's end.
                assert!(chunk.ends_with('.'), "{chunk}");
            }
        }
        assert_eq!(spans.last().map(|s| s.end), Some(text.len()));
    }

    #[test]
    fn text_without_breaks_is_cut_and_covers_everything() {
        let text = "x".repeat(2_500) + " tail";
        let spans = chunks(&text);
        assert_eq!(spans.first().map(|s| s.start), Some(0));
        assert_eq!(spans.last().map(|s| s.end), Some(text.len()));
        assert!(spans.iter().all(|s| text[s.start..s.end].chars().count() <= MAX_CHARS));
        let multibyte = "é".repeat(1_500);
        let spans = chunks(&multibyte);
        assert_eq!(spans.len(), 2);
        assert!(spans.iter().all(|s| multibyte.is_char_boundary(s.start) && multibyte.is_char_boundary(s.end)));
    }
}
