//! One IMAP session: the state machine of RFC 3501 (not authenticated → authenticated →
//! selected → logout) over imap-next, generic over the stream.
//!
//! Commands are parsed by imap-codec (via imap-next, which also enforces the command and
//! literal limits before it sends `+`); responses are imap-types values. The selected
//! mailbox is a snapshot (sequence number → UID, flags, modseq) that is brought up to date
//! at NOOP, IDLE wake-ups and after each command, sending EXISTS, EXPUNGE and FETCH FLAGS
//! for what other sessions or the SMTP pipeline changed.
//!
//! This module holds the session, its dispatch of the not-authenticated state and the
//! connection loop ([`run`]); the command families live beside it: `login.rs`,
//! `dispatch.rs` (authenticated and selected states), `mailboxes.rs` (LIST, STATUS),
//! `select.rs` (SELECT, snapshot refresh, EXPUNGE), `fetch.rs`, `search.rs`, `sort.rs`
//! (SORT), `thread.rs` (THREAD), `copy.rs`.

mod copy;
mod dispatch;
mod extensions;
mod fetch;
mod login;
mod mailboxes;
mod search;
mod select;
mod sort;
mod thread;

use std::collections::HashMap;
use std::num::{NonZeroU32, NonZeroU64};
use std::sync::Arc;

use bounded_static::IntoBoundedStatic as _;
use imap_next::State as _;
use imap_next::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_next::imap_types::command::{Command, CommandBody, FetchModifier, SelectParameter};
use imap_next::imap_types::core::{AString, IString, Literal, NString, Tag, Text, Vec1};
use imap_next::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_next::imap_types::extensions::compress::CompressionAlgorithm;
use imap_next::imap_types::extensions::enable::CapabilityEnable;
use imap_next::imap_types::extensions::uidplus::{UidElement, UidSet};
use imap_next::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName, Section,
};
use imap_next::imap_types::flag::{
    Flag, FlagFetch, FlagNameAttribute, FlagPerm, StoreResponse, StoreType,
};
use imap_next::imap_types::mailbox::{ListMailbox, Mailbox as ImapMailbox};
use imap_next::imap_types::response::{
    Capability, Code, CodeOther, CommandContinuationRequest, Data, Greeting, Response, Status,
};
use imap_next::imap_types::search::SearchKey;
use imap_next::imap_types::sequence::SequenceSet;
use imap_next::imap_types::status::{StatusDataItem, StatusDataItemName};
use imap_next::server::{Event, Options, Server};
use store::{FlagOp, Mailbox, Store, User};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::broadcast;

use super::deflate::Link;
use super::driver::{self, DriveError, Input, Step};
use super::framing::{Frame, Limits};
use super::gate::Gate;
use super::sequence::Ranges;
use super::{extended, quirks};
use super::{message, mime, utf7};
use crate::config::Config;
use crate::credentials as auth;
use crate::shutdown::Shutdown;

/// What every session shares.
#[derive(Clone)]
pub struct Context {
    /// The store.
    pub store: Store,
    /// Configuration.
    pub config: Arc<Config>,
    /// Stop signals.
    pub shutdown: Shutdown,
    /// Slots for password hashing (`imap.max_parallel_hashes`).
    pub hashes: Gate,
    /// Slots for CPU-heavy commands (`imap.heavy_workers`).
    pub heavy: Gate,
}

impl Context {
    /// The context of every session, with the gates sized from `config`.
    #[must_use]
    pub fn new(store: Store, config: Arc<Config>, shutdown: Shutdown) -> Self {
        Self {
            hashes: Gate::new(config.imap.max_parallel_hashes),
            heavy: Gate::new(config.imap.heavy_workers),
            store,
            config,
            shutdown,
        }
    }
}

/// How a session ended.
pub enum End<S> {
    /// The client asked for STARTTLS: here is the plain stream, upgrade and go on.
    StartTls(S),
    /// Logged out, closed, timed out or failed.
    Done,
}

/// How often a session in IDLE looks for changes made by other nodes.
const POLL: std::time::Duration = std::time::Duration::from_secs(30);
/// How often a logged-in session makes sure its credentials still hold (at a command or an
/// IDLE poll), for revocations made on another node; on this node they are announced at once
/// ([`Store::credential_changes`]).
const RECHECK: std::time::Duration = std::time::Duration::from_secs(30);
/// Messages whose contents one FETCH query loads.
const CONTENT_BATCH: usize = 32;
/// Protocol errors before the session is closed.
const MAX_ERRORS: u32 = 20;

/// The selected mailbox as this session last told the client.
struct Selected {
    mailbox: Mailbox,
    read_only: bool,
    /// Sequence number − 1 → UID.
    uids: Vec<i64>,
    /// UID → (flags, modseq) as last sent.
    known: HashMap<i64, (String, i64)>,
    /// The UIDs that are `\Recent` in this session (RFC 3501 §2.3.2): the ranges it claimed
    /// (SELECT), or for EXAMINE everything not yet claimed by anyone when it was opened.
    recent: Vec<std::ops::Range<i64>>,
    /// The keywords announced in FLAGS and PERMANENTFLAGS so far.
    keywords: Vec<String>,
}

impl Selected {
    fn is_recent(&self, uid: i64) -> bool {
        self.recent.iter().any(|r| r.contains(&uid))
    }

    /// Adds UIDs claimed as `\Recent`. A range that continues the last one extends it, so a
    /// session in IDLE keeps one range per stretch it claimed (others claimed the gaps), not
    /// one per new message; what it already holds is left out, so the ranges never overlap
    /// (a claim committed without waiting for the disk can be claimed again after a crash).
    fn add_recent(&mut self, range: std::ops::Range<i64>) {
        let held = self
            .recent
            .iter()
            .map(|r| r.end)
            .max()
            .unwrap_or(range.start);
        let range = range.start.max(held)..range.end;
        if range.is_empty() {
            return;
        }
        match self.recent.last_mut() {
            Some(last) if last.end == range.start => last.end = range.end,
            _ => self.recent.push(range),
        }
    }

    /// How many messages in view are `\Recent` (RFC 3501 §7.3.2).
    fn recent_count(&self) -> usize {
        // `uids` is ascending: each range's count is the distance of two binary searches.
        self.recent
            .iter()
            .map(|r| {
                self.uids.partition_point(|u| *u < r.end)
                    - self.uids.partition_point(|u| *u < r.start)
            })
            .sum()
    }

    /// FETCH FLAGS of `uid` with `stored` flags: those stored, and `\Recent` when it is.
    fn flags(&self, uid: i64, stored: &str) -> Vec<FlagFetch<'static>> {
        let mut flags = flags_of(stored);
        if self.is_recent(uid) {
            flags.push(FlagFetch::Recent);
        }
        flags
    }

    fn seq_of(&self, uid: i64) -> Option<u32> {
        self.uids
            .binary_search(&uid)
            .ok()
            .and_then(|i| u32::try_from(i + 1).ok())
    }

    /// The UIDs a sequence set (or UID set) names, in order: range by range, so the cost is
    /// what the set names in this mailbox, never the numbers it spans
    /// ([`Ranges`]).
    fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<i64> {
        let Some(&last_uid) = self.uids.last() else {
            return Vec::new();
        };
        if uid {
            let largest = u32::try_from(last_uid).unwrap_or(u32::MAX);
            Ranges::new(set, largest).select(&self.uids)
        } else {
            let count = u32::try_from(self.uids.len()).unwrap_or(u32::MAX);
            let mut out = Vec::new();
            for (lo, hi) in Ranges::new(set, count).clamped(count) {
                out.extend_from_slice(&self.uids[lo as usize - 1..hi as usize]);
            }
            out
        }
    }
}

struct Session<'a> {
    ctx: &'a Context,
    server: Server,
    tls: bool,
    peer: String,
    user: Option<User>,
    /// What the user logged in with, to notice when it is revoked or changed.
    credential: Option<Credential>,
    selected: Option<Selected>,
    condstore: bool,
    /// QRESYNC enabled: expunges are reported as VANISHED.
    qresync: bool,
    idle_tag: Option<Tag<'static>>,
    pending_auth: Option<(Tag<'static>, Sasl)>,
    logout: bool,
    errors: u32,
    /// COMPRESS DEFLATE was answered OK: compression starts once that reply is out.
    compress_pending: bool,
    /// The stream is compressed (RFC 4978).
    compressed: bool,
    /// A FETCH whose answer is being sent batch by batch.
    fetching: Option<fetch::FetchJob>,
}

fn text(s: &str) -> Text<'static> {
    Text::try_from(s.to_owned()).unwrap_or_else(|_| Text::unvalidated("..."))
}

fn ok(tag: Tag<'static>, code: Option<Code<'static>>, msg: &str) -> Status<'static> {
    Status::ok(Some(tag), code, text(msg)).unwrap_or_else(|_| unreachable_status())
}

fn no(tag: Tag<'static>, code: Option<Code<'static>>, msg: &str) -> Status<'static> {
    Status::no(Some(tag), code, text(msg)).unwrap_or_else(|_| unreachable_status())
}

/// The tag at the start of a line the codec could not parse, if it is a valid tag.
fn tag_of(line: &[u8]) -> Option<Tag<'static>> {
    let end = line
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .unwrap_or(line.len());
    let tag = std::str::from_utf8(&line[..end.min(64)]).ok()?;
    Tag::try_from(tag.to_owned()).ok()
}

/// The credentials a session was opened with.
struct Credential {
    /// The app password (`None`: the account password).
    device: Option<i64>,
    /// SHA-256 of the account's password hash at login: changing or resetting the password
    /// (or disabling the account, which serves the dummy hash) changes it.
    password: String,
    /// When they were last found to hold.
    checked: tokio::time::Instant,
}

/// The step of a SASL exchange in progress.
enum Sasl {
    /// PLAIN without an initial response: the credentials come next.
    Plain,
    /// LOGIN: the user name comes next.
    LoginUser,
    /// LOGIN: the password for this user name comes next.
    LoginPassword(Vec<u8>),
}

/// Why a FETCH failed.
enum FetchError {
    Store(store::Error),
    /// Over `imap.max_command_secs` (what was built before is sent).
    TimeLimit,
    /// A sensitive message without its notice: never served.
    Unservable(i64),
    /// `BINARY[...]` of a part whose transfer encoding the server cannot undo (RFC 3516).
    UnknownCte(super::binary::UnknownCte),
}

/// NO for a store error: what the user can act on (no such mailbox, name taken) is said;
/// a database failure is logged and reported only as temporary.
fn refused(tag: Tag<'static>, err: &store::Error) -> Status<'static> {
    if err.kind() == store::ErrorKind::Unavailable {
        tracing::error!(error = %err, "imap: storage failure");
        no(
            tag,
            Some(code("UNAVAILABLE")),
            "temporary server failure, try again later",
        )
    } else {
        no(tag, None, &err.to_string())
    }
}

/// OK or NO for a command whose work is one store call.
fn done(tag: Tag<'static>, what: &str, result: store::Result<()>) -> Status<'static> {
    match result {
        Ok(()) => ok(tag, None, &format!("{what} done")),
        Err(err) => refused(tag, &err),
    }
}

fn bad(tag: Option<Tag<'static>>, msg: &str) -> Status<'static> {
    Status::bad(tag, None, text(msg)).unwrap_or_else(|_| unreachable_status())
}

fn unreachable_status() -> Status<'static> {
    Status::bye(None, Text::unvalidated("internal error")).expect("static text is valid")
}

fn nz(n: i64) -> NonZeroU32 {
    NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN)
}

fn nz64(n: i64) -> NonZeroU64 {
    NonZeroU64::new(u64::try_from(n).unwrap_or(1)).unwrap_or(NonZeroU64::MIN)
}

/// A mailbox name from the client: modified UTF-7 decoded to UTF-8 (a name that is not valid
/// modified UTF-7 is taken as sent).
fn mailbox_name(m: &ImapMailbox<'_>) -> String {
    match m {
        ImapMailbox::Inbox => "INBOX".to_owned(),
        ImapMailbox::Other(o) => {
            let raw = String::from_utf8_lossy(o.inner().as_ref()).into_owned();
            utf7::decode(&raw).unwrap_or(raw)
        }
    }
}

fn to_imap_mailbox(name: &str) -> ImapMailbox<'static> {
    ImapMailbox::try_from(utf7::encode(name)).unwrap_or(ImapMailbox::Inbox)
}

fn astring(s: &AString<'_>) -> String {
    String::from_utf8_lossy(s.as_ref()).into_owned()
}

fn flags_of(stored: &str) -> Vec<FlagFetch<'static>> {
    stored
        .split_whitespace()
        .filter_map(|f| Flag::try_from(f).ok())
        .map(|f| FlagFetch::Flag(f.into_static()))
        .collect()
}

/// The keywords (flags without a backslash) among `stored`.
fn keywords_of(stored: &str) -> impl Iterator<Item = &str> {
    stored.split_whitespace().filter(|f| !f.starts_with('\\'))
}

/// The system flags every mailbox offers.
const SYSTEM_FLAGS: [&str; 5] = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"];

/// FLAGS: the system flags and `keywords`.
fn flag_list(keywords: &[String]) -> Vec<Flag<'static>> {
    SYSTEM_FLAGS
        .iter()
        .copied()
        .chain(keywords.iter().map(String::as_str))
        .filter_map(|f| {
            Flag::try_from(f)
                .ok()
                .map(bounded_static::IntoBoundedStatic::into_static)
        })
        .collect()
}

fn literal(bytes: &[u8]) -> NString<'static> {
    let owned: Vec<u8> = bytes.iter().copied().filter(|&b| b != 0).collect();
    Literal::try_from(owned)
        .map(|l| NString(Some(IString::Literal(l))))
        .unwrap_or(NString(None))
}

fn date_time(ms: i64) -> Option<imap_next::imap_types::datetime::DateTime> {
    let dt = chrono::DateTime::from_timestamp_millis(ms)?.fixed_offset();
    imap_next::imap_types::datetime::DateTime::try_from(dt).ok()
}

impl Session<'_> {
    /// Whether the credentials this session logged in with still hold: the app password not
    /// revoked, the account not disabled, its password not changed. Asked at once when this
    /// node announces a change (`now`), else at most every [`RECHECK`] (changes made on other
    /// nodes). A failing database does not end sessions.
    async fn credentials_hold(&mut self, now: bool) -> bool {
        let (Some(user), Some(credential)) = (&self.user, &mut self.credential) else {
            return true;
        };
        if !now && credential.checked.elapsed() < RECHECK {
            return true;
        }
        let store = &self.ctx.store;
        let live = match credential.device {
            Some(id) => store.app_password_live(user.id, id).await,
            None => Ok(true),
        };
        let password = store
            .password_hash(&user.login)
            .await
            .map(|h| store::token::hash(&h));
        credential.checked = tokio::time::Instant::now();
        match (live, password) {
            (Ok(live), Ok(password)) => live && password == credential.password,
            (Err(err), _) | (_, Err(err)) => {
                tracing::warn!(error = %err, "imap: cannot re-check credentials");
                true
            }
        }
    }

    /// The answer to a command refused for a literal over the limits (RFC 7889 `TOOBIG`):
    /// before login `BAD` (no command there takes a large literal), after it `NO`.
    fn too_big(&self, tag: Option<Vec<u8>>) -> Status<'static> {
        let tag = tag.and_then(|t| Tag::try_from(String::from_utf8(t).ok()?).ok());
        let imap = &self.ctx.config.imap;
        match (tag, self.user.is_some()) {
            (Some(tag), true) => no(
                tag,
                Some(code("TOOBIG")),
                &format!(
                    "message too large: at most {} bytes (imap.max_message_bytes)",
                    imap.max_message_bytes
                ),
            ),
            (tag, _) => Status::bad(
                tag,
                Some(code("TOOBIG")),
                text(&format!(
                    "literal too large before login: at most {} bytes (imap.max_login_literal)",
                    imap.max_login_literal
                )),
            )
            .unwrap_or_else(|_| unreachable_status()),
        }
    }

    /// Ends a session whose credentials were revoked: `* BYE`, then close.
    async fn revoked<S: AsyncWrite + Unpin, T>(&mut self, stream: &mut S) -> End<T> {
        if let Some(user) = &self.user {
            tracing::info!(user = %user.login, ip = %self.peer, "imap: credentials revoked, session ended");
        }
        self.send(
            Status::bye(None, text("credentials revoked or changed, log in again"))
                .unwrap_or_else(|_| unreachable_status()),
        );
        let _ = driver::progress(stream, &mut self.server, false).await;
        End::Done
    }

    fn capabilities(&self) -> Vec<Capability<'static>> {
        let mut caps = vec![Capability::Imap4Rev1];
        if self.user.is_none() {
            if self.tls {
                caps.push(Capability::Auth(AuthMechanism::Plain));
                caps.push(Capability::SaslIr);
            } else {
                caps.push(Capability::StartTls);
                caps.push(Capability::LoginDisabled);
            }
        }
        caps.extend([
            Capability::Idle,
            Capability::UidPlus,
            Capability::Move,
            Capability::Namespace,
            Capability::Id,
            Capability::Enable,
            Capability::Unselect,
            Capability::LiteralPlus,
            Capability::Binary,
            Capability::CondStore,
            Capability::QResync,
        ]);
        if self.user.is_some() && !self.compressed {
            caps.push(Capability::Compress {
                algorithm: CompressionAlgorithm::Deflate,
            });
        }
        // ESEARCH, MULTIAPPEND, LIST-EXTENDED and LIST-STATUS are read by `imap::extended`, not by imap-codec; SORT,
        // SORT=DISPLAY (RFC 5256, RFC 5957) and THREAD (RFC 5256) by imap-codec.
        for name in [
            "CHILDREN",
            "SPECIAL-USE",
            "ESEARCH",
            "MULTIAPPEND",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "SORT",
            "SORT=DISPLAY",
            "THREAD=ORDEREDSUBJECT",
            "THREAD=REFERENCES",
        ] {
            if let Ok(c) = Capability::try_from(name) {
                caps.push(c);
            }
        }
        if let Ok(c) = Capability::try_from(format!(
            "APPENDLIMIT={}",
            self.ctx.config.imap.max_message_bytes
        )) {
            caps.push(c.into_static());
        }
        caps
    }

    /// Turns CONDSTORE on for the session (RFC 7162 §3.1: a CONDSTORE-enabling command):
    /// from now on FETCH responses carry MODSEQ, and the selected mailbox's HIGHESTMODSEQ
    /// is announced at once.
    fn enable_condstore(&mut self) {
        if self.condstore {
            return;
        }
        self.condstore = true;
        if let Some(selected) = &self.selected {
            let highest = selected
                .known
                .values()
                .map(|(_, modseq)| *modseq)
                .max()
                .unwrap_or(0)
                .max(selected.mailbox.highest_modseq);
            self.send(
                Status::ok(
                    None,
                    Some(Code::HighestModSeq(nz64(highest))),
                    text("highest"),
                )
                .unwrap_or_else(|_| unreachable_status()),
            );
        }
    }

    fn send_data(&mut self, data: Data<'static>) {
        self.server.enqueue_data(data);
    }

    fn send(&mut self, status: Status<'static>) {
        self.server.enqueue_status(status);
    }

    /// COMPRESS (RFC 4978): OK once — the caller turns compression on when that OK is out —
    /// and `NO [COMPRESSIONACTIVE]` after. DEFLATE is the only algorithm there is.
    fn compress(&mut self, tag: Tag<'static>) -> Status<'static> {
        if self.compressed || self.compress_pending {
            return no(
                tag,
                Some(Code::CompressionActive),
                "DEFLATE is already active",
            );
        }
        self.compress_pending = true;
        ok(tag, None, "DEFLATE active")
    }

    /// Handles one command; the tagged status is enqueued here.
    async fn command(&mut self, command: Command<'static>) {
        let tag = command.tag.clone();
        let body = command.body;
        let name = body.name();
        let status = match (self.user.is_some(), body) {
            (_, CommandBody::Capability) => {
                let caps = Vec1::try_from(self.capabilities()).expect("IMAP4rev1 is always there");
                self.send_data(Data::Capability(caps));
                ok(tag, None, "CAPABILITY done")
            }
            (_, CommandBody::Noop | CommandBody::Check) => {
                self.refresh(true).await;
                ok(tag, None, "NOOP done")
            }
            (_, CommandBody::Logout) => {
                self.send(
                    Status::bye(None, text("ratspost logging out"))
                        .unwrap_or_else(|_| unreachable_status()),
                );
                self.logout = true;
                ok(tag, None, "LOGOUT done")
            }
            (_, CommandBody::StartTLS) if self.tls => bad(Some(tag), "TLS is already active"),
            // TLS under compression is not allowed (RFC 4978 §4).
            (_, CommandBody::StartTLS) if self.compressed => {
                bad(Some(tag), "compression is active: STARTTLS not allowed")
            }
            (true, CommandBody::Compress { .. }) => self.compress(tag),
            (_, CommandBody::StartTLS) => {
                // The caller sends this, then upgrades; anything pipelined after STARTTLS is
                // thrown away with this server state (no command injection).
                self.send(ok(tag, None, "Begin TLS negotiation now"));
                return;
            }
            (_, CommandBody::Id { .. }) => {
                let parameters = [("name", "ratspost"), ("vendor", "ratspost")]
                    .into_iter()
                    .filter_map(|(k, v)| {
                        Some((
                            IString::try_from(k.to_owned()).ok()?,
                            NString::try_from(v.to_owned()).ok()?,
                        ))
                    })
                    .collect();
                self.send_data(Data::Id {
                    parameters: Some(parameters),
                });
                ok(tag, None, "ID done")
            }
            (false, CommandBody::Login { username, password }) => {
                let login = astring(&username);
                let password = String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
                self.login(tag, &login, &password).await
            }
            (true, CommandBody::Login { .. } | CommandBody::Authenticate { .. }) => {
                bad(Some(tag), "already authenticated")
            }
            (false, _) => bad(Some(tag), &format!("{name} needs authentication first")),
            (true, body) => self.authenticated(tag, body).await,
        };
        // A FETCH in progress sends its own tagged answer when its last batch is out.
        if self.fetching.is_none() {
            self.send(status);
        }
    }
}

fn uid_set(uids: &[i64]) -> Option<UidSet> {
    let elements: Vec<UidElement> = uids.iter().map(|u| UidElement::Single(nz(*u))).collect();
    Vec1::try_from(elements).ok().map(UidSet)
}

/// A sequence set of UIDs (`1:3,7`), or `None` for none.
fn sequence_set(uids: &[i64]) -> Option<SequenceSet> {
    SequenceSet::try_from(compact(uids).as_str())
        .ok()
        .map(bounded_static::IntoBoundedStatic::into_static)
}

/// Ascending numbers written as a sequence set, runs as ranges: `1:3,7`.
fn compact(numbers: &[i64]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < numbers.len() {
        let start = numbers[i];
        while i + 1 < numbers.len() && numbers[i + 1] == numbers[i] + 1 {
            i += 1;
        }
        parts.push(if numbers[i] == start {
            start.to_string()
        } else {
            format!("{start}:{}", numbers[i])
        });
        i += 1;
    }
    parts.join(",")
}

fn code(name: &'static str) -> Code<'static> {
    Code::Other(CodeOther::unvalidated(name.as_bytes()))
}

/// The longest line before login, bytes: quoted strings are not literals, and ID (RFC 2971)
/// with a client's whole description is long. 64 KiB is Dovecot's `imap_max_line_length`.
const PRE_LOGIN_LINE: usize = 64 * 1024;
/// The longest line after login, bytes: a client's UID set for a large mailbox is long.
const LINE: usize = 1024 * 1024;

/// The framer's limits (checked before `+` and before anything is buffered): before login
/// a user name and a password (`imap.max_login_literal` each), after it a message
/// (`imap.max_message_bytes`).
fn limits(config: &crate::config::ImapConfig, authenticated: bool) -> Limits {
    if authenticated {
        Limits {
            line: LINE,
            literal: u64::from(config.max_message_bytes),
            command: u64::from(config.max_message_bytes) + LINE as u64,
        }
    } else {
        Limits {
            line: PRE_LOGIN_LINE,
            literal: u64::from(config.max_login_literal),
            command: 2 * u64::from(config.max_login_literal) + PRE_LOGIN_LINE as u64,
        }
    }
}

/// The codec's limits: wide enough for whatever the framer let through (it enforces the
/// limits of the session's state).
fn options(config: &crate::config::ImapConfig) -> Options {
    let mut options = Options::default();
    options.crlf_relaxed = true;
    options.max_literal_size = config.max_message_bytes;
    options.max_command_size = config
        .max_message_bytes
        .saturating_add(u32::try_from(LINE).unwrap_or(u32::MAX));
    options
}

fn greeting() -> Greeting<'static> {
    Greeting::ok(None, "ratspost IMAP ready").expect("static greeting")
}

/// Runs a session on `stream` until it ends or asks for STARTTLS. The client must have
/// logged in by `login_by` (an absolute deadline: input does not extend it).
pub async fn run<S: AsyncRead + AsyncWrite + Unpin + Send>(
    stream: S,
    tls: bool,
    greet: bool,
    peer: std::net::IpAddr,
    login_by: tokio::time::Instant,
    ctx: &Context,
) -> End<S> {
    let mut session = Session {
        ctx,
        server: Server::new(options(&ctx.config.imap), greeting()),
        tls,
        peer: peer.to_string(),
        user: None,
        credential: None,
        selected: None,
        condstore: false,
        qresync: false,
        idle_tag: None,
        pending_auth: None,
        logout: false,
        errors: 0,
        compress_pending: false,
        compressed: false,
        fetching: None,
    };
    // Plain until COMPRESS DEFLATE; the same loop drives the compressed stream.
    let mut stream = Link::Plain(stream);
    let mut discard = !greet;
    let mut changes: broadcast::Receiver<i64> = ctx.store.mailbox_changes();
    let mut credentials: broadcast::Receiver<i64> = ctx.store.credential_changes();
    let mut input = Input::new(8 * 1024);
    let mut starttls_pending = false;
    loop {
        let step = match driver::progress(&mut stream, &mut session.server, discard).await {
            Ok(step) => step,
            Err(DriveError::Protocol(err)) => {
                session.errors += 1;
                tracing::debug!(ip = %session.peer, error = ?err, "imap: bad input");
                if session.errors > MAX_ERRORS {
                    return End::Done;
                }
                use imap_next::server::Error as E;
                match err {
                    // imap-next answers an oversized literal itself (tagged BAD, no `+`).
                    E::LiteralTooLong { .. } => {}
                    // The client waits for its tag: answer it when the line has one.
                    E::MalformedMessage { discarded_bytes }
                    | E::ExpectedCrlfGotLf { discarded_bytes }
                    | E::CommandTooLong { discarded_bytes } => {
                        let tag = tag_of(discarded_bytes.declassify());
                        session.send(bad(tag, "unknown command or invalid arguments"));
                    }
                }
                continue;
            }
            Err(_) => return End::Done,
        };
        match step {
            Step::Event(Event::GreetingSent { .. }) => discard = false,
            Step::Event(Event::ResponseSent { response, .. }) => {
                // Upgrade or close only once the tagged reply itself went out (LOGOUT sends
                // BYE first).
                let tagged = matches!(response, Response::Status(Status::Tagged(_)));
                if tagged && starttls_pending {
                    return stream.into_plain().map_or(End::Done, End::StartTls);
                }
                if tagged && session.compress_pending {
                    // The OK went out plain; everything after it is compressed (RFC 4978 §3).
                    stream.start_deflate();
                    session.compress_pending = false;
                    session.compressed = stream.is_compressed();
                }
                if tagged && session.logout {
                    return End::Done;
                }
            }
            Step::Event(Event::CommandReceived { command }) => {
                let is_starttls = matches!(command.body, CommandBody::StartTLS)
                    && !session.tls
                    && !session.compressed;
                if !session.credentials_hold(false).await {
                    return session.revoked(&mut stream).await;
                }
                session.command(command).await;
                if is_starttls {
                    starttls_pending = true;
                    continue;
                }
                if session.compress_pending {
                    continue;
                }
                if session.selected.is_some() && !session.logout && session.fetching.is_none() {
                    session.refresh(false).await;
                }
            }
            Step::Event(Event::CommandAuthenticateReceived {
                command_authenticate,
            }) => {
                let tag = command_authenticate.tag.clone();
                let initial = command_authenticate
                    .initial_response
                    .map(|r| r.declassify().to_vec());
                let status = if session.user.is_some() {
                    bad(Some(tag), "already authenticated")
                } else if !session.tls {
                    // Refused before any credential is asked for in plaintext.
                    no(
                        tag,
                        Some(code("PRIVACYREQUIRED")),
                        "use STARTTLS or port 993 first",
                    )
                } else {
                    match (command_authenticate.mechanism, initial) {
                        (AuthMechanism::Plain, Some(data)) => {
                            session.authenticate(tag, &data).await
                        }
                        (AuthMechanism::Plain, None) => {
                            session.challenge(tag, Sasl::Plain, b"");
                            continue;
                        }
                        // LOGIN is not advertised, but Outlook uses it anyway.
                        (AuthMechanism::Login, Some(user)) => {
                            session.challenge(tag, Sasl::LoginPassword(user), b"Password:");
                            continue;
                        }
                        (AuthMechanism::Login, None) => {
                            session.challenge(tag, Sasl::LoginUser, b"Username:");
                            continue;
                        }
                        _ => no(tag, None, "use AUTHENTICATE PLAIN"),
                    }
                };
                let _ = session.server.authenticate_finish(status);
            }
            Step::Event(Event::AuthenticateDataReceived { authenticate_data }) => {
                let Some((tag, sasl)) = session.pending_auth.take() else {
                    continue;
                };
                let status = match (authenticate_data, sasl) {
                    (AuthenticateData::Cancel, _) => bad(Some(tag), "AUTHENTICATE cancelled"),
                    (AuthenticateData::Continue(data), Sasl::Plain) => {
                        session.authenticate(tag, data.declassify()).await
                    }
                    (AuthenticateData::Continue(data), Sasl::LoginUser) => {
                        let user = data.declassify().to_vec();
                        session.challenge(tag, Sasl::LoginPassword(user), b"Password:");
                        continue;
                    }
                    (AuthenticateData::Continue(data), Sasl::LoginPassword(user)) => {
                        let login = String::from_utf8_lossy(&user).into_owned();
                        let password = String::from_utf8_lossy(data.declassify()).into_owned();
                        session.login(tag, &login, &password).await
                    }
                };
                let _ = session.server.authenticate_finish(status);
            }
            Step::Event(Event::IdleCommandReceived { tag }) => {
                if session.selected.is_some() {
                    session.idle_tag = Some(tag);
                    let cont = CommandContinuationRequest::basic(None, "idling").expect("static");
                    let _ = session.server.idle_accept(cont);
                    session.refresh(true).await;
                } else {
                    let _ = session
                        .server
                        .idle_reject(bad(Some(tag), "IDLE needs a selected mailbox"));
                }
            }
            Step::Event(Event::IdleDoneReceived) => {
                if let Some(tag) = session.idle_tag.take() {
                    session.send(ok(tag, None, "IDLE terminated"));
                }
            }
            Step::NeedInput => {
                // Everything queued is written now: the next batch of a FETCH in progress,
                // before any further input is read.
                if session.fetching.is_some() {
                    session.fetch_step().await;
                    continue;
                }
                match input.next(&limits(&ctx.config.imap, session.user.is_some())) {
                    Some(Frame::Command(mut command)) => {
                        quirks::mend(&mut command);
                        // Extensions imap-codec cannot parse, answered here (not while
                        // IDLE or AUTHENTICATE wait for their own lines).
                        let ours = session.user.is_some()
                            && session.idle_tag.is_none()
                            && session.pending_auth.is_none();
                        if let Some(ext) = ours.then(|| extended::parse(&command)).flatten() {
                            if !session.credentials_hold(false).await {
                                return session.revoked(&mut stream).await;
                            }
                            let reply = session.extended(ext).await;
                            if stream.write_all(&reply).await.is_err()
                                || stream.flush().await.is_err()
                            {
                                return End::Done;
                            }
                            if session.selected.is_some() {
                                session.refresh(false).await;
                            }
                            continue;
                        }
                        session.server.enqueue_input(&command);
                        continue;
                    }
                    Some(Frame::Continue) => {
                        // imap-next asked for input, so all it had to send is out: the `+`
                        // cannot cut into a response.
                        if stream.write_all(b"+ go ahead\r\n").await.is_err()
                            || stream.flush().await.is_err()
                        {
                            return End::Done;
                        }
                        continue;
                    }
                    Some(Frame::LiteralTooBig { tag, .. }) => {
                        session.errors += 1;
                        let status = session.too_big(tag);
                        session.send(status);
                        continue;
                    }
                    Some(Frame::LineTooLong { tag }) => {
                        session.errors += 1;
                        if session.errors > MAX_ERRORS {
                            return End::Done;
                        }
                        let tag = tag.and_then(|t| Tag::try_from(String::from_utf8(t).ok()?).ok());
                        session.send(bad(tag, "line too long"));
                        continue;
                    }
                    None => {}
                }
                let user_id = session.user.as_ref().map(|u| u.id);
                // Before login the deadline is absolute (`imap.login_timeout_secs` from
                // connecting): a client trickling a byte at a time cannot hold a slot.
                let idle_until = tokio::time::Instant::now() + ctx.config.imap.timeout;
                let until = if user_id.is_some() {
                    idle_until
                } else {
                    idle_until.min(login_by)
                };
                let idling = session.idle_tag.is_some();
                tokio::select! {
                    read = input.read(&mut stream) => {
                        if read.is_err() {
                            return End::Done;
                        }
                    }
                    changed = credentials.recv(), if user_id.is_some() => {
                        let mine = match changed {
                            Ok(id) => Some(id) == user_id,
                            Err(broadcast::error::RecvError::Lagged(_)) => true,
                            Err(broadcast::error::RecvError::Closed) => false,
                        };
                        if mine && !session.credentials_hold(true).await {
                            return session.revoked(&mut stream).await;
                        }
                    }
                    changed = changes.recv(), if idling => {
                        let mine = match changed {
                            Ok(id) => Some(id) == user_id,
                            Err(broadcast::error::RecvError::Lagged(_)) => true,
                            Err(broadcast::error::RecvError::Closed) => false,
                        };
                        if mine {
                            session.refresh(true).await;
                        }
                    }
                    () = tokio::time::sleep(POLL), if idling => {
                        if !session.credentials_hold(false).await {
                            return session.revoked(&mut stream).await;
                        }
                        session.refresh(true).await;
                    }
                    () = tokio::time::sleep_until(until) => {
                        let why = if user_id.is_some() { "autologout: idle for too long" } else { "autologout: no login in time" };
                        session.send(Status::bye(None, text(why)).unwrap_or_else(|_| unreachable_status()));
                        let _ = driver::progress(&mut stream, &mut session.server, false).await;
                        return End::Done;
                    }
                    () = ctx.shutdown.stop.cancelled() => {
                        session.send(Status::bye(None, text("server shutting down")).unwrap_or_else(|_| unreachable_status()));
                        let _ = driver::progress(&mut stream, &mut session.server, false).await;
                        return End::Done;
                    }
                }
            }
        }
    }
}
