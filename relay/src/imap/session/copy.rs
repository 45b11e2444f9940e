//! COPY and MOVE (RFC 3501 §6.4.7, RFC 6851), with COPYUID (RFC 4315).

#[allow(clippy::wildcard_imports)]
use super::*;

impl Session<'_> {
    pub(super) async fn copy(
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
}
