//! DKIM signing (RFC 6376, Ed25519 per RFC 8463) of the mail ratspost writes itself:
//! notices, confirmation codes, reminders. Their `From:` is ratspost's own address
//! (`notices.from`, in `dkim.domain`), so ratspost's signature speaks for what it wrote.
//!
//! Intact forwards are **not** signed here. A forward carries someone else's `From:`; a
//! signature of `dkim.domain` on it would vouch for an author ratspost never checked, and
//! DMARC's relaxed alignment accepts it for any address in the organisational domain — a
//! message with a spoofed `From: buergermeister@<our domain>` would leave ratspost looking
//! authentic (issue #14 §2). Forwards get an ARC set instead ([`crate::arc`], RFC 8617),
//! which records what ratspost found and keeps the original's own signature intact.
//!
//! The key is generated at setup into `data_dir/dkim.key` (PKCS#8, hex, mode 0600); the DNS
//! record to publish is printed by `ratspost dkim record`. The same record serves the ARC
//! seals, which use the same selector and domain.

use std::sync::Arc;

use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::dkim::{DkimSigner, Done};

use crate::config::Config;
use crate::tls;

/// Headers signed when present (by the ARC message signature too).
pub(crate) const SIGNED: [&str; 8] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
];

/// A ready signer.
#[derive(Clone)]
pub struct Signer(Arc<DkimSigner<Ed25519Key, Done>>);

impl Signer {
    /// The signer for `config`, loading (or first creating) the key.
    ///
    /// # Errors
    /// When the key cannot be read, created or parsed.
    pub fn load(config: &Config) -> anyhow::Result<Self> {
        let signer = DkimSigner::from_key(key(config)?)
            .domain(config.dkim.domain.clone())
            .selector(config.dkim.selector.clone())
            .headers(SIGNED);
        Ok(Self(Arc::new(signer)))
    }

    /// `message` with a `DKIM-Signature` header on top; unsigned (and logged) if signing
    /// fails, which only a malformed message can cause. Only for mail ratspost writes
    /// itself (see the module documentation): never for a forward.
    #[must_use]
    pub fn sign(&self, message: Vec<u8>) -> Vec<u8> {
        match self.0.sign(&message) {
            Ok(signature) => {
                let mut out = signature.to_header().into_bytes();
                out.extend_from_slice(&message);
                out
            }
            Err(err) => {
                tracing::error!(error = %err, "DKIM signing failed; sending unsigned");
                message
            }
        }
    }
}

/// ratspost's signing key (`data_dir/dkim.key`), created on first use; DKIM and ARC share
/// it.
///
/// # Errors
/// When the key cannot be read, created or parsed.
pub(crate) fn key(config: &Config) -> anyhow::Result<Ed25519Key> {
    let der = tls::secret_file(&config.data_dir.join("dkim.key"), || {
        Ed25519Key::generate_pkcs8().map_err(|e| anyhow::anyhow!("generating the DKIM key: {e}"))
    })?;
    Ed25519Key::from_pkcs8_der(&der).map_err(|e| anyhow::anyhow!("dkim.key: {e}"))
}

/// The DNS name and TXT record to publish for the key (RFC 6376 §3.6.2); ARC seals are
/// verified against the same record (RFC 8617 §4.1.3).
///
/// # Errors
/// When the key cannot be loaded.
pub fn record(config: &Config) -> anyhow::Result<(String, String)> {
    let key = key(config)?;
    let name = format!("{}._domainkey.{}", config.dkim.selector, config.dkim.domain);
    let value = format!(
        "v=DKIM1; k=ed25519; p={}",
        crate::encoding::base64(&key.public_key())
    );
    Ok((name, value))
}
