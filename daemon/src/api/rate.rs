//! Token buckets, per connection and per origin. Pure: the caller passes the time, so tests
//! need no clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::origins::Origin;

/// One bucket per origin, shared by all of its connections: opening twenty tabs (or twenty
/// sockets) does not multiply what one origin may send.
#[derive(Debug)]
pub struct OriginBudget {
    per_second: u32,
    burst: u32,
    buckets: Mutex<HashMap<Origin, TokenBucket>>,
}

impl OriginBudget {
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `origin`'s bucket, or says how long until there is one.
    pub fn try_take(&self, origin: &Origin, now: Instant) -> Result<(), Duration> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Err(Duration::from_secs(1));
        };
        // Only allowed origins get here, so the map stays as small as the allow lists.
        let bucket = buckets
            .entry(origin.clone())
            .or_insert_with(|| TokenBucket::new(self.per_second, self.burst, now));
        if bucket.try_take(now) {
            Ok(())
        } else {
            Err(bucket.retry_after())
        }
    }
}

#[derive(Debug)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_shares_one_budget_across_connections() {
        let start = Instant::now();
        let budget = OriginBudget::new(10, 5);
        let crm = Origin::parse("https://crm.example.com").expect("origin");
        let other = Origin::parse("https://other.example.com").expect("origin");
        let taken = (0..20)
            .filter(|_| budget.try_take(&crm, start).is_ok())
            .count();
        assert_eq!(taken, 5, "twenty tries, one burst");
        assert!(
            budget.try_take(&other, start).is_ok(),
            "other origins keep theirs"
        );
        assert!(
            budget
                .try_take(&crm, start + Duration::from_millis(100))
                .is_ok()
        );
    }

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
}
