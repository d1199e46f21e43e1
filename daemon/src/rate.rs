//! Token buckets. Pure: the caller passes the time, so tests need no clock. Used by the API
//! (actions per connection and per origin, log lines about refused connections) and the phone
//! driver (`log` events), so it lives below both.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_second: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    pub fn new(per_second: u32, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            per_second: f64::from(per_second.max(1)),
            burst,
            tokens: burst,
            updated: now,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated);
        self.updated = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until the next token, for the error message.
    pub fn retry_after(&self) -> Duration {
        Duration::from_secs_f64(((1.0 - self.tokens).max(0.0)) / self.per_second)
    }
}

/// A budget for lines (log lines, `log` events) that counts what it left out, so the next line
/// can say how many there were.
#[derive(Debug)]
pub struct LineBudget {
    bucket: TokenBucket,
    left_out: u64,
}

impl LineBudget {
    pub fn new(per_second: u32, burst: u32, now: Instant) -> Self {
        Self {
            bucket: TokenBucket::new(per_second, burst, now),
            left_out: 0,
        }
    }

    /// `Some(n)` when a line may go out (`n` were left out since the last one), else `None`.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if self.bucket.try_take(now) {
            Some(std::mem::take(&mut self.left_out))
        } else {
            self.left_out += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, 3, start);
        assert!(bucket.try_take(start));
        assert!(bucket.try_take(start));
        assert!(bucket.try_take(start));
        assert!(!bucket.try_take(start), "burst of 3 is spent");
        assert!(bucket.retry_after() <= Duration::from_millis(100));
        assert!(
            !bucket.try_take(start + Duration::from_millis(50)),
            "half a token after 50 ms"
        );
        assert!(
            bucket.try_take(start + Duration::from_millis(100)),
            "a whole token after 100 ms"
        );
        // A long pause refills only up to the burst.
        let later = start + Duration::from_secs(60);
        assert!((0..3).all(|_| bucket.try_take(later)));
        assert!(!bucket.try_take(later));
    }

    #[test]
    fn a_line_budget_counts_what_it_left_out() {
        let start = Instant::now();
        let mut lines = LineBudget::new(1, 2, start);
        assert_eq!(lines.allow(start), Some(0));
        assert_eq!(lines.allow(start), Some(0));
        assert_eq!(lines.allow(start), None);
        assert_eq!(lines.allow(start), None);
        assert_eq!(lines.allow(start + Duration::from_secs(1)), Some(2));
    }
}
