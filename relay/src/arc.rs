//! ARC sealing of intact forwards (RFC 8617).
//!
//! A forward keeps the original's `From:` and the original's own DKIM signature, byte for
//! byte. ratspost does not DKIM-sign it (see [`crate::dkim`] for why: a signature of our
//! domain would vouch for a `From:` we did not write). Instead it adds one ARC set on top
//! of the message, which tells the private provider what ratspost found when the message
//! arrived, under ratspost's name:
//!
//! - `ARC-Authentication-Results` (§4.1.1): the result of checking the original's DKIM
//!   signatures (RFC 6376) and any ARC chain it already carries, as `dkim=` and `arc=`
//!   entries (RFC 8601 syntax). Only what was checked is stated; a check that could not
//!   finish (DNS down or too slow) says `temperror`.
//! - `ARC-Message-Signature` (§4.1.2): over the headers in [`crate::dkim::SIGNED`], the
//!   original's `DKIM-Signature` and the body, relaxed/relaxed.
//! - `ARC-Seal` (§4.1.3): over the chain; `cv=none` for the first set, `pass` when the
//!   existing chain verified.
//!
//! Both signatures use ratspost's Ed25519 DKIM key (`data_dir/dkim.key`) with `dkim.domain`
//! and `dkim.selector`, so the record `ratspost dkim record` prints serves ARC as well.
//!
//! Checking happens once per message (not per recipient), on the blocking pool (hashing a
//! large body is CPU work), within `dkim.verify_timeout_secs`. Nothing here fails a forward:
//! when no set can be added — the message cannot be parsed, its chain already failed
//! (`cv=fail`, §5.1.2), or its chain could not be judged in time — the forward leaves with
//! the original's own signatures only, and that is logged.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use mail_auth::arc::ArcSealer;
use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::dkim::{Canonicalization, Done};
use mail_auth::{
    ArcOutput, AuthenticatedMessage, AuthenticationResults, DkimOutput, DkimResult, DnsError,
    Error, MessageAuthenticator, Parameters,
};

use crate::config::Config;

/// What the message signature covers besides [`crate::dkim::SIGNED`]: the original's DKIM
/// signature (RFC 8617 §4.1.2 recommends it), so that it cannot be swapped on the way.
const ALSO_SIGNED: [&str; 1] = ["DKIM-Signature"];

/// Checks incoming messages and seals their forwards. Cheap to clone.
#[derive(Clone)]
pub struct Sealer(Arc<Inner>);

struct Inner {
    sealer: ArcSealer<Ed25519Key, Done>,
    /// Resolves the keys of the original's signers; `None` when no resolver could be made
    /// (then every check is `temperror`).
    authenticator: Option<MessageAuthenticator>,
    /// The authserv-id of the results (RFC 8601 §2.5): `smtp.hostname`.
    authserv_id: String,
    /// Bound on the checks, DNS included.
    timeout: Duration,
}

impl Sealer {
    /// The sealer for `config`: ratspost's key (loaded, or first created, as for DKIM) and a
    /// resolver for `delivery.resolvers` (the system's when unset).
    ///
    /// # Errors
    /// When the key cannot be read, created or parsed. A resolver that cannot be made is
    /// not an error: it is logged, and checks then report `temperror`.
    pub fn load(config: &Config) -> anyhow::Result<Self> {
        let headers = crate::dkim::SIGNED.iter().chain(&ALSO_SIGNED).copied();
        let sealer = ArcSealer::from_key(crate::dkim::key(config)?)
            .domain(config.dkim.domain.clone())
            .selector(config.dkim.selector.clone())
            .headers(headers)
            .header_canonicalization(Canonicalization::Relaxed)
            .body_canonicalization(Canonicalization::Relaxed);
        let authenticator = match crate::resolver::resolver(
            &config.delivery.resolvers,
            config.dkim.verify_timeout,
        ) {
            Ok(resolver) => Some(MessageAuthenticator(resolver)),
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "no DNS resolver for DKIM and ARC checks; forwards say temperror");
                None
            }
        };
        Ok(Self(Arc::new(Inner {
            sealer,
            authenticator,
            authserv_id: config.smtp.hostname.clone(),
            timeout: config.dkim.verify_timeout,
        })))
    }

    /// Checks `raw` (the message as it arrived from `peer`) and returns the ARC set to put on
    /// top of every forward of it: `ARC-Seal`, `ARC-Message-Signature` and
    /// `ARC-Authentication-Results`, each ending in CRLF. Lines added above the set later
    /// (ratspost's `Received:`) are not covered by it and do not break it.
    ///
    /// `None` when no set can be added (see the module documentation); the reason is logged.
    /// Never takes much longer than `dkim.verify_timeout_secs`.
    pub async fn seal(&self, raw: Vec<u8>, peer: Option<IpAddr>) -> Option<Vec<u8>> {
        let inner = Arc::clone(&self.0);
        let handle = tokio::runtime::Handle::current();
        // A panic in mail-auth on hostile input ends the blocking task, not the pipeline.
        match tokio::task::spawn_blocking(move || inner.seal(&handle, &raw, peer)).await {
            Ok(Ok(set)) => Some(set),
            Ok(Err(reason)) => {
                tracing::warn!(reason, "forward not ARC-sealed");
                None
            }
            Err(_) => {
                tracing::error!("ARC sealing crashed; forward not ARC-sealed");
                None
            }
        }
    }
}

impl Inner {
    /// The checks and the seal, on a blocking thread; `handle` drives the DNS lookups.
    fn seal(
        &self,
        handle: &tokio::runtime::Handle,
        raw: &[u8],
        peer: Option<IpAddr>,
    ) -> Result<Vec<u8>, &'static str> {
        let message = AuthenticatedMessage::parse(raw).ok_or("the message cannot be parsed")?;
        let carries_arc = !message.ams_headers.is_empty()
            || !message.as_headers.is_empty()
            || !message.aar_headers.is_empty()
            || message.has_arc_errors;
        let (dkim, arc) = match &self.authenticator {
            Some(authenticator) => {
                let deadline = tokio::time::Instant::now() + self.timeout;
                let (dkim, arc) = handle.block_on(async {
                    tokio::join!(
                        tokio::time::timeout_at(
                            deadline,
                            authenticator.verify_dkim(Parameters::new(&message))
                        ),
                        tokio::time::timeout_at(
                            deadline,
                            authenticator.verify_arc(Parameters::new(&message))
                        ),
                    )
                });
                (
                    dkim.map_err(|_| Unjudged::TimedOut),
                    arc.map_err(|_| Unjudged::TimedOut),
                )
            }
            None => (Err(Unjudged::NoResolver), Err(Unjudged::NoResolver)),
        };
        let dkim = match dkim {
            Ok(results) => results,
            // Every signature stays unjudged: one temperror says so.
            Err(why) if !message.dkim_headers.is_empty() => {
                vec![DkimOutput::temp_err(temporary(why))]
            }
            Err(_) => Vec::new(),
        };
        let arc = match arc {
            Ok(output) => output,
            // A chain that could not be judged is not extended: cv=fail would end it for good.
            Err(_) if carries_arc => return Err("the ARC chain could not be checked (DNS)"),
            // No ARC header at all: nothing needed DNS, the chain is simply absent.
            Err(_) => ArcOutput::default(),
        };
        if carries_arc && arc.sets().is_empty() {
            // A chain too malformed to number: a new set could not extend it (§5.1).
            return Err("the message's ARC chain is malformed");
        }
        if !arc.sets().is_empty() && matches!(arc.result(), DkimResult::TempError(_)) {
            // cv=fail would end the chain for good because of a passing DNS failure.
            return Err("the ARC chain could not be checked (DNS)");
        }
        if !arc.can_be_sealed() {
            return Err("the ARC chain already failed (cv=fail)");
        }
        let results = AuthenticationResults::new(&self.authserv_id)
            .with_dkim_results(&dkim, message.from())
            .with_arc_result(&arc, peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        let set = self
            .sealer
            .seal(&message, &results, &arc)
            .map_err(|_| "the message cannot be sealed")?;
        Ok(set.to_header().into_bytes())
    }
}

/// Why a check has no answer.
#[derive(Debug, Clone, Copy)]
enum Unjudged {
    /// `dkim.verify_timeout_secs` ran out (DNS slow or down).
    TimedOut,
    /// No resolver could be made at startup.
    NoResolver,
}

/// The error a `temperror` result carries for `why`.
fn temporary(why: Unjudged) -> Error {
    Error::Dns(DnsError::Resolver(
        match why {
            Unjudged::TimedOut => "timed out",
            Unjudged::NoResolver => "no resolver",
        }
        .to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use std::borrow::Borrow;
    use std::collections::HashMap;
    use std::hash::Hash;
    use std::path::Path;
    use std::time::Instant;

    use mail_auth::common::parse::TxtRecordParser as _;
    use mail_auth::common::verify::DomainKey;
    use mail_auth::dkim::DkimSigner;
    use mail_auth::{ResolverCache, Txt};

    use super::*;

    /// DNS as a receiver sees it: only the records given.
    struct Published(HashMap<Box<str>, Txt>);

    impl Published {
        fn new(records: &[(&str, &str)]) -> Self {
            let mut map = HashMap::new();
            for (name, value) in records {
                let key = || Txt::from(DomainKey::parse(value.as_bytes()).expect("record"));
                map.insert(format!("{name}.").into_boxed_str(), key());
                map.insert((*name).into(), key());
            }
            Self(map)
        }
    }

    impl ResolverCache<Box<str>, Txt> for Published {
        fn get<Q>(&self, name: &Q) -> Option<Txt>
        where
            Box<str>: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.0.get(name).cloned()
        }
        fn remove<Q>(&self, _: &Q) -> Option<Txt>
        where
            Box<str>: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            None
        }
        fn insert(&self, _: Box<str>, _: Txt, _: Instant) {}
    }

    /// A configuration whose DNS goes nowhere (the discard port): only what a test publishes
    /// through [`Published`] resolves.
    fn config(dir: &Path) -> Config {
        config_with(dir, "127.0.0.1:9")
    }

    /// A configuration whose DNS is `resolver`, with a one-second bound on the checks.
    fn config_with(dir: &Path, resolver: &str) -> Config {
        Config::parse(
            &format!(
                "data_dir = {:?}\n[smtp]\nhostname = \"ratspost.stadt.test\"\n\
                 [dkim]\ndomain = \"stadt.test\"\nverify_timeout_secs = 1\n\
                 [delivery]\nresolvers = [\"{resolver}\"]\n",
                dir.display().to_string()
            ),
            None,
        )
        .expect("valid")
    }

    const ORIGINAL: &[u8] = b"From: Der Buergermeister <buergermeister@stadt.test>\r\n\
        To: anna@stadt.test\r\nSubject: Sitzung\r\nMessage-ID: <m1@upstream.test>\r\n\
        Date: Sun, 22 Nov 2026 10:00:00 +0100\r\n\r\nDie Sitzung beginnt um 17 Uhr.\r\n";

    const PEER: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));

    /// The ARC result and set count a receiver gets for `message`.
    async fn receiver_arc(records: &Published, message: &[u8]) -> (DkimResult, usize) {
        let parsed = AuthenticatedMessage::parse(message).expect("parse");
        let authenticator = MessageAuthenticator(
            crate::resolver::resolver(
                &["127.0.0.1:9".parse().expect("addr")],
                Duration::from_secs(1),
            )
            .expect("resolver"),
        );
        let out = authenticator
            .verify_arc(Parameters::new(&parsed).with_txt_cache(records))
            .await;
        (out.result().clone(), out.sets().len())
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_first_set_verifies_with_the_published_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = config(dir.path());
        let (name, value) = crate::dkim::record(&config).expect("record");
        let published = Published::new(&[(&name, &value)]);
        let set = Sealer::load(&config)
            .expect("sealer")
            .seal(ORIGINAL.to_vec(), PEER)
            .await
            .expect("a set");
        let header = text(&set);
        assert!(
            header
                .starts_with("ARC-Seal: i=1; a=ed25519-sha256; s=ratspost; d=stadt.test; cv=none;"),
            "{header}"
        );
        assert!(
            header.contains("\r\nARC-Message-Signature: i=1;"),
            "{header}"
        );
        assert!(
            header.contains("ARC-Authentication-Results: i=1; ratspost.stadt.test;"),
            "{header}"
        );
        // Nothing to judge but the (absent) chain: no dkim= claim, arc=none.
        assert!(!header.contains("dkim="), "{header}");
        assert!(
            header.contains("arc=none smtp.remote-ip=192.0.2.1"),
            "{header}"
        );
        // No DKIM-Signature header of ratspost's (the name is only in the AMS's h=, which
        // signs the absence of one).
        assert!(
            !header.starts_with("DKIM-Signature:") && !header.contains("\nDKIM-Signature:"),
            "{header}"
        );
        assert!(header.ends_with("\r\n"));

        // As forwarded: the set, ratspost's Received line, the original.
        let received = b"Received: from client.test ([192.0.2.1])\r\n\tby ratspost.stadt.test (ratspost) with ESMTP id 1\r\n\tfor <x@example.net>; Sun, 22 Nov 2026 10:00:01 +0100\r\n";
        let forward = [set.as_slice(), received, ORIGINAL].concat();
        assert_eq!(
            receiver_arc(&published, &forward).await,
            (DkimResult::Pass, 1)
        );

        // A changed body or From breaks it.
        let body = text(&forward).replace("17 Uhr", "18 Uhr").into_bytes();
        assert!(!matches!(
            receiver_arc(&published, &body).await.0,
            DkimResult::Pass
        ));
        let from = text(&forward)
            .replace("buergermeister@", "kaemmerer@")
            .into_bytes();
        assert!(!matches!(
            receiver_arc(&published, &from).await.0,
            DkimResult::Pass
        ));
        // Another key under the same name does not verify it.
        let other = tempfile::tempdir().expect("tempdir");
        let (_, other_value) =
            crate::dkim::record(&super::tests::config(other.path())).expect("record");
        let wrong = Published::new(&[(&name, &other_value)]);
        assert!(!matches!(
            receiver_arc(&wrong, &forward).await.0,
            DkimResult::Pass
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_signature_that_cannot_be_checked_is_a_temperror_within_the_timeout() {
        // A name server that refuses at once, and one that never answers (a bound socket
        // nobody reads): both end within the bound, as temperror.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let silent = silent.local_addr().expect("addr").to_string();
        for resolver in ["127.0.0.1:9", silent.as_str()] {
            temperror_within_the_timeout(resolver).await;
        }
    }

    async fn temperror_within_the_timeout(resolver: &str) {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = config_with(dir.path(), resolver);
        let der = Ed25519Key::generate_pkcs8().expect("key");
        let signature = DkimSigner::from_key(Ed25519Key::from_pkcs8_der(&der).expect("key"))
            .domain("upstream.test")
            .selector("s1")
            .headers(["From", "To", "Subject"])
            .sign(ORIGINAL)
            .expect("sign");
        let signed = [signature.to_header().into_bytes(), ORIGINAL.to_vec()].concat();
        let started = std::time::Instant::now();
        let set = Sealer::load(&config)
            .expect("sealer")
            .seal(signed.clone(), PEER)
            .await
            .expect("a set");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{resolver}: took {:?}",
            started.elapsed()
        );
        let header = text(&set);
        assert!(header.contains("dkim=temperror"), "{resolver}: {header}");
        assert!(header.contains("arc=none"), "{resolver}: {header}");
        assert!(!header.contains("dkim=pass"), "{header}");
        // The seal still verifies, and the original's signature is inside what it covers.
        let (name, value) = crate::dkim::record(&config).expect("record");
        let published = Published::new(&[(&name, &value)]);
        let ams = &header[header.find("ARC-Message-Signature:").expect("AMS")
            ..header.find("ARC-Authentication-Results:").expect("AAR")];
        let ams: String = ams.split_whitespace().collect();
        assert!(ams.contains("DKIM-Signature"), "{ams}");
        let forward = [set, signed].concat();
        assert_eq!(
            receiver_arc(&published, &forward).await,
            (DkimResult::Pass, 1)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hostile_or_broken_input_gives_no_set_and_no_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sealer = Sealer::load(&config(dir.path())).expect("sealer");
        // A chain ratspost cannot extend: malformed, or incomplete (a seal without its
        // signature and results).
        for broken in [
            &b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=x; s=y; b=!!!\r\nFrom: a@b.test\r\n\r\nx\r\n"[..],
            b"ARC-Seal: i=1; a=ed25519-sha256; t=1; cv=none; d=x.test; s=y; b=AAAA\r\nFrom: a@b.test\r\n\r\nx\r\n",
            b"ARC-Seal: i=2; a=ed25519-sha256; t=1; cv=fail; d=x.test; s=y; b=AAAA\r\nARC-Message-Signature: i=2; a=ed25519-sha256; d=x.test; s=y; h=from; bh=AAAA; b=AAAA\r\nARC-Authentication-Results: i=2; x.test; arc=fail\r\nFrom: a@b.test\r\n\r\nx\r\n",
        ] {
            assert!(sealer.seal(broken.to_vec(), PEER).await.is_none(), "{}", text(broken));
        }
        // Whatever else comes: an answer, never a panic.
        let mut many = Vec::new();
        for _ in 0..2000 {
            many.extend_from_slice(b"DKIM-Signature: v=1; a=rsa-sha256; d=\xff; s=\x00; b=;\r\n");
        }
        many.extend_from_slice(b"\r\nbody\r\n");
        for input in [
            &b""[..],
            b"\r\n",
            b"\r\n\r\n",
            b"no header at all",
            b":\r\n\r\n",
            b"From: \xff\xfe\r\n\r\n\xff",
            &many,
        ] {
            let _ = sealer.seal(input.to_vec(), None).await;
        }
    }
}
