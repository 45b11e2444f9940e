//! Sender Rewriting Scheme for forwards, so that the private provider's SPF check passes and
//! bounces come back to ratspost.
//!
//! `SRS0=HHHHHHHH=TT=U=domain=local@ratspost-domain`: `TT` is the day (base 32, mod 1024),
//! `U` the id of the mailbox owner, `HHHHHHHH` an HMAC-SHA256 over the rest with the secret
//! from the data directory. The owner is part of the signed address because a bounce goes to
//! the mailbox owner — never back to the original sender.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How long a rewritten address is accepted back (days).
const MAX_AGE_DAYS: u64 = 21;
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

fn day(now_millis: i64) -> u64 {
    u64::try_from(now_millis / 86_400_000).unwrap_or(0) % 1024
}

fn timestamp(day: u64) -> String {
    let d = usize::try_from(day).unwrap_or(0);
    [BASE32[(d >> 5) & 31], BASE32[d & 31]]
        .iter()
        .map(|&b| char::from(b))
        .collect()
}

fn hash(secret: &[u8], parts: &[&str]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    for p in parts {
        mac.update(p.to_ascii_lowercase().as_bytes());
        mac.update(b"=");
    }
    mac.finalize().into_bytes()[..5]
        .iter()
        .fold(String::new(), |mut s, b| {
            s.push_str(&format!("{b:02x}"));
            s
        })[..8]
        .to_owned()
}

/// Rewrites `original` (the envelope sender; empty for `<>`) for a forward of `owner`'s mail.
#[must_use]
pub fn rewrite(original: &str, owner: i64, domain: &str, secret: &[u8], now_millis: i64) -> String {
    let (local, orig_domain) = original.rsplit_once('@').unwrap_or(("postmaster", domain));
    let tt = timestamp(day(now_millis));
    let owner = owner.to_string();
    let h = hash(secret, &[&tt, &owner, orig_domain, local]);
    format!("SRS0={h}={tt}={owner}={orig_domain}={local}@{domain}")
}

/// The owner of a rewritten address, when `address` is one of ours, correctly signed and
/// not too old.
#[must_use]
pub fn owner(address: &str, domain: &str, secret: &[u8], now_millis: i64) -> Option<i64> {
    let (local, at) = address.rsplit_once('@')?;
    if !at.eq_ignore_ascii_case(domain) {
        return None;
    }
    let rest = local
        .strip_prefix("SRS0=")
        .or_else(|| local.strip_prefix("srs0="))?;
    let mut parts = rest.splitn(5, '=');
    let (h, tt, owner, orig_domain, orig_local) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if h.len() != 8
        || !hmac_eq(
            &hash(secret, &[tt, owner, orig_domain, orig_local]),
            &h.to_ascii_lowercase(),
        )
    {
        return None;
    }
    let bytes = tt.to_ascii_lowercase().into_bytes();
    if bytes.len() != 2 {
        return None;
    }
    let digit = |b: u8| BASE32.iter().position(|&c| c == b).map(|p| p as u64);
    let then = digit(bytes[0])? * 32 + digit(bytes[1])?;
    let age = (day(now_millis) + 1024 - then) % 1024;
    (age <= MAX_AGE_DAYS).then_some(())?;
    owner.parse().ok()
}

fn hmac_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test secret";
    const NOW: i64 = 1_795_000_000_000;

    #[test]
    fn rewritten_addresses_come_back_to_their_owner() {
        let srs = rewrite(
            "buergerbuero@stadt.example",
            42,
            "ratspost.stadt.example",
            SECRET,
            NOW,
        );
        assert!(
            srs.starts_with("SRS0=")
                && srs.ends_with("=42=stadt.example=buergerbuero@ratspost.stadt.example"),
            "{srs}"
        );
        assert_eq!(owner(&srs, "ratspost.stadt.example", SECRET, NOW), Some(42));
        assert_eq!(
            owner(
                &srs.to_uppercase()
                    .replace("RATSPOST.STADT.EXAMPLE", "ratspost.stadt.example"),
                "ratspost.stadt.example",
                SECRET,
                NOW
            ),
            Some(42),
            "case-insensitive"
        );
        assert_eq!(
            owner(
                &srs,
                "ratspost.stadt.example",
                SECRET,
                NOW + 20 * 86_400_000
            ),
            Some(42)
        );
    }

    #[test]
    fn forged_stale_or_foreign_addresses_are_refused() {
        let srs = rewrite("a@b.example", 42, "r.example", SECRET, NOW);
        assert_eq!(
            owner(&srs, "r.example", b"other secret", NOW),
            None,
            "wrong key"
        );
        assert_eq!(
            owner(&srs.replace("=42=", "=43="), "r.example", SECRET, NOW),
            None,
            "owner changed"
        );
        assert_eq!(
            owner(&srs, "r.example", SECRET, NOW + 30 * 86_400_000),
            None,
            "too old"
        );
        assert_eq!(
            owner(&srs, "other.example", SECRET, NOW),
            None,
            "not our domain"
        );
        assert_eq!(owner("anna@r.example", "r.example", SECRET, NOW), None);
    }

    #[test]
    fn the_null_sender_is_rewritten_too() {
        let srs = rewrite("", 7, "r.example", SECRET, NOW);
        assert_eq!(owner(&srs, "r.example", SECRET, NOW), Some(7));
    }
}
