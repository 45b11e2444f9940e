//! One IMAP session: the state machine of RFC 3501 (not authenticated → authenticated →
//! selected → logout) over imap-next, generic over the stream.
//!
//! Commands are parsed by imap-codec (via imap-next, which also enforces the command and
//! literal limits before it sends `+`); responses are imap-types values. The selected
//! mailbox is a snapshot (sequence number → UID, flags, modseq) that is brought up to date
//! at NOOP, IDLE wake-ups and after each command, sending EXISTS, EXPUNGE and FETCH FLAGS
//! for what other sessions or the SMTP pipeline changed.

use std::collections::HashMap;
use std::num::{NonZeroU32, NonZeroU64};
use std::sync::Arc;

use bounded_static::IntoBoundedStatic as _;
use imap_next::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_next::imap_types::command::{Command, CommandBody, FetchModifier, SelectParameter};
use imap_next::imap_types::core::{AString, IString, Literal, NString, Tag, Text, Vec1};
use imap_next::imap_types::extensions::binary::LiteralOrLiteral8;
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
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast;

use super::auth;
use super::driver::{self, DriveError, Step};
use super::{message, mime, utf7};
use crate::config::Config;
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
/// How long a connection may wait before logging in.
const UNAUTHENTICATED_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
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
}

impl Selected {
    fn seq_of(&self, uid: i64) -> Option<u32> {
        self.uids
            .binary_search(&uid)
            .ok()
            .and_then(|i| u32::try_from(i + 1).ok())
    }

    /// The UIDs a sequence set (or UID set) names, in order.
    fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<i64> {
        let Some(&last_uid) = self.uids.last() else {
            return Vec::new();
        };
        if uid {
            let largest = NonZeroU32::new(u32::try_from(last_uid).unwrap_or(u32::MAX))
                .unwrap_or(NonZeroU32::MIN);
            let mut out: Vec<i64> = set
                .iter(largest)
                .map(|u| i64::from(u.get()))
                .filter(|u| self.uids.binary_search(u).is_ok())
                .collect();
            out.sort_unstable();
            out.dedup();
            out
        } else {
            let count = u32::try_from(self.uids.len()).unwrap_or(u32::MAX);
            let largest = NonZeroU32::new(count).unwrap_or(NonZeroU32::MIN);
            let mut seqs: Vec<u32> = set
                .iter(largest)
                .map(NonZeroU32::get)
                .filter(|&s| s <= count)
                .collect();
            seqs.sort_unstable();
            seqs.dedup();
            seqs.into_iter()
                .map(|s| self.uids[s as usize - 1])
                .collect()
        }
    }
}

struct Session<'a> {
    ctx: &'a Context,
    server: Server,
    tls: bool,
    peer: String,
    user: Option<User>,
    selected: Option<Selected>,
    condstore: bool,
    /// QRESYNC enabled: expunges are reported as VANISHED.
    qresync: bool,
    idle_tag: Option<Tag<'static>>,
    pending_auth: Option<(Tag<'static>, Sasl)>,
    logout: bool,
    errors: u32,
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
    /// A sensitive message without its notice: never served.
    Unservable(i64),
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
            Capability::CondStore,
            Capability::QResync,
        ]);
        if let Ok(c) = Capability::try_from("CHILDREN") {
            caps.push(c);
        }
        if let Ok(c) = Capability::try_from("SPECIAL-USE") {
            caps.push(c);
        }
        if let Ok(c) = Capability::try_from(format!(
            "APPENDLIMIT={}",
            self.ctx.config.imap.max_message_bytes
        )) {
            caps.push(c.into_static());
        }
        caps
    }

    fn send_data(&mut self, data: Data<'static>) {
        self.server.enqueue_data(data);
    }

    fn send(&mut self, status: Status<'static>) {
        self.server.enqueue_status(status);
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
        self.send(status);
    }

    async fn login(&mut self, tag: Tag<'static>, login: &str, password: &str) -> Status<'static> {
        let config = &self.ctx.config.imap;
        if !self.tls {
            return no(
                tag,
                Some(code("PRIVACYREQUIRED")),
                "use STARTTLS or port 993 first (LOGINDISABLED)",
            );
        }
        let keep = self.ctx.config.web.login_history;
        match auth::check(&self.ctx.store, config, login, password, &self.peer, keep).await {
            Ok(auth::Login::Banned) => {
                tracing::warn!(ip = %self.peer, "imap: login refused, address banned");
                no(
                    tag,
                    Some(code("UNAVAILABLE")),
                    "too many failed logins from your address, try later",
                )
            }
            Ok(auth::Login::Accepted(user)) => {
                if let Err(err) = self
                    .ctx
                    .store
                    .ensure_mailboxes(user.id, store::now_millis())
                    .await
                {
                    tracing::error!(error = %err, "imap: cannot prepare the mailboxes");
                    return no(
                        tag,
                        Some(code("UNAVAILABLE")),
                        "mailbox unavailable, try later",
                    );
                }
                tracing::info!(user = %user.login, ip = %self.peer, "imap: logged in");
                self.user = Some(user);
                let caps = Vec1::try_from(self.capabilities()).expect("IMAP4rev1 is always there");
                ok(tag, Some(Code::Capability(caps)), "logged in")
            }
            Ok(auth::Login::Refused { delay }) => {
                tracing::warn!(login = %login, ip = %self.peer, delay_ms = delay.as_millis() as u64, "imap: login failed");
                tokio::time::sleep(delay).await;
                no(
                    tag,
                    Some(code("AUTHENTICATIONFAILED")),
                    "wrong login or app password",
                )
            }
            Err(err) => {
                tracing::error!(error = %err, "imap: cannot check a login");
                no(
                    tag,
                    Some(code("UNAVAILABLE")),
                    "login unavailable, try later",
                )
            }
        }
    }

    /// Sends a SASL challenge and waits for the client's answer.
    fn challenge(&mut self, tag: Tag<'static>, next: Sasl, prompt: &'static [u8]) {
        self.pending_auth = Some((tag, next));
        let _ = self
            .server
            .authenticate_continue(CommandContinuationRequest::base64(prompt));
    }

    async fn authenticate(&mut self, tag: Tag<'static>, data: &[u8]) -> Status<'static> {
        // SASL PLAIN: [authzid] NUL authcid NUL password
        let parts: Vec<&[u8]> = data.split(|&b| b == 0).collect();
        match parts.as_slice() {
            [authz, authc, password] if authz.is_empty() || authz == authc => {
                let login = String::from_utf8_lossy(authc).into_owned();
                let password = String::from_utf8_lossy(password).into_owned();
                self.login(tag, &login, &password).await
            }
            _ => bad(Some(tag), "malformed PLAIN response"),
        }
    }

    async fn authenticated(
        &mut self,
        tag: Tag<'static>,
        body: CommandBody<'static>,
    ) -> Status<'static> {
        let user = self.user.clone().expect("authenticated");
        let store = self.ctx.store.clone();
        let now = store::now_millis();
        match body {
            CommandBody::Enable { capabilities } => {
                let mut enabled = Vec::new();
                for c in capabilities.as_ref() {
                    if matches!(c, CapabilityEnable::CondStore) {
                        self.condstore = true;
                        enabled.push(c.clone());
                    } else if c.to_string().eq_ignore_ascii_case("QRESYNC") {
                        // QRESYNC implies CONDSTORE (RFC 7162 §3.2.3).
                        self.condstore = true;
                        self.qresync = true;
                        enabled.push(c.clone());
                    }
                }
                self.send_data(Data::Enabled {
                    capabilities: enabled,
                });
                ok(tag, None, "ENABLE done")
            }
            CommandBody::Namespace => {
                use imap_next::imap_types::extensions::namespace::Namespace;
                let personal = vec![Namespace {
                    prefix: IString::try_from("").expect("empty string"),
                    delimiter: Some(
                        imap_next::imap_types::core::QuotedChar::try_from('/').expect("slash"),
                    ),
                    extensions: Vec::new(),
                }];
                self.send_data(Data::Namespace {
                    personal,
                    other: Vec::new(),
                    shared: Vec::new(),
                });
                ok(tag, None, "NAMESPACE done")
            }
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => {
                self.list(
                    tag,
                    &mailbox_name(&reference),
                    &list_pattern(&mailbox_wildcard),
                    false,
                )
                .await
            }
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => {
                self.list(
                    tag,
                    &mailbox_name(&reference),
                    &list_pattern(&mailbox_wildcard),
                    true,
                )
                .await
            }
            CommandBody::Status {
                mailbox,
                item_names,
            } => {
                match self
                    .status_items(user.id, &mailbox_name(&mailbox), &item_names)
                    .await
                {
                    Ok(items) => {
                        self.send_data(Data::Status {
                            mailbox,
                            items: items.into(),
                        });
                        ok(tag, None, "STATUS done")
                    }
                    Err(err) => refused(tag, &err),
                }
            }
            CommandBody::Select {
                mailbox,
                parameters,
            } => {
                self.select(tag, &mailbox_name(&mailbox), false, &parameters)
                    .await
            }
            CommandBody::Examine {
                mailbox,
                parameters,
            } => {
                self.select(tag, &mailbox_name(&mailbox), true, &parameters)
                    .await
            }
            CommandBody::Create { mailbox } => done(
                tag,
                "CREATE",
                store
                    .create_mailbox(user.id, &mailbox_name(&mailbox), now)
                    .await,
            ),
            CommandBody::Delete { mailbox } => done(
                tag,
                "DELETE",
                store.delete_mailbox(user.id, &mailbox_name(&mailbox)).await,
            ),
            CommandBody::Rename { from, to } => done(
                tag,
                "RENAME",
                store
                    .rename_mailbox(user.id, &mailbox_name(&from), &mailbox_name(&to))
                    .await,
            ),
            CommandBody::Subscribe { mailbox } => done(
                tag,
                "SUBSCRIBE",
                store
                    .set_subscribed(user.id, &mailbox_name(&mailbox), true)
                    .await,
            ),
            CommandBody::Unsubscribe { mailbox } => done(
                tag,
                "UNSUBSCRIBE",
                store
                    .set_subscribed(user.id, &mailbox_name(&mailbox), false)
                    .await,
            ),
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
            } => {
                let target = match store.mailbox(user.id, &mailbox_name(&mailbox)).await {
                    Ok(m) => m,
                    Err(_) => return no(tag, Some(Code::TryCreate), "no such mailbox"),
                };
                let bytes: Vec<u8> = match &message {
                    LiteralOrLiteral8::Literal(l) => l.data().to_vec(),
                    LiteralOrLiteral8::Literal8(l) => l.data.to_vec(),
                };
                let flags: Vec<String> = flags.iter().map(ToString::to_string).collect();
                let internal = date.map_or(now, |d| d.as_ref().timestamp_millis());
                match store.append_entry(&target, &bytes, &flags, internal).await {
                    Ok((validity, uid)) => {
                        self.refresh(true).await;
                        ok(
                            tag,
                            Some(Code::AppendUid {
                                uid_validity: nz(validity),
                                uid: nz(uid),
                            }),
                            "APPEND done",
                        )
                    }
                    Err(err) => refused(tag, &err),
                }
            }
            other => self.selected_command(tag, other).await,
        }
    }

    async fn selected_command(
        &mut self,
        tag: Tag<'static>,
        body: CommandBody<'static>,
    ) -> Status<'static> {
        if self.selected.is_none() {
            return bad(
                Some(tag),
                &format!("{} needs a selected mailbox", body.name()),
            );
        }
        let store = self.ctx.store.clone();
        match body {
            CommandBody::Close | CommandBody::Unselect => {
                let selected = self.selected.take().expect("selected");
                if matches!(body, CommandBody::Close) && !selected.read_only {
                    let _ = store.expunge(&selected.mailbox, None).await;
                }
                ok(tag, None, "done")
            }
            CommandBody::Expunge => self.expunge(tag, None).await,
            CommandBody::ExpungeUid { sequence_set } => {
                let uids = self
                    .selected
                    .as_ref()
                    .expect("selected")
                    .resolve(&sequence_set, true);
                self.expunge(tag, Some(uids)).await
            }
            CommandBody::Search { criteria, uid, .. } => {
                let hits = self.search(&criteria).await;
                let selected = self.selected.as_ref().expect("selected");
                let ids: Vec<NonZeroU32> = hits
                    .iter()
                    .filter_map(|u| {
                        if uid {
                            Some(nz(*u))
                        } else {
                            selected.seq_of(*u).and_then(NonZeroU32::new)
                        }
                    })
                    .collect();
                self.send_data(Data::Search(ids, None));
                ok(tag, None, "SEARCH done")
            }
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => {
                let mut uids = self
                    .selected
                    .as_ref()
                    .expect("selected")
                    .resolve(&sequence_set, uid);
                let changed_since = modifiers.iter().find_map(|m| match m {
                    FetchModifier::ChangedSince(v) => i64::try_from(v.get()).ok(),
                    FetchModifier::Vanished => None,
                });
                let vanished = modifiers
                    .iter()
                    .any(|m| matches!(m, FetchModifier::Vanished));
                if vanished && (!uid || !self.qresync || changed_since.is_none()) {
                    return bad(
                        Some(tag),
                        "VANISHED needs UID FETCH, CHANGEDSINCE and QRESYNC",
                    );
                }
                if let Some(since) = changed_since {
                    self.condstore = true;
                    if vanished {
                        self.vanished_earlier(since, Some(&sequence_set)).await;
                    }
                    let id = self.selected.as_ref().expect("selected").mailbox.id;
                    let entries = self.ctx.store.mailbox_entries(id).await.unwrap_or_default();
                    uids.retain(|u| entries.iter().any(|e| e.uid == *u && e.modseq > since));
                }
                let mut names = match macro_or_item_names {
                    MacroOrMessageDataItemNames::Macro(m) => m.expand().into_static(),
                    MacroOrMessageDataItemNames::MessageDataItemNames(n) => n,
                };
                // CHANGEDSINCE implies MODSEQ in the answer (RFC 7162 §3.1.4.1).
                if changed_since.is_some() && !names.contains(&MessageDataItemName::ModSeq) {
                    names.push(MessageDataItemName::ModSeq);
                }
                match self.fetch(&uids, &names, uid).await {
                    Ok(()) => ok(tag, None, "FETCH done"),
                    Err(FetchError::Store(err)) => refused(tag, &err),
                    Err(FetchError::Unservable(uid)) => {
                        no(tag, None, &format!("message UID {uid} cannot be served"))
                    }
                }
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => {
                let selected = self.selected.as_ref().expect("selected");
                if selected.read_only {
                    return no(tag, None, "mailbox is read-only (EXAMINE)");
                }
                let uids = selected.resolve(&sequence_set, uid);
                let op = match kind {
                    StoreType::Add => FlagOp::Add,
                    StoreType::Remove => FlagOp::Remove,
                    StoreType::Replace => FlagOp::Replace,
                };
                let flags: Vec<String> = flags.iter().map(ToString::to_string).collect();
                let since = modifiers.iter().find_map(|m| {
                    let imap_next::imap_types::command::StoreModifier::UnchangedSince(v) = m;
                    i64::try_from(*v).ok()
                });
                let mailbox = selected.mailbox.clone();
                match store.set_flags(&mailbox, &uids, op, &flags, since).await {
                    Ok(update) => {
                        let silent = matches!(response, StoreResponse::Silent);
                        for e in &update.changed {
                            let selected = self.selected.as_mut().expect("selected");
                            selected.known.insert(e.uid, (e.flags.clone(), e.modseq));
                            if (!silent || since.is_some())
                                && let Some(seq) = selected.seq_of(e.uid)
                            {
                                self.send_fetch_flags(seq, e.uid, &e.flags, e.modseq, uid);
                            }
                        }
                        // MODIFIED lists UIDs for UID STORE, sequence numbers otherwise.
                        let selected = self.selected.as_ref().expect("selected");
                        let mut modified: Vec<i64> = update
                            .modified
                            .iter()
                            .filter_map(|u| {
                                if uid {
                                    Some(*u)
                                } else {
                                    selected.seq_of(*u).map(i64::from)
                                }
                            })
                            .collect();
                        modified.sort_unstable();
                        match self::sequence_set(&modified) {
                            Some(set) => ok(
                                tag,
                                Some(Code::Modified(set)),
                                "some messages were changed meanwhile",
                            ),
                            None => ok(tag, None, "STORE done"),
                        }
                    }
                    Err(err) => refused(tag, &err),
                }
            }
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(tag, &sequence_set, &mailbox, uid, false).await,
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(tag, &sequence_set, &mailbox, uid, true).await,
            other => bad(Some(tag), &format!("{} is not supported", other.name())),
        }
    }

    fn send_fetch_flags(&mut self, seq: u32, uid: i64, flags: &str, modseq: i64, with_uid: bool) {
        let mut items = vec![MessageDataItem::Flags(flags_of(flags))];
        if with_uid {
            items.push(MessageDataItem::Uid(nz(uid)));
        }
        if self.condstore {
            items.push(MessageDataItem::ModSeq(nz64(modseq)));
        }
        if let (Some(seq), Ok(items)) = (NonZeroU32::new(seq), Vec1::try_from(items)) {
            self.send_data(Data::Fetch { seq, items });
        }
    }

    async fn list(
        &mut self,
        tag: Tag<'static>,
        reference: &str,
        pattern: &str,
        lsub: bool,
    ) -> Status<'static> {
        let user = self.user.as_ref().expect("authenticated");
        let full = format!("{reference}{pattern}");
        let delimiter = imap_next::imap_types::core::QuotedChar::try_from('/').ok();
        if pattern.is_empty() {
            // The hierarchy delimiter query.
            let data = Data::List {
                items: vec![FlagNameAttribute::Noselect],
                delimiter,
                mailbox: ImapMailbox::try_from("").unwrap_or(ImapMailbox::Inbox),
            };
            self.send_data(data);
            return ok(tag, None, "LIST done");
        }
        let mailboxes = match self.ctx.store.mailboxes(user.id).await {
            Ok(m) => m,
            Err(err) => return refused(tag, &err),
        };
        let names: Vec<String> = mailboxes.iter().map(|m| m.name.clone()).collect();
        for m in &mailboxes {
            if !wildcard_match(&full, &m.name) || (lsub && !m.subscribed) {
                continue;
            }
            let mut items = Vec::new();
            let has_children = names.iter().any(|n| n.starts_with(&format!("{}/", m.name)));
            for attr in [
                Some(if has_children {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                }),
                m.special_use.as_deref(),
            ]
            .into_iter()
            .flatten()
            {
                if let Ok(atom) = imap_next::imap_types::core::Atom::try_from(
                    attr.trim_start_matches('\\').to_owned(),
                ) {
                    items.push(FlagNameAttribute::from(atom));
                }
            }
            let mailbox = to_imap_mailbox(&m.name);
            self.send_data(if lsub {
                Data::Lsub {
                    items,
                    delimiter,
                    mailbox,
                }
            } else {
                Data::List {
                    items,
                    delimiter,
                    mailbox,
                }
            });
        }
        ok(tag, None, if lsub { "LSUB done" } else { "LIST done" })
    }

    async fn status_items(
        &self,
        user_id: i64,
        name: &str,
        wanted: &[StatusDataItemName],
    ) -> store::Result<Vec<StatusDataItem>> {
        let store = &self.ctx.store;
        let mailbox = store.mailbox(user_id, name).await?;
        let entries = store.mailbox_entries(mailbox.id).await?;
        let count = u32::try_from(entries.len()).unwrap_or(u32::MAX);
        let unseen =
            u32::try_from(entries.iter().filter(|e| !e.has("\\Seen")).count()).unwrap_or(u32::MAX);
        let deleted = u32::try_from(entries.iter().filter(|e| e.has("\\Deleted")).count())
            .unwrap_or(u32::MAX);
        Ok(wanted
            .iter()
            .filter_map(|w| match w {
                StatusDataItemName::Messages => Some(StatusDataItem::Messages(count)),
                StatusDataItemName::Recent => Some(StatusDataItem::Recent(0)),
                StatusDataItemName::UidNext => Some(StatusDataItem::UidNext(nz(mailbox.uid_next))),
                StatusDataItemName::UidValidity => {
                    Some(StatusDataItem::UidValidity(nz(mailbox.uid_validity)))
                }
                StatusDataItemName::Unseen => Some(StatusDataItem::Unseen(unseen)),
                StatusDataItemName::Deleted => Some(StatusDataItem::Deleted(deleted)),
                StatusDataItemName::HighestModSeq => Some(StatusDataItem::HighestModSeq(
                    u64::try_from(mailbox.highest_modseq).unwrap_or(0),
                )),
                _ => None,
            })
            .collect())
    }

    async fn select(
        &mut self,
        tag: Tag<'static>,
        name: &str,
        read_only: bool,
        parameters: &[SelectParameter],
    ) -> Status<'static> {
        let mut resync = None;
        for p in parameters {
            match p {
                SelectParameter::CondStore => self.condstore = true,
                SelectParameter::QResync {
                    uid_validity,
                    mod_sequence_value,
                    known_uids,
                    ..
                } => {
                    if !self.qresync {
                        return bad(Some(tag), "QRESYNC must be enabled first");
                    }
                    resync = Some((*uid_validity, *mod_sequence_value, known_uids.clone()));
                }
            }
        }
        let user = self.user.as_ref().expect("authenticated");
        self.selected = None;
        let store = &self.ctx.store;
        let mailbox = match store.mailbox(user.id, name).await {
            Ok(m) => m,
            Err(_) => return no(tag, None, "no such mailbox"),
        };
        let entries = match store.mailbox_entries(mailbox.id).await {
            Ok(e) => e,
            Err(err) => return refused(tag, &err),
        };
        let flags: Vec<Flag<'static>> =
            ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"]
                .iter()
                .filter_map(|f| {
                    Flag::try_from(*f)
                        .ok()
                        .map(bounded_static::IntoBoundedStatic::into_static)
                })
                .collect();
        self.send_data(Data::Flags(flags.clone()));
        self.send_data(Data::Exists(
            u32::try_from(entries.len()).unwrap_or(u32::MAX),
        ));
        self.send_data(Data::Recent(0));
        let mut perm: Vec<FlagPerm<'static>> = flags.into_iter().map(FlagPerm::Flag).collect();
        perm.push(FlagPerm::Asterisk);
        let untagged = |code: Code<'static>, msg: &str| {
            Status::ok(None, Some(code), text(msg)).unwrap_or_else(|_| unreachable_status())
        };
        let first_unseen = entries.iter().position(|e| !e.has("\\Seen"));
        let mut statuses = vec![
            untagged(Code::UidValidity(nz(mailbox.uid_validity)), "UIDs valid"),
            untagged(Code::UidNext(nz(mailbox.uid_next)), "predicted next UID"),
            untagged(Code::PermanentFlags(perm), "limited"),
            untagged(Code::HighestModSeq(nz64(mailbox.highest_modseq)), "highest"),
        ];
        if let Some(i) = first_unseen {
            statuses.push(untagged(
                Code::Unseen(nz(i64::try_from(i + 1).unwrap_or(1))),
                "first unseen",
            ));
        }
        for s in statuses {
            self.send(s);
        }
        self.selected = Some(Selected {
            uids: entries.iter().map(|e| e.uid).collect(),
            known: entries
                .iter()
                .map(|e| (e.uid, (e.flags.clone(), e.modseq)))
                .collect(),
            mailbox,
            read_only,
        });
        if let Some((validity, since, known)) = resync {
            self.resync(validity, since, known.as_ref()).await;
        }
        if read_only {
            ok(tag, Some(Code::ReadOnly), "EXAMINE done")
        } else {
            ok(tag, Some(Code::ReadWrite), "SELECT done")
        }
    }

    /// SELECT … (QRESYNC …): what vanished and what changed since the client's last sync,
    /// provided its UIDVALIDITY still holds.
    async fn resync(
        &mut self,
        validity: NonZeroU32,
        since: NonZeroU64,
        known: Option<&SequenceSet>,
    ) {
        let Some(selected) = self.selected.as_ref() else {
            return;
        };
        if i64::from(validity.get()) != selected.mailbox.uid_validity {
            return;
        }
        let since = i64::try_from(since.get()).unwrap_or(i64::MAX);
        self.vanished_earlier(since, known).await;
        self.changed_since(since).await;
    }

    /// `VANISHED (EARLIER)` for UIDs expunged after `since`, limited to `within`.
    async fn vanished_earlier(&mut self, since: i64, within: Option<&SequenceSet>) {
        let Some(selected) = self.selected.as_ref() else {
            return;
        };
        let Ok(gone) = self
            .ctx
            .store
            .expunged_since(selected.mailbox.id, since)
            .await
        else {
            return;
        };
        let gone: Vec<i64> = match within {
            Some(set) => {
                let largest = nz(selected.mailbox.uid_next);
                let allowed: std::collections::HashSet<i64> =
                    set.iter(largest).map(|u| i64::from(u.get())).collect();
                gone.into_iter().filter(|u| allowed.contains(u)).collect()
            }
            None => gone,
        };
        if let Some(known_uids) = sequence_set(&gone) {
            self.send_data(Data::Vanished {
                earlier: true,
                known_uids,
            });
        }
    }

    /// FETCH (UID FLAGS MODSEQ) for the entries changed after `since`.
    async fn changed_since(&mut self, since: i64) {
        let Some(selected) = self.selected.as_ref() else {
            return;
        };
        let Ok(entries) = self.ctx.store.mailbox_entries(selected.mailbox.id).await else {
            return;
        };
        for e in entries.iter().filter(|e| e.modseq > since) {
            if let Some(seq) = self.selected.as_ref().and_then(|s| s.seq_of(e.uid)) {
                self.send_fetch_flags(seq, e.uid, &e.flags, e.modseq, true);
            }
        }
    }

    /// Brings the client's view up to date: EXPUNGE (when allowed), EXISTS, FETCH FLAGS.
    async fn refresh(&mut self, allow_expunge: bool) {
        let Some(selected) = self.selected.as_ref() else {
            return;
        };
        // Every change bumps HIGHESTMODSEQ: when it has not moved, there is nothing to tell,
        // and one small query replaces reading the whole mailbox. Read before the entries, so
        // a change in between is seen again next time rather than missed.
        let fresh = match self.ctx.store.mailbox_by_id(selected.mailbox.id).await {
            Ok(m) if m.highest_modseq == selected.mailbox.highest_modseq => return,
            Ok(m) => m,
            Err(err) => {
                tracing::warn!(error = %err, "imap: cannot refresh the mailbox");
                return;
            }
        };
        let entries = match self.ctx.store.mailbox_entries(selected.mailbox.id).await {
            Ok(e) => e,
            Err(err) => {
                tracing::warn!(error = %err, "imap: cannot refresh the mailbox");
                return;
            }
        };
        let qresync = self.qresync;
        let current: HashMap<i64, (String, i64)> = entries
            .iter()
            .map(|e| (e.uid, (e.flags.clone(), e.modseq)))
            .collect();
        let mut updates = Vec::new();
        {
            let selected = self.selected.as_mut().expect("selected");
            if allow_expunge {
                // From the highest sequence number down, so earlier numbers stay valid.
                let mut vanished = Vec::new();
                for i in (0..selected.uids.len()).rev() {
                    if !current.contains_key(&selected.uids[i]) {
                        let uid = selected.uids.remove(i);
                        selected.known.remove(&uid);
                        vanished.push(uid);
                        if let Some(seq) = NonZeroU32::new(u32::try_from(i + 1).unwrap_or(u32::MAX))
                            && !qresync
                        {
                            updates.push(Data::Expunge(seq));
                        }
                    }
                }
                vanished.sort_unstable();
                if qresync && let Some(known_uids) = sequence_set(&vanished) {
                    updates.push(Data::Vanished {
                        earlier: false,
                        known_uids,
                    });
                }
            }
            let before = selected.uids.len();
            let last = selected.uids.last().copied().unwrap_or(0);
            for e in &entries {
                if e.uid > last {
                    selected.uids.push(e.uid);
                    selected.known.insert(e.uid, (e.flags.clone(), e.modseq));
                }
            }
            if selected.uids.len() != before {
                updates.push(Data::Exists(
                    u32::try_from(selected.uids.len()).unwrap_or(u32::MAX),
                ));
            }
        }
        for d in updates {
            self.send_data(d);
        }
        let mut changed = Vec::new();
        {
            let selected = self.selected.as_mut().expect("selected");
            for e in &entries {
                if let Some(known) = selected.known.get(&e.uid)
                    && known.0 != e.flags
                {
                    changed.push((e.uid, e.flags.clone(), e.modseq));
                    selected.known.insert(e.uid, (e.flags.clone(), e.modseq));
                }
            }
        }
        for (uid, flags, modseq) in changed {
            if let Some(seq) = self.selected.as_ref().and_then(|s| s.seq_of(uid)) {
                self.send_fetch_flags(seq, uid, &flags, modseq, true);
            }
        }
        // Expunges not yet told (not allowed during FETCH, STORE, SEARCH) keep the old
        // HIGHESTMODSEQ, so the next refresh looks again.
        if let Some(selected) = self.selected.as_mut()
            && selected.uids.iter().all(|u| current.contains_key(u))
        {
            selected.mailbox = fresh;
        }
    }

    async fn expunge(&mut self, tag: Tag<'static>, uids: Option<Vec<i64>>) -> Status<'static> {
        let selected = self.selected.as_ref().expect("selected");
        if selected.read_only {
            return no(tag, None, "mailbox is read-only (EXAMINE)");
        }
        let mailbox = selected.mailbox.clone();
        match self.ctx.store.expunge(&mailbox, uids.as_deref()).await {
            Ok(_) => {
                self.refresh(true).await;
                ok(tag, None, "EXPUNGE done")
            }
            Err(err) => refused(tag, &err),
        }
    }

    async fn copy(
        &mut self,
        tag: Tag<'static>,
        set: &SequenceSet,
        target: &ImapMailbox<'_>,
        uid: bool,
        remove: bool,
    ) -> Status<'static> {
        let user = self.user.as_ref().expect("authenticated");
        let selected = self.selected.as_ref().expect("selected");
        if remove && selected.read_only {
            return no(tag, None, "mailbox is read-only (EXAMINE)");
        }
        let uids = selected.resolve(set, uid);
        let to = match self.ctx.store.mailbox(user.id, &mailbox_name(target)).await {
            Ok(m) => m,
            Err(_) => return no(tag, Some(Code::TryCreate), "no such mailbox"),
        };
        let from = selected.mailbox.clone();
        match self.ctx.store.copy_entries(&from, &uids, &to, remove).await {
            Ok((validity, pairs)) => {
                let code = match (
                    uid_set(&pairs.iter().map(|p| p.0).collect::<Vec<_>>()),
                    uid_set(&pairs.iter().map(|p| p.1).collect::<Vec<_>>()),
                ) {
                    (Some(source), Some(destination)) => Some(Code::CopyUid {
                        uid_validity: nz(validity),
                        source,
                        destination,
                    }),
                    _ => None,
                };
                if remove {
                    if let Some(code) = code {
                        self.send(
                            Status::ok(None, Some(code), text("moved"))
                                .unwrap_or_else(|_| unreachable_status()),
                        );
                    }
                    self.refresh(true).await;
                    ok(tag, None, "MOVE done")
                } else {
                    ok(tag, code, "COPY done")
                }
            }
            Err(err) => refused(tag, &err),
        }
    }

    async fn fetch(
        &mut self,
        uids: &[i64],
        names: &[MessageDataItemName<'static>],
        by_uid: bool,
    ) -> Result<(), FetchError> {
        let selected = self.selected.as_ref().expect("selected");
        let mailbox = selected.mailbox.clone();
        let read_only = selected.read_only;
        let needs_content = names.iter().any(|n| {
            matches!(
                n,
                MessageDataItemName::BodyExt { .. }
                    | MessageDataItemName::Rfc822
                    | MessageDataItemName::Rfc822Header
                    | MessageDataItemName::Rfc822Text
                    | MessageDataItemName::Body
                    | MessageDataItemName::BodyStructure
                    | MessageDataItemName::Envelope
            )
        });
        let entries: HashMap<i64, store::Entry> = self
            .ctx
            .store
            .mailbox_entries(mailbox.id)
            .await
            .map_err(FetchError::Store)?
            .into_iter()
            .map(|e| (e.uid, e))
            .collect();
        let mut seen = Vec::new();
        let mut contents: HashMap<i64, store::Result<Vec<u8>>> = HashMap::new();
        for (i, &uid) in uids.iter().enumerate() {
            // Contents come in batches of CONTENT_BATCH consecutive requested UIDs: one query
            // each, and never the whole mailbox in memory at once.
            if needs_content && i % CONTENT_BATCH == 0 {
                let batch = &uids[i..uids.len().min(i + CONTENT_BATCH)];
                let (first, last) = (batch[0], batch[batch.len() - 1]);
                contents = self
                    .ctx
                    .store
                    .entry_contents(mailbox.id, first, last)
                    .await
                    .map_err(FetchError::Store)?
                    .into_iter()
                    .filter(|(u, _)| batch.contains(u))
                    .collect();
            }
            let Some(entry) = entries.get(&uid) else {
                continue;
            };
            let Some(seq) = self.selected.as_ref().and_then(|s| s.seq_of(uid)) else {
                continue;
            };
            let raw = if needs_content {
                match contents.remove(&uid) {
                    Some(Ok(raw)) => Some(raw),
                    Some(Err(err)) => {
                        tracing::error!(uid, error = %err, "imap: message not served");
                        return Err(FetchError::Unservable(uid));
                    }
                    None => continue,
                }
            } else {
                None
            };
            let raw = raw.as_deref().unwrap_or_default();
            let mut tree: Option<mime::Part> = None;
            let mut items = Vec::new();
            let mut sets_seen = false;
            if by_uid {
                items.push(MessageDataItem::Uid(nz(uid)));
            }
            for name in names {
                match name {
                    MessageDataItemName::Uid if !by_uid => {
                        items.push(MessageDataItem::Uid(nz(uid)))
                    }
                    MessageDataItemName::Uid => {}
                    MessageDataItemName::Flags => {
                        items.push(MessageDataItem::Flags(flags_of(&entry.flags)))
                    }
                    MessageDataItemName::InternalDate => {
                        if let Some(d) = date_time(entry.internal_date) {
                            items.push(MessageDataItem::InternalDate(d));
                        }
                    }
                    MessageDataItemName::Rfc822Size => items.push(MessageDataItem::Rfc822Size(
                        u32::try_from(entry.size).unwrap_or(u32::MAX),
                    )),
                    MessageDataItemName::ModSeq => {
                        items.push(MessageDataItem::ModSeq(nz64(entry.modseq)))
                    }
                    MessageDataItemName::Envelope => {
                        items.push(MessageDataItem::Envelope(mime::envelope(message::header(
                            raw,
                        ))));
                    }
                    MessageDataItemName::BodyStructure => {
                        let tree = tree.get_or_insert_with(|| mime::parse(raw));
                        items.push(MessageDataItem::BodyStructure(tree.structure(raw, true)));
                    }
                    MessageDataItemName::Body => {
                        let tree = tree.get_or_insert_with(|| mime::parse(raw));
                        items.push(MessageDataItem::Body(tree.structure(raw, false)));
                    }
                    MessageDataItemName::Rfc822 => {
                        sets_seen = true;
                        items.push(MessageDataItem::Rfc822(literal(raw)));
                    }
                    MessageDataItemName::Rfc822Header => {
                        items.push(MessageDataItem::Rfc822Header(literal(message::header(raw))))
                    }
                    MessageDataItemName::Rfc822Text => {
                        sets_seen = true;
                        items.push(MessageDataItem::Rfc822Text(literal(message::text(raw))));
                    }
                    MessageDataItemName::BodyExt {
                        section,
                        partial,
                        peek,
                    } => {
                        if !peek {
                            sets_seen = true;
                        }
                        let whole = section_bytes(raw, section.as_ref(), &mut tree);
                        let (data, origin) = match partial {
                            Some((start, len)) => (
                                message::partial(&whole, *start, len.get()).to_vec(),
                                Some(*start),
                            ),
                            None => (whole, None),
                        };
                        items.push(MessageDataItem::BodyExt {
                            section: section.clone(),
                            origin,
                            data: literal(&data),
                        });
                    }
                    _ => {}
                }
            }
            if sets_seen && !read_only && !entry.has("\\Seen") {
                seen.push(uid);
            }
            if let (Some(seq), Ok(items)) = (NonZeroU32::new(seq), Vec1::try_from(items)) {
                self.send_data(Data::Fetch { seq, items });
            }
        }
        if !seen.is_empty() {
            let _ = self
                .ctx
                .store
                .set_flags(&mailbox, &seen, FlagOp::Add, &["\\Seen".to_owned()], None)
                .await;
            self.refresh(false).await;
        }
        Ok(())
    }

    async fn search(&mut self, criteria: &Vec1<SearchKey<'static>>) -> Vec<i64> {
        let selected = self.selected.as_ref().expect("selected");
        let Ok(entries) = self.ctx.store.mailbox_entries(selected.mailbox.id).await else {
            return Vec::new();
        };
        let mut hits = Vec::new();
        for e in entries
            .iter()
            .filter(|e| selected.uids.binary_search(&e.uid).is_ok())
        {
            let mut content = None;
            let mut all = true;
            for key in criteria.as_ref() {
                if !self.matches(key, e, selected, &mut content).await {
                    all = false;
                    break;
                }
            }
            if all {
                hits.push(e.uid);
            }
        }
        hits
    }

    fn matches<'b>(
        &'b self,
        key: &'b SearchKey<'static>,
        e: &'b store::Entry,
        selected: &'b Selected,
        content: &'b mut Option<message::Searchable>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'b>> {
        Box::pin(async move {
            match key {
                SearchKey::All => true,
                SearchKey::And(keys) => {
                    for k in keys.as_ref() {
                        if !self.matches(k, e, selected, content).await {
                            return false;
                        }
                    }
                    true
                }
                SearchKey::Not(k) => !self.matches(k, e, selected, content).await,
                SearchKey::Or(a, b) => {
                    self.matches(a, e, selected, content).await
                        || self.matches(b, e, selected, content).await
                }
                SearchKey::Seen => e.has("\\Seen"),
                SearchKey::Unseen | SearchKey::New => !e.has("\\Seen"),
                SearchKey::Answered => e.has("\\Answered"),
                SearchKey::Unanswered => !e.has("\\Answered"),
                SearchKey::Deleted => e.has("\\Deleted"),
                SearchKey::Undeleted => !e.has("\\Deleted"),
                SearchKey::Flagged => e.has("\\Flagged"),
                SearchKey::Unflagged => !e.has("\\Flagged"),
                SearchKey::Draft => e.has("\\Draft"),
                SearchKey::Undraft => !e.has("\\Draft"),
                SearchKey::Recent => false,
                SearchKey::Old => true,
                SearchKey::Keyword(k) => e.has(k.inner()),
                SearchKey::Unkeyword(k) => !e.has(k.inner()),
                SearchKey::Larger(n) => e.size > i64::from(*n),
                SearchKey::Smaller(n) => e.size < i64::from(*n),
                SearchKey::Uid(set) => selected.resolve(set, true).contains(&e.uid),
                SearchKey::SequenceSet(set) => selected.resolve(set, false).contains(&e.uid),
                SearchKey::ModSequence { modseq, .. } => {
                    u64::try_from(e.modseq).unwrap_or(0) >= *modseq
                }
                SearchKey::Since(d) => day(e.internal_date) >= *d.as_ref(),
                SearchKey::Before(d) => day(e.internal_date) < *d.as_ref(),
                SearchKey::On(d) => day(e.internal_date) == *d.as_ref(),
                SearchKey::SentSince(_)
                | SearchKey::SentBefore(_)
                | SearchKey::SentOn(_)
                | SearchKey::Subject(_)
                | SearchKey::From(_)
                | SearchKey::To(_)
                | SearchKey::Cc(_)
                | SearchKey::Bcc(_)
                | SearchKey::Body(_)
                | SearchKey::Text(_)
                | SearchKey::Header(..) => {
                    if content.is_none() {
                        // What is searched is what is served: a notice, for sensitive mail.
                        let raw = self
                            .ctx
                            .store
                            .entry_content(selected.mailbox.id, e.uid)
                            .await
                            .unwrap_or_default();
                        *content = Some(message::Searchable::new(&raw));
                    }
                    let Some(text) = content.as_ref() else {
                        return false;
                    };
                    match key {
                        SearchKey::Subject(s) => text.header_contains("subject", &astring(s)),
                        SearchKey::From(s) => text.header_contains("from", &astring(s)),
                        SearchKey::To(s) => text.header_contains("to", &astring(s)),
                        SearchKey::Cc(s) => text.header_contains("cc", &astring(s)),
                        SearchKey::Bcc(s) => text.header_contains("bcc", &astring(s)),
                        SearchKey::Body(s) => text.body_contains(&astring(s)),
                        // SENT* compare the Date header's day (RFC 3501 §6.4.4).
                        SearchKey::SentSince(d) => text.sent().is_some_and(|s| s >= *d.as_ref()),
                        SearchKey::SentBefore(d) => text.sent().is_some_and(|s| s < *d.as_ref()),
                        SearchKey::SentOn(d) => text.sent().is_some_and(|s| s == *d.as_ref()),
                        SearchKey::Header(name, v) => {
                            text.header_contains(&astring(name), &astring(v))
                        }
                        _ => text.text_contains(&match key {
                            SearchKey::Text(s) => astring(s),
                            _ => String::new(),
                        }),
                    }
                }
            }
        })
    }
}

/// The bytes of `section` of `raw` (the whole message when `None`).
fn section_bytes(
    raw: &[u8],
    section: Option<&Section<'_>>,
    tree: &mut Option<mime::Part>,
) -> Vec<u8> {
    let fields = |f: &Vec1<AString<'_>>| f.as_ref().iter().map(astring).collect::<Vec<_>>();
    let path = |p: &imap_next::imap_types::fetch::Part| {
        p.0.as_ref().iter().map(|n| n.get()).collect::<Vec<u32>>()
    };
    let mut part = |p: &imap_next::imap_types::fetch::Part, kind: mime::SectionKind| -> Vec<u8> {
        let root = tree.get_or_insert_with(|| mime::parse(raw));
        root.find(&path(p))
            .map(|found| found.bytes(raw, kind).to_vec())
            .unwrap_or_default()
    };
    match section {
        None => raw.to_vec(),
        Some(Section::Header(None)) => message::header(raw).to_vec(),
        Some(Section::Text(None)) => message::text(raw).to_vec(),
        Some(Section::HeaderFields(None, f)) => message::header_fields(raw, &fields(f), false),
        Some(Section::HeaderFieldsNot(None, f)) => message::header_fields(raw, &fields(f), true),
        Some(Section::Part(p)) => part(p, mime::SectionKind::Body),
        Some(Section::Mime(p)) => part(p, mime::SectionKind::Mime),
        Some(Section::Header(Some(p))) => part(p, mime::SectionKind::Header),
        Some(Section::Text(Some(p))) => part(p, mime::SectionKind::Text),
        Some(Section::HeaderFields(Some(p), f)) => {
            message::header_fields(&part(p, mime::SectionKind::Header), &fields(f), false)
        }
        Some(Section::HeaderFieldsNot(Some(p), f)) => {
            message::header_fields(&part(p, mime::SectionKind::Header), &fields(f), true)
        }
    }
}

fn day(ms: i64) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp_millis(ms).map_or(chrono::NaiveDate::MIN, |d| d.date_naive())
}

fn uid_set(uids: &[i64]) -> Option<UidSet> {
    let elements: Vec<UidElement> = uids.iter().map(|u| UidElement::Single(nz(*u))).collect();
    Vec1::try_from(elements).ok().map(UidSet)
}

/// A sequence set of UIDs (`1:3,7`), or `None` for none.
fn sequence_set(uids: &[i64]) -> Option<SequenceSet> {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        while i + 1 < uids.len() && uids[i + 1] == uids[i] + 1 {
            i += 1;
        }
        parts.push(if uids[i] == start {
            start.to_string()
        } else {
            format!("{start}:{}", uids[i])
        });
        i += 1;
    }
    SequenceSet::try_from(parts.join(",").as_str())
        .ok()
        .map(bounded_static::IntoBoundedStatic::into_static)
}

fn code(name: &'static str) -> Code<'static> {
    Code::Other(CodeOther::unvalidated(name.as_bytes()))
}

fn list_pattern(m: &ListMailbox<'_>) -> String {
    let raw = match m {
        ListMailbox::Token(t) => String::from_utf8_lossy(t.as_ref()).into_owned(),
        ListMailbox::String(s) => String::from_utf8_lossy(s.as_ref()).into_owned(),
    };
    utf7::decode(&raw).unwrap_or(raw)
}

/// LIST wildcards: `*` matches anything, `%` anything but the delimiter.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(b'*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some(b'%') => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != b'/')
                .any(|i| go(&p[1..], &n[i..])),
            Some(&c) => {
                n.first().is_some_and(|&d| d.eq_ignore_ascii_case(&c)) && go(&p[1..], &n[1..])
            }
        }
    }
    let pattern = if pattern.len() >= 5 && pattern[..5].eq_ignore_ascii_case("INBOX") {
        format!("INBOX{}", &pattern[5..])
    } else {
        pattern.to_owned()
    };
    go(pattern.as_bytes(), name.as_bytes())
}

/// Runs a session on `stream` until it ends or asks for STARTTLS.
pub async fn run<S: AsyncRead + AsyncWrite + Unpin + Send>(
    mut stream: S,
    tls: bool,
    greet: bool,
    peer: std::net::IpAddr,
    ctx: &Context,
) -> End<S> {
    let mut options = Options::default();
    options.max_literal_size = ctx.config.imap.max_message_bytes;
    options.max_command_size = ctx.config.imap.max_message_bytes.saturating_add(64 * 1024);
    options.crlf_relaxed = true;
    let _ = options.set_literal_reject_text(format!(
        "literal too large: at most {} bytes (imap.max_message_bytes)",
        ctx.config.imap.max_message_bytes
    ));
    let greeting = Greeting::ok(None, "ratspost IMAP ready").expect("static greeting");
    let mut session = Session {
        ctx,
        server: Server::new(options, greeting),
        tls,
        peer: peer.to_string(),
        user: None,
        selected: None,
        condstore: false,
        qresync: false,
        idle_tag: None,
        pending_auth: None,
        logout: false,
        errors: 0,
    };
    let mut discard = !greet;
    let mut changes: broadcast::Receiver<i64> = ctx.store.mailbox_changes();
    let mut buf = vec![0u8; 8 * 1024];
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
                    return End::StartTls(stream);
                }
                if tagged && session.logout {
                    return End::Done;
                }
            }
            Step::Event(Event::CommandReceived { command }) => {
                let is_starttls = matches!(command.body, CommandBody::StartTLS) && !session.tls;
                session.command(command).await;
                if is_starttls {
                    starttls_pending = true;
                    continue;
                }
                if session.selected.is_some() && !session.logout {
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
                let user_id = session.user.as_ref().map(|u| u.id);
                // Before login a client gets a minute, so idle unauthenticated connections
                // cannot hold the connection slots.
                let timeout = if user_id.is_some() {
                    ctx.config.imap.timeout
                } else {
                    ctx.config.imap.timeout.min(UNAUTHENTICATED_TIMEOUT)
                };
                let idling = session.idle_tag.is_some();
                tokio::select! {
                    read = driver::read(&mut stream, &mut session.server, &mut buf) => {
                        if read.is_err() {
                            return End::Done;
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
                    () = tokio::time::sleep(POLL), if idling => session.refresh(true).await,
                    () = tokio::time::sleep(timeout) => {
                        session.send(Status::bye(None, text("autologout: idle for too long")).unwrap_or_else(|_| unreachable_status()));
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

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn list_wildcards() {
        assert!(wildcard_match("*", "INBOX"));
        assert!(wildcard_match("*", "Projekte/2026"));
        assert!(wildcard_match("%", "Sent"));
        assert!(!wildcard_match("%", "Projekte/2026"));
        assert!(wildcard_match("Projekte/%", "Projekte/2026"));
        assert!(wildcard_match("inbox", "INBOX"));
        assert!(!wildcard_match("Sent", "Sent Items"));
    }
}
