//! Deterministic embeddings: a hashed bag of words, L2-normalised, so texts
//! sharing words are similar and retrieval tests can assert a ranking.

use sha2::{Digest, Sha256};

/// Dimensions of every vector.
pub const DIMENSIONS: usize = 64;

/// The embedding of `text`.
pub fn embed(text: &str) -> Vec<f32> {
    let mut vector = vec![0f32; DIMENSIONS];
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let hash = Sha256::digest(word.to_lowercase().as_bytes());
        let index = usize::from(u16::from_le_bytes([hash[0], hash[1]])) % DIMENSIONS;
        vector[index] += if hash[2] & 1 == 0 { 1.0 } else { -1.0 };
    }
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn shared_words_are_closer() {
        let query = embed("refund policy");
        let near = embed("Our refund policy lasts 30 days");
        let far = embed("Shipping takes two weeks by sea");
        assert!(cosine(&query, &near) > cosine(&query, &far));
        assert_eq!(embed("same text"), embed("same text"));
    }
}
