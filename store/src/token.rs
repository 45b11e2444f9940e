//! Bearer secrets (notice links, web sessions, CSRF tokens): 256 random bits as hex, and the
//! SHA-256 under which the store keeps them, so a copy of the database opens nothing.

use sha2::{Digest as _, Sha256};

/// A fresh token: 256 random bits, hex (URL- and cookie-safe).
#[must_use]
pub fn new() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// Compares two secrets (or their hashes) in time that does not depend on where they differ.
#[must_use]
pub fn eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The stored form of a token.
#[must_use]
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_long_distinct_and_hashed() {
        let (a, b) = (super::new(), super::new());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(super::hash(&a).len(), 64);
        assert_ne!(super::hash(&a), a);
        assert_eq!(super::hash(&a), super::hash(&a));
    }
}
