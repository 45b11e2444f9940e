//! The one configuration: parsed once from TOML, validated with every error reported
//! together, then passed around as `Arc<Config>`.
//!
//! Parsing has two layers (as ripgrep's low/high args): [`RawConfig`] mirrors the file and
//! never fails on a bad value — each leaf is a [`Field`] that keeps either the value or the
//! error — so that [`Config::resolve`] can collect *all* problems (unknown keys, wrong
//! types, out-of-range values) and report them at once, each with file and key. Nothing
//! after startup sees `RawConfig`.
//!
//! Every default lives in [`defaults`]; the commented file `ratspost init` writes is
//! generated from the same constants ([`default_file`]), so it cannot drift.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Built-in defaults. Every limit has one, chosen to be safe for a town hall's volume.
pub mod defaults {
    /// Where the SQLite database, TLS material and generated keys live.
    pub const DATA_DIR: &str = "./data";
    /// Dates people read (notices, mails, web UI, CLI listings) are local time of this zone.
    pub const TIME_ZONE: &str = "Europe/Berlin";
    /// Database pool size.
    pub const DB_MAX_CONNECTIONS: u32 = 16;
    /// Seconds to wait for a free database connection.
    pub const DB_ACQUIRE_TIMEOUT_SECS: u64 = 10;
    /// SMTP listener: loopback, unprivileged.
    pub const SMTP_LISTEN: &str = "127.0.0.1:2525";
    /// Name in the greeting, EHLO reply and trace headers.
    pub const SMTP_HOSTNAME: &str = "localhost";
    /// Hosts allowed to hand mail over: only the local machine until configured.
    pub const SMTP_UPSTREAM_NETWORKS: &[&str] = &["127.0.0.0/8", "::1/128"];
    /// 25 MiB: what Exchange Online and most providers accept.
    pub const SMTP_MAX_MESSAGE_SIZE: u64 = 25 * 1024 * 1024;
    /// RFC 5321 allows 512 octets plus extension parameters; 2048 leaves room for those.
    pub const SMTP_MAX_COMMAND_LINE: u64 = 2048;
    /// RFC 5321 says 1000; real mail sometimes exceeds it, so accept up to 8 KiB.
    pub const SMTP_MAX_MESSAGE_LINE: u64 = 8192;
    /// Recipients per message (RFC 5321 requires at least 100 to be accepted).
    pub const SMTP_MAX_RECIPIENTS: u64 = 100;
    /// Concurrent SMTP connections in total.
    pub const SMTP_MAX_CONNECTIONS: u64 = 256;
    /// Concurrent SMTP connections from one IP address.
    pub const SMTP_MAX_CONNECTIONS_PER_IP: u64 = 32;
    /// RFC 5321 §4.5.3.2.7: at least 5 minutes waiting for a command.
    pub const SMTP_COMMAND_TIMEOUT_SECS: u64 = 300;
    /// RFC 5321 §4.5.3.2.5-6: 3 minutes per data block, 10 for the terminator; one value.
    pub const SMTP_DATA_TIMEOUT_SECS: u64 = 600;
    /// A session, however busy, ends after an hour.
    pub const SMTP_MAX_SESSION_SECS: u64 = 3600;
    /// Protocol errors (and refused recipients) before the session is closed, as Postfix.
    pub const SMTP_MAX_ERRORS: u64 = 20;
    /// Refuse mail until STARTTLS: off, because the upstream usually sits on a trusted link.
    pub const SMTP_REQUIRE_TLS: bool = false;
    /// Refuse 8-bit message data when MAIL FROM did not declare BODY=8BITMIME.
    pub const SMTP_REJECT_UNDECLARED_8BIT: bool = false;
    /// Seconds in-flight work gets to finish after SIGTERM before it is cut off.
    pub const SHUTDOWN_GRACE_SECS: u64 = 30;
    /// Seconds one message may take to classify; longer counts as uninspectable. Room for
    /// the OCR of a few scanned pages (about 1-3 s each); text alone takes milliseconds.
    pub const CLASSIFIER_TIMEOUT_SECS: u64 = 120;
    /// Messages classified in parallel.
    pub const CLASSIFIER_WORKERS: u64 = 2;
    /// Scans are read with OCR when Tesseract is installed.
    pub const OCR_ENABLED: bool = true;
    /// The Tesseract program (Debian: tesseract-ocr), looked up on PATH.
    pub const OCR_TESSERACT: &str = "tesseract";
    /// The PDF rasteriser (Debian: poppler-utils), looked up on PATH.
    pub const OCR_PDFTOPPM: &str = "pdftoppm";
    /// German first (tesseract-ocr-deu), English for the rest.
    pub const OCR_LANGUAGES: &str = "deu+eng";
    /// Scanners' own resolution; what Tesseract reads best.
    pub const OCR_DPI: u64 = 300;
    /// Seconds for one image or one scanned PDF (all its pages); a page takes about 1-3 s.
    pub const OCR_TIMEOUT_SECS: u64 = 60;
    /// Address space of one OCR program in MiB; an A4 page at 300 dpi needs about 150.
    pub const OCR_MEMORY_MB: u64 = 1024;
    /// Pages without text read from one PDF; a PDF with more counts as uninspectable.
    pub const OCR_MAX_PAGES: u64 = 20;
    /// Largest image canvas read, in megapixels: a phone camera takes 12-50, an A4 page at
    /// 300 dpi is 8.7; a few bytes can declare far more.
    pub const OCR_MAX_MEGAPIXELS: u64 = 100;
    /// Longest forwarding exemption in days.
    pub const EXEMPTION_MAX_DAYS: u64 = 30;
    /// Hours a confirmation code is valid.
    pub const EXEMPTION_CODE_TTL_HOURS: u64 = 24;
    /// Wrong confirmation codes before the request is denied.
    pub const EXEMPTION_CODE_ATTEMPTS: u64 = 5;
    /// Sender of confirmation mails and notices.
    pub const NOTICES_FROM: &str = "ratspost@localhost";
    /// Language of confirmation mails and notices.
    pub const NOTICES_LANGUAGE: &str = "de";
    /// Where notice links point: `{link_base}/{token}`.
    pub const NOTICES_LINK_BASE: &str = "https://localhost:8080/m";
    /// Days a notice link stays valid.
    pub const NOTICES_LINK_DAYS: u64 = 30;
    /// Characters of a sender's display name a notice shows.
    pub const NOTICES_NAME_CHARS: u64 = 64;
    /// Characters of a subject a notice shows.
    pub const NOTICES_SUBJECT_CHARS: u64 = 120;
    /// Digits in a row (across separators) a value in a notice may have.
    pub const NOTICES_MAX_DIGIT_RUN: u64 = 8;
    /// Deliveries in parallel.
    pub const DELIVERY_CONCURRENCY: u64 = 4;
    /// First retry after a temporary failure; doubled each time.
    pub const DELIVERY_RETRY_BASE_SECS: u64 = 60;
    /// Longest pause between retries.
    pub const DELIVERY_RETRY_MAX_SECS: u64 = 4 * 3600;
    /// Give up after five days, like Postfix's maximal_queue_lifetime.
    pub const DELIVERY_GIVE_UP_HOURS: u64 = 120;
    /// A node holds a job this long; if it dies, another node takes the job after that.
    pub const DELIVERY_LEASE_SECS: u64 = 600;
    /// Connect and reply timeout.
    pub const DELIVERY_TIMEOUT_SECS: u64 = 120;
    /// RFC 5321 §4.5.3.2.6: the reply to the final dot may take ten minutes (content checks).
    pub const DELIVERY_DATA_END_TIMEOUT_SECS: u64 = 600;
    /// How long the DKIM and ARC checks of a message to be forwarded may take (DNS included).
    pub const DKIM_VERIFY_TIMEOUT_SECS: u64 = 10;
    /// Port of the receiving servers for direct MX delivery.
    pub const DELIVERY_MX_PORT: u64 = 25;
    /// Web UI (HTTPS), loopback only until configured.
    pub const WEB_LISTEN: &str = "127.0.0.1:8080";
    /// A web login lasts a working day.
    pub const WEB_SESSION_HOURS: u64 = 8;
    /// Open HTTPS connections in total, and per client address.
    pub const WEB_MAX_CONNECTIONS: u64 = 512;
    pub const WEB_MAX_CONNECTIONS_PER_IP: u64 = 32;
    /// Seconds a request may take to arrive (headers and body), and a kept-alive connection
    /// may stay idle.
    pub const WEB_REQUEST_TIMEOUT_SECS: u64 = 20;
    /// Pause after a failed web login.
    pub const WEB_LOGIN_FAILURE_DELAY_MS: u64 = 1000;
    /// Logins kept in each user's history (a row stands for a device's logins from one
    /// address within an hour).
    pub const WEB_LOGIN_HISTORY: u64 = 200;
    /// IMAP with STARTTLS.
    pub const IMAP_LISTEN: &str = "127.0.0.1:1143";
    /// IMAP over implicit TLS.
    pub const IMAP_LISTEN_TLS: &str = "127.0.0.1:1993";
    /// Connections in all.
    pub const IMAP_MAX_CONNECTIONS: u64 = 20_000;
    /// Connections from one address (a household behind one router has a few devices).
    pub const IMAP_MAX_CONNECTIONS_PER_IP: u64 = 50;
    /// Largest message a client may APPEND.
    pub const IMAP_MAX_MESSAGE_BYTES: u64 = 50 * 1024 * 1024;
    /// Autologout of an idle session (RFC 3501 §5.4 asks for at least 30 minutes).
    pub const IMAP_TIMEOUT_SECS: u64 = 1800;
    /// First delay after a failed login; doubles with each failure (up to 32 times).
    pub const IMAP_FAILURE_DELAY_MS: u64 = 500;
    /// Failures from one address within 15 minutes before it is banned.
    pub const IMAP_BAN_AFTER: u64 = 10;
    /// How long a ban lasts.
    pub const IMAP_BAN_SECS: u64 = 900;
    /// Largest literal before login: a user name or password fits many times over; a client
    /// announcing `{52428800}` is refused before `+` (issue #13 §3).
    pub const IMAP_MAX_LOGIN_LITERAL: u64 = 8 * 1024;
    /// From connecting to logging in: a client trickling a byte at a time is out after this.
    pub const IMAP_LOGIN_TIMEOUT_SECS: u64 = 60;
    /// argon2id takes 19 MiB and a core per hash: two at once keep 100 parallel logins at
    /// tens of MiB, not gigabytes.
    pub const IMAP_MAX_PARALLEL_HASHES: u64 = 2;
    /// A login waits this long for a hashing slot, then is refused as temporary.
    pub const IMAP_HASH_QUEUE_MS: u64 = 5000;
    /// Submission with STARTTLS (RFC 6409; 587 in production).
    pub const SUBMISSION_LISTEN: &str = "127.0.0.1:1587";
    /// Submission over implicit TLS (RFC 8314; 465 in production).
    pub const SUBMISSION_LISTEN_TLS: &str = "127.0.0.1:1465";
    /// Largest submitted message (bytes).
    pub const SUBMISSION_MAX_MESSAGE_SIZE: u64 = 25 * 1024 * 1024;
    /// Recipients per submitted message.
    pub const SUBMISSION_MAX_RECIPIENTS: u64 = 50;
    /// Messages one user may submit per hour.
    pub const SUBMISSION_MAX_MESSAGES_PER_HOUR: u64 = 100;
    /// Submission connections in all.
    pub const SUBMISSION_MAX_CONNECTIONS: u64 = 256;
    /// Submission connections per client address.
    pub const SUBMISSION_MAX_CONNECTIONS_PER_IP: u64 = 20;
    /// From connecting to a successful AUTH, at most (seconds).
    pub const SUBMISSION_LOGIN_TIMEOUT_SECS: u64 = 60;
    /// Threads for CPU-heavy commands: the cores the machine has to spare for them; the
    /// async workers (SMTP, logins, the web UI) are never among them.
    pub const IMAP_HEAVY_WORKERS: u64 = 2;
    /// Longest SEARCH or FETCH (then `NO [LIMIT]`; the client can narrow the set).
    pub const IMAP_MAX_COMMAND_SECS: u64 = 60;
    /// Signed audit checkpoints: appended to this file in data_dir (keep a copy elsewhere).
    pub const AUDIT_CHECKPOINT_FILE: &str = "audit-checkpoints.txt";
    /// The Ed25519 key that signs them, in data_dir (made at first start).
    pub const AUDIT_CHECKPOINT_KEY: &str = "audit-checkpoint.key";
    /// Seconds between checkpoints (one is written only when the log grew).
    pub const AUDIT_CHECKPOINT_INTERVAL_SECS: u64 = 3600;
    /// Hours between checkpoint mails to `audit.checkpoint_to`.
    pub const AUDIT_CHECKPOINT_MAIL_HOURS: u64 = 24;
    /// Days an original message is kept after it arrived (0: for ever).
    pub const RETENTION_MESSAGE_DAYS: u64 = 90;
    /// Days audit entries are kept (0: for ever).
    pub const RETENTION_AUDIT_DAYS: u64 = 0;
    /// Seconds between retention runs.
    pub const RETENTION_CHECK_INTERVAL_SECS: u64 = 3600;
}

/// A leaf value from the file: absent, or the value, or why it could not be read.
/// Never fails deserialisation, so one bad value does not hide the others.
#[derive(Debug)]
pub struct Field<T>(Option<Result<T, String>>);

impl<T> Default for Field<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Field<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = toml::Value::deserialize(d)?;
        Ok(Self(Some(
            T::deserialize(value).map_err(|e| e.message().to_owned()),
        )))
    }
}

/// The file as written. Unknown keys are collected separately (`serde_ignored`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawConfig {
    /// Directory for the SQLite database, TLS material and keys.
    pub data_dir: Field<String>,
    /// IANA time zone of the dates people read.
    pub time_zone: Field<String>,
    /// `[database]`
    pub database: RawDatabase,
    /// `[tls]`
    pub tls: RawTls,
    /// `[smtp]`
    pub smtp: RawSmtp,
    /// `[shutdown]`
    pub shutdown: RawShutdown,
    /// `[classifier]`
    pub classifier: RawClassifier,
    /// `[ocr]`
    pub ocr: RawOcr,
    /// `[exemptions]`
    pub exemptions: RawExemptions,
    /// `[notices]`
    pub notices: RawNotices,
    /// `[delivery]`
    pub delivery: RawDelivery,
    /// `[dkim]`
    pub dkim: RawDkim,
    /// `[web]`
    pub web: RawWeb,
    /// `[imap]`
    pub imap: RawImap,
    /// `[submission]`
    pub submission: RawSubmission,
    /// `[audit]`
    pub audit: RawAudit,
    /// `[retention]`
    pub retention: RawRetention,
}

/// `[audit]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawAudit {
    /// Append-only file of signed checkpoints.
    pub checkpoint_file: Field<String>,
    /// Ed25519 key (PKCS#8, hex) that signs them.
    pub checkpoint_key: Field<String>,
    /// Seconds between checkpoints.
    pub checkpoint_interval_secs: Field<u64>,
    /// Where checkpoints are mailed (the data-protection officer).
    pub checkpoint_to: Field<String>,
    /// Hours between checkpoint mails.
    pub checkpoint_mail_hours: Field<u64>,
}

/// `[retention]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawRetention {
    /// Days originals are kept (0: for ever).
    pub message_days: Field<u64>,
    /// Days audit entries are kept (0: for ever).
    pub audit_days: Field<u64>,
    /// Seconds between retention runs.
    pub check_interval_secs: Field<u64>,
}

/// `[submission]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawSubmission {
    /// `IP:PORT` with STARTTLS.
    pub listen: Field<String>,
    /// `IP:PORT` with implicit TLS.
    pub listen_tls: Field<String>,
    /// The city's mail server, `HOST:PORT`; absent: submission off.
    pub relay: Field<String>,
    /// `required`, `opportunistic` or `none`.
    pub relay_tls: Field<String>,
    /// AUTH PLAIN user name at the relay.
    pub relay_username: Field<String>,
    /// AUTH PLAIN password at the relay.
    pub relay_password: Field<String>,
    /// A file holding the relay's AUTH password.
    pub relay_password_file: Field<String>,
    /// An environment variable holding the relay's AUTH password.
    pub relay_password_env: Field<String>,
    /// Largest message (bytes).
    pub max_message_size: Field<u64>,
    /// Recipients per message.
    pub max_recipients: Field<u64>,
    /// Messages per user and hour.
    pub max_messages_per_hour: Field<u64>,
    /// Connections in all.
    pub max_connections: Field<u64>,
    /// Connections per client address.
    pub max_connections_per_ip: Field<u64>,
    /// Seconds from connecting to a successful AUTH.
    pub login_timeout_secs: Field<u64>,
    /// `relay` or `hold`.
    pub sensitive: Field<String>,
}

/// `[imap]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawImap {
    /// `IP:PORT` with STARTTLS.
    pub listen: Field<String>,
    /// `IP:PORT` with implicit TLS.
    pub listen_tls: Field<String>,
    /// Accept the account password too.
    pub account_password: Field<bool>,
    /// Connections in all.
    pub max_connections: Field<u64>,
    /// Connections per client address.
    pub max_connections_per_ip: Field<u64>,
    /// APPEND limit.
    pub max_message_bytes: Field<u64>,
    /// Seconds.
    pub timeout_secs: Field<u64>,
    /// Milliseconds.
    pub failure_delay_ms: Field<u64>,
    /// Failures before a ban.
    pub ban_after: Field<u64>,
    /// Seconds.
    pub ban_secs: Field<u64>,
    /// Largest literal (bytes) before login.
    pub max_login_literal: Field<u64>,
    /// Seconds from connecting to logging in, at most.
    pub login_timeout_secs: Field<u64>,
    /// Password hashes (argon2) computed at once.
    pub max_parallel_hashes: Field<u64>,
    /// Milliseconds a login may wait for a hashing slot.
    pub hash_queue_ms: Field<u64>,
    /// Threads for CPU-heavy commands (SEARCH over bodies, MIME parsing for FETCH).
    pub heavy_workers: Field<u64>,
    /// Seconds a SEARCH or FETCH may run.
    pub max_command_secs: Field<u64>,
}

/// `[web]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawWeb {
    /// `IP:PORT`.
    pub listen: Field<String>,
    /// Hours.
    pub session_hours: Field<u64>,
    /// Milliseconds.
    pub login_failure_delay_ms: Field<u64>,
    /// Rows of login history kept per user.
    pub login_history: Field<u64>,
    /// Open connections in total.
    pub max_connections: Field<u64>,
    /// Open connections per client address.
    pub max_connections_per_ip: Field<u64>,
    /// Seconds.
    pub request_timeout_secs: Field<u64>,
    /// `web.language`.
    pub language: Field<String>,
    /// `web.downloads`: `all`, `not_classified` or `none`.
    pub downloads: Field<String>,
}

/// `[dkim]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawDkim {
    /// Signing domain (`d=`).
    pub domain: Field<String>,
    /// Selector (`s=`).
    pub selector: Field<String>,
    /// Seconds the DKIM and ARC checks of a forwarded message may take.
    pub verify_timeout_secs: Field<u64>,
}

/// `[delivery]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawDelivery {
    /// `host:port` of the smarthost.
    pub smarthost: Field<String>,
    /// `required`, `opportunistic`, `none`.
    pub tls: Field<String>,
    /// Extra trusted CA certificates (PEM).
    pub ca_file: Field<String>,
    /// AUTH user.
    pub username: Field<String>,
    /// AUTH password.
    pub password: Field<String>,
    /// A file holding the AUTH password.
    pub password_file: Field<String>,
    /// An environment variable holding the AUTH password.
    pub password_env: Field<String>,
    /// Parallel deliveries.
    pub concurrency: Field<u64>,
    /// Seconds.
    pub retry_base_secs: Field<u64>,
    /// Seconds.
    pub retry_max_secs: Field<u64>,
    /// Hours.
    pub give_up_hours: Field<u64>,
    /// Seconds.
    pub lease_secs: Field<u64>,
    /// Seconds.
    pub timeout_secs: Field<u64>,
    /// Seconds.
    pub data_end_timeout_secs: Field<u64>,
    /// Port for direct MX delivery.
    pub mx_port: Field<u64>,
    /// DNS servers (`IP` or `IP:PORT`) for MX lookups.
    pub resolvers: Field<Vec<String>>,
    /// Allow MX hosts at loopback/private addresses.
    pub mx_private_addresses: Field<bool>,
}

/// `[exemptions]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawExemptions {
    /// Days.
    pub max_days: Field<u64>,
    /// DPO must co-approve.
    pub require_dpo: Field<bool>,
    /// Hours.
    pub code_ttl_hours: Field<u64>,
    /// Tries.
    pub code_attempts: Field<u64>,
    /// Only these target domains.
    pub allowed_domains: Field<Vec<String>>,
    /// Never these target domains.
    pub denied_domains: Field<Vec<String>>,
    /// Every forward is a notice.
    pub notices_only: Field<bool>,
    /// Days before the end to remind the user.
    pub reminder_days: Field<u64>,
    /// Seconds between expiry and reminder checks.
    pub check_interval_secs: Field<u64>,
    /// Who hears of requests waiting for approval: `"admins"` or a list of addresses.
    pub notify: Field<RawNotify>,
}

/// `exemptions.notify` as written: a word or a list of addresses.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawNotify {
    /// `"admins"`.
    Word(String),
    /// Addresses.
    List(Vec<String>),
}

/// Who is told that an exemption request waits for approval (`exemptions.notify`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notify {
    /// Every user with role admin (and dpo, when `require_dpo`), at their first address.
    Admins,
    /// These addresses (lower case).
    Addresses(Vec<String>),
}

/// `[notices]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawNotices {
    /// Sender address.
    pub from: Field<String>,
    /// `de` or `en`.
    pub language: Field<String>,
    /// Base URL of notice links.
    pub link_base: Field<String>,
    /// Days a link is valid.
    pub link_days: Field<u64>,
    /// Show the original subject in notices (never for classified material).
    pub show_subject: Field<bool>,
    /// RIS search URL for paper numbers, with `{reference}`.
    pub paper_url: Field<String>,
    /// Regex for paper numbers; its first group is the number.
    pub paper_pattern: Field<String>,
    /// Host names of the RIS whose links notices repeat.
    pub ris_hosts: Field<Vec<String>>,
    /// Characters of a display name shown.
    pub name_chars: Field<u64>,
    /// Characters of a subject shown.
    pub subject_chars: Field<u64>,
    /// Digits in a row a shown value may have.
    pub max_digit_run: Field<u64>,
}

/// `[classifier]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawClassifier {
    /// Rules file (TOML).
    pub rules: Field<String>,
    /// Seconds per message.
    pub timeout_secs: Field<u64>,
    /// Parallel classifications.
    pub workers: Field<u64>,
}

/// `[ocr]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawOcr {
    /// Read scans with OCR.
    pub enabled: Field<bool>,
    /// Tesseract program.
    pub tesseract: Field<String>,
    /// pdftoppm program.
    pub pdftoppm: Field<String>,
    /// Tesseract languages, `deu+eng`.
    pub languages: Field<String>,
    /// Resolution PDF pages are rasterised at.
    pub dpi: Field<u64>,
    /// Seconds per image or PDF.
    pub timeout_secs: Field<u64>,
    /// Memory per OCR program in MiB.
    pub memory_mb: Field<u64>,
    /// Pages per PDF.
    pub max_pages: Field<u64>,
    /// Image size in megapixels.
    pub max_megapixels: Field<u64>,
}

/// `[database]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawDatabase {
    /// `sqlite://PATH` or `postgres://…`.
    pub url: Field<String>,
    /// A file holding the URL (it carries the database password).
    pub url_file: Field<String>,
    /// An environment variable holding the URL.
    pub url_env: Field<String>,
    /// Pool size.
    pub max_connections: Field<u64>,
    /// Seconds to wait for a connection.
    pub acquire_timeout_secs: Field<u64>,
}

/// `[tls]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawTls {
    /// PEM certificate chain.
    pub cert: Field<String>,
    /// PEM private key.
    pub key: Field<String>,
}

/// `[smtp]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawSmtp {
    /// Listen address.
    pub listen: Field<String>,
    /// Our host name.
    pub hostname: Field<String>,
    /// CIDRs allowed to connect.
    pub upstream_networks: Field<Vec<String>>,
    /// Domains that are ours even before any address there is enrolled.
    pub local_domains: Field<Vec<String>>,
    /// Bytes.
    pub max_message_size: Field<u64>,
    /// Bytes, including CRLF.
    pub max_command_line: Field<u64>,
    /// Bytes, including CRLF.
    pub max_message_line: Field<u64>,
    /// Recipients per message.
    pub max_recipients: Field<u64>,
    /// Connections in total.
    pub max_connections: Field<u64>,
    /// Connections per client IP.
    pub max_connections_per_ip: Field<u64>,
    /// Seconds.
    pub command_timeout_secs: Field<u64>,
    /// Seconds.
    pub data_timeout_secs: Field<u64>,
    /// Seconds.
    pub max_session_secs: Field<u64>,
    /// Errors per session.
    pub max_errors: Field<u64>,
    /// Require STARTTLS before MAIL.
    pub require_tls: Field<bool>,
    /// Refuse 8-bit data without `BODY=8BITMIME` (default false: accepted and stored as is).
    pub reject_undeclared_8bit: Field<bool>,
}

/// `[shutdown]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawShutdown {
    /// Seconds.
    pub grace_secs: Field<u64>,
}

/// Everything wrong with a config file, one line per problem.
#[derive(Debug)]
pub struct ConfigErrors {
    /// The file (or "built-in defaults").
    pub source: String,
    /// `key: problem` lines.
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration in {}:", self.source)?;
        for p in &self.problems {
            write!(f, "\n  {}: {p}", self.source)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from; `None` for built-in defaults.
    pub source: Option<PathBuf>,
    /// Data directory (absolute or relative to the working directory).
    pub data_dir: PathBuf,
    /// Zone of the dates people read (notices, mails, web UI, CLI text).
    pub time_zone: webui::datetime::Zone,
    /// `[database]`
    pub database: DatabaseConfig,
    /// `[tls]`
    pub tls: TlsConfig,
    /// `[smtp]`
    pub smtp: SmtpConfig,
    /// Time in-flight work gets after a stop signal.
    pub shutdown_grace: Duration,
    /// `[classifier]`
    pub classifier: ClassifierConfig,
    /// `[ocr]`
    pub ocr: OcrConfig,
    /// `[exemptions]`
    pub exemptions: ExemptionsConfig,
    /// `[notices]`
    pub notices: NoticesConfig,
    /// `[delivery]`
    pub delivery: DeliveryConfig,
    /// `[dkim]`
    pub dkim: DkimConfig,
    /// `[web]`
    pub web: WebConfig,
    /// `[imap]`
    pub imap: ImapConfig,
    /// `[submission]`
    pub submission: SubmissionConfig,
    /// `[audit]`
    pub audit: AuditConfig,
    /// `[retention]`
    pub retention: RetentionConfig,
    /// The secrets written into the file itself (not `_file`/`_env`), by key: the file must
    /// be as private as they are.
    pub inline_secrets: Vec<&'static str>,
}

/// `[audit]`: signed checkpoints that anchor the audit chain outside the database (issue
/// #15 §1). Each is one line, `ratspost-checkpoint v1 seq=… head=… at=… key=… sig=…`,
/// appended to `checkpoint_file`, logged, and mailed to `checkpoint_to` when set.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Append-only file the checkpoints are written to.
    pub checkpoint_file: PathBuf,
    /// The Ed25519 signing key (PKCS#8 DER, hex; created when missing, mode 0600).
    pub checkpoint_key: PathBuf,
    /// Time between checkpoints; one is written only when the log grew, and always at
    /// shutdown.
    pub checkpoint_interval: Duration,
    /// The data-protection officer's address, to receive checkpoints by mail.
    pub checkpoint_to: Option<String>,
    /// Time between two checkpoint mails, at least.
    pub checkpoint_mail_interval: Duration,
}

/// `[retention]`: storage limitation (Art. 5(1)(e) GDPR, issue #15 §3).
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// How long an original's bytes are kept after it arrived (`None`: for ever). A message
    /// is purged only once its notice links have expired and no forward of it is pending.
    pub message_days: Option<u32>,
    /// How long audit entries are kept (`None`: for ever).
    pub audit_days: Option<u32>,
    /// Time between retention runs.
    pub check_interval: Duration,
}

/// `[submission]`: staff send from their devices (RFC 6409, RFC 8314), through ratspost's
/// queue to the city's mail server.
#[derive(Debug, Clone)]
pub struct SubmissionConfig {
    /// STARTTLS listener.
    pub listen: SocketAddr,
    /// Implicit-TLS listener.
    pub listen_tls: SocketAddr,
    /// The city's mail server (`HOST:PORT`) every submitted message is relayed to; `None`:
    /// submission is off and its listeners are not opened.
    pub relay: Option<String>,
    /// TLS towards the relay (its certificate is checked against `delivery.ca_file` and the
    /// public roots).
    pub relay_tls: TlsMode,
    /// AUTH PLAIN at the relay.
    pub relay_auth: Option<(String, Secret)>,
    /// Largest message (bytes, as transferred).
    pub max_message_size: usize,
    /// Recipients per message.
    pub max_recipients: usize,
    /// Messages per user within any hour.
    pub max_messages_per_hour: usize,
    /// Connections in all.
    pub max_connections: usize,
    /// Connections per client address.
    pub max_connections_per_ip: usize,
    /// Time from connecting to a successful AUTH, at most (an absolute deadline: input does
    /// not extend it), so that anonymous connections cannot hold the slots.
    pub login_timeout: Duration,
    /// What happens to a submitted message the classifier flags.
    pub sensitive: SensitiveSubmission,
}

/// `submission.sensitive`: what happens to a submitted message the classifier flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SensitiveSubmission {
    /// Relayed like any other: the city's server and its policies decide (the default).
    Relay,
    /// Kept in the queue until an admin releases (or drops) it.
    Hold,
}

/// `[imap]`
#[derive(Debug, Clone)]
pub struct ImapConfig {
    /// STARTTLS listener.
    pub listen: SocketAddr,
    /// Implicit-TLS listener.
    pub listen_tls: SocketAddr,
    /// Whether the account password works for IMAP too (off: app passwords only).
    pub account_password: bool,
    /// Connections in all.
    pub max_connections: usize,
    /// Connections per client address.
    pub max_connections_per_ip: usize,
    /// APPEND limit (bytes).
    pub max_message_bytes: u32,
    /// Autologout.
    pub timeout: Duration,
    /// First delay after a failed login.
    pub failure_delay: Duration,
    /// Failures before an address is banned.
    pub ban_after: u32,
    /// Ban length.
    pub ban: Duration,
    /// Largest literal before login (bytes): a user name and a password, never megabytes
    /// from an anonymous client.
    pub max_login_literal: u32,
    /// Time from connecting to a successful login, at most (not restarted by input).
    pub login_timeout: Duration,
    /// Password hashes (argon2id, 19 MiB each) computed at once, all sessions together.
    pub max_parallel_hashes: usize,
    /// How long a login waits for a hashing slot before it is refused (try later).
    pub hash_queue: Duration,
    /// Threads running CPU-heavy commands at once (SEARCH over bodies, MIME for FETCH), all
    /// sessions together; they run off the async workers.
    pub heavy_workers: usize,
    /// How long one SEARCH or FETCH may run before it is cut off (`NO [LIMIT]`).
    pub max_command: Duration,
}

impl ImapConfig {
    /// How failed logins are answered, by IMAP and (with its own first delay) the web UI.
    #[must_use]
    pub fn login_limits(&self) -> store::LoginLimits {
        store::LoginLimits {
            failure_delay: self.failure_delay,
            ban_after: self.ban_after,
            ban: self.ban,
        }
    }
}

/// `[web]`
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// HTTPS listener.
    pub listen: SocketAddr,
    /// How long a login lasts.
    pub session: Duration,
    /// Pause after a first failed login (doubling as IMAP's; the ban is IMAP's).
    pub login_failure_delay: Duration,
    /// Rows of login history kept per user (web and IMAP).
    pub login_history: u32,
    /// Language of the pages.
    pub language: Language,
    /// What the viewer lets people download (originals, attachments).
    pub downloads: webui::Downloads,
    /// Connection limits and timeouts of the listener.
    pub limits: webui::Limits,
}

/// `[dkim]`
#[derive(Debug, Clone)]
pub struct DkimConfig {
    /// Signing domain.
    pub domain: String,
    /// Selector.
    pub selector: String,
    /// How long checking an incoming message's DKIM signatures and ARC chain may take (DNS
    /// lookups included) before its forward is sealed with `temperror`: a slow or dead name
    /// server must not hold up the pipeline.
    pub verify_timeout: Duration,
}

/// A secret (password, key) whose `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that needs it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How delivery uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// STARTTLS with a verified certificate, or no delivery (the job waits).
    Required,
    /// STARTTLS when offered (verified), plaintext otherwise.
    Opportunistic,
    /// Plaintext.
    None,
}

/// `[delivery]`
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Smarthost `host:port`; `None` means direct delivery to the recipient domain's MX.
    pub smarthost: Option<String>,
    /// TLS policy.
    pub tls: TlsMode,
    /// Extra trusted CA certificates.
    pub ca_file: Option<PathBuf>,
    /// AUTH PLAIN credentials.
    pub auth: Option<(String, Secret)>,
    /// Parallel deliveries.
    pub concurrency: usize,
    /// First retry delay.
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Give up after this long in the queue.
    pub give_up: Duration,
    /// Lease length.
    pub lease: Duration,
    /// Connect and reply timeout, and the limit for each chunk of the message sent.
    pub timeout: Duration,
    /// How long the reply to the final dot may take (the next hop checks the message then).
    pub data_end_timeout: Duration,
    /// Port of the receiving servers for direct MX delivery.
    pub mx_port: u16,
    /// DNS servers for MX lookups; empty means the system's (`/etc/resolv.conf`).
    pub resolvers: Vec<SocketAddr>,
    /// Whether MX hosts at loopback, private or link-local addresses may be used. Off, so a
    /// private domain whose MX points into the city's network cannot make ratspost deliver
    /// there.
    pub mx_private_addresses: bool,
}

/// Language of mails ratspost writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// German (default).
    De,
    /// English.
    En,
}

impl Config {
    /// How dates are written for people: local time of `time_zone`, in the notices' language.
    #[must_use]
    pub fn dates(&self) -> webui::datetime::Dates {
        let language = match self.notices.language {
            Language::De => webui::datetime::Language::German,
            Language::En => webui::datetime::Language::English,
        };
        webui::datetime::Dates::new(self.time_zone, language)
    }
}

/// `[notices]`
#[derive(Debug, Clone)]
pub struct NoticesConfig {
    /// Sender of confirmation mails and notices.
    pub from: String,
    /// Their language.
    pub language: Language,
    /// Base URL of notice links (no trailing slash).
    pub link_base: String,
    /// How long a link is valid.
    pub link_validity: Duration,
    /// Show the original subject in notices (never for classified material).
    pub show_subject: bool,
    /// RIS search URL for paper numbers, with `{reference}`.
    pub paper_url: Option<String>,
    /// The municipality's paper-number pattern; `None` for the built-in one.
    pub paper_pattern: Option<regex::Regex>,
    /// Host names (lower case) whose RIS links a notice repeats: `notices.ris_hosts`, or the
    /// host of `paper_url`; empty means no links at all.
    pub ris_hosts: Vec<String>,
    /// Characters of a sender's display name a notice shows (longer ones are cut, `…`).
    pub name_chars: usize,
    /// Characters of a subject a notice shows.
    pub subject_chars: usize,
    /// Digits in a row, whatever separates them, a value a notice repeats may have (at most
    /// [`crate::shown::MAX_DIGIT_RUN`]); a value with more is left out.
    pub max_digit_run: usize,
}

/// `[exemptions]`
#[derive(Debug, Clone)]
pub struct ExemptionsConfig {
    /// What the store enforces on every transition.
    pub policy: store::ExemptionPolicy,
    /// Every forward is a notice, also for clean mail.
    pub notices_only: bool,
    /// Remind the user this long before an exemption ends (zero: never).
    pub reminder_before: Duration,
    /// How often expiry and reminders are checked.
    pub check_interval: Duration,
    /// Who is told that a request waits for approval.
    pub notify: Notify,
}

/// `[classifier]`
#[derive(Debug, Clone)]
pub struct ClassifierConfig {
    /// Admin rules file; `None` for the built-in rules.
    pub rules: Option<PathBuf>,
    /// Longest time one message may take.
    pub timeout: Duration,
    /// Parallel classifications.
    pub workers: usize,
}

/// `[ocr]`: reading scans (images, PDF pages without text) with Tesseract.
#[derive(Debug, Clone)]
pub struct OcrConfig {
    /// Read scans at all; off, PDFs with pages without text are `uninspectable`.
    pub enabled: bool,
    /// Tesseract: a path, or a name looked up on PATH.
    pub tesseract: String,
    /// pdftoppm: a path, or a name looked up on PATH.
    pub pdftoppm: String,
    /// Tesseract language codes joined by `+`.
    pub languages: String,
    /// Resolution PDF pages are rasterised at, in dots per inch.
    pub dpi: u32,
    /// Longest time for one image, or for one PDF with all its pages.
    pub timeout: Duration,
    /// Address-space limit of each OCR program, in MiB.
    pub memory_mb: u64,
    /// Pages without text read from one PDF; more counts as a limit reached.
    pub max_pages: usize,
    /// Largest image read, in megapixels (width x height as its header declares).
    pub max_megapixels: u64,
}

/// `[database]`
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// Connection URL (may hold a password: never log it unredacted).
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// Wait for a connection.
    pub acquire_timeout: Duration,
}

/// `[tls]`
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Certificate chain file.
    pub cert: PathBuf,
    /// Private key file.
    pub key: PathBuf,
    /// True when both paths are the defaults under `data_dir`, which setup may generate.
    pub generated: bool,
}

/// `[smtp]`
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Our host name.
    pub hostname: String,
    /// Who may connect.
    pub upstream_networks: Vec<IpNet>,
    /// Extra local domains (lower-case).
    pub local_domains: Vec<String>,
    /// Largest message accepted, in bytes.
    pub max_message_size: usize,
    /// Longest command line, including CRLF.
    pub max_command_line: usize,
    /// Longest message line, including CRLF.
    pub max_message_line: usize,
    /// Recipients per message.
    pub max_recipients: usize,
    /// Connections in total.
    pub max_connections: usize,
    /// Connections per client IP.
    pub max_connections_per_ip: usize,
    /// Wait for a command.
    pub command_timeout: Duration,
    /// Wait for message data.
    pub data_timeout: Duration,
    /// Longest session.
    pub max_session: Duration,
    /// Errors before the session is closed.
    pub max_errors: u32,
    /// Require STARTTLS before MAIL.
    pub require_tls: bool,
    /// Refuse 8-bit data without `BODY=8BITMIME` with `554 5.6.1` (RFC 6152 strictness);
    /// off by default, so that the city's server never bounces undeclared 8-bit work mail.
    pub reject_undeclared_8bit: bool,
}

impl SmtpConfig {
    /// Whether `ip` may hand over mail.
    #[must_use]
    pub fn is_upstream(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            // A v4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.upstream_networks.iter().any(|net| net.contains(&ip))
    }
}

/// Collects problems while resolving.
struct Resolver {
    problems: Vec<String>,
}

impl Resolver {
    /// The value of `field`, or `default` when absent; a bad value is recorded.
    fn get<T: Clone>(&mut self, key: &str, field: &Field<T>, default: T) -> T {
        match &field.0 {
            None => default,
            Some(Ok(v)) => v.clone(),
            Some(Err(e)) => {
                self.problems.push(format!("{key}: {e}"));
                default
            }
        }
    }

    /// Like [`Self::get`], then converted and checked by `check`.
    fn parse<T: Clone, U>(
        &mut self,
        key: &str,
        field: &Field<T>,
        default: T,
        check: impl FnOnce(T) -> Result<U, String>,
        fallback: U,
    ) -> U {
        let value = self.get(key, field, default);
        check(value).unwrap_or_else(|e| {
            self.problems.push(format!("{key}: {e}"));
            fallback
        })
    }

    /// A positive integer within `1..=max`, as usize.
    fn count(&mut self, key: &str, field: &Field<u64>, default: u64, max: u64) -> usize {
        self.parse(
            key,
            field,
            default,
            |v| {
                if (1..=max).contains(&v) {
                    usize::try_from(v).map_err(|e| e.to_string())
                } else {
                    Err(format!("must be between 1 and {max}, got {v}"))
                }
            },
            usize::try_from(default).unwrap_or(usize::MAX),
        )
    }

    /// A listening address `IP:PORT`.
    fn address(&mut self, key: &str, field: &Field<String>, default: &str) -> SocketAddr {
        let fallback: SocketAddr = default.parse().expect("default addresses are valid");
        self.parse(
            key,
            field,
            default.to_owned(),
            |v| v.parse().map_err(|_| format!("{v:?} is not IP:PORT")),
            fallback,
        )
    }

    fn secs(&mut self, key: &str, field: &Field<u64>, default: u64) -> Duration {
        Duration::from_secs(self.count(key, field, default, 7 * 24 * 3600) as u64)
    }

    /// An optional next hop `HOST:PORT`.
    fn host_port(&mut self, key: &str, field: &Field<String>) -> Option<String> {
        field.0.is_some().then(|| {
            self.parse(
                key,
                field,
                String::new(),
                |v| match v.rsplit_once(':') {
                    Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(v),
                    _ => Err(format!("{v:?} is not HOST:PORT")),
                },
                String::new(),
            )
        })
    }

    /// How a next hop is reached: `required` (the default), `opportunistic` or `none`.
    fn tls_mode(&mut self, key: &str, field: &Field<String>) -> TlsMode {
        self.parse(
            key,
            field,
            "required".to_owned(),
            |v| match v.as_str() {
                "required" => Ok(TlsMode::Required),
                "opportunistic" => Ok(TlsMode::Opportunistic),
                "none" => Ok(TlsMode::None),
                _ => Err(format!(
                    "{v:?}: use \"required\", \"opportunistic\" or \"none\""
                )),
            },
            TlsMode::Required,
        )
    }

    /// A secret written as `KEY = "…"`, `KEY_file = "PATH"` (the file's content without its
    /// trailing line end; a relative path is taken from the configuration's directory) or
    /// `KEY_env = "VARIABLE"`, at most one of them; as a field for the usual checks.
    fn secret(
        &mut self,
        key: &str,
        (value, file, env): (&Field<String>, &Field<String>, &Field<String>),
        base: &Path,
    ) -> Field<String> {
        let given = [value.0.is_some(), file.0.is_some(), env.0.is_some()];
        if given.iter().filter(|g| **g).count() > 1 {
            self.problems.push(format!(
                "{key}: set only one of {key}, {key}_file and {key}_env"
            ));
            return Field(None);
        }
        if file.0.is_some() {
            let path = PathBuf::from(self.get(&format!("{key}_file"), file, String::new()));
            let path = if path.is_absolute() {
                path
            } else {
                base.join(path)
            };
            let read = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
                .map(|text| text.trim_end_matches(['\r', '\n']).to_owned());
            return match read {
                Ok(text) if !text.is_empty() => Field(Some(Ok(text))),
                Ok(_) => {
                    self.problems
                        .push(format!("{key}_file: {} is empty", path.display()));
                    Field(None)
                }
                Err(e) => {
                    self.problems.push(format!("{key}_file: {e}"));
                    Field(None)
                }
            };
        }
        if env.0.is_some() {
            let name = self.get(&format!("{key}_env"), env, String::new());
            return match std::env::var(&name) {
                Ok(v) if !v.is_empty() => Field(Some(Ok(v))),
                _ => {
                    self.problems.push(format!(
                        "{key}_env: the environment variable {name} is not set"
                    ));
                    Field(None)
                }
            };
        }
        Field(value.0.clone())
    }

    /// AUTH credentials at a next hop: both set, or neither.
    fn credentials(
        &mut self,
        (user_key, user): (&str, &Field<String>),
        (password_key, password): (&str, &Field<String>),
    ) -> Option<(String, Secret)> {
        let username = self.get(user_key, user, String::new());
        let password = self.get(password_key, password, String::new());
        if username.is_empty() != password.is_empty() {
            self.problems.push(format!(
                "{user_key} and {password_key}: set both, or neither"
            ));
        }
        (!username.is_empty() && !password.is_empty()).then_some((username, Secret(password)))
    }
}

/// Resolves `[submission]`.
fn submission(r: &mut Resolver, raw: &RawSubmission, base: &Path) -> SubmissionConfig {
    use defaults as d;
    let config = SubmissionConfig {
        listen: r.address("submission.listen", &raw.listen, d::SUBMISSION_LISTEN),
        listen_tls: r.address(
            "submission.listen_tls",
            &raw.listen_tls,
            d::SUBMISSION_LISTEN_TLS,
        ),
        relay: r.host_port("submission.relay", &raw.relay),
        relay_tls: r.tls_mode("submission.relay_tls", &raw.relay_tls),
        relay_auth: {
            let password = r.secret(
                "submission.relay_password",
                (
                    &raw.relay_password,
                    &raw.relay_password_file,
                    &raw.relay_password_env,
                ),
                base,
            );
            r.credentials(
                ("submission.relay_username", &raw.relay_username),
                ("submission.relay_password", &password),
            )
        },
        max_message_size: r.count(
            "submission.max_message_size",
            &raw.max_message_size,
            d::SUBMISSION_MAX_MESSAGE_SIZE,
            1024 * 1024 * 1024,
        ),
        max_recipients: r.count(
            "submission.max_recipients",
            &raw.max_recipients,
            d::SUBMISSION_MAX_RECIPIENTS,
            10_000,
        ),
        max_messages_per_hour: r.count(
            "submission.max_messages_per_hour",
            &raw.max_messages_per_hour,
            d::SUBMISSION_MAX_MESSAGES_PER_HOUR,
            1_000_000,
        ),
        max_connections: r.count(
            "submission.max_connections",
            &raw.max_connections,
            d::SUBMISSION_MAX_CONNECTIONS,
            1_000_000,
        ),
        max_connections_per_ip: r.count(
            "submission.max_connections_per_ip",
            &raw.max_connections_per_ip,
            d::SUBMISSION_MAX_CONNECTIONS_PER_IP,
            1_000_000,
        ),
        login_timeout: r.secs(
            "submission.login_timeout_secs",
            &raw.login_timeout_secs,
            d::SUBMISSION_LOGIN_TIMEOUT_SECS,
        ),
        sensitive: r.parse(
            "submission.sensitive",
            &raw.sensitive,
            "relay".to_owned(),
            |v| match v.as_str() {
                "relay" => Ok(SensitiveSubmission::Relay),
                "hold" => Ok(SensitiveSubmission::Hold),
                _ => Err(format!("{v:?}: use \"relay\" or \"hold\"")),
            },
            SensitiveSubmission::Relay,
        ),
    };
    if config.max_connections_per_ip > config.max_connections {
        r.problems.push(
            "submission.max_connections_per_ip: must not exceed submission.max_connections"
                .to_owned(),
        );
    }
    config
}

impl Config {
    /// Reads and resolves `path`.
    ///
    /// # Errors
    /// Every problem in the file, together.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            source: path.display().to_string(),
            problems: vec![format!("cannot read: {e}")],
        })?;
        // Anchored at an absolute directory, so that relative paths in the file mean the same
        // from any working directory (a relative `--config conf/ratspost.toml` once put the
        // database at conf/conf/data).
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        Self::parse(&text, Some(&absolute))
    }

    /// The built-in defaults (no file).
    ///
    /// # Panics
    /// Never: the defaults are tested to resolve.
    #[must_use]
    pub fn builtin() -> Self {
        Self::parse("", None).expect("built-in defaults are valid")
    }

    /// Parses TOML `text`; `path` names the file in errors and anchors relative paths.
    ///
    /// # Errors
    /// Every problem in the text, together.
    pub fn parse(text: &str, path: Option<&Path>) -> Result<Self, ConfigErrors> {
        let source = path.map_or_else(
            || "built-in defaults".to_owned(),
            |p| p.display().to_string(),
        );
        let fail = |problems| ConfigErrors {
            source: source.clone(),
            problems,
        };
        // Every syntax error at once (the parser recovers and goes on), not only the first.
        let (document, syntax) = toml::de::DeTable::parse_recoverable(text);
        if !syntax.is_empty() {
            return Err(fail(syntax_problems(text, &syntax)));
        }
        let de = toml::Deserializer::from(document);
        let mut unknown = Vec::new();
        let raw: RawConfig = serde_ignored::deserialize(de, |key| unknown.push(key.to_string()))
            .map_err(|e| fail(vec![toml_error(text, &e)]))?;
        let base = path
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut problems: Vec<String> = unknown
            .into_iter()
            .map(|k| format!("{k}: unknown key"))
            .collect();
        match Self::resolve(&raw, &base) {
            Ok(mut config) if problems.is_empty() => {
                config.source = path.map(Path::to_path_buf);
                Ok(config)
            }
            Ok(_) => Err(fail(problems)),
            Err(resolved) => {
                problems.extend(resolved);
                Err(fail(problems))
            }
        }
    }

    /// Validates `raw`; relative paths are taken relative to `base` (the config file's
    /// directory), so a config works the same from any working directory.
    ///
    /// # Errors
    /// One line per problem.
    pub fn resolve(raw: &RawConfig, base: &Path) -> Result<Self, Vec<String>> {
        use defaults as d;
        let mut r = Resolver {
            problems: Vec::new(),
        };
        let anchor = |p: String| -> PathBuf {
            let p = PathBuf::from(p);
            if p.is_absolute() { p } else { base.join(p) }
        };

        let data_dir = anchor(r.get("data_dir", &raw.data_dir, d::DATA_DIR.to_owned()));
        let default_db = format!("sqlite://{}", data_dir.join("ratspost.db").display());
        let time_zone = r.parse(
            "time_zone",
            &raw.time_zone,
            d::TIME_ZONE.to_owned(),
            |v| v.parse(),
            webui::datetime::Zone::BERLIN,
        );
        let db = &raw.database;
        let url_field = r.secret("database.url", (&db.url, &db.url_file, &db.url_env), base);
        let url = r.parse(
            "database.url",
            &url_field,
            default_db.clone(),
            |u| {
                if let Some(path) = u.strip_prefix("sqlite://") {
                    let path = anchor(path.to_owned());
                    Ok(format!("sqlite://{}", path.display()))
                } else if u.starts_with("postgres://") || u.starts_with("postgresql://") {
                    Ok(u)
                } else {
                    Err("expected sqlite://PATH or postgres://USER@HOST/DB".to_owned())
                }
            },
            default_db,
        );
        let database = DatabaseConfig {
            url,
            max_connections: r.count(
                "database.max_connections",
                &raw.database.max_connections,
                u64::from(d::DB_MAX_CONNECTIONS),
                1000,
            ) as u32,
            acquire_timeout: r.secs(
                "database.acquire_timeout_secs",
                &raw.database.acquire_timeout_secs,
                d::DB_ACQUIRE_TIMEOUT_SECS,
            ),
        };

        let default_cert = data_dir.join("tls").join("cert.pem");
        let default_key = data_dir.join("tls").join("key.pem");
        let cert = raw
            .tls
            .cert
            .0
            .is_some()
            .then(|| anchor(r.get("tls.cert", &raw.tls.cert, String::new())));
        let key = raw
            .tls
            .key
            .0
            .is_some()
            .then(|| anchor(r.get("tls.key", &raw.tls.key, String::new())));
        if cert.is_some() != key.is_some() {
            r.problems.push(
                "tls: set both cert and key, or neither (then a self-signed pair is generated)"
                    .to_owned(),
            );
        }
        let tls = TlsConfig {
            generated: cert.is_none() || key.is_none(),
            cert: cert.unwrap_or(default_cert),
            key: key.unwrap_or(default_key),
        };

        let s = &raw.smtp;
        let smtp = SmtpConfig {
            listen: r.address("smtp.listen", &s.listen, d::SMTP_LISTEN),
            hostname: r.parse(
                "smtp.hostname",
                &s.hostname,
                d::SMTP_HOSTNAME.to_owned(),
                |v| {
                    let ok = !v.is_empty()
                        && v.len() <= 253
                        && v.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b));
                    if ok {
                        Ok(v)
                    } else {
                        Err(format!("{v:?} is not a host name"))
                    }
                },
                d::SMTP_HOSTNAME.to_owned(),
            ),
            upstream_networks: r.parse(
                "smtp.upstream_networks",
                &s.upstream_networks,
                d::SMTP_UPSTREAM_NETWORKS
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect(),
                |nets| nets.iter().map(|n| parse_network(n)).collect(),
                Vec::new(),
            ),
            local_domains: r.parse(
                "smtp.local_domains",
                &s.local_domains,
                Vec::new(),
                |domains| {
                    domains
                        .into_iter()
                        .map(|dom| {
                            let dom = dom.trim().trim_end_matches('.').to_lowercase();
                            if dom.is_empty() || dom.contains(['@', ' ']) {
                                Err(format!("{dom:?} is not a domain"))
                            } else {
                                Ok(dom)
                            }
                        })
                        .collect()
                },
                Vec::new(),
            ),
            max_message_size: r.count(
                "smtp.max_message_size",
                &s.max_message_size,
                d::SMTP_MAX_MESSAGE_SIZE,
                1 << 30,
            ),
            max_command_line: r.count(
                "smtp.max_command_line",
                &s.max_command_line,
                d::SMTP_MAX_COMMAND_LINE,
                1 << 16,
            ),
            max_message_line: r.count(
                "smtp.max_message_line",
                &s.max_message_line,
                d::SMTP_MAX_MESSAGE_LINE,
                1 << 20,
            ),
            max_recipients: r.count(
                "smtp.max_recipients",
                &s.max_recipients,
                d::SMTP_MAX_RECIPIENTS,
                10_000,
            ),
            max_connections: r.count(
                "smtp.max_connections",
                &s.max_connections,
                d::SMTP_MAX_CONNECTIONS,
                100_000,
            ),
            max_connections_per_ip: r.count(
                "smtp.max_connections_per_ip",
                &s.max_connections_per_ip,
                d::SMTP_MAX_CONNECTIONS_PER_IP,
                100_000,
            ),
            command_timeout: r.secs(
                "smtp.command_timeout_secs",
                &s.command_timeout_secs,
                d::SMTP_COMMAND_TIMEOUT_SECS,
            ),
            data_timeout: r.secs(
                "smtp.data_timeout_secs",
                &s.data_timeout_secs,
                d::SMTP_DATA_TIMEOUT_SECS,
            ),
            max_session: r.secs(
                "smtp.max_session_secs",
                &s.max_session_secs,
                d::SMTP_MAX_SESSION_SECS,
            ),
            max_errors: r.count("smtp.max_errors", &s.max_errors, d::SMTP_MAX_ERRORS, 1000) as u32,
            require_tls: r.get("smtp.require_tls", &s.require_tls, d::SMTP_REQUIRE_TLS),
            reject_undeclared_8bit: r.get(
                "smtp.reject_undeclared_8bit",
                &s.reject_undeclared_8bit,
                d::SMTP_REJECT_UNDECLARED_8BIT,
            ),
        };
        if smtp.max_command_line < 512 {
            r.problems
                .push("smtp.max_command_line: RFC 5321 requires at least 512".to_owned());
        }
        if smtp.max_message_line < 1000 {
            r.problems
                .push("smtp.max_message_line: RFC 5321 requires at least 1000".to_owned());
        }
        if smtp.max_connections_per_ip > smtp.max_connections {
            r.problems.push(
                "smtp.max_connections_per_ip: must not exceed smtp.max_connections".to_owned(),
            );
        }

        let shutdown_grace = r.secs(
            "shutdown.grace_secs",
            &raw.shutdown.grace_secs,
            d::SHUTDOWN_GRACE_SECS,
        );
        let x = &raw.exemptions;
        let domains = |r: &mut Resolver, key: &str, field: &Field<Vec<String>>| -> Vec<String> {
            r.parse(
                key,
                field,
                Vec::new(),
                |list| {
                    list.into_iter()
                        .map(|d| {
                            let d = d.trim().trim_end_matches('.').to_lowercase();
                            if d.is_empty() || d.contains(['@', ' ']) {
                                Err(format!("{d:?} is not a domain"))
                            } else {
                                Ok(d)
                            }
                        })
                        .collect()
                },
                Vec::new(),
            )
        };
        let policy = store::ExemptionPolicy {
            max_days: r.count(
                "exemptions.max_days",
                &x.max_days,
                d::EXEMPTION_MAX_DAYS,
                366,
            ) as i64,
            require_dpo: r.get("exemptions.require_dpo", &x.require_dpo, false),
            code_ttl: r.count(
                "exemptions.code_ttl_hours",
                &x.code_ttl_hours,
                d::EXEMPTION_CODE_TTL_HOURS,
                24 * 14,
            ) as i64
                * 3_600_000,
            max_code_attempts: r.count(
                "exemptions.code_attempts",
                &x.code_attempts,
                d::EXEMPTION_CODE_ATTEMPTS,
                20,
            ) as i64,
            allowed_domains: domains(&mut r, "exemptions.allowed_domains", &x.allowed_domains),
            denied_domains: domains(&mut r, "exemptions.denied_domains", &x.denied_domains),
        };
        let notices = NoticesConfig {
            from: r.parse(
                "notices.from",
                &raw.notices.from,
                d::NOTICES_FROM.to_owned(),
                |v| {
                    if v.contains('@') && !v.contains([' ', '<', '>']) {
                        Ok(v)
                    } else {
                        Err(format!("{v:?} is not an address"))
                    }
                },
                d::NOTICES_FROM.to_owned(),
            ),
            language: r.parse(
                "notices.language",
                &raw.notices.language,
                d::NOTICES_LANGUAGE.to_owned(),
                |v| match v.as_str() {
                    "de" => Ok(Language::De),
                    "en" => Ok(Language::En),
                    _ => Err(format!("{v:?}: use \"de\" or \"en\"")),
                },
                Language::De,
            ),
            link_base: r.parse(
                "notices.link_base",
                &raw.notices.link_base,
                d::NOTICES_LINK_BASE.to_owned(),
                |v| {
                    if (v.starts_with("https://") || v.starts_with("http://"))
                        && !v.contains(char::is_whitespace)
                    {
                        Ok(v.trim_end_matches('/').to_owned())
                    } else {
                        Err(format!("{v:?} is not an http(s) URL"))
                    }
                },
                d::NOTICES_LINK_BASE.to_owned(),
            ),
            link_validity: Duration::from_secs(
                86_400
                    * r.count(
                        "notices.link_days",
                        &raw.notices.link_days,
                        d::NOTICES_LINK_DAYS,
                        366,
                    ) as u64,
            ),
            show_subject: r.get("notices.show_subject", &raw.notices.show_subject, false),
            paper_url: raw.notices.paper_url.0.is_some().then(|| {
                r.parse(
                    "notices.paper_url",
                    &raw.notices.paper_url,
                    String::new(),
                    |v| {
                        if v.starts_with("http") && v.contains("{reference}") {
                            Ok(v)
                        } else {
                            Err("must be an http(s) URL containing {reference}".to_owned())
                        }
                    },
                    String::new(),
                )
            }),
            paper_pattern: raw
                .notices
                .paper_pattern
                .0
                .is_some()
                .then(|| {
                    r.parse(
                        "notices.paper_pattern",
                        &raw.notices.paper_pattern,
                        String::new(),
                        |v| {
                            let re = regex::RegexBuilder::new(&v)
                                .size_limit(1 << 20)
                                .build()
                                .map_err(|e| e.to_string().replace('\n', " "))?;
                            if v.len() > 1000 || re.captures_len() < 2 {
                                return Err(
                                    "use at most 1000 bytes and one capture group for the number"
                                        .to_owned(),
                                );
                            }
                            Ok(Some(re))
                        },
                        None,
                    )
                })
                .flatten(),
            ris_hosts: Vec::new(),
            name_chars: r.count(
                "notices.name_chars",
                &raw.notices.name_chars,
                d::NOTICES_NAME_CHARS,
                200,
            ),
            subject_chars: r.count(
                "notices.subject_chars",
                &raw.notices.subject_chars,
                d::NOTICES_SUBJECT_CHARS,
                500,
            ),
            // Only stricter than the default: more digits would let identifiers through.
            max_digit_run: r.count(
                "notices.max_digit_run",
                &raw.notices.max_digit_run,
                d::NOTICES_MAX_DIGIT_RUN,
                d::NOTICES_MAX_DIGIT_RUN,
            ),
        };
        let notices = NoticesConfig {
            ris_hosts: r.parse(
                "notices.ris_hosts",
                &raw.notices.ris_hosts,
                notices
                    .paper_url
                    .as_deref()
                    .and_then(url_host)
                    .into_iter()
                    .collect(),
                |list| {
                    list.into_iter()
                        .map(|h| {
                            let host = h.trim().trim_end_matches('.').to_ascii_lowercase();
                            let ok = !host.is_empty()
                                && host.len() <= 253
                                && host.split('.').all(|l| {
                                    !l.is_empty()
                                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                                });
                            if ok {
                                Ok(host)
                            } else {
                                Err(format!("{h:?} is not a host name"))
                            }
                        })
                        .collect()
                },
                Vec::new(),
            ),
            ..notices
        };
        let exemptions = ExemptionsConfig {
            policy,
            notices_only: r.get("exemptions.notices_only", &x.notices_only, false),
            reminder_before: Duration::from_secs(
                86_400
                    * r.parse(
                        "exemptions.reminder_days",
                        &x.reminder_days,
                        3,
                        |v| {
                            if v <= 60 {
                                Ok(v)
                            } else {
                                Err(format!("must be at most 60, got {v}"))
                            }
                        },
                        3,
                    ),
            ),
            check_interval: r.secs("exemptions.check_interval_secs", &x.check_interval_secs, 60),
            notify: r.parse(
                "exemptions.notify",
                &x.notify,
                RawNotify::Word("admins".to_owned()),
                |v| match v {
                    RawNotify::Word(w) if w == "admins" => Ok(Notify::Admins),
                    RawNotify::Word(w) => Err(format!(
                        "must be \"admins\" or a list of addresses, got {w:?}"
                    )),
                    RawNotify::List(list) => {
                        let list: Vec<String> =
                            list.iter().map(|a| a.trim().to_ascii_lowercase()).collect();
                        match list.iter().find(|a| {
                            a.len() > 254
                                || a.split_once('@').is_none_or(|(l, d)| {
                                    l.is_empty() || d.is_empty() || a.contains(char::is_whitespace)
                                })
                        }) {
                            Some(bad) => Err(format!("not an address: {bad:?}")),
                            None if list.is_empty() => {
                                Err("an empty list tells nobody; use \"admins\"".to_owned())
                            }
                            None => Ok(Notify::Addresses(list)),
                        }
                    }
                },
                Notify::Admins,
            ),
        };
        let dl = &raw.delivery;
        let password = r.secret(
            "delivery.password",
            (&dl.password, &dl.password_file, &dl.password_env),
            base,
        );
        let auth = r.credentials(
            ("delivery.username", &dl.username),
            ("delivery.password", &password),
        );
        let delivery = DeliveryConfig {
            smarthost: r.host_port("delivery.smarthost", &dl.smarthost),
            tls: r.tls_mode("delivery.tls", &dl.tls),
            ca_file: dl
                .ca_file
                .0
                .is_some()
                .then(|| anchor(r.get("delivery.ca_file", &dl.ca_file, String::new()))),
            auth,
            concurrency: r.count(
                "delivery.concurrency",
                &dl.concurrency,
                d::DELIVERY_CONCURRENCY,
                256,
            ),
            retry_base: r.secs(
                "delivery.retry_base_secs",
                &dl.retry_base_secs,
                d::DELIVERY_RETRY_BASE_SECS,
            ),
            retry_max: r.secs(
                "delivery.retry_max_secs",
                &dl.retry_max_secs,
                d::DELIVERY_RETRY_MAX_SECS,
            ),
            give_up: Duration::from_secs(
                3600 * r.count(
                    "delivery.give_up_hours",
                    &dl.give_up_hours,
                    d::DELIVERY_GIVE_UP_HOURS,
                    24 * 30,
                ) as u64,
            ),
            lease: r.secs(
                "delivery.lease_secs",
                &dl.lease_secs,
                d::DELIVERY_LEASE_SECS,
            ),
            timeout: r.secs(
                "delivery.timeout_secs",
                &dl.timeout_secs,
                d::DELIVERY_TIMEOUT_SECS,
            ),
            data_end_timeout: r.secs(
                "delivery.data_end_timeout_secs",
                &dl.data_end_timeout_secs,
                d::DELIVERY_DATA_END_TIMEOUT_SECS,
            ),
            mx_port: u16::try_from(r.count(
                "delivery.mx_port",
                &dl.mx_port,
                d::DELIVERY_MX_PORT,
                u64::from(u16::MAX),
            ))
            .unwrap_or(25),
            resolvers: r.parse(
                "delivery.resolvers",
                &dl.resolvers,
                Vec::new(),
                |list| list.iter().map(|v| parse_dns_server(v)).collect(),
                Vec::new(),
            ),
            mx_private_addresses: r.get(
                "delivery.mx_private_addresses",
                &dl.mx_private_addresses,
                false,
            ),
        };
        // A delivery renews its lease while it runs and once more right before the message's
        // end, which must then still be held for one whole reply wait; a shorter lease would
        // let another node take the job while this one is still delivering it.
        if delivery.lease < delivery.timeout * 2 {
            r.problems.push(format!(
                "delivery.lease_secs: must be at least twice delivery.timeout_secs ({} s), got {} s: \
                 a delivery must hold its job while it waits for the next hop's reply",
                delivery.timeout.as_secs(),
                delivery.lease.as_secs()
            ));
        }
        let submission = submission(&mut r, &raw.submission, base);
        let web = WebConfig {
            listen: r.address("web.listen", &raw.web.listen, d::WEB_LISTEN),
            session: Duration::from_secs(
                3600 * r.count(
                    "web.session_hours",
                    &raw.web.session_hours,
                    d::WEB_SESSION_HOURS,
                    24 * 7,
                ) as u64,
            ),
            login_failure_delay: Duration::from_millis(r.parse(
                "web.login_failure_delay_ms",
                &raw.web.login_failure_delay_ms,
                d::WEB_LOGIN_FAILURE_DELAY_MS,
                |v| {
                    if v <= 60_000 {
                        Ok(v)
                    } else {
                        Err(format!("must be at most 60000, got {v}"))
                    }
                },
                d::WEB_LOGIN_FAILURE_DELAY_MS,
            )),
            login_history: u32::try_from(r.count(
                "web.login_history",
                &raw.web.login_history,
                d::WEB_LOGIN_HISTORY,
                100_000,
            ))
            .unwrap_or(200),
            language: r.parse(
                "web.language",
                &raw.web.language,
                "de".to_owned(),
                |v| match v.as_str() {
                    "de" => Ok(Language::De),
                    "en" => Ok(Language::En),
                    _ => Err(format!("{v:?}: use \"de\" or \"en\"")),
                },
                Language::De,
            ),
            downloads: r.parse(
                "web.downloads",
                &raw.web.downloads,
                "not_classified".to_owned(),
                |v| v.parse(),
                webui::Downloads::NotClassified,
            ),
            limits: webui::Limits {
                max_connections: r.count(
                    "web.max_connections",
                    &raw.web.max_connections,
                    d::WEB_MAX_CONNECTIONS,
                    65_536,
                ),
                max_connections_per_ip: r.count(
                    "web.max_connections_per_ip",
                    &raw.web.max_connections_per_ip,
                    d::WEB_MAX_CONNECTIONS_PER_IP,
                    65_536,
                ),
                request_timeout: Duration::from_secs(r.count(
                    "web.request_timeout_secs",
                    &raw.web.request_timeout_secs,
                    d::WEB_REQUEST_TIMEOUT_SECS,
                    600,
                ) as u64),
            },
        };
        let im = &raw.imap;
        let imap = ImapConfig {
            listen: r.address("imap.listen", &im.listen, d::IMAP_LISTEN),
            listen_tls: r.address("imap.listen_tls", &im.listen_tls, d::IMAP_LISTEN_TLS),
            account_password: r.get("imap.account_password", &im.account_password, false),
            max_connections: r.count(
                "imap.max_connections",
                &im.max_connections,
                d::IMAP_MAX_CONNECTIONS,
                1_000_000,
            ),
            max_connections_per_ip: r.count(
                "imap.max_connections_per_ip",
                &im.max_connections_per_ip,
                d::IMAP_MAX_CONNECTIONS_PER_IP,
                1_000_000,
            ),
            max_message_bytes: u32::try_from(r.count(
                "imap.max_message_bytes",
                &im.max_message_bytes,
                d::IMAP_MAX_MESSAGE_BYTES,
                1024 * 1024 * 1024,
            ))
            .unwrap_or(u32::MAX),
            timeout: r.secs("imap.timeout_secs", &im.timeout_secs, d::IMAP_TIMEOUT_SECS),
            failure_delay: Duration::from_millis(r.count(
                "imap.failure_delay_ms",
                &im.failure_delay_ms,
                d::IMAP_FAILURE_DELAY_MS,
                60_000,
            ) as u64),
            ban_after: u32::try_from(r.count(
                "imap.ban_after",
                &im.ban_after,
                d::IMAP_BAN_AFTER,
                1000,
            ))
            .unwrap_or(10),
            ban: r.secs("imap.ban_secs", &im.ban_secs, d::IMAP_BAN_SECS),
            max_login_literal: u32::try_from(r.count(
                "imap.max_login_literal",
                &im.max_login_literal,
                d::IMAP_MAX_LOGIN_LITERAL,
                1024 * 1024,
            ))
            .unwrap_or(8192),
            login_timeout: r.secs(
                "imap.login_timeout_secs",
                &im.login_timeout_secs,
                d::IMAP_LOGIN_TIMEOUT_SECS,
            ),
            max_parallel_hashes: r.count(
                "imap.max_parallel_hashes",
                &im.max_parallel_hashes,
                d::IMAP_MAX_PARALLEL_HASHES,
                256,
            ),
            hash_queue: Duration::from_millis(r.count(
                "imap.hash_queue_ms",
                &im.hash_queue_ms,
                d::IMAP_HASH_QUEUE_MS,
                600_000,
            ) as u64),
            heavy_workers: r.count(
                "imap.heavy_workers",
                &im.heavy_workers,
                d::IMAP_HEAVY_WORKERS,
                256,
            ),
            max_command: r.secs(
                "imap.max_command_secs",
                &im.max_command_secs,
                d::IMAP_MAX_COMMAND_SECS,
            ),
        };
        let dkim = DkimConfig {
            domain: r.parse(
                "dkim.domain",
                &raw.dkim.domain,
                smtp.hostname.clone(),
                |v| {
                    if !v.is_empty()
                        && v.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
                    {
                        Ok(v.to_ascii_lowercase())
                    } else {
                        Err(format!("{v:?} is not a domain"))
                    }
                },
                smtp.hostname.clone(),
            ),
            selector: r.parse(
                "dkim.selector",
                &raw.dkim.selector,
                "ratspost".to_owned(),
                |v| {
                    if !v.is_empty()
                        && v.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                    {
                        Ok(v)
                    } else {
                        Err(format!("{v:?} is not a DKIM selector"))
                    }
                },
                "ratspost".to_owned(),
            ),
            verify_timeout: r.secs(
                "dkim.verify_timeout_secs",
                &raw.dkim.verify_timeout_secs,
                d::DKIM_VERIFY_TIMEOUT_SECS,
            ),
        };
        let c = &raw.classifier;
        let classifier = ClassifierConfig {
            rules: c
                .rules
                .0
                .is_some()
                .then(|| anchor(r.get("classifier.rules", &c.rules, String::new()))),
            timeout: r.secs(
                "classifier.timeout_secs",
                &c.timeout_secs,
                d::CLASSIFIER_TIMEOUT_SECS,
            ),
            workers: r.count("classifier.workers", &c.workers, d::CLASSIFIER_WORKERS, 64),
        };
        let o = &raw.ocr;
        let ocr = OcrConfig {
            enabled: r.get("ocr.enabled", &o.enabled, d::OCR_ENABLED),
            tesseract: r.get("ocr.tesseract", &o.tesseract, d::OCR_TESSERACT.to_owned()),
            pdftoppm: r.get("ocr.pdftoppm", &o.pdftoppm, d::OCR_PDFTOPPM.to_owned()),
            languages: r.parse(
                "ocr.languages",
                &o.languages,
                d::OCR_LANGUAGES.to_owned(),
                |v| {
                    let codes = v.split('+');
                    if codes.clone().all(|c| {
                        !c.is_empty() && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
                    }) {
                        Ok(v)
                    } else {
                        Err(format!(
                            "{v:?} is not Tesseract language codes like \"deu+eng\""
                        ))
                    }
                },
                d::OCR_LANGUAGES.to_owned(),
            ),
            dpi: u32::try_from(r.count("ocr.dpi", &o.dpi, d::OCR_DPI, 1200)).unwrap_or(300),
            timeout: r.secs("ocr.timeout_secs", &o.timeout_secs, d::OCR_TIMEOUT_SECS),
            memory_mb: r.count("ocr.memory_mb", &o.memory_mb, d::OCR_MEMORY_MB, 1 << 20) as u64,
            max_pages: r.count("ocr.max_pages", &o.max_pages, d::OCR_MAX_PAGES, 10_000),
            max_megapixels: r.count(
                "ocr.max_megapixels",
                &o.max_megapixels,
                d::OCR_MAX_MEGAPIXELS,
                10_000,
            ) as u64,
        };

        let a = &raw.audit;
        let audit = AuditConfig {
            checkpoint_file: anchor(
                r.get(
                    "audit.checkpoint_file",
                    &a.checkpoint_file,
                    data_dir
                        .join(d::AUDIT_CHECKPOINT_FILE)
                        .display()
                        .to_string(),
                ),
            ),
            checkpoint_key: anchor(r.get(
                "audit.checkpoint_key",
                &a.checkpoint_key,
                data_dir.join(d::AUDIT_CHECKPOINT_KEY).display().to_string(),
            )),
            checkpoint_interval: r.secs(
                "audit.checkpoint_interval_secs",
                &a.checkpoint_interval_secs,
                d::AUDIT_CHECKPOINT_INTERVAL_SECS,
            ),
            checkpoint_to: a.checkpoint_to.0.is_some().then(|| {
                r.parse(
                    "audit.checkpoint_to",
                    &a.checkpoint_to,
                    String::new(),
                    |v| {
                        if store::is_mail_address(&v) {
                            Ok(v)
                        } else {
                            Err(format!("{v:?} is not an address"))
                        }
                    },
                    String::new(),
                )
            }),
            checkpoint_mail_interval: Duration::from_secs(
                3600 * r.count(
                    "audit.checkpoint_mail_hours",
                    &a.checkpoint_mail_hours,
                    d::AUDIT_CHECKPOINT_MAIL_HOURS,
                    24 * 366,
                ) as u64,
            ),
        };
        let days = |r: &mut Resolver, key: &str, field: &Field<u64>, default: u64| {
            r.parse(
                key,
                field,
                default,
                |v| match u32::try_from(v) {
                    Ok(0) => Ok(None),
                    Ok(v) if v <= 36_500 => Ok(Some(v)),
                    _ => Err(format!("must be between 0 (for ever) and 36500, got {v}")),
                },
                None,
            )
        };
        let t = &raw.retention;
        let retention = RetentionConfig {
            message_days: days(
                &mut r,
                "retention.message_days",
                &t.message_days,
                d::RETENTION_MESSAGE_DAYS,
            ),
            audit_days: days(
                &mut r,
                "retention.audit_days",
                &t.audit_days,
                d::RETENTION_AUDIT_DAYS,
            ),
            check_interval: r.secs(
                "retention.check_interval_secs",
                &t.check_interval_secs,
                d::RETENTION_CHECK_INTERVAL_SECS,
            ),
        };
        // Entries older than the newest checkpoint must stay until a checkpoint covers what
        // follows them; a day is the shortest retention, so the interval must be shorter.
        if let Some(days) = retention.audit_days
            && Duration::from_secs(u64::from(days) * 86_400) < audit.checkpoint_interval
        {
            r.problems.push(format!(
                "retention.audit_days: {days} days is shorter than audit.checkpoint_interval_secs ({} s)",
                audit.checkpoint_interval.as_secs()
            ));
        }

        if r.problems.is_empty() {
            Ok(Self {
                source: None,
                data_dir,
                time_zone,
                database,
                tls,
                smtp,
                shutdown_grace,
                classifier,
                ocr,
                exemptions,
                notices,
                delivery,
                dkim,
                web,
                imap,
                submission,
                audit,
                retention,
                inline_secrets: [
                    (
                        "database.url",
                        raw.database
                            .url
                            .0
                            .as_ref()
                            .is_some_and(|u| u.as_ref().is_ok_and(|u| store::redact_url(u) != *u)),
                    ),
                    ("delivery.password", raw.delivery.password.0.is_some()),
                    (
                        "submission.relay_password",
                        raw.submission.relay_password.0.is_some(),
                    ),
                ]
                .into_iter()
                .filter_map(|(key, inline)| inline.then_some(key))
                .collect(),
            })
        } else {
            Err(r.problems)
        }
    }
}

/// The host of an `http(s)://` URL, lower case, without port or user info.
fn url_host(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?.split(':').next()?;
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

fn parse_network(net: &str) -> Result<IpNet, String> {
    net.parse::<IpNet>()
        .or_else(|_| net.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{net:?} is not an IP network (e.g. 10.1.2.0/24)"))
}

/// A DNS server: `IP` (port 53) or `IP:PORT` (`[IPv6]:PORT`).
fn parse_dns_server(v: &str) -> Result<SocketAddr, String> {
    v.parse::<SocketAddr>()
        .or_else(|_| v.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| format!("{v:?} is not an IP address or IP:PORT"))
}

/// Syntax errors in line order, one per line (the parser can report two for one slip).
fn syntax_problems(text: &str, errors: &[toml::de::Error]) -> Vec<String> {
    let mut located: Vec<(usize, String)> = errors
        .iter()
        .map(|e| (line_of(text, e), toml_error(text, e)))
        .collect();
    located.sort_by_key(|(line, _)| *line);
    located.dedup_by_key(|(line, _)| *line);
    located.into_iter().map(|(_, problem)| problem).collect()
}

fn line_of(text: &str, err: &toml::de::Error) -> usize {
    err.span().map_or(0, |span| {
        text[..span.start.min(text.len())].matches('\n').count() + 1
    })
}

/// A TOML error with its line number.
fn toml_error(text: &str, err: &toml::de::Error) -> String {
    match line_of(text, err) {
        0 => err.message().to_owned(),
        line => format!("line {line}: {}", err.message()),
    }
}

/// The commented configuration file `ratspost init` writes: every key with its default.
#[must_use]
pub fn default_file() -> String {
    use defaults as d;
    let networks = d::SMTP_UPSTREAM_NETWORKS
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"# ratspost configuration. Every key is shown with its built-in default.
# Relative paths are relative to the directory of this file.

# Where the SQLite database, the generated TLS certificate and keys are kept.
data_dir = "{data_dir}"
# Dates in notices, mails, the web UI and the CLI's text output are local time of this
# IANA time zone ("30. Dezember 2026, 20:28 Uhr"); --json output and mail headers stay UTC.
time_zone = "{time_zone}"

[database]
# "sqlite://PATH" (embedded default, a file under data_dir) or
# "postgres://USER:PASSWORD@HOST:5432/DB" for larger or multi-node deployments.
# url = "sqlite://{data_dir}/ratspost.db"
# Connections in the pool (for SQLite: readers; writes always use one connection).
max_connections = {db_max}
# Seconds to wait for a free connection before an operation fails.
acquire_timeout_secs = {db_acquire}

[tls]
# PEM certificate chain and private key. When both are unset, a self-signed certificate
# for localhost (SAN DNS:localhost, IP:127.0.0.1, IP:::1) is generated under data_dir/tls.
# cert = "/etc/ratspost/fullchain.pem"
# key = "/etc/ratspost/privkey.pem"

[smtp]
# Where the city's mail server hands over mail for enrolled staff. STARTTLS is offered.
listen = "{smtp_listen}"
# Our name in the greeting and the EHLO reply.
hostname = "{smtp_hostname}"
# Only these networks may connect: the upstream mail servers. Anything else gets 554.
upstream_networks = [{networks}]
# Domains that are ours even before an address there is enrolled: unknown users in them
# get "550 5.1.1"; every other domain gets "550 5.7.1 relaying denied".
local_domains = []
# Largest message in bytes; SIZE is advertised, larger messages get 552 after DATA.
max_message_size = {max_size}
# Longest command line in bytes, including CRLF (RFC 5321 minimum: 512).
max_command_line = {max_cmd}
# Longest message line in bytes, including CRLF (RFC 5321 says 1000).
max_message_line = {max_line}
# Recipients per message; more get "452 4.5.3".
max_recipients = {max_rcpt}
# Concurrent connections in total, and from one IP address; more get "421".
max_connections = {max_conn}
max_connections_per_ip = {max_conn_ip}
# Seconds to wait for a command, and for each read of message data.
command_timeout_secs = {cmd_timeout}
data_timeout_secs = {data_timeout}
# Seconds a session may last in all.
max_session_secs = {max_session}
# Protocol errors before the session is closed with 421.
max_errors = {max_errors}
# Refuse MAIL FROM until the client has issued STARTTLS.
require_tls = {require_tls}
# Refuse 8-bit message data unless MAIL FROM declared BODY=8BITMIME (RFC 6152). Off by
# default, as in Postfix (strict_8bitmime = no), Exim and Exchange: many senders (Python's
# smtplib, scripts, old appliances) send German text without declaring it, and a refusal
# would bounce work mail back to its sender. The bytes are stored as received either way.
reject_undeclared_8bit = {reject_8bit}

[shutdown]
# Seconds in-flight sessions get to finish after SIGTERM/SIGINT.
grace_secs = {grace}

[classifier]
# Admin rules (custom detectors, keyword lists, thresholds, limits); see the README.
# Without it the built-in rules apply. The file is checked at start; errors stop the start.
# rules = "/etc/ratspost/rules.toml"
# Seconds one message may take; a message that takes longer counts as uninspectable.
timeout_secs = {cls_timeout}
# Messages classified in parallel.
workers = {cls_workers}

[ocr]
# Scans are read with Tesseract: image attachments, and the pages of PDFs that hold no text
# (pdftoppm rasterises them). Debian: apt install tesseract-ocr tesseract-ocr-deu
# poppler-utils. When OCR is off or not installed, a scanned PDF counts as uninspectable and
# an image as the rules' inspect.images_sensitive says.
enabled = {ocr_enabled}
# Programs: a path, or a name looked up on PATH.
tesseract = "{ocr_tesseract}"
pdftoppm = "{ocr_pdftoppm}"
# Tesseract languages, joined by "+" (installed as tesseract-ocr-LANG).
languages = "{ocr_languages}"
# Resolution PDF pages are rasterised at.
dpi = {ocr_dpi}
# Limits per image or PDF: seconds in all, memory (MiB) of each program run, pages without
# text read, and the largest image (megapixels, as its header declares).
# Reaching one makes a scanned PDF uninspectable.
timeout_secs = {ocr_timeout}
memory_mb = {ocr_memory}
max_pages = {ocr_pages}
max_megapixels = {ocr_pixels}

[exemptions]
# Longest forwarding exemption in days.
max_days = {ex_days}
# A data-protection officer (role dpo) must approve as well as an admin.
require_dpo = false
# The confirmation code sent to the private address: hours valid, and wrong tries allowed.
code_ttl_hours = {ex_ttl}
code_attempts = {ex_attempts}
# When not empty, the only target domains allowed; and domains never allowed.
allowed_domains = []
denied_domains = []
# Forward every message as a notice, clean ones too.
notices_only = false
# Days before the end of an exemption to remind the user at the private address (0: never).
reminder_days = 3
# Seconds between checks for ended exemptions and due reminders.
check_interval_secs = 60
# Who is told by mail that a request waits for approval: "admins" (every admin, and the
# data-protection officers when require_dpo) or a list of addresses.
notify = "admins"

[notices]
# Sender of confirmation mails and notices, and their language ("de" or "en").
from = "{no_from}"
language = "{no_lang}"
# Notices link to {{link_base}}/{{token}}: the web UI's link viewer behind the RIS secure area.
link_base = "{no_link}"
# Days a notice link stays valid.
link_days = {no_days}
# Show the original subject in notices (never for VS-NfD or higher).
show_subject = false
# Search URL of the RIS for paper numbers found in a message; {{reference}} is replaced.
# paper_url = "https://ris.example.de/bi/suche.asp?q={{reference}}"
# This municipality's paper numbers, as a regex whose first group is the number; the built-in
# pattern takes numbers after Vorlage, Drucksache, DS, Antrag, Anfrage ("Vorlage 25-26613").
# paper_pattern = '(?:Vorlage|BV)\s*(BV/\d{{4}}/\d{{4}})'
# Host names of the RIS: notices repeat links to its pages (ALLRIS, SessionNet, OParl) only
# for these hosts, rebuilt from their id. Default: the host of paper_url; without either, no
# links at all.
# ris_hosts = ["ris.example.de"]
# Notices show a sender's display name and the subject only when they carry nothing (the
# classifier finds nothing, no more than max_digit_run digits in a row across separators),
# cut to these lengths. max_digit_run may only be lowered (at most 8).
name_chars = {no_name}
subject_chars = {no_subj}
max_digit_run = {no_digits}

[delivery]
# The smarthost that takes ratspost's outgoing mail (confirmations, forwards, notices).
# Without it ratspost delivers directly to the MX hosts of each recipient's domain.
# smarthost = "mail.stadt.example:587"
# Direct MX delivery: the receivers' port, the DNS servers to ask (default: the system's
# /etc/resolv.conf), and whether an MX at a loopback, private or link-local address may be
# used (off: a private domain must not steer mail into the city's own network).
mx_port = {dl_mx_port}
# resolvers = ["10.0.0.53", "10.0.0.54:53"]
mx_private_addresses = false
# "required": STARTTLS with a verified certificate or no delivery (the job waits);
# "opportunistic": STARTTLS when offered; "none": plaintext.
tls = "required"
# Extra CA certificates (PEM) to trust, e.g. the city's own CA.
# ca_file = "/etc/ratspost/city-ca.pem"
# AUTH PLAIN after STARTTLS, when the smarthost wants it. Any secret (password, relay_password,
# database.url) may instead come from a file or the environment: password_file = "/etc/ratspost/
# smarthost.pw" or password_env = "RATSPOST_SMARTHOST_PASSWORD" (one of the three).
# username = "ratspost"
# password = "…"
# Deliveries in parallel.
concurrency = {dl_conc}
# Retries after temporary failures: first after retry_base_secs, doubling up to
# retry_max_secs; after give_up_hours the job fails.
retry_base_secs = {dl_base}
retry_max_secs = {dl_max}
give_up_hours = {dl_give}
# A node holds a job this long; when a node dies, another takes its jobs after that.
lease_secs = {dl_lease}
# Seconds to wait for a connection, a reply or each chunk of the message to be sent.
timeout_secs = {dl_timeout}
# Seconds to wait for the reply to the message's end (RFC 5321 4.5.3.2.6: ten minutes; the
# next hop may scan the message first). A delivery keeps its job's lease while it waits.
data_end_timeout_secs = {dl_data_end}

[dkim]
# Mail ratspost writes itself (notices, confirmation codes, reminders) is DKIM-signed with
# ratspost's own Ed25519 key (data_dir/dkim.key, made at setup); intact forwards are
# ARC-sealed with the same key instead, never DKIM-signed (RFC 8617). Publish the record
# `ratspost dkim record` prints: it serves both.
# domain = "<smtp.hostname>"
selector = "ratspost"
# Seconds the DKIM and ARC checks of a message to be forwarded may take (DNS included).
verify_timeout_secs = {dkim_verify}

[web]
# The web UI over HTTPS (same certificate as SMTP): login and the notice-link viewer at
# /m/TOKEN. Make notices.link_base point here (or at a proxy in the RIS secure area).
listen = "{web_listen}"
# How long a login lasts, and the pause after a failed one (doubling with each failure;
# failures count together with IMAP's, and [imap] ban_after/ban_secs ban the address).
session_hours = {web_hours}
login_failure_delay_ms = {web_delay}
# Rows of login history (web and IMAP) kept per user.
login_history = {web_login_history}
# Open connections in total and per client address; seconds a request may take to arrive
# (headers and body) and a kept-alive connection may stay idle.
max_connections = {web_max_connections}
max_connections_per_ip = {web_max_connections_per_ip}
request_timeout_secs = {web_request_timeout}
# Language of the pages: "de" (default) or "en".
language = "de"
# What the viewer offers for download (the original .eml and the attachments): "all",
# "not_classified" (default: nothing of messages marked VS-NfD or higher) or "none" (view
# only). Every download, and every refused one, is in the audit trail.
downloads = "not_classified"

[imap]
# Staff read their mail with their own devices, with one app password per device
# (`ratspost app-password create LOGIN --label iPhone --by ADMIN`). Both listeners use the [tls]
# certificate; before STARTTLS no login is possible (LOGINDISABLED).
listen = "{imap_listen}"
listen_tls = "{imap_listen_tls}"
# Accept the account password (the web UI's) for IMAP too. Off: app passwords only.
account_password = false
max_connections = {imap_max}
max_connections_per_ip = {imap_per_ip}
# Largest message a client may APPEND (e.g. into Sent).
max_message_bytes = {imap_msg}
# An idle session is logged out after this long.
timeout_secs = {imap_timeout}
# Brute-force protection: each failed login waits failure_delay_ms, doubling per failure
# (per address and per account); an address with ban_after failures within 15 minutes is
# refused for ban_secs.
failure_delay_ms = {imap_delay}
ban_after = {imap_ban_after}
ban_secs = {imap_ban_secs}
# Before login a client may send literals of at most max_login_literal bytes, and must have
# logged in within login_timeout_secs of connecting (input does not extend it).
max_login_literal = {imap_login_literal}
login_timeout_secs = {imap_login_timeout}
# Password hashing (argon2id, 19 MiB each) for at most max_parallel_hashes logins at once;
# a login waiting longer than hash_queue_ms for its turn is refused as temporary.
max_parallel_hashes = {imap_hashes}
hash_queue_ms = {imap_hash_queue}
# SEARCH over message bodies and MIME parsing for FETCH run on heavy_workers threads beside
# the async ones, and stop after max_command_secs (NO [LIMIT]).
heavy_workers = {imap_heavy}
max_command_secs = {imap_max_command}

[submission]
# Staff send from their devices (RFC 6409): STARTTLS on `listen` (587 in production),
# implicit TLS on `listen_tls` (465), AUTH PLAIN/LOGIN only after TLS, with an app password
# (the account password is never accepted here; failures count with IMAP's). The envelope
# sender and every From:/Sender: address must be the user's own. Accepted mail is committed
# before 250 and relayed through ratspost's queue to the city's mail server, never to MX
# hosts: the city's server keeps its signing, archiving and outbound policies. Without
# `relay` submission is off and neither port is opened. Devices save their own copy in
# Sent (IMAP APPEND).
listen = "{sub_listen}"
listen_tls = "{sub_listen_tls}"
# relay = "mail.stadt.example:587"
# TLS towards the relay: "required" (default; its certificate is checked against
# [delivery] ca_file and the public roots), "opportunistic" or "none".
relay_tls = "required"
# relay_username = "ratspost"
# relay_password = "…"
# Limits: message size in bytes, recipients per message, messages per user within an hour.
max_message_size = {sub_size}
max_recipients = {sub_rcpt}
max_messages_per_hour = {sub_hour}
# Connections per listener, in all and per client address; a client must have logged in
# (AUTH) within login_timeout_secs of connecting. Command and data timeouts, line lengths
# and max_errors are [smtp]'s.
max_connections = {sub_conn}
max_connections_per_ip = {sub_conn_ip}
login_timeout_secs = {sub_login}
# A message the classifier flags: "relay" (default: the city's server decides) or "hold"
# (kept in the queue until an admin releases it: `ratspost queue release ID`).
sensitive = "relay"

[audit]
# Signed checkpoints anchor the audit chain outside the database: an administrator who
# rewrites the log with fresh hashes is found by `ratspost audit verify` at the first
# checkpoint it no longer matches. Each checkpoint is one line, appended to this file
# (keep a copy on another machine), written to the log (journald) and optionally mailed.
# Default: in data_dir.
# checkpoint_file = "{data_dir}/{cp_file}"
# Ed25519 key that signs them (made at first start, mode 0600). It may be a file the
# data-protection officer provides; its public key is part of every checkpoint line.
# Default: in data_dir.
# checkpoint_key = "{data_dir}/{cp_key}"
# Seconds between checkpoints (written only when the log grew, and always at shutdown).
checkpoint_interval_secs = {cp_interval}
# The data-protection officer's address: checkpoints are mailed there, at most every
# checkpoint_mail_hours. Unset: no mail.
# checkpoint_to = "datenschutz@stadt.example"
checkpoint_mail_hours = {cp_mail}

[retention]
# Days an original message is kept (storage limitation, Art. 5(1)(e) GDPR). Its bytes are
# purged only after its notice links have expired and no forward of it is pending; its
# metadata, verdict and audit entries stay. 0: kept for ever.
message_days = {rt_message}
# Days audit entries are kept; 0: for ever. The cut is itself an audit entry and the
# rest still verifies. Must not be shorter than audit.checkpoint_interval_secs.
audit_days = {rt_audit}
# Seconds between retention runs.
check_interval_secs = {rt_interval}
"#,
        cp_file = d::AUDIT_CHECKPOINT_FILE,
        cp_key = d::AUDIT_CHECKPOINT_KEY,
        cp_interval = d::AUDIT_CHECKPOINT_INTERVAL_SECS,
        cp_mail = d::AUDIT_CHECKPOINT_MAIL_HOURS,
        rt_message = d::RETENTION_MESSAGE_DAYS,
        rt_audit = d::RETENTION_AUDIT_DAYS,
        rt_interval = d::RETENTION_CHECK_INTERVAL_SECS,
        data_dir = d::DATA_DIR,
        time_zone = d::TIME_ZONE,
        db_max = d::DB_MAX_CONNECTIONS,
        db_acquire = d::DB_ACQUIRE_TIMEOUT_SECS,
        smtp_listen = d::SMTP_LISTEN,
        smtp_hostname = d::SMTP_HOSTNAME,
        max_size = d::SMTP_MAX_MESSAGE_SIZE,
        max_cmd = d::SMTP_MAX_COMMAND_LINE,
        max_line = d::SMTP_MAX_MESSAGE_LINE,
        max_rcpt = d::SMTP_MAX_RECIPIENTS,
        max_conn = d::SMTP_MAX_CONNECTIONS,
        max_conn_ip = d::SMTP_MAX_CONNECTIONS_PER_IP,
        cmd_timeout = d::SMTP_COMMAND_TIMEOUT_SECS,
        data_timeout = d::SMTP_DATA_TIMEOUT_SECS,
        max_session = d::SMTP_MAX_SESSION_SECS,
        max_errors = d::SMTP_MAX_ERRORS,
        require_tls = d::SMTP_REQUIRE_TLS,
        reject_8bit = d::SMTP_REJECT_UNDECLARED_8BIT,
        grace = d::SHUTDOWN_GRACE_SECS,
        cls_timeout = d::CLASSIFIER_TIMEOUT_SECS,
        cls_workers = d::CLASSIFIER_WORKERS,
        ocr_enabled = d::OCR_ENABLED,
        ocr_tesseract = d::OCR_TESSERACT,
        ocr_pdftoppm = d::OCR_PDFTOPPM,
        ocr_languages = d::OCR_LANGUAGES,
        ocr_dpi = d::OCR_DPI,
        ocr_timeout = d::OCR_TIMEOUT_SECS,
        ocr_memory = d::OCR_MEMORY_MB,
        ocr_pages = d::OCR_MAX_PAGES,
        ocr_pixels = d::OCR_MAX_MEGAPIXELS,
        ex_days = d::EXEMPTION_MAX_DAYS,
        ex_ttl = d::EXEMPTION_CODE_TTL_HOURS,
        ex_attempts = d::EXEMPTION_CODE_ATTEMPTS,
        no_from = d::NOTICES_FROM,
        no_lang = d::NOTICES_LANGUAGE,
        no_link = d::NOTICES_LINK_BASE,
        no_days = d::NOTICES_LINK_DAYS,
        no_name = d::NOTICES_NAME_CHARS,
        no_subj = d::NOTICES_SUBJECT_CHARS,
        no_digits = d::NOTICES_MAX_DIGIT_RUN,
        dl_conc = d::DELIVERY_CONCURRENCY,
        dl_base = d::DELIVERY_RETRY_BASE_SECS,
        dl_max = d::DELIVERY_RETRY_MAX_SECS,
        dl_give = d::DELIVERY_GIVE_UP_HOURS,
        dl_lease = d::DELIVERY_LEASE_SECS,
        dl_timeout = d::DELIVERY_TIMEOUT_SECS,
        dl_data_end = d::DELIVERY_DATA_END_TIMEOUT_SECS,
        dkim_verify = d::DKIM_VERIFY_TIMEOUT_SECS,
        dl_mx_port = d::DELIVERY_MX_PORT,
        web_listen = d::WEB_LISTEN,
        web_hours = d::WEB_SESSION_HOURS,
        web_max_connections = d::WEB_MAX_CONNECTIONS,
        web_max_connections_per_ip = d::WEB_MAX_CONNECTIONS_PER_IP,
        web_request_timeout = d::WEB_REQUEST_TIMEOUT_SECS,
        web_delay = d::WEB_LOGIN_FAILURE_DELAY_MS,
        web_login_history = d::WEB_LOGIN_HISTORY,
        imap_listen = d::IMAP_LISTEN,
        imap_listen_tls = d::IMAP_LISTEN_TLS,
        imap_max = d::IMAP_MAX_CONNECTIONS,
        imap_per_ip = d::IMAP_MAX_CONNECTIONS_PER_IP,
        imap_msg = d::IMAP_MAX_MESSAGE_BYTES,
        imap_timeout = d::IMAP_TIMEOUT_SECS,
        imap_delay = d::IMAP_FAILURE_DELAY_MS,
        imap_ban_after = d::IMAP_BAN_AFTER,
        imap_ban_secs = d::IMAP_BAN_SECS,
        imap_login_literal = d::IMAP_MAX_LOGIN_LITERAL,
        imap_login_timeout = d::IMAP_LOGIN_TIMEOUT_SECS,
        imap_hashes = d::IMAP_MAX_PARALLEL_HASHES,
        imap_hash_queue = d::IMAP_HASH_QUEUE_MS,
        sub_listen = d::SUBMISSION_LISTEN,
        sub_listen_tls = d::SUBMISSION_LISTEN_TLS,
        sub_size = d::SUBMISSION_MAX_MESSAGE_SIZE,
        sub_rcpt = d::SUBMISSION_MAX_RECIPIENTS,
        sub_hour = d::SUBMISSION_MAX_MESSAGES_PER_HOUR,
        sub_conn = d::SUBMISSION_MAX_CONNECTIONS,
        sub_conn_ip = d::SUBMISSION_MAX_CONNECTIONS_PER_IP,
        sub_login = d::SUBMISSION_LOGIN_TIMEOUT_SECS,
        imap_heavy = d::IMAP_HEAVY_WORKERS,
        imap_max_command = d::IMAP_MAX_COMMAND_SECS,
    )
}

#[cfg(test)]
mod tests {

    #[test]
    fn secrets_come_from_the_configuration_a_file_or_the_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("relay.pw"), "Relais-Geheimnis\n").expect("write");
        let config = |extra: &str| {
            Config::parse(
                &format!(
                    "[submission]\nrelay = \"mail.stadt.example:587\"\nrelay_username = \"ratspost\"\n{extra}"
                ),
                Some(&dir.path().join("ratspost.toml")),
            )
        };
        let from_file = config("relay_password_file = \"relay.pw\"\n").expect("file");
        let (_, secret) = from_file.submission.relay_auth.expect("auth");
        assert_eq!(
            secret.expose(),
            "Relais-Geheimnis",
            "read without its line end"
        );
        assert!(from_file.inline_secrets.is_empty());
        let inline = config("relay_password = \"x\"\n").expect("inline");
        assert_eq!(inline.inline_secrets, ["submission.relay_password"]);
        let problems =
            |r: Result<Config, ConfigErrors>| r.expect_err("refused").problems.join("\n");
        let both = problems(config(
            "relay_password = \"x\"\nrelay_password_file = \"relay.pw\"\n",
        ));
        assert!(both.contains("set only one of"), "{both}");
        let missing = problems(config("relay_password_file = \"nowhere.pw\"\n"));
        assert!(
            missing.contains("relay_password_file: cannot read"),
            "{missing}"
        );
        let unset = problems(config(
            "relay_password_env = \"RATSPOST_TEST_SURELY_UNSET\"\n",
        ));
        assert!(
            unset.contains("RATSPOST_TEST_SURELY_UNSET is not set"),
            "{unset}"
        );
        // PATH is set in every test environment.
        let from_env = config("relay_password_env = \"PATH\"\n").expect("env");
        assert!(
            !from_env
                .submission
                .relay_auth
                .expect("auth")
                .1
                .expose()
                .is_empty()
        );
    }
    use super::*;

    #[test]
    fn builtin_defaults_resolve() {
        let c = Config::builtin();
        assert_eq!(c.smtp.listen, "127.0.0.1:2525".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.database.url, "sqlite://./data/ratspost.db");
        assert!(c.tls.generated);
        assert_eq!(c.smtp.max_message_size, 25 * 1024 * 1024);
        assert!(c.smtp.is_upstream("127.0.0.1".parse().unwrap()));
        assert!(c.smtp.is_upstream("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!c.smtp.is_upstream("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn the_written_default_file_equals_the_builtin_defaults() {
        let written = Config::parse(&default_file(), None).expect("default file parses");
        let builtin = Config::builtin();
        assert_eq!(format!("{:?}", written.smtp), format!("{:?}", builtin.smtp));
        assert_eq!(format!("{:?}", written.imap), format!("{:?}", builtin.imap));
        assert_eq!(written.imap.max_login_literal, 8192);
        assert_eq!(written.imap.login_timeout, Duration::from_secs(60));
        assert_eq!(written.database.url, builtin.database.url);
        assert_eq!(written.shutdown_grace, builtin.shutdown_grace);
        assert_eq!(written.time_zone, builtin.time_zone);
    }

    #[test]
    fn all_problems_are_reported_together_with_file_and_key() {
        let text = r#"
            colour = "blue"
            [smtp]
            listen = "not an address"
            max_recipients = "many"
            max_errors = 0
            upstream_networks = ["10.0.0.0/8", "nonsense"]
            frobnicate = true
            [database]
            url = "mysql://x"
        "#;
        let err =
            Config::parse(text, Some(Path::new("/etc/ratspost.toml"))).expect_err("invalid config");
        let shown = err.to_string();
        for needle in [
            "/etc/ratspost.toml: smtp.listen:",
            "smtp.max_recipients: invalid type: string \"many\"",
            "smtp.max_errors: must be between 1 and 1000, got 0",
            "smtp.upstream_networks: \"nonsense\" is not an IP network",
            "database.url: expected sqlite://PATH",
        ] {
            assert!(shown.contains(needle), "missing {needle:?} in:\n{shown}");
        }
        assert!(
            shown.contains("/etc/ratspost.toml: colour: unknown key"),
            "{shown}"
        );
        assert!(shown.contains("smtp.frobnicate: unknown key"), "{shown}");
        assert_eq!(err.problems.len(), 7, "{shown}");
    }

    #[test]
    fn exemption_notifications_go_to_the_admins_or_a_list() {
        assert_eq!(Config::builtin().exemptions.notify, Notify::Admins);
        let written = Config::parse(&default_file(), None).expect("default file parses");
        assert_eq!(written.exemptions.notify, Notify::Admins);
        let listed = Config::parse(
            "[exemptions]\nnotify = [\" Freigabe@Stadt.example \", \"dsb@stadt.example\"]\n",
            None,
        )
        .expect("a list");
        assert_eq!(
            listed.exemptions.notify,
            Notify::Addresses(vec![
                "freigabe@stadt.example".into(),
                "dsb@stadt.example".into()
            ])
        );
        for bad in [
            "\"everyone\"",
            "[]",
            "[\"kein-at\"]",
            "[\"a b@c.example\"]",
            "3",
        ] {
            let err =
                Config::parse(&format!("[exemptions]\nnotify = {bad}\n"), None).expect_err(bad);
            assert!(
                err.problems
                    .iter()
                    .any(|p| p.starts_with("exemptions.notify:")),
                "{bad}: {:?}",
                err.problems
            );
        }
    }

    #[test]
    fn unknown_keys_are_reported_all_at_once() {
        let err =
            Config::parse("colour = 1\n[smtp]\nfrobnicate = true\n", None).expect_err("unknown");
        assert_eq!(
            err.problems,
            ["colour: unknown key", "smtp.frobnicate: unknown key"]
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = Config::parse("[smtp]\nlisten = \n", None).expect_err("syntax");
        assert!(err.problems[0].starts_with("line 2:"), "{:?}", err.problems);
    }

    /// Issue #9.6: every syntax error at once, each with its line, not only the first.
    #[test]
    fn every_syntax_error_is_reported() {
        let err = Config::parse(
            "[smtp]\nlisten = \nmax_errors = 3 4\n[web\nlisten = \"127.0.0.1:1\"\n",
            None,
        )
        .expect_err("syntax");
        let lines: Vec<&str> = err
            .problems
            .iter()
            .map(|p| p.split(':').next().unwrap_or_default())
            .collect();
        let mut sorted = lines.clone();
        sorted.sort_by_key(|l| l.trim_start_matches("line ").parse::<usize>().unwrap_or(0));
        sorted.dedup();
        assert_eq!(lines, sorted, "in line order, one per line");
        for line in ["line 2:", "line 3:", "line 4:"] {
            assert!(
                err.problems.iter().any(|p| p.starts_with(line)),
                "no {line} in {:?}",
                err.problems
            );
        }
        assert!(
            err.to_string().lines().count() > err.problems.len(),
            "one line per problem"
        );
    }

    /// Issue #9.8: the production example the README's "Going live" installs is valid, and
    /// means what its comments say.
    #[test]
    fn the_shipped_production_example_is_valid() {
        let c = Config::parse(
            include_str!("../../packaging/ratspost.toml"),
            Some(Path::new("/etc/ratspost/ratspost.toml")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/ratspost"));
        assert_eq!(c.database.url, "sqlite:///var/lib/ratspost/ratspost.db");
        assert_eq!(c.tls.cert, PathBuf::from("/etc/ratspost/tls/fullchain.pem"));
        assert_eq!(c.smtp.hostname, "ratspost.stadt.example");
    }

    /// A relative `--config` path: everything lands where the file says, once, whatever the
    /// working directory (it once doubled the directory for the database only).
    #[test]
    fn a_relative_config_path_is_anchored_once() {
        let dir = tempfile::tempdir_in(".").expect("tempdir");
        let name = dir.path().file_name().expect("name").to_owned();
        let relative = Path::new(&name).join("ratspost.toml");
        std::fs::write(&relative, "").expect("write");
        let c = Config::load(&relative).unwrap_or_else(|e| panic!("{e}"));
        let absolute = std::path::absolute(dir.path()).expect("absolute");
        assert_eq!(c.data_dir, absolute.join("./data"));
        assert_eq!(
            c.database.url,
            format!("sqlite://{}", absolute.join("./data/ratspost.db").display())
        );
        assert!(
            c.tls.cert.starts_with(&absolute),
            "{}",
            c.tls.cert.display()
        );
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let c = Config::parse(
            "data_dir = \"state\"\n",
            Some(Path::new("/srv/ratspost/ratspost.toml")),
        )
        .expect("valid");
        assert_eq!(c.data_dir, PathBuf::from("/srv/ratspost/state"));
        assert_eq!(c.database.url, "sqlite:///srv/ratspost/state/ratspost.db");
        assert_eq!(
            c.tls.cert,
            PathBuf::from("/srv/ratspost/state/tls/cert.pem")
        );
    }

    #[test]
    fn paper_patterns_are_checked() {
        let ok = Config::parse("[notices]\npaper_pattern = '(BV/\\d{4}/\\d{4})'\n", None)
            .expect("valid");
        assert!(
            ok.notices
                .paper_pattern
                .is_some_and(|re| re.is_match("BV/2024/0123"))
        );
        for bad in ["'(unclosed'", "'BV/\\d+'"] {
            let err =
                Config::parse(&format!("[notices]\npaper_pattern = {bad}\n"), None).expect_err(bad);
            assert!(
                err.problems[0].starts_with("notices.paper_pattern:"),
                "{:?}",
                err.problems
            );
        }
    }

    #[test]
    fn ris_hosts_default_to_the_paper_url_host_or_none() {
        assert!(
            Config::builtin().notices.ris_hosts.is_empty(),
            "fail closed"
        );
        let derived = Config::parse(
            "[notices]\npaper_url = \"https://RIS.Stadt.example/bi/suche.asp?q={reference}\"\n",
            None,
        )
        .expect("valid");
        assert_eq!(derived.notices.ris_hosts, ["ris.stadt.example"]);
        let listed = Config::parse(
            "[notices]\npaper_url = \"https://ris.stadt.example/q={reference}\"\nris_hosts = [\"SessionNet.Stadt.example\", \"oparl.stadt.example\"]\n",
            None,
        )
        .expect("valid");
        assert_eq!(
            listed.notices.ris_hosts,
            ["sessionnet.stadt.example", "oparl.stadt.example"]
        );
        let err = Config::parse("[notices]\nris_hosts = [\"user@ris.example\"]\n", None)
            .expect_err("not a host");
        assert!(
            err.problems[0].starts_with("notices.ris_hosts:"),
            "{:?}",
            err.problems
        );
    }

    #[test]
    fn the_digit_run_limit_may_only_be_lowered() {
        let c = Config::builtin();
        assert_eq!(
            (
                c.notices.name_chars,
                c.notices.subject_chars,
                c.notices.max_digit_run
            ),
            (64, 120, 8)
        );
        let lower = Config::parse("[notices]\nmax_digit_run = 6\nsubject_chars = 40\n", None)
            .expect("valid");
        assert_eq!(
            (lower.notices.max_digit_run, lower.notices.subject_chars),
            (6, 40)
        );
        let err = Config::parse("[notices]\nmax_digit_run = 11\n", None).expect_err("looser");
        assert!(
            err.problems[0].starts_with("notices.max_digit_run: must be between 1 and 8"),
            "{:?}",
            err.problems
        );
    }

    #[test]
    fn time_zones_are_checked() {
        let c = Config::builtin();
        assert_eq!(c.time_zone.name(), "Europe/Berlin");
        let ny = Config::parse("time_zone = \"America/New_York\"\n", None).expect("valid");
        assert_eq!(ny.time_zone.name(), "America/New_York");
        let err = Config::parse("time_zone = \"Europe/Bonn\"\n", None).expect_err("bad zone");
        assert_eq!(err.problems.len(), 1, "{:?}", err.problems);
        assert!(
            err.problems[0].starts_with("time_zone: \"Europe/Bonn\" is not a time zone"),
            "{:?}",
            err.problems
        );
    }

    #[test]
    fn web_downloads_are_checked() {
        assert_eq!(
            Config::builtin().web.downloads,
            webui::Downloads::NotClassified
        );
        for (word, policy) in [
            ("all", webui::Downloads::All),
            ("not_classified", webui::Downloads::NotClassified),
            ("none", webui::Downloads::None),
        ] {
            let c =
                Config::parse(&format!("[web]\ndownloads = \"{word}\"\n"), None).expect("valid");
            assert_eq!(c.web.downloads, policy, "{word}");
        }
        let err = Config::parse("[web]\ndownloads = \"some\"\n", None).expect_err("bad policy");
        assert_eq!(err.problems.len(), 1, "{:?}", err.problems);
        assert!(
            err.problems[0].starts_with("web.downloads: \"some\": use \"all\""),
            "{:?}",
            err.problems
        );
    }

    #[test]
    fn tls_needs_both_files() {
        let err = Config::parse("[tls]\ncert = \"c.pem\"\n", None).expect_err("half tls");
        assert!(err.problems[0].starts_with("tls:"), "{:?}", err.problems);
    }

    #[test]
    fn networks_accept_plain_addresses() {
        let c = Config::parse(
            "[smtp]\nupstream_networks = [\"10.1.2.3\", \"2001:db8::/32\"]\n",
            None,
        )
        .expect("valid");
        assert!(c.smtp.is_upstream("10.1.2.3".parse().unwrap()));
        assert!(!c.smtp.is_upstream("10.1.2.4".parse().unwrap()));
        assert!(c.smtp.is_upstream("2001:db8::1".parse().unwrap()));
    }
}
