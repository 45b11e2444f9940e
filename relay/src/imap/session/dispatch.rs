//! The commands of the authenticated and selected states (RFC 3501 §6.3, §6.4), each handed to its family.

use super::mailboxes::list_pattern;
#[allow(clippy::wildcard_imports)]
use super::*;

impl Session<'_> {
    pub(super) async fn authenticated(
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
                        self.enable_condstore();
                        enabled.push(c.clone());
                    } else if c.to_string().eq_ignore_ascii_case("QRESYNC") {
                        // QRESYNC implies CONDSTORE (RFC 7162 §3.2.3).
                        self.enable_condstore();
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
                let (bytes, flags) = appended(&message, &flags);
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

    pub(super) async fn selected_command(
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
                if criteria.as_ref().iter().any(search::has_modseq) {
                    self.enable_condstore();
                }
                let hits = match self.search(&criteria).await {
                    Ok(hits) => hits,
                    Err(search::SearchError::Store(err)) => return refused(tag, &err),
                    Err(search::SearchError::TimeLimit) => {
                        return no(
                            tag,
                            Some(code("LIMIT")),
                            "SEARCH took too long (imap.max_command_secs): narrow it",
                        );
                    }
                };
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
            CommandBody::Sort {
                sort_criteria,
                charset,
                search_criteria,
                uid,
            } => {
                self.sort(tag, sort_criteria, &charset, &search_criteria, uid)
                    .await
            }
            CommandBody::Thread {
                algorithm,
                charset,
                search_criteria,
                uid,
            } => {
                self.thread(tag, &algorithm, &charset, &search_criteria, uid)
                    .await
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
                let mut names = match macro_or_item_names {
                    MacroOrMessageDataItemNames::Macro(m) => m.expand().into_static(),
                    MacroOrMessageDataItemNames::MessageDataItemNames(n) => n,
                };
                if changed_since.is_some() || names.contains(&MessageDataItemName::ModSeq) {
                    self.enable_condstore();
                }
                if let Some(since) = changed_since {
                    if vanished {
                        self.vanished_earlier(since, Some(&sequence_set)).await;
                    }
                    let id = self.selected.as_ref().expect("selected").mailbox.id;
                    let (changed, _) = self
                        .ctx
                        .store
                        .changes_since(id, since)
                        .await
                        .unwrap_or_default();
                    // Entries come sorted by UID: a binary search each, not a scan.
                    uids.retain(|u| changed.binary_search_by_key(u, |e| e.uid).is_ok());
                }
                // CHANGEDSINCE implies MODSEQ in the answer (RFC 7162 §3.1.4.1).
                if changed_since.is_some() && !names.contains(&MessageDataItemName::ModSeq) {
                    names.push(MessageDataItemName::ModSeq);
                }
                // The answer goes out batch by batch (`Session::fetch_step`); the tagged
                // status comes with the last one.
                match self.start_fetch(tag.clone(), uids, names, uid).await {
                    Ok(()) => ok(tag, None, "FETCH started"),
                    Err(FetchError::Store(err)) => refused(tag, &err),
                    Err(_) => unreachable_status(),
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
                // \Recent belongs to the session, never to the message.
                let flags: Vec<String> = flags
                    .iter()
                    .map(ToString::to_string)
                    .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                    .collect();
                let since = modifiers.iter().find_map(|m| {
                    let imap_next::imap_types::command::StoreModifier::UnchangedSince(v) = m;
                    i64::try_from(*v).ok()
                });
                let mailbox = selected.mailbox.clone();
                if since.is_some() {
                    self.enable_condstore();
                }
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
}

/// An APPENDed message's bytes and the flags to store with it: `\Recent` belongs to the
/// session, never to the message (APPEND and MULTIAPPEND alike).
pub(super) fn appended(
    message: &LiteralOrLiteral8<'_>,
    flags: &[Flag<'_>],
) -> (Vec<u8>, Vec<String>) {
    let bytes = match message {
        LiteralOrLiteral8::Literal(l) => l.data().to_vec(),
        LiteralOrLiteral8::Literal8(l) => l.data.to_vec(),
    };
    let flags = flags
        .iter()
        .map(ToString::to_string)
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .collect();
    (bytes, flags)
}
