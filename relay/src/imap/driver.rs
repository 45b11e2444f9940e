//! Drives imap-next's sans-I/O server state machine over any `AsyncRead + AsyncWrite`, so
//! sessions run on TCP, TLS, or an in-memory pipe alike.
//!
//! Writes happen outside of any `select!`: only reading may be raced against mailbox
//! notifications, and a read is cancel-safe, so no response is ever cut in half.

use super::framing::{Frame, Framer, Limits};
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
                    // `BINARY[...]<origin>` is not in imap-types: put in here.
                    let bytes = super::binary::mend_origins(&bytes).unwrap_or(bytes);
                    io.write_all(&bytes).await.map_err(DriveError::Io)?;
                    io.flush().await.map_err(DriveError::Io)?;
                }
            }
            Err(Interrupt::Io(Io::NeedMoreInput)) => return Ok(Step::NeedInput),
            Err(Interrupt::Error(err)) => return Err(DriveError::Protocol(err)),
        }
    }
}

/// What the client sent, cut into commands by the [`Framer`] within the limits of the
/// session's state; see [`super::framing`].
pub struct Input {
    raw: Vec<u8>,
    framer: Framer,
}

impl Input {
    /// An empty buffer reading up to `size` bytes at once.
    #[must_use]
    pub fn new(size: usize) -> Self {
        Self {
            raw: vec![0; size.max(1)],
            framer: Framer::new(),
        }
    }

    /// The next frame within `limits`, or `None` when more input is needed.
    pub fn next(&mut self, limits: &Limits) -> Option<Frame> {
        self.framer.next(limits)
    }

    /// Reads once from `io`. Cancel-safe.
    ///
    /// # Errors
    /// `Closed` at end of stream, `Io` on failure.
    pub async fn read<S: AsyncRead + Unpin>(&mut self, io: &mut S) -> Result<(), DriveError> {
        let n = io.read(&mut self.raw).await.map_err(DriveError::Io)?;
        if n == 0 {
            return Err(DriveError::Closed);
        }
        self.framer.push(&self.raw[..n]);
        Ok(())
    }
}
