//! The store's error type: opaque, with a kind the caller can act on.

use std::fmt;

/// A store result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, at the level a caller decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The row asked for does not exist.
    NotFound,
    /// A uniqueness rule was violated (login or address already taken).
    Conflict,
    /// The input was rejected before it reached the database.
    Invalid,
    /// The actor may not do this (four eyes, role).
    Forbidden,
    /// The database could not be reached or failed; the operation may be retried.
    Unavailable,
    /// The schema could not be migrated.
    Migration,
    /// The row exists but its content was purged under `retention.message_days` (storage
    /// limitation): it is gone for good, asking again will not help.
    Purged,
}

/// An error from the store. The underlying `sqlx::Error` is kept as the source but not exposed
/// in the API, so callers depend on [`ErrorKind`] only.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// `Ok` when an UPDATE or DELETE touched a row; `NotFound` with `missing()` otherwise.
    pub(crate) fn found(rows: u64, missing: impl FnOnce() -> String) -> Result<()> {
        if rows == 0 {
            Err(Self::new(ErrorKind::NotFound, missing()))
        } else {
            Ok(())
        }
    }

    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// What kind of failure this is.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// True when the requested row does not exist.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    /// True when the content asked for was purged under `retention.message_days`.
    #[must_use]
    pub fn is_purged(&self) -> bool {
        self.kind == ErrorKind::Purged
    }

    /// True when a uniqueness constraint was violated.
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        self.kind == ErrorKind::Conflict
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        let (kind, message) = match &err {
            sqlx::Error::RowNotFound => (ErrorKind::NotFound, "not found".to_owned()),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                (ErrorKind::Conflict, "already exists".to_owned())
            }
            other => (ErrorKind::Unavailable, format!("database error: {other}")),
        };
        Self {
            kind,
            message,
            source: Some(Box::new(err)),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        Self {
            kind: ErrorKind::Migration,
            message: format!("migration failed: {err}"),
            source: Some(Box::new(err)),
        }
    }
}
