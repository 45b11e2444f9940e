//! English for the exemptions (forwarding, approvals) and held-messages pages (see [`crate::i18n`]).

/// German → English.
pub(super) const EN: &[(&str, &str)] = &[];
