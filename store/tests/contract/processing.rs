//! Contract tests of the pipeline's end of a message (issue #17): pending messages read for
//! many at once, and completions committed together — all or nothing, each once.

use store::testing::TestDb;
use store::{Completion, MailboxNotice, MessageState, Store, VerdictRecord};

use super::anna_with_messages;

fn verdict(sensitive: bool) -> VerdictRecord {
    VerdictRecord {
        sensitive,
        categories: if sensitive {
            vec!["tax_id".into()]
        } else {
            Vec::new()
        },
        findings: "[]".into(),
    }
}

/// A completion of message `id` that stores `new_verdict` (`None`: its verdict is stored)
/// and, when sensitive, files `notice` for `user` with token hash `token`.
async fn completion(
    store: &Store,
    id: i64,
    new_verdict: Option<VerdictRecord>,
    user: i64,
    token: &str,
) -> Completion {
    let sensitive = new_verdict.as_ref().is_some_and(|v| v.sensitive);
    let raw = store.message_raw(id).await.expect("raw");
    Completion {
        size: i64::try_from(raw.len()).expect("size"),
        users: vec![user],
        message_id: id,
        sha256: format!("sha-{id}"),
        categories: if sensitive {
            vec!["tax_id".into()]
        } else {
            Vec::new()
        },
        new_verdict,
        decisions: Vec::new(),
        mailbox: if sensitive {
            vec![MailboxNotice {
                user_id: user,
                body: format!("Subject: notice {id}\r\n\r\nsee the link\r\n").into_bytes(),
                token: (token.to_owned(), store::now_millis() + 60_000),
            }]
        } else {
            Vec::new()
        },
    }
}

pub(super) async fn pending_messages_are_read_together_and_completed_in_one_commit(db: &TestDb) {
    let store = db.open().await;
    let (anna, ids) =
        anna_with_messages(&store, &["anna@stadt.test", "a.x@stadt.test"], "p", 3).await;
    // The second was classified by an earlier version, which stored the verdict first.
    assert!(
        store
            .record_verdict(ids[1], &verdict(false))
            .await
            .expect("verdict")
    );
    let pending = store
        .pending_messages(&[ids[2], ids[0], ids[1], 999_999], i64::MAX)
        .await
        .expect("pending");
    assert_eq!(
        pending.iter().map(|p| p.id).collect::<Vec<_>>(),
        ids,
        "ordered by id, the unknown id left out"
    );
    // A byte budget: the first message always, then only what fits.
    let one = store
        .pending_messages(&ids, 1)
        .await
        .expect("pending within a budget");
    assert_eq!(one.iter().map(|p| p.id).collect::<Vec<_>>(), [ids[0]]);
    let size = i64::try_from(pending[0].raw.len()).expect("size");
    let two = store
        .pending_messages(&ids, 2 * size)
        .await
        .expect("pending within a budget");
    assert_eq!(two.iter().map(|p| p.id).collect::<Vec<_>>(), ids[..2]);
    assert_eq!(pending[0].state, MessageState::Received);
    assert_eq!(pending[0].verdict, None);
    assert_eq!(pending[1].state, MessageState::Classified);
    assert_eq!(pending[1].verdict, Some(verdict(false)));
    assert!(String::from_utf8_lossy(&pending[0].raw).contains("p0"));
    assert_eq!(pending[0].envelope.helo, "upstream.example.org");
    assert_eq!(
        pending[0].recipients,
        [("anna@stadt.test".to_owned(), anna, "anna".to_owned())]
    );

    let batch = [
        completion(&store, ids[0], Some(verdict(true)), anna, "token-0").await,
        completion(&store, ids[1], None, anna, "unused").await,
        completion(&store, ids[2], Some(verdict(false)), anna, "unused").await,
    ];
    let done = store
        .complete_messages(&batch, store::now_millis())
        .await
        .expect("complete");
    assert_eq!(done, [true, true, true]);
    assert_eq!(
        store
            .messages_in_state(MessageState::Processed, 10)
            .await
            .expect("processed"),
        ids
    );
    assert_eq!(
        store.verdict(ids[0]).await.expect("verdict"),
        Some(verdict(true))
    );
    assert_eq!(
        store.verdict(ids[1]).await.expect("verdict"),
        Some(verdict(false)),
        "a stored verdict stays"
    );
    let notice = store
        .mailbox_copy(ids[0], anna)
        .await
        .expect("copy")
        .expect("processed");
    assert!(String::from_utf8_lossy(&notice).contains("notice"));
    assert!(
        store
            .resolve_notice_token("token-0", store::now_millis())
            .await
            .expect("token")
            .is_some()
    );
    let inbox = store.mailbox(anna, "INBOX").await.expect("INBOX");
    let entries = store.mailbox_entries(inbox.id).await.expect("entries");
    // One entry each, UIDs in message order; RFC822.SIZE is what the entry serves.
    assert_eq!(entries.iter().map(|e| e.uid).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(entries[0].size, i64::try_from(notice.len()).expect("size"));
    for (entry, message) in entries.iter().zip(&pending).skip(1) {
        assert_eq!(entry.size, i64::try_from(message.raw.len()).expect("size"));
    }
    for (entry, id) in entries.iter().zip(&ids) {
        let served = store
            .entry_content(inbox.id, entry.uid)
            .await
            .expect("served");
        let expected = if *id == ids[0] {
            notice.clone()
        } else {
            store.message_raw(*id).await.expect("raw")
        };
        assert_eq!(served, expected, "entry {}", entry.uid);
    }
    assert!(
        store
            .pending_messages(&ids, i64::MAX)
            .await
            .expect("pending")
            .is_empty(),
        "processed messages are not pending"
    );

    // Too late (another node, an earlier run): nothing is written, whatever it says.
    let again = store
        .complete_messages(
            &[
                completion(&store, ids[0], Some(verdict(false)), anna, "token-late").await,
                completion(&store, ids[1], None, anna, "unused").await,
            ],
            store::now_millis(),
        )
        .await
        .expect("complete again");
    assert_eq!(again, [false, false]);
    assert_eq!(
        store.verdict(ids[0]).await.expect("verdict"),
        Some(verdict(true))
    );
    assert_eq!(
        store
            .mailbox_entries(inbox.id)
            .await
            .expect("entries")
            .len(),
        3
    );
    store.close().await;
}

pub(super) async fn a_completion_expecting_another_state_changes_nothing(db: &TestDb) {
    let store = db.open().await;
    let (anna, ids) = anna_with_messages(&store, &["anna@stadt.test"], "s", 1).await;
    let id = ids[0];
    // Another node stored its verdict between this node's read and its commit.
    assert!(
        store
            .record_verdict(id, &verdict(true))
            .await
            .expect("verdict")
    );
    let done = store
        .complete_messages(
            &[completion(&store, id, Some(verdict(false)), anna, "t").await],
            store::now_millis(),
        )
        .await
        .expect("complete");
    assert_eq!(done, [false], "a new verdict needs a received message");
    assert_eq!(
        store.verdict(id).await.expect("verdict"),
        Some(verdict(true))
    );
    assert_eq!(
        store
            .messages_in_state(MessageState::Classified, 10)
            .await
            .expect("classified"),
        [id],
        "left for the pipeline to finish with the stored verdict"
    );
    store.close().await;
}

pub(super) async fn a_failing_completion_fails_its_whole_batch(db: &TestDb) {
    let store = db.open().await;
    let (anna, ids) = anna_with_messages(&store, &["anna@stadt.test"], "f", 2).await;
    // The same token hash twice breaks its unique key: the commit fails as a whole.
    let batch = [
        completion(&store, ids[0], Some(verdict(true)), anna, "same").await,
        completion(&store, ids[1], Some(verdict(true)), anna, "same").await,
    ];
    assert!(
        store
            .complete_messages(&batch, store::now_millis())
            .await
            .is_err()
    );
    assert_eq!(
        store
            .messages_in_state(MessageState::Received, 10)
            .await
            .expect("received"),
        ids,
        "nothing of the batch was stored"
    );
    assert_eq!(store.verdict(ids[0]).await.expect("verdict"), None);
    assert!(
        store
            .resolve_notice_token("same", store::now_millis())
            .await
            .expect("token")
            .is_none()
    );
    // Each on its own, as the pipeline retries them: the first goes through.
    assert_eq!(
        store
            .complete_messages(&batch[..1], store::now_millis())
            .await
            .expect("one"),
        [true]
    );
    store.close().await;
}
