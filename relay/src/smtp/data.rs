//! The end of DATA or BDAT LAST: check the body, commit it, and only then say `250`.

use sha2::{Digest, Sha256};
use store::{NewMessage, Store};

use super::codec::{Body, BodyDefects};
use super::envelope::Envelope;
use super::reply::Reply;
use crate::config::SmtpConfig;

/// What the session knows about the client, for the stored trace data.
#[derive(Debug, Clone)]
pub(super) struct Client {
    pub(super) helo: String,
    pub(super) ip: String,
    pub(super) tls: bool,
}

/// How the body was transferred, which decides what its framing can hide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transfer {
    /// DATA: the body ends at `CRLF . CRLF`, so a bare LF or CR could be read as the end by
    /// another server (SMTP smuggling): refused.
    Data,
    /// BDAT (RFC 3030): length-delimited chunks, so no byte of the body can end it. A bare LF
    /// is accepted and stored as received; Exchange Online sends such messages over BDAT.
    Bdat,
}

/// Decides on a complete body: the reply for its first defect, or the commit.
pub(super) async fn accept(
    config: &SmtpConfig,
    store: &Store,
    client: &Client,
    envelope: Envelope,
    body: Body,
    transfer: Transfer,
) -> Reply {
    let total = body.total();
    let (raw, defects) = body.finish();
    if let Some(reply) = refusal(
        config,
        config.max_message_size,
        &envelope,
        &defects,
        transfer,
    ) {
        tracing::info!(size = total, code = reply.code, reason = %reply.text, "message refused");
        return reply;
    }
    let sha256 = hex::encode(Sha256::digest(&raw));
    let message_id = message_id(&raw);
    let size = raw.len();
    let recipients = envelope.recipients.len();
    let message = NewMessage {
        received_at: store::now_millis(),
        mail_from: envelope.from,
        helo: client.helo.clone(),
        peer_ip: client.ip.clone(),
        tls: client.tls,
        raw,
        sha256: sha256.clone(),
        message_id,
        recipients: envelope.recipients,
    };
    match store.insert_message(message).await {
        Ok(id) => {
            tracing::info!(id, size, recipients, sha256 = %sha256, "message accepted");
            Reply::new(250, [2, 0, 0], format!("Ok: queued as {id}"))
        }
        Err(err) => {
            // Nothing of the message was stored (the commit is atomic); the upstream keeps
            // it and retries.
            tracing::error!(error = %err, size, "message commit failed");
            Reply::new(451, [4, 3, 0], "Temporary storage failure, try again later")
        }
    }
}

/// The reply for the first defect that makes the body unacceptable; `max_size` is the
/// listener's size limit (bytes).
pub(super) fn refusal(
    config: &SmtpConfig,
    max_size: usize,
    envelope: &Envelope,
    d: &BodyDefects,
    transfer: Transfer,
) -> Option<Reply> {
    let bare_lf_refused = d.bare_lf && transfer == Transfer::Data;
    let reply = if d.too_big {
        Reply::new(
            552,
            [5, 3, 4],
            format!("Message size exceeds fixed maximum of {max_size} bytes"),
        )
    } else if d.nul {
        Reply::new(554, [5, 6, 0], "Message contains NUL bytes")
    } else if bare_lf_refused || d.bare_cr {
        Reply::new(
            554,
            [5, 6, 0],
            "Message contains bare CR or LF; lines must end with CRLF",
        )
    } else if d.long_line {
        Reply::new(
            554,
            [5, 6, 0],
            format!(
                "Message has a line longer than {} bytes",
                config.max_message_line
            ),
        )
    } else if d.eight_bit && !envelope.eight_bit && config.reject_undeclared_8bit {
        Reply::new(
            554,
            [5, 6, 1],
            "8-bit message data requires MAIL FROM ... BODY=8BITMIME",
        )
    } else {
        return None;
    };
    Some(reply)
}

/// The `Message-ID` header of `raw` without angle brackets, if the message has one. mail-parser has
/// panicked on malformed input elsewhere; a panic here would drop the session and make the
/// upstream retry the message forever, so it only costs the Message-ID.
#[must_use]
pub fn message_id(raw: &[u8]) -> Option<String> {
    std::panic::catch_unwind(|| {
        let parsed = mail_parser::MessageParser::new().parse_headers(raw)?;
        parsed
            .message_id()
            .map(str::to_owned)
            .filter(|id| !id.is_empty())
    })
    .ok()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::message_id;

    #[test]
    fn message_ids_are_extracted() {
        assert_eq!(
            message_id(b"Subject: x\r\nMessage-ID: <abc@example.org>\r\n\r\nbody").as_deref(),
            Some("abc@example.org")
        );
        assert_eq!(
            message_id(b"Message-Id:\r\n <folded@example.org>\r\n\r\n").as_deref(),
            Some("folded@example.org")
        );
        assert_eq!(message_id(b"Subject: none\r\n\r\n"), None);
    }
}
