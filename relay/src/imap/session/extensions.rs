//! ESEARCH (RFC 4731, with CONDSTORE's MODSEQ, RFC 7162 §3.1.5) and MULTIAPPEND
//! (RFC 3502): the commands [`crate::imap::extended`] recognises. Their answers are written
//! as bytes — imap-types has no ESEARCH response and no APPENDUID with a set — and go to
//! the client before anything the session queues afterwards.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::imap::extended::{Extended, SearchReturn};
use imap_codec::CommandCodec;
use imap_codec::decode::Decoder as _;

/// One command parsed by imap-codec, or `None`.
fn decoded(command: &[u8]) -> Option<Command<'static>> {
    CommandCodec::default()
        .decode(command)
        .ok()
        .map(|(_, c)| c.into_static())
}

impl Session<'_> {
    /// The answer to `ext`, untagged responses and the tagged status, as bytes.
    pub(super) async fn extended(&mut self, ext: Extended) -> Vec<u8> {
        match ext {
            Extended::Bad { tag, why } => format!("{tag} BAD {why}\r\n").into_bytes(),
            Extended::Search {
                tag,
                command,
                uid,
                ret,
            } => self.esearch(&tag, &command, uid, ret).await,
            Extended::MultiAppend { tag, commands } => self.multiappend(&tag, &commands).await,
            Extended::List {
                tag,
                select,
                reference,
                patterns,
                ret,
            } => {
                self.list_extended(&tag, select, &reference, &patterns, &ret)
                    .await
            }
        }
    }

    /// `[UID] SEARCH RETURN (…)`: `* ESEARCH (TAG "t") [UID] [MIN n] [MAX n] [ALL set]
    /// [COUNT n] [MODSEQ n]`; nothing but the tag (and `COUNT 0`) when nothing matches.
    async fn esearch(
        &mut self,
        tag: &str,
        command: &[u8],
        uid: bool,
        ret: SearchReturn,
    ) -> Vec<u8> {
        let Some(Command {
            body: CommandBody::Search { criteria, .. },
            ..
        }) = decoded(command)
        else {
            return format!("{tag} BAD invalid SEARCH arguments\r\n").into_bytes();
        };
        if self.selected.is_none() {
            return format!("{tag} BAD SEARCH needs a selected mailbox\r\n").into_bytes();
        }
        let asks_modseq = criteria.as_ref().iter().any(search::has_modseq);
        if asks_modseq {
            self.enable_condstore();
        }
        let hits = match self.search(&criteria).await {
            Ok(hits) => hits,
            Err(search::SearchError::TimeLimit) => {
                return format!(
                    "{tag} NO [LIMIT] SEARCH took too long (imap.max_command_secs): narrow it\r\n"
                )
                .into_bytes();
            }
            Err(search::SearchError::Store(err)) => {
                tracing::error!(error = %err, "imap: ESEARCH failed");
                return format!("{tag} NO [SERVERBUG] SEARCH failed\r\n").into_bytes();
            }
        };
        let selected = self.selected.as_ref().expect("selected");
        // (number reported, UID) in ascending order.
        let mut found: Vec<(i64, i64)> = hits
            .iter()
            .filter_map(|&u| {
                if uid {
                    Some((u, u))
                } else {
                    selected.seq_of(u).map(|s| (i64::from(s), u))
                }
            })
            .collect();
        found.sort_unstable();
        let mut out = format!("* ESEARCH (TAG \"{tag}\")");
        if uid {
            out.push_str(" UID");
        }
        // The messages whose mod-sequence counts for MODSEQ: those reported.
        let mut reported: Vec<i64> = Vec::new();
        if let (Some(first), Some(last)) = (found.first(), found.last()) {
            if ret.min {
                out.push_str(&format!(" MIN {}", first.0));
                reported.push(first.1);
            }
            if ret.max {
                out.push_str(&format!(" MAX {}", last.0));
                reported.push(last.1);
            }
            if ret.all {
                let numbers: Vec<i64> = found.iter().map(|f| f.0).collect();
                out.push_str(&format!(" ALL {}", compact(&numbers)));
            }
            if ret.all || ret.count {
                reported.extend(found.iter().map(|f| f.1));
            }
        }
        if ret.count {
            out.push_str(&format!(" COUNT {}", found.len()));
        }
        if asks_modseq
            && let Some(highest) = reported
                .iter()
                .filter_map(|u| selected.known.get(u).map(|(_, m)| *m))
                .max()
        {
            out.push_str(&format!(" MODSEQ {highest}"));
        }
        out.push_str(&format!("\r\n{tag} OK SEARCH done\r\n"));
        out.into_bytes()
    }

    /// APPEND of several messages: all or none (RFC 3502 §6.3.11); `APPENDUID` with the set
    /// of new UIDs (RFC 4315).
    async fn multiappend(&mut self, tag: &str, commands: &[Vec<u8>]) -> Vec<u8> {
        let mut messages = Vec::with_capacity(commands.len());
        for command in commands {
            let Some(Command {
                body:
                    CommandBody::Append {
                        mailbox,
                        flags,
                        date,
                        message,
                    },
                ..
            }) = decoded(command)
            else {
                return format!("{tag} BAD invalid APPEND arguments\r\n").into_bytes();
            };
            let (bytes, flags) = super::dispatch::appended(&message, &flags);
            messages.push((
                mailbox_name(&mailbox),
                flags,
                date.map(|d| d.as_ref().timestamp_millis()),
                bytes,
            ));
        }
        let user_id = self.user.as_ref().expect("authenticated").id;
        let store = self.ctx.store.clone();
        let Ok(target) = store.mailbox(user_id, &messages[0].0).await else {
            return format!("{tag} NO [TRYCREATE] no such mailbox\r\n").into_bytes();
        };
        let now = store::now_millis();
        let mut uids = Vec::with_capacity(messages.len());
        let mut validity = target.uid_validity;
        for (_, flags, date, bytes) in &messages {
            match store
                .append_entry(&target, bytes, flags, date.unwrap_or(now))
                .await
            {
                Ok((v, uid)) => {
                    validity = v;
                    uids.push(uid);
                }
                Err(err) => {
                    // None of them, then: what was appended goes again.
                    tracing::error!(error = %err, "imap: MULTIAPPEND failed, undoing");
                    if !uids.is_empty() {
                        let _ = store
                            .set_flags(&target, &uids, FlagOp::Add, &["\\Deleted".to_owned()], None)
                            .await;
                        let _ = store.expunge(&target, Some(&uids)).await;
                    }
                    return format!("{tag} NO APPEND failed: none of the messages was stored\r\n")
                        .into_bytes();
                }
            }
        }
        format!(
            "{tag} OK [APPENDUID {validity} {}] APPEND done\r\n",
            compact(&uids)
        )
        .into_bytes()
    }
}
