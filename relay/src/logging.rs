//! The log subscriber `ratspost` sets up: `RUST_LOG` (default `relay=info,webui=info,
//! store=info`), with the protocol libraries held to `info` whatever it says.
//!
//! imap-next traces every fragment it reads and writes — `LOGIN anna <password>`,
//! AUTHENTICATE data, every FETCHed message — so `RUST_LOG=trace` would write credentials
//! and mail into the journal (issue #13 §3; STYLE.md §7: AUTH data and bodies are never
//! logged). Their `debug` and `trace` events are dropped here, before any formatting.

use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;

/// Targets whose detailed events carry protocol data (credentials, message bodies).
const TRANSCRIPT_TARGETS: &[&str] = &["imap_next", "imap_codec", "imap_types"];

/// The default filter when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "relay=info,webui=info,store=info";

/// Whether an event or span may be logged at all: not above `info` for the protocol
/// libraries.
fn allowed(meta: &Metadata<'_>) -> bool {
    let transcript = TRANSCRIPT_TARGETS
        .iter()
        .any(|t| meta.target() == *t || meta.target().starts_with(&format!("{t}::")));
    !transcript || *meta.level() <= Level::INFO
}

/// The subscriber: `filter` (as `RUST_LOG`), never protocol transcripts, written to `writer`.
///
/// Both filters are global (layers of the registry), not per-layer filters of the fmt
/// layer: a per-layer filter carries its decision from `enabled` to the event in a
/// thread-local, which sqlx's `log_enabled!` checks after every query leave stale, so that
/// the next events on that thread were silently dropped (tokio-rs/tracing#2519, #2704) —
/// audit checkpoints and shutdown lines among them.
pub fn subscriber<W>(filter: EnvFilter, writer: W, ansi: bool) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::registry()
        .with(filter)
        .with(filter::filter_fn(allowed))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(ansi),
        )
}

/// `RUST_LOG`, or [`DEFAULT_FILTER`] when it is unset or invalid.
#[must_use]
pub fn env_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
}
