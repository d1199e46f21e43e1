//! Budgets shared by connections: actions per origin, and log lines about refused connections.
//! The caller passes the time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::origins::Origin;
use crate::rate::{LineBudget, TokenBucket};

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

/// Log lines that outsiders can cause (refused connections), shared by all connection tasks: at
/// most a few a second, and the next line says how many were left out.
#[derive(Debug)]
pub struct LogBudget(Mutex<LineBudget>);

impl Default for LogBudget {
    fn default() -> Self {
        Self(Mutex::new(LineBudget::new(2, 10, Instant::now())))
    }
}

impl LogBudget {
    /// `Some(n)` when a line may be written (`n` lines were left out since the last one).
    pub fn allow(&self) -> Option<u64> {
        self.0.lock().ok()?.allow(Instant::now())
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
}
