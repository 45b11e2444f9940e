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

/// Bytes read from the client, mended for client quirks ([`InputFix`]), and not yet handed
/// to the server.
///
/// Before login they are handed over a line at a time (up to and including each LF): a
/// command ends with a line end, so when LOGIN or AUTHENTICATE completes, the server holds
/// nothing behind it, and the session can replace it with one that has the limits of a
/// logged-in user (imap-next cannot change them on a running server) without losing
/// pipelined commands — they are still here.
pub struct Input {
    raw: Vec<u8>,
    pending: Vec<u8>,
    start: usize,
}

impl Input {
    /// An empty buffer reading up to `size` bytes at once.
    #[must_use]
    pub fn new(size: usize) -> Self {
        Self {
            raw: vec![0; size.max(1)],
            pending: Vec::new(),
            start: 0,
        }
    }

    /// Hands `server` what is buffered — up to and including the first LF when `by_line`,
    /// else all of it. Returns whether anything was handed over.
    pub fn feed(&mut self, server: &mut Server, by_line: bool) -> bool {
        let pending = &self.pending[self.start..];
        if pending.is_empty() {
            return false;
        }
        let n = if by_line {
            pending
                .iter()
                .position(|&b| b == b'\n')
                .map_or(pending.len(), |i| i + 1)
        } else {
            pending.len()
        };
        server.enqueue_input(&pending[..n]);
        self.start += n;
        true
    }

    /// Reads once from `io` (when nothing is buffered) and mends it through `fix`: what
    /// `fix` holds back (a line not yet complete, a command refused as too big) is not
    /// buffered. Cancel-safe.
    ///
    /// # Errors
    /// `Closed` at end of stream, `Io` on failure.
    pub async fn read<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        fix: &mut InputFix,
    ) -> Result<(), DriveError> {
        debug_assert_eq!(
            self.start,
            self.pending.len(),
            "read only when all is handed over"
        );
        let n = io.read(&mut self.raw).await.map_err(DriveError::Io)?;
        if n == 0 {
            return Err(DriveError::Closed);
        }
        self.pending.clear();
        self.start = 0;
        fix.feed(&self.raw[..n], &mut self.pending);
        Ok(())
    }
}
