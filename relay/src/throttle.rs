//! Keeping failures of the store from turning into loops and log floods: a backoff for
//! retries and a throttle for log lines that repeat.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Exponential backoff between retries of something that failed: `min`, doubling up to
/// `max`, with up to a quarter of random jitter so several nodes do not retry in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starting at `min`, at most `max`.
    #[must_use]
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            next: min,
        }
    }

    /// The pause before the next retry after another failure.
    pub fn failed(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = delay.mul_f64(rand::random::<f64>() / 4.0);
        delay + jitter
    }

    /// After a success: the next failure waits `min` again.
    pub fn succeeded(&mut self) {
        self.next = self.min;
    }
}

/// Logs a repeating message at most once per period per key, saying how many were left out.
#[derive(Debug)]
pub struct Throttle {
    period: Duration,
    seen: Mutex<HashMap<&'static str, (Instant, u64)>>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(Duration::from_secs(10))
    }
}

impl Throttle {
    /// At most one line per `period` and key.
    #[must_use]
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(left out since the last line)` when a line for `key` may be logged now.
    fn admit(&self, key: &'static str) -> Option<u64> {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        match seen.get_mut(key) {
            Some((last, skipped)) if now.duration_since(*last) < self.period => {
                *skipped += 1;
                None
            }
            Some((last, skipped)) => {
                *last = now;
                Some(std::mem::take(skipped))
            }
            None => {
                seen.insert(key, (now, 0));
                Some(0)
            }
        }
    }

    /// An error line for `key`, unless one was logged less than a period ago.
    pub fn error(&self, key: &'static str, message: std::fmt::Arguments<'_>) {
        if let Some(skipped) = self.admit(key) {
            tracing::error!(similar_left_out = skipped, "{message}");
        }
    }

    /// A warning for `key`, unless one was logged less than a period ago.
    pub fn warn(&self, key: &'static str, message: std::fmt::Arguments<'_>) {
        if let Some(skipped) = self.admit(key) {
            tracing::warn!(similar_left_out = skipped, "{message}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_limit_and_starts_over_after_a_success() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let pauses: Vec<Duration> = (0..6).map(|_| b.failed()).collect();
        for (pause, base) in pauses.iter().zip([100, 200, 400, 800, 1000, 1000]) {
            let base = Duration::from_millis(base);
            assert!(
                *pause >= base && *pause <= base + base / 4,
                "{pause:?} for {base:?}"
            );
        }
        b.succeeded();
        assert!(
            b.failed() < Duration::from_millis(126),
            "after a success: min again"
        );
    }

    #[test]
    fn a_repeating_line_is_admitted_once_per_period_with_the_count_left_out() {
        let t = Throttle::new(Duration::from_millis(200));
        assert_eq!(t.admit("a"), Some(0));
        assert_eq!(t.admit("a"), None);
        assert_eq!(t.admit("a"), None);
        assert_eq!(t.admit("b"), Some(0), "keys are counted apart");
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(t.admit("a"), Some(2));
    }
}
