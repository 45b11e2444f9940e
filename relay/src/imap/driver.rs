//! Drives imap-next's sans-I/O server state machine over any `AsyncRead + AsyncWrite`, so
//! sessions run on TCP, TLS, or an in-memory pipe alike.
//!
//! Writes happen outside of any `select!`: only reading may be raced against mailbox
//! notifications, and a read is cancel-safe, so no response is ever cut in half.

use super::quirks::InputFix;
use imap_next::server::{Error as ServerError, Event, Server};
use imap_next::{Interrupt, Io, State as _};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// What stopped the driver.
#[derive(Debug)]
pub enum DriveError {
    /// The client closed the connection.
    Closed,
    /// I/O failed.
    Io(std::io::Error),
    /// The client sent something the codec rejected (the session answers BAD and goes on).
    Protocol(ServerError),
}

/// One step of progress.
pub enum Step {
    /// An event for the session.
    Event(Event),
    /// The server needs input: the caller reads (possibly racing a notification).
    NeedInput,
}

/// Progresses `server` without reading: writes whatever it has to send and returns the
/// next event, or [`Step::NeedInput`].
///
/// # Errors
/// I/O failures and protocol errors.
pub async fn progress<S: AsyncWrite + Unpin>(
    io: &mut S,
    server: &mut Server,
    discard_output: bool,
) -> Result<Step, DriveError> {
    loop {
        match server.next() {
            Ok(event) => return Ok(Step::Event(event)),
            Err(Interrupt::Io(Io::Output(bytes))) => {
                if !discard_output {
                    io.write_all(&bytes).await.map_err(DriveError::Io)?;
                    io.flush().await.map_err(DriveError::Io)?;
                }
            }
            Err(Interrupt::Io(Io::NeedMoreInput)) => return Ok(Step::NeedInput),
            Err(Interrupt::Error(err)) => return Err(DriveError::Protocol(err)),
        }
    }
}

/// Reads once from `io` into `server`, through `fix` (client quirks mended on the wire).
/// Cancel-safe.
///
/// # Errors
/// `Closed` at end of stream, `Io` on failure.
pub async fn read<S: AsyncRead + Unpin>(
    io: &mut S,
    server: &mut Server,
    buf: &mut [u8],
    fix: &mut InputFix,
) -> Result<(), DriveError> {
    let n = io.read(buf).await.map_err(DriveError::Io)?;
    if n == 0 {
        return Err(DriveError::Closed);
    }
    let mut input = Vec::with_capacity(n);
    fix.feed(&buf[..n], &mut input);
    if !input.is_empty() {
        server.enqueue_input(&input);
    }
    Ok(())
}
