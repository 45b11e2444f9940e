//! Password hashing with argon2id (PHC string format), and random secrets.
//!
//! Lives in the store because the store owns credentials; both the daemon (IMAP, CLI) and
//! the web UI verify against the same hashes.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use rand::Rng;

use crate::{Error, ErrorKind, Result};

/// Hashes `password` with argon2id and a random salt; returns the PHC string.
///
/// # Errors
/// `Invalid` for an empty password; `Unavailable` if the system RNG fails.
pub fn hash(password: &str) -> Result<String> {
    if password.is_empty() {
        return Err(Error::new(ErrorKind::Invalid, "password must not be empty"));
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::new(ErrorKind::Unavailable, format!("hashing failed: {e}")))
}

/// A hash of a random password, made once: logins for unknown users are verified against
/// it, so the answer takes as long as for a wrong password and does not reveal which
/// logins exist.
#[must_use]
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash(&crate::token::new()).unwrap_or_default())
}

/// Checks `password` against a PHC string made by [`hash`]. A malformed stored hash never
/// verifies.
#[must_use]
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A random password of `len` characters from an alphabet without look-alikes
/// (no 0/O, 1/l/I), easy to type on a phone. 20 characters carry about 112 bits.
#[must_use]
pub fn generate(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let phc = hash("correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify("correct horse", &phc));
        assert!(!verify("correct hors", &phc));
        assert!(!verify("correct horse", "not a phc string"));
    }

    #[test]
    fn empty_password_is_refused() {
        assert!(hash("").is_err());
    }

    #[test]
    fn generated_passwords_differ_and_use_the_alphabet() {
        let a = generate(20);
        let b = generate(20);
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() && !"0O1lI".contains(c))
        );
    }
}
