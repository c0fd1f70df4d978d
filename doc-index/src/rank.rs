//! Query words, vectors and rank fusion: the parts of search that need no
//! database.

use crate::Hit;
use std::collections::HashMap;

/// Most words of a query that are searched for.
const MAX_TERMS: usize = 32;
/// Longest word searched for, in characters.
const MAX_TERM_CHARS: usize = 64;

/// The words of a user's query, lower case, each only letters and digits
/// (Unicode), without repeats: what reaches the full-text engine, quoted.
/// Operators, quotes, wildcards and column filters (`OR`, `NEAR(`, `*`,
/// `"`, `col:`) are either split away or searched as plain words, so query
/// text cannot change the query's meaning.
pub fn terms(query: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in query.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let word: String = word.chars().take(MAX_TERM_CHARS).flat_map(char::to_lowercase).collect();
        if !terms.contains(&word) {
            terms.push(word);
        }
        if terms.len() == MAX_TERMS {
            break;
        }
    }
    terms
}

/// SQLite FTS5: `"w1" OR "w2"` (each word a quoted string).
pub(crate) fn fts5_query(terms: &[String]) -> String {
    terms.iter().map(|t| format!("\"{}\"", t.replace('"', "\"\""))).collect::<Vec<_>>().join(" OR ")
}

/// PostgreSQL `to_tsquery`: `'w1' | 'w2'` (each word a quoted lexeme).
pub(crate) fn tsquery(terms: &[String]) -> String {
    terms.iter().map(|t| format!("'{}'", t.replace('\'', "''"))).collect::<Vec<_>>().join(" | ")
}

/// Cosine similarity of two vectors (0 when either is zero or they differ
/// in length).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 { 0.0 } else { dot / (na.sqrt() * nb.sqrt()) }
}

/// A vector as stored: little-endian f32s.
pub(crate) fn encode(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A stored vector.
pub(crate) fn decode(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// The constant of reciprocal rank fusion: a result's fused score is the
/// sum over lists of `1 / (RRF_K + rank)` (rank from 1).
pub const RRF_K: f64 = 60.0;

/// Fuses ranked lists of hits by reciprocal rank; the best `limit`.
pub(crate) fn fuse(lists: &[Vec<Hit>], limit: usize) -> Vec<Hit> {
    let mut fused: HashMap<i64, Hit> = HashMap::new();
    for list in lists {
        for (rank, hit) in list.iter().enumerate() {
            let add = 1.0 / (RRF_K + rank as f64 + 1.0);
            fused.entry(hit.id).and_modify(|h| h.score += add).or_insert_with(|| Hit {
                score: add,
                ranking: crate::Ranking::Hybrid,
                ..hit.clone()
            });
        }
    }
    let mut hits: Vec<Hit> = fused.into_values().collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    hits.truncate(limit);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_query_text_becomes_plain_words() {
        assert_eq!(terms(r#"" OR 1=1 --"#), ["or", "1"]);
        assert_eq!(terms("NEAR(refund policy, 2)"), ["near", "refund", "policy", "2"]);
        assert_eq!(terms("*"), Vec::<String>::new());
        assert_eq!(terms("text:refund^ \"quoted\" 'single'"), ["text", "refund", "quoted", "single"]);
        assert_eq!(fts5_query(&terms("a \"b\" OR c")), r#""a" OR "b" OR "or" OR "c""#);
        assert_eq!(tsquery(&terms("it's & | !x")), "'it' | 's' | 'x'");
        assert_eq!(terms("Größe Café"), ["größe", "café"]);
        assert_eq!(terms(&"w ".repeat(100)).len(), 1);
    }

    #[test]
    fn vectors_round_trip_and_compare() {
        let v = vec![0.5f32, -1.0, 2.0];
        assert_eq!(decode(&encode(&v)), v);
        assert!((cosine(&v, &v) - 1.0).abs() < 1e-9);
        assert_eq!(cosine(&v, &[1.0]), 0.0);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
    }

    #[test]
    fn fusion_rewards_agreement() {
        let hit = |id: i64| Hit {
            id,
            collection: String::new(),
            document: String::new(),
            ordinal: 0,
            text: id.to_string(),
            metadata: serde_json::json!({}),
            score: 0.0,
            ranking: crate::Ranking::Lexical,
        };
        let fused = fuse(&[vec![hit(1), hit(2), hit(3)], vec![hit(3), hit(2)]], 2);
        // 3: 1/63 + 1/61 beats 2: 1/62 + 1/62, and both beat 1 (one list only).
        assert_eq!(fused.iter().map(|h| h.id).collect::<Vec<_>>(), [3, 2]);
        assert!(fused.iter().all(|h| h.ranking == crate::Ranking::Hybrid));
    }
}
