//! DKIM signing of what ratspost sends on (forwards and notices), with its own Ed25519 key.
//!
//! The key is generated at setup into `data_dir/dkim.key` (PKCS#8, hex, mode 0600); the DNS
//! record to publish is printed by `ratspost dkim record`.

use std::sync::Arc;

use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::dkim::{DkimSigner, Done};

use crate::config::Config;
use crate::tls;

/// Headers signed when present.
const SIGNED: [&str; 8] = [
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
        let key = Ed25519Key::from_pkcs8_der(&key_der(config)?)
            .map_err(|e| anyhow::anyhow!("dkim.key: {e}"))?;
        let signer = DkimSigner::from_key(key)
            .domain(config.dkim.domain.clone())
            .selector(config.dkim.selector.clone())
            .headers(SIGNED);
        Ok(Self(Arc::new(signer)))
    }

    /// `message` with a `DKIM-Signature` header on top; unsigned (and logged) if signing
    /// fails, which only a malformed message can cause.
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

/// The PKCS#8 key, created on first use.
fn key_der(config: &Config) -> anyhow::Result<Vec<u8>> {
    tls::secret_file(&config.data_dir.join("dkim.key"), || {
        Ed25519Key::generate_pkcs8().map_err(|e| anyhow::anyhow!("generating the DKIM key: {e}"))
    })
}

/// The DNS name and TXT record to publish for the key.
///
/// # Errors
/// When the key cannot be loaded.
pub fn record(config: &Config) -> anyhow::Result<(String, String)> {
    let key = Ed25519Key::from_pkcs8_der(&key_der(config)?)
        .map_err(|e| anyhow::anyhow!("dkim.key: {e}"))?;
    let name = format!("{}._domainkey.{}", config.dkim.selector, config.dkim.domain);
    let value = format!(
        "v=DKIM1; k=ed25519; p={}",
        crate::encoding::base64(&key.public_key())
    );
    Ok((name, value))
}
