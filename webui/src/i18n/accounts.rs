//! English for the accounts (devices, logins, sessions) pages (see [`crate::i18n`]).

/// German → English.
pub(super) const EN: &[(&str, &str)] = &[];
