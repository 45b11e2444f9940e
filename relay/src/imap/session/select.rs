//! SELECT and EXAMINE (with CONDSTORE/QRESYNC, RFC 7162), the snapshot brought up to date, EXPUNGE.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Session<'_> {
    pub(super) async fn select(
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
        // SELECT claims the mail no session has seen yet (\Recent); EXAMINE changes nothing
        // and shows as recent what nobody has claimed.
        let recent = if read_only {
            mailbox.recent_uid..i64::MAX
        } else if mailbox.recent_uid >= mailbox.uid_next {
            // Nothing to claim: no write (mail arriving meanwhile is claimed at the refresh).
            mailbox.uid_next..mailbox.uid_next
        } else {
            match store.claim_recent(mailbox.id).await {
                Ok(range) => range,
                Err(err) => return refused(tag, &err),
            }
        };
        let mut keywords: Vec<String> = Vec::new();
        for e in &entries {
            for k in keywords_of(&e.flags) {
                if !keywords.iter().any(|have| have.eq_ignore_ascii_case(k)) {
                    keywords.push(k.to_owned());
                }
            }
        }
        let flags = flag_list(&keywords);
        self.send_data(Data::Flags(flags.clone()));
        self.send_data(Data::Exists(
            u32::try_from(entries.len()).unwrap_or(u32::MAX),
        ));
        let recent_count = entries.iter().filter(|e| recent.contains(&e.uid)).count();
        self.send_data(Data::Recent(
            u32::try_from(recent_count).unwrap_or(u32::MAX),
        ));
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
            recent: vec![recent],
            keywords,
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
    pub(super) async fn resync(
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
    pub(super) async fn vanished_earlier(&mut self, since: i64, within: Option<&SequenceSet>) {
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
                // As ranges: a client's `1:4294967295` must not become four billion UIDs.
                let largest = u32::try_from(selected.mailbox.uid_next).unwrap_or(u32::MAX);
                let allowed = Ranges::new(set, largest);
                gone.into_iter()
                    .filter(|u| allowed.contains_i64(*u))
                    .collect()
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
    pub(super) async fn changed_since(&mut self, since: i64) {
        let Some(selected) = self.selected.as_ref() else {
            return;
        };
        let Ok((entries, _)) = self
            .ctx
            .store
            .changes_since(selected.mailbox.id, since)
            .await
        else {
            return;
        };
        for e in &entries {
            if let Some(seq) = self.selected.as_ref().and_then(|s| s.seq_of(e.uid)) {
                self.send_fetch_flags(seq, e.uid, &e.flags, e.modseq, true);
            }
        }
    }

    /// Brings the client's view up to date: EXPUNGE (when allowed), EXISTS, FETCH FLAGS.
    ///
    /// Reads only what changed since the HIGHESTMODSEQ this session last told (new and
    /// changed entries, and the UIDs expunged since), so a session in IDLE on a large mailbox
    /// costs little per change.
    pub(super) async fn refresh(&mut self, allow_expunge: bool) {
        let Some(selected) = self.selected.as_ref() else {
            return;
        };
        let (id, since) = (selected.mailbox.id, selected.mailbox.highest_modseq);
        // Every change bumps HIGHESTMODSEQ: when it has not moved, there is nothing to tell,
        // and one small query is all. Read before the changes, so a change in between is
        // seen again next time rather than missed (telling it twice changes nothing).
        let store = &self.ctx.store;
        let fresh = match store.mailbox_by_id(id).await {
            Ok(m) if m.highest_modseq == since => return,
            Ok(m) => m,
            Err(err) => {
                tracing::warn!(error = %err, "imap: cannot refresh the mailbox");
                return;
            }
        };
        let (changed, expunged) = match store.changes_since(id, since).await {
            Ok(changes) => changes,
            Err(err) => {
                tracing::warn!(error = %err, "imap: cannot refresh the mailbox");
                return;
            }
        };
        let qresync = self.qresync;
        let mut updates = Vec::new();
        let mut new_mail = false;
        // Expunges not yet told (not allowed during FETCH, STORE, SEARCH).
        let mut untold = false;
        let before;
        {
            let selected = self.selected.as_mut().expect("selected");
            // Ascending UIDs, so from the highest sequence number down earlier numbers stay
            // valid while each is removed.
            let gone: Vec<(usize, i64)> = expunged
                .iter()
                .filter_map(|uid| selected.uids.binary_search(uid).ok().map(|i| (i, *uid)))
                .collect();
            if allow_expunge {
                for &(i, uid) in gone.iter().rev() {
                    selected.uids.remove(i);
                    selected.known.remove(&uid);
                    if let Some(seq) = NonZeroU32::new(u32::try_from(i + 1).unwrap_or(u32::MAX))
                        && !qresync
                    {
                        updates.push(Data::Expunge(seq));
                    }
                }
                let vanished: Vec<i64> = gone.iter().map(|&(_, uid)| uid).collect();
                if qresync && let Some(known_uids) = sequence_set(&vanished) {
                    updates.push(Data::Vanished {
                        earlier: false,
                        known_uids,
                    });
                }
            } else {
                untold = !gone.is_empty();
            }
            before = selected.uids.len();
            let last = selected.uids.last().copied().unwrap_or(0);
            for e in changed.iter().filter(|e| e.uid > last) {
                selected.uids.push(e.uid);
                selected.known.insert(e.uid, (e.flags.clone(), e.modseq));
            }
            if selected.uids.len() != before {
                new_mail = !selected.read_only;
            }
        }
        // New mail seen first by this (read-write) session is \Recent here.
        if new_mail {
            match store.claim_recent(id).await {
                Ok(range) if !range.is_empty() => {
                    self.selected.as_mut().expect("selected").add_recent(range);
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "imap: cannot claim recent mail"),
            }
        }
        {
            let selected = self.selected.as_mut().expect("selected");
            if selected.uids.len() != before {
                updates.push(Data::Exists(
                    u32::try_from(selected.uids.len()).unwrap_or(u32::MAX),
                ));
                // The number of recent messages changed with the new mail (RFC 3501 §7.3.2).
                updates.push(Data::Recent(
                    u32::try_from(selected.recent_count()).unwrap_or(u32::MAX),
                ));
            }
        }
        for d in updates {
            self.send_data(d);
        }
        let mut flagged = Vec::new();
        {
            let selected = self.selected.as_mut().expect("selected");
            for e in &changed {
                if let Some(known) = selected.known.get_mut(&e.uid)
                    && known.0 != e.flags
                {
                    flagged.push((e.uid, e.flags.clone(), e.modseq));
                    *known = (e.flags.clone(), e.modseq);
                }
            }
        }
        for (uid, flags, modseq) in flagged {
            if let Some(seq) = self.selected.as_ref().and_then(|s| s.seq_of(uid)) {
                self.send_fetch_flags(seq, uid, &flags, modseq, true);
            }
        }
        // Expunges not yet told keep the old HIGHESTMODSEQ, so the next refresh looks again.
        if !untold && let Some(selected) = self.selected.as_mut() {
            selected.mailbox = fresh;
        }
    }

    pub(super) async fn expunge(
        &mut self,
        tag: Tag<'static>,
        uids: Option<Vec<i64>>,
    ) -> Status<'static> {
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
}
