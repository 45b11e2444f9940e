//! Log output captured in memory, for tests that check what a log holds (or must not).

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

/// A `MakeWriter` whose writers all append to one shared buffer. Cheap to clone.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far, as text.
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

/// One writer (a handle on the shared buffer).
pub struct Writer(Arc<Mutex<Vec<u8>>>);

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Captured {
    type Writer = Writer;

    fn make_writer(&'w self) -> Self::Writer {
        Writer(Arc::clone(&self.0))
    }
}
