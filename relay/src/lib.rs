//! The ratspost daemon: SMTP intake, configuration, setup and the command line.
//!
//! Layout:
//! - [`config`]: the one TOML configuration, all errors reported together.
//! - [`smtp`]: the SMTP server — codec (no I/O), session state machine, listener.
//! - [`submission`]: mail submission from staff devices (AUTH, own addresses), on the
//!   SMTP state machine; [`credentials`]: app-password logins shared with IMAP.
//! - [`pipeline`]: classifies every accepted message and stores its verdict; [`ocr`]: reads
//!   scans for it with Tesseract.
//! - [`delivery`]: the queue worker and the SMTP client for the next hop.
//! - [`dkim`]: signs the mail ratspost writes itself (notices); [`arc`]: seals intact
//!   forwards (RFC 8617) instead of signing them; [`resolver`]: DNS for the checks behind a
//!   seal.
//! - [`retention`]: purges old messages' bytes and cuts the audit log's start
//!   (`[retention]`, storage limitation).
//! - [`server`]: starts the services on already-bound listeners; [`shutdown`]: two phases.
//! - [`logging`]: the log subscriber (never protocol transcripts, whatever `RUST_LOG` says).
//! - [`setup`]: first-run setup (data dir, certificate, database, bootstrap admin).
//! - [`tls`]: certificates; [`cli`]: the `ratspost` command line. `main.rs` only calls
//!   [`cli::main`].
//!
//! Key decision: a message is acknowledged with `250` only after the store has committed
//! it and its recipient rows (group commit, see `store`), so an accepted message survives a
//! crash at any moment after the reply.

pub mod arc;
pub mod at_rest;
pub mod checkpoint;
pub mod cli;
pub mod compose;
pub mod config;
pub mod credentials;
pub mod delivery;
pub mod dkim;
pub mod encoding;
pub mod exemptions;
pub mod forward;
pub mod imap;
pub mod logging;
pub mod ocr;
pub mod outgoing;
pub mod pipeline;
pub mod resolver;
pub mod retention;
pub mod server;
pub mod setup;
pub mod shared_keys;
pub mod shown;
pub mod shutdown;
pub mod smtp;
pub mod srs;
pub mod submission;
pub mod throttle;
pub mod tls;
pub mod web;
