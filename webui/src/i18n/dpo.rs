//! English for the dpo pages (see [`crate::i18n`]).

/// German → English.
pub(super) const EN: &[(&str, &str)] = &[];
