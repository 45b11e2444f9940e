//! Store errors in the user's terms: "no exemption 1", "a user with the login anna exists
//! already" — never the database's own text ("UNIQUE constraint failed", "no rows returned
//! …"), which goes to the log at debug level only (`RUST_LOG=relay=debug`).
//!
//! The store words most of its errors itself (`no queued job 7`, `exemption 1 is revoked,
//! not pending`); those are shown as they are. An error the store passed on from the
//! database carries that error as its source: its text is replaced here, by what the
//! command knows was looked up (`no exemption 1`) or by a general sentence.

use std::fmt::Display;

use store::ErrorKind;

/// Shown for a database failure; the details are in the debug log.
const FAILED: &str =
    "the database could not be reached or failed (run with RUST_LOG=relay=debug for the details)";

/// Store results turned into messages for people.
pub(super) trait Readable<T> {
    /// Like [`Readable::readable`], where a row that was not found means that `object`
    /// ("exemption 1") does not exist: "no exemption 1".
    fn or_no(self, object: impl Display) -> anyhow::Result<T>;

    /// The store's error in the user's terms.
    fn readable(self) -> anyhow::Result<T>;
}

impl<T> Readable<T> for store::Result<T> {
    fn or_no(self, object: impl Display) -> anyhow::Result<T> {
        self.map_err(|err| anyhow::Error::msg(text(&err, Some(&object))))
    }

    fn readable(self) -> anyhow::Result<T> {
        self.map_err(|err| anyhow::Error::msg(text(&err, None)))
    }
}

/// Whether the store passed a database error on (its text is not for people).
fn from_database(err: &store::Error) -> bool {
    std::error::Error::source(err).is_some()
}

/// The message for a store error; `missing` names what a row not found stands for.
fn text(err: &store::Error, missing: Option<&dyn Display>) -> String {
    if !from_database(err) {
        return err.to_string();
    }
    tracing::debug!(
        kind = ?err.kind(),
        error = %err,
        source = ?std::error::Error::source(err).map(ToString::to_string),
        "store error"
    );
    match (err.kind(), missing) {
        (ErrorKind::NotFound, Some(object)) => format!("no {object}"),
        (ErrorKind::NotFound, None) => "not found".to_owned(),
        (ErrorKind::Conflict, _) => "this exists already".to_owned(),
        _ => FAILED.to_owned(),
    }
}

/// The whole message of a command's error, as `{:#}` would print it, except that the
/// chain stops at a store error, which is put in the user's terms: the database's own text
/// never reaches the terminal.
pub(super) fn message(err: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in err.chain() {
        if let Some(store_error) = cause.downcast_ref::<store::Error>() {
            parts.push(text(store_error, None));
            break;
        }
        parts.push(cause.to_string());
    }
    parts.join(": ")
}
