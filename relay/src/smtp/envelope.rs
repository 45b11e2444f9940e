//! MAIL FROM and RCPT TO: who may send, to whom, and with which parameters.

use smtp_proto::{MailFrom, RcptTo};
use store::{RecipientLookup, Store, StoredRecipient};

use super::reply::Reply;
use crate::config::SmtpConfig;

/// The transaction being built between MAIL and the end of DATA/BDAT.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    /// Envelope sender; empty for `<>`.
    pub(crate) from: String,
    /// BODY=8BITMIME or SMTPUTF8 was declared: 8-bit data is allowed.
    pub(crate) eight_bit: bool,
    /// SMTPUTF8 was declared: UTF-8 addresses are allowed.
    pub(crate) smtputf8: bool,
    /// Intake: accepted recipients (enrolled users), without duplicates.
    pub(crate) recipients: Vec<StoredRecipient>,
    /// Submission: recipients to relay to (any address, as given), without duplicates.
    pub(crate) relay_to: Vec<String>,
}

impl Envelope {
    /// Whether no recipient has been accepted yet.
    pub(crate) fn is_empty(&self) -> bool {
        self.recipients.is_empty() && self.relay_to.is_empty()
    }
}

/// Flags of MAIL parameters we advertise: BODY=7BIT|8BITMIME, SMTPUTF8 (and SIZE, a field).
const MAIL_FLAGS_OFFERED: u64 =
    smtp_proto::MAIL_BODY_7BIT | smtp_proto::MAIL_BODY_8BITMIME | smtp_proto::MAIL_SMTPUTF8;

/// Checks MAIL FROM against the listener's size limit `max_size` (bytes); on success the
/// new envelope.
pub(super) fn mail(max_size: usize, from: &MailFrom<String>) -> Result<Envelope, Reply> {
    // smtp-proto understands many extensions; parameters of ones we did not advertise in
    // EHLO are refused (RFC 5321 §4.1.1.11: 555).
    let unoffered = from.flags & !MAIL_FLAGS_OFFERED != 0
        || from.trans_id.is_some()
        || from.env_id.is_some()
        || from.solicit.is_some()
        || from.mtrk.is_some()
        || from.auth.is_some()
        || from.by != 0
        || from.hold_for != 0
        || from.hold_until != 0
        || from.mt_priority != 0;
    if unoffered {
        return Err(Reply::new(555, [5, 5, 4], "Unsupported MAIL parameter"));
    }
    if from.size > max_size {
        return Err(Reply::new(
            552,
            [5, 3, 4],
            format!("Message size exceeds fixed maximum of {max_size} bytes"),
        ));
    }
    let smtputf8 = from.flags & smtp_proto::MAIL_SMTPUTF8 != 0;
    if !from.address.is_ascii() && !smtputf8 {
        return Err(Reply::new(
            553,
            [5, 6, 7],
            "Non-ASCII sender address requires SMTPUTF8",
        ));
    }
    if !from.address.is_empty() && !is_mailbox(&from.address) {
        return Err(Reply::new(553, [5, 1, 7], "Bad sender address syntax"));
    }
    Ok(Envelope {
        from: from.address.clone(),
        eight_bit: smtputf8 || from.flags & smtp_proto::MAIL_BODY_8BITMIME != 0,
        smtputf8,
        recipients: Vec::new(),
        relay_to: Vec::new(),
    })
}

/// What every RCPT TO must be: without parameters we did not offer, ASCII unless SMTPUTF8
/// was declared, and a mailbox.
fn well_formed(envelope: &Envelope, to: &RcptTo<String>) -> Result<(), Reply> {
    if to.flags != 0 || to.orcpt.is_some() || to.rrvs != 0 {
        return Err(Reply::new(555, [5, 5, 4], "Unsupported RCPT parameter"));
    }
    if !to.address.is_ascii() && !envelope.smtputf8 {
        return Err(Reply::new(
            553,
            [5, 6, 7],
            "Non-ASCII recipient address requires SMTPUTF8",
        ));
    }
    if !is_mailbox(&to.address) {
        return Err(Reply::new(501, [5, 1, 3], "Bad recipient address syntax"));
    }
    Ok(())
}

/// Checks one RCPT TO of a submission: any well-formed address, up to `max` recipients
/// (RFC 5321 §4.5.3.1.10: 452 when there are too many). Whether the address exists is for
/// the city's server to say.
pub(super) fn relay_rcpt(max: usize, envelope: &mut Envelope, to: &RcptTo<String>) -> Reply {
    if let Err(reply) = well_formed(envelope, to) {
        return reply;
    }
    // Relayed as given: a local part's case is the receiving domain's business
    // (RFC 5321 §2.4), so only the very same address is a duplicate.
    let address = to.address.clone();
    if envelope.relay_to.contains(&address) {
        return Reply::new(250, [2, 1, 5], "Ok");
    }
    if envelope.relay_to.len() >= max {
        return Reply::new(
            452,
            [4, 5, 3],
            format!("Too many recipients (at most {max} per message)"),
        )
        // Not an error: the client sends the rest in another transaction (RFC 5321
        // §4.5.3.1.10), and a long list must not end the session.
        .fault(false);
    }
    envelope.relay_to.push(address);
    Reply::new(250, [2, 1, 5], "Ok")
}

/// Checks one RCPT TO against the enrolled users and adds it to `envelope`.
pub(super) async fn rcpt(
    config: &SmtpConfig,
    store: &Store,
    srs_secret: &[u8],
    envelope: &mut Envelope,
    to: &RcptTo<String>,
) -> Reply {
    if let Err(reply) = well_formed(envelope, to) {
        return reply;
    }
    let address = to.address.to_lowercase();
    if envelope.recipients.iter().any(|r| r.address == address) {
        // RFC 5321 §3.3: duplicates are accepted; the message is stored once per address.
        return Reply::new(250, [2, 1, 5], "Ok");
    }
    if envelope.recipients.len() >= config.max_recipients {
        return Reply::new(452, [4, 5, 3], "Too many recipients").fault(false);
    }
    // A bounce of one of our forwards: it goes to the mailbox owner the signed address names
    // — never back to the original sender.
    if let Some(user_id) =
        crate::srs::owner(&address, &config.hostname, srs_secret, store::now_millis())
    {
        envelope
            .recipients
            .push(StoredRecipient { address, user_id });
        return Reply::new(250, [2, 1, 5], "Ok");
    }
    match store.lookup_recipient(&address).await {
        Ok(RecipientLookup::Enrolled(user_id)) => {
            envelope
                .recipients
                .push(StoredRecipient { address, user_id });
            Reply::new(250, [2, 1, 5], "Ok")
        }
        Ok(RecipientLookup::UnknownLocal) => unknown_user(),
        Ok(RecipientLookup::Foreign) => {
            let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
            if config.local_domains.iter().any(|d| d == domain) {
                unknown_user()
            } else {
                Reply::new(550, [5, 7, 1], "Relaying denied")
            }
        }
        Err(err) if err.kind() == store::ErrorKind::Invalid => {
            Reply::new(501, [5, 1, 3], "Bad recipient address syntax")
        }
        Err(err) => {
            tracing::error!(error = %err, "recipient lookup failed");
            Reply::new(451, [4, 3, 0], "Temporary lookup failure, try again later").fault(false)
        }
    }
}

fn unknown_user() -> Reply {
    Reply::new(550, [5, 1, 1], "Mailbox unavailable")
}

/// `local@domain` with a non-empty local part and a plausible domain (RFC 5321 Mailbox).
/// smtp-proto has already taken the address out of its angle brackets.
pub(crate) fn is_mailbox(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    let domain_ok = if let Some(literal) = domain.strip_prefix('[') {
        literal.ends_with(']')
    } else {
        !domain.is_empty()
            && domain.len() <= 253
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            })
    };
    !local.is_empty()
        && local.len() <= 64
        && address.len() <= 254
        && !address
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>')
        && domain_ok
}

#[cfg(test)]
mod tests {
    use super::is_mailbox;

    #[test]
    fn mailbox_syntax() {
        for ok in [
            "a@b",
            "anna.schmidt@stadt.example",
            "x@[192.0.2.1]",
            "jörg@müller.example",
        ] {
            assert!(is_mailbox(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "@b",
            "a@",
            "a@b..c",
            "a b@c",
            "a@-b_",
            &format!("{}@b", "x".repeat(65)),
        ] {
            assert!(!is_mailbox(bad), "{bad}");
        }
    }
}
