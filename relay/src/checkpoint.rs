//! Signed checkpoints of the audit chain (issue #15 §1): the anchor outside the database.
//!
//! The chain's own hashes prove nothing against someone who can write the database: they can
//! rewrite every row and recompute every hash and the head. A checkpoint is the chain's
//! position and head hash at a moment, signed with an Ed25519 key that is not in the
//! database, and kept where the database's administrator cannot reach it (a file on another
//! machine, the journal's remote copy, the data-protection officer's mailbox).
//! [`store::Store::verify_audit_anchored`] then finds the first checkpoint the log no
//! longer matches.
//!
//! One checkpoint is one line of text, so it survives a mail, a paste, a printout:
//!
//! ```text
//! ratspost-checkpoint v1 seq=65 head=<64 hex> head_at=<ms> at=2026-12-01T10:00:00Z key=<base64> sig=<base64>
//! ```
//!
//! The signature (RFC 8032 Ed25519) covers every byte before ` sig=`; `key` is the signer's
//! public key (32 bytes), so a line can be checked on its own and the reader sees which key
//! vouches for it. Who trusts which key is the verifier's decision (`--key`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

use crate::config::Config;

mod duty;
pub use duty::Duty;

/// What every checkpoint line starts with (its format and version).
pub const PREFIX: &str = "ratspost-checkpoint v1 ";

/// One signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Sequence number of the newest entry (0: the log was empty).
    pub seq: i64,
    /// Its hash (SHA-256, 64 hex digits; [`store::audit::GENESIS`] for an empty log).
    pub head: String,
    /// Its own time (`at` of the entry, epoch ms; 0 for an empty log): what a cut of the
    /// log's start up to this entry is judged by.
    pub head_at: i64,
    /// When it was made, RFC 3339 UTC to the second.
    pub at: String,
    /// The signer's Ed25519 public key (32 bytes).
    pub key: Vec<u8>,
    /// The signature over [`Checkpoint::signed_text`] (64 bytes).
    pub sig: Vec<u8>,
}

impl Checkpoint {
    /// The text the signature covers.
    #[must_use]
    pub fn signed_text(&self) -> String {
        format!(
            "{PREFIX}seq={} head={} head_at={} at={} key={}",
            self.seq,
            self.head,
            self.head_at,
            self.at,
            B64.encode(&self.key)
        )
    }

    /// The whole line (without line end).
    #[must_use]
    pub fn line(&self) -> String {
        format!("{} sig={}", self.signed_text(), B64.encode(&self.sig))
    }

    /// The public key as written in the line (base64): what `--key` compares with.
    #[must_use]
    pub fn key_text(&self) -> String {
        B64.encode(&self.key)
    }

    /// Parses a line (anything before [`PREFIX`] — a quote mark, a log prefix — and trailing
    /// white space are ignored) and checks its signature against the key it names.
    ///
    /// # Errors
    /// Why the line is not a valid checkpoint: its form, or a signature that does not verify
    /// (the line was changed or forged).
    pub fn parse(line: &str) -> Result<Self, String> {
        let start = line
            .find(PREFIX)
            .ok_or_else(|| "not a checkpoint line".to_owned())?;
        let rest = line[start + PREFIX.len()..].trim_end();
        let mut fields = [None; 6];
        const NAMES: [&str; 6] = ["seq", "head", "head_at", "at", "key", "sig"];
        for (i, part) in rest.split(' ').enumerate() {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not NAME=VALUE"))?;
            if NAMES.get(i) != Some(&name) {
                return Err(format!(
                    "expected the fields {} in this order",
                    NAMES.join(", ")
                ));
            }
            fields[i] = Some(value);
        }
        let [
            Some(seq),
            Some(head),
            Some(head_at),
            Some(at),
            Some(key),
            Some(sig),
        ] = fields
        else {
            return Err(format!("expected the fields {}", NAMES.join(", ")));
        };
        let seq: i64 = seq
            .parse()
            .ok()
            .filter(|s| *s >= 0)
            .ok_or_else(|| format!("seq {seq:?} is not a sequence number"))?;
        if head.len() != 64
            || !head
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err("head is not 64 lower-case hex digits".to_owned());
        }
        let head_at: i64 =
            head_at.parse().ok().filter(|t| *t >= 0).ok_or_else(|| {
                format!("head_at {head_at:?} is not a time in epoch milliseconds")
            })?;
        chrono::DateTime::parse_from_rfc3339(at).map_err(|e| format!("at {at:?}: {e}"))?;
        let key = B64
            .decode(key)
            .ok()
            .filter(|k| k.len() == 32)
            .ok_or_else(|| "key is not a base64 Ed25519 public key".to_owned())?;
        let sig = B64
            .decode(sig)
            .ok()
            .filter(|s| s.len() == 64)
            .ok_or_else(|| "sig is not a base64 Ed25519 signature".to_owned())?;
        let checkpoint = Self {
            seq,
            head: head.to_owned(),
            head_at,
            at: at.to_owned(),
            key,
            sig,
        };
        UnparsedPublicKey::new(&ED25519, &checkpoint.key)
            .verify(checkpoint.signed_text().as_bytes(), &checkpoint.sig)
            .map_err(|_| {
                "its signature does not verify: the line was changed or forged".to_owned()
            })?;
        Ok(checkpoint)
    }

    /// The anchor the chain must match, labelled for the report.
    #[must_use]
    pub fn anchor(&self, source: &str) -> store::Anchor {
        store::Anchor {
            seq: self.seq,
            hash: self.head.clone(),
            label: format!("the checkpoint of {} ({source})", self.at),
            // Parsed when the line was; a signed line's time is as trustworthy as its head.
            at: chrono::DateTime::parse_from_rfc3339(&self.at)
                .ok()
                .map(|t| t.timestamp_millis()),
            entry_at: (self.seq > 0).then_some(self.head_at),
        }
    }
}

/// Every checkpoint line in `text` (a checkpoint file, a journal excerpt), with its line
/// number (from 1); lines without [`PREFIX`] are skipped, lines with it that do not parse or
/// verify are returned as errors.
#[must_use]
pub fn find_all(text: &str) -> Vec<(usize, Result<Checkpoint, String>)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| line.contains(PREFIX))
        .map(|(i, line)| (i + 1, Checkpoint::parse(line)))
        .collect()
}

/// Every checkpoint in `bytes`, which may also be saved mails (one message, or an mbox of
/// several): a mail's source carries the line quoted-printable encoded and folded, so the
/// text parts are decoded (mail-parser) and searched too. Each result names where it was
/// found ("line 3", "mail 2, line 7"); a checkpoint found twice is reported once.
#[must_use]
pub fn find_in_file(bytes: &[u8]) -> Vec<(String, Result<Checkpoint, String>)> {
    let text = String::from_utf8_lossy(bytes);
    let mut found: Vec<(String, Result<Checkpoint, String>)> = find_all(&text)
        .into_iter()
        .map(|(n, c)| (format!("line {n}"), c))
        .collect();
    let looks_like_mail = text.lines().take(200).any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("content-transfer-encoding:") || l.starts_with("mime-version:")
    });
    if looks_like_mail {
        for (m, mail) in mails(&text).into_iter().enumerate() {
            let Some(message) = mail_parser::MessageParser::default().parse(mail.as_bytes()) else {
                continue;
            };
            for part in 0..message.text_body_count() {
                let Some(body) = message.body_text(part) else {
                    continue;
                };
                for (n, c) in find_all(&body) {
                    found.push((format!("mail {}, line {n}", m + 1), c));
                }
            }
        }
    }
    // The same valid line seen raw and decoded counts once; the first place found is named.
    let mut seen = std::collections::HashSet::new();
    found.retain(|(_, c)| match c {
        Ok(c) => seen.insert(c.line()),
        Err(_) => true,
    });
    // A folded raw line that decodes to a valid one is not a fault of the file.
    if found.iter().any(|(_, c)| c.is_ok()) && looks_like_mail {
        found.retain(|(place, c)| c.is_ok() || place.starts_with("mail"));
    }
    found
}

/// The messages of an mbox (split at its `From ` separator lines), or the one message.
fn mails(text: &str) -> Vec<&str> {
    let mut starts = vec![0];
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if offset > 0 && line.starts_with("From ") {
            starts.push(offset);
        }
        offset += line.len();
    }
    starts.push(text.len());
    starts.windows(2).map(|w| &text[w[0]..w[1]]).collect()
}

/// The checkpoints of this installation: those in `audit.checkpoint_file` that are signed by
/// `audit.checkpoint_key` (others are left out). Empty when either file is missing.
#[must_use]
pub fn installed_anchors(config: &Config) -> Vec<store::Anchor> {
    match installed_key(config) {
        Ok(Some(key)) => anchors_by(&config.audit.checkpoint_file, &key).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The public key (base64) of `audit.checkpoint_key`; `None` when the file does not exist.
///
/// # Errors
/// When it exists but cannot be read or is not an Ed25519 PKCS#8 key in hex.
pub fn installed_key(config: &Config) -> anyhow::Result<Option<String>> {
    let path = &config.audit.checkpoint_key;
    match std::fs::read_to_string(path) {
        Ok(text) => hex::decode(text.trim())
            .map_err(anyhow::Error::from)
            .and_then(|der| public_key_of(&der))
            .map(Some)
            .with_context(|| format!("{} is not a checkpoint key", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The checkpoints in `file` signed by `key` (base64), as anchors named by their line;
/// none when the file does not exist.
///
/// # Errors
/// When the file exists but cannot be read.
fn anchors_by(file: &Path, key: &str) -> anyhow::Result<Vec<store::Anchor>> {
    let text = match std::fs::read(file) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    Ok(find_all(&text)
        .into_iter()
        .filter_map(|(line, c)| {
            c.ok()
                .filter(|c| c.key_text() == key)
                .map(|c| c.anchor(&format!("{}, line {line}", file.display())))
        })
        .collect())
}

/// The key that signs checkpoints, and the file they are appended to.
pub struct Signer {
    key: Ed25519KeyPair,
    file: PathBuf,
    /// Which cuts of the log's start are signed (`retention.audit_days`; unset: none).
    policy: store::CutPolicy,
}

impl Signer {
    /// Loads `audit.checkpoint_key`, creating it (mode 0600) when it does not exist.
    ///
    /// # Errors
    /// When the key cannot be read, created or parsed.
    pub fn load(config: &Config) -> anyhow::Result<Self> {
        let path = &config.audit.checkpoint_key;
        let der = crate::tls::secret_file(path, || {
            Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                .map(|doc| doc.as_ref().to_vec())
                .map_err(|_| anyhow::anyhow!("generating the checkpoint key failed"))
        })?;
        let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|e| anyhow::anyhow!("{}: not an Ed25519 PKCS#8 key: {e}", path.display()))?;
        Ok(Self {
            key,
            file: config.audit.checkpoint_file.clone(),
            policy: store::CutPolicy::of(config.retention.audit_days),
        })
    }

    /// The public key as checkpoint lines write it (base64).
    #[must_use]
    pub fn public_key(&self) -> String {
        B64.encode(self.key.public_key().as_ref())
    }

    /// A detached signature (base64) of `message` with this key.
    #[must_use]
    pub fn sign_detached(&self, message: &[u8]) -> String {
        B64.encode(self.key.sign(message).as_ref())
    }

    /// A checkpoint of (`seq`, `head`) now.
    #[must_use]
    pub fn sign(&self, seq: i64, head: &str, head_at: i64) -> Checkpoint {
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut checkpoint = Checkpoint {
            seq,
            head: head.to_owned(),
            head_at,
            at,
            key: self.key.public_key().as_ref().to_vec(),
            sig: Vec::new(),
        };
        checkpoint.sig = self
            .key
            .sign(checkpoint.signed_text().as_bytes())
            .as_ref()
            .to_vec();
        checkpoint
    }

    /// The store's head, after checking that the chain still holds the newest checkpoint
    /// this key signed and chains from it to the head: the key never certifies a history
    /// someone rewrote in the database.
    ///
    /// # Errors
    /// When the chain does not fit (say so to the DPO; sign nothing), or the database or the
    /// file fails.
    pub async fn verified_head(&self, store: &store::Store) -> anyhow::Result<(i64, String, i64)> {
        let file = self.file.clone();
        let key = self.public_key();
        // Every checkpoint this key signed: the newest to check from, all for their times.
        let anchors = tokio::task::spawn_blocking(move || anchors_by(&file, &key))
            .await
            .context("checkpoint reader")??;
        match store
            .verify_audit_for_signing(&anchors, store::now_millis(), self.policy)
            .await?
        {
            store::AuditCheck::Intact {
                entries,
                head,
                first,
                ..
            } => {
                let seq = first - 1 + entries;
                Ok((seq, head, store.audit_entry_at(seq).await?))
            }
            store::AuditCheck::Broken { seq, reason } => anyhow::bail!(
                "refusing to sign an audit checkpoint: the log does not fit the checkpoints signed before, at entry {seq}: {reason}. Leave the database as it is and tell the data-protection officer"
            ),
        }
    }

    /// Signs the store's current head (see [`Signer::verified_head`]) and appends it to the
    /// checkpoint file (synced to disk before this returns).
    ///
    /// # Errors
    /// When the chain does not fit the last checkpoint, or the database or the file fails.
    pub async fn write(&self, store: &store::Store) -> anyhow::Result<Checkpoint> {
        let (seq, head, head_at) = self.verified_head(store).await?;
        let checkpoint = self.sign(seq, &head, head_at);
        let line = checkpoint.line();
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || append(&file, &line))
            .await
            .context("checkpoint writer")??;
        Ok(checkpoint)
    }

    /// The file checkpoints are appended to.
    #[must_use]
    pub fn file(&self) -> &Path {
        &self.file
    }
}

/// Whether `signature` (base64) is `key`'s (base64 public key) over `message`.
#[must_use]
pub fn verify_detached(key: &str, message: &[u8], signature: &str) -> bool {
    let (Ok(key), Ok(signature)) = (B64.decode(key), B64.decode(signature)) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, &key)
        .verify(message, &signature)
        .is_ok()
}

/// A public key as given by a person (`--key`): base64 of 32 bytes, with or without the
/// `key=` of a checkpoint line around it.
///
/// # Errors
/// When it is not such a key.
pub fn parse_public_key(text: &str) -> Result<String, String> {
    let text = text.trim();
    let text = text.strip_prefix("key=").unwrap_or(text);
    match B64.decode(text) {
        Ok(bytes) if bytes.len() == 32 => Ok(B64.encode(bytes)),
        _ => Err(format!(
            "{text:?} is not a public key: expected 44 characters of base64, as after key= in a checkpoint line"
        )),
    }
}

/// The public key (base64, as checkpoint lines write it) of a PKCS#8 Ed25519 key.
///
/// # Errors
/// When `der` is not such a key.
pub fn public_key_of(der: &[u8]) -> anyhow::Result<String> {
    let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
        .map_err(|e| anyhow::anyhow!("not an Ed25519 PKCS#8 key: {e}"))?;
    Ok(B64.encode(key.public_key().as_ref()))
}

/// Appends `line` to `path` (created with mode 0600 when missing) and syncs it.
///
/// # Errors
/// When the file cannot be opened or written.
pub fn append(path: &Path, line: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(format!("{line}\n").as_bytes())
        .and_then(|()| file.sync_data())
        .with_context(|| format!("writing {}", path.display()))
}

/// The newest checkpoint in `path`, if the file exists and holds one (only its end is read).
///
/// # Errors
/// When the file exists but cannot be read.
pub fn last_in(path: &Path) -> anyhow::Result<Option<Checkpoint>> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(4096)))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let text = String::from_utf8_lossy(&tail);
    Ok(find_all(&text).into_iter().rev().find_map(|(_, c)| c.ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn signer() -> Signer {
        let der = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).expect("key");
        Signer {
            key: Ed25519KeyPair::from_pkcs8(der.as_ref()).expect("parse"),
            file: PathBuf::new(),
            policy: store::CutPolicy::KeepForever,
        }
    }

    #[test]
    fn a_line_round_trips_and_names_its_key() {
        let s = signer();
        let c = s.sign(65, &"ab".repeat(32), 1_796_000_000_000);
        let line = c.line();
        assert!(
            line.starts_with("ratspost-checkpoint v1 seq=65 head=abab"),
            "{line}"
        );
        let parsed = Checkpoint::parse(&line).expect("valid");
        assert_eq!(parsed, c);
        assert_eq!(parsed.key_text(), s.public_key());
        // Quoted in a reply, or behind a journal prefix, with a CRLF: still found.
        let quoted = format!("> Dec 01 10:00 host ratspost[1]: {line}\r");
        assert_eq!(Checkpoint::parse(&quoted).expect("quoted"), c);
    }

    #[test]
    fn a_changed_or_reordered_line_is_refused() {
        let c = signer().sign(7, &"0f".repeat(32), 1_796_000_000_000);
        let line = c.line();
        for forged in [
            line.replace("seq=7", "seq=8"),
            line.replace("head=0f0f", "head=0f0e"),
            line.replace("v1 seq=7 head=", "v1 head=")
                .replace(" at=", " seq=7 at="),
            format!("{line} extra=1"),
        ] {
            assert!(Checkpoint::parse(&forged).is_err(), "accepted {forged}");
        }
        // Another key's signature under this key's name.
        let other = signer().sign(7, &"0f".repeat(32), 1_796_000_000_000);
        let mixed = format!("{} sig={}", c.signed_text(), B64.encode(&other.sig));
        assert!(
            Checkpoint::parse(&mixed)
                .unwrap_err()
                .contains("does not verify")
        );
    }

    proptest! {
        /// Whatever changes one character of a signed line, the line no longer passes.
        #[test]
        fn any_one_character_change_is_found(seq in 0i64..1_000_000, pos in 0usize..400, ch in proptest::char::range('!', '~')) {
            let c = signer().sign(seq, &"5a".repeat(32), 1_796_000_000_000);
            let line = c.line();
            let pos = pos % line.len();
            prop_assume!(line.as_bytes()[pos] as char != ch);
            let mut bytes = line.into_bytes();
            bytes[pos] = ch as u8;
            let changed = String::from_utf8(bytes).expect("ascii");
            // A change inside the prefix makes it "not a checkpoint"; any other, a refusal.
            prop_assert!(Checkpoint::parse(&changed).is_err(), "{changed}");
        }
    }

    /// The DPO saves the checkpoint mails (quoted-printable, folded) as they come: one, or
    /// an mbox of several, and the checkpoints are found in them.
    #[test]
    fn checkpoints_are_found_in_saved_mails() {
        let notices = crate::config::Config::builtin().notices;
        let s = signer();
        let first = s.sign(41, &"3c".repeat(32), 1_796_000_000_000);
        let second = s.sign(97, &"4d".repeat(32), 1_796_000_000_000);
        let mail = |c: &Checkpoint| {
            String::from_utf8(
                crate::compose::audit_checkpoint(&notices, "dsb@stadt.example", &c.line(), c.seq)
                    .body,
            )
            .expect("ascii mail")
        };
        let one = mail(&first);
        let found = find_in_file(one.as_bytes());
        assert_eq!(found.len(), 1, "{found:?}\n{one}");
        assert_eq!(found[0].1.as_ref().expect("valid"), &first);
        let mbox = format!(
            "From ratspost Tue Dec  1 10:00:00 2026\n{}\nFrom ratspost Wed Dec  2 10:00:00 2026\n{}",
            one.replace("\r\n", "\n"),
            mail(&second).replace("\r\n", "\n")
        );
        let found: Vec<Checkpoint> = find_in_file(mbox.as_bytes())
            .into_iter()
            .map(|(place, c)| c.unwrap_or_else(|e| panic!("{place}: {e}")))
            .collect();
        assert_eq!(found, [first, second]);
    }

    #[test]
    fn the_newest_line_of_a_file_is_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cp.txt");
        assert_eq!(last_in(&path).expect("none"), None);
        let s = signer();
        let first = s.sign(1, &"11".repeat(32), 1_796_000_000_000);
        let second = s.sign(2, &"22".repeat(32), 1_796_000_000_000);
        append(&path, &first.line()).expect("append");
        append(&path, &second.line()).expect("append");
        assert_eq!(last_in(&path).expect("read"), Some(second));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
