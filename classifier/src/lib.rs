//! Pure classification of mail: message bytes + rules in, a verdict out.
//!
//! Not built yet (issue #3). The crate exists from the start so the dependency rule holds
//! from the first commit: no tokio, no database, no files, no network.
