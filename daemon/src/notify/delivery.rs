//! The sans-IO half of notifications: the signature an endpoint checks and when to try again.

use std::time::Duration;

use ring::hmac;

/// The `X-Softphone-Signature` value for `body` sent at `timestamp` (Unix seconds):
/// `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. The timestamp inside the
/// signed text lets an endpoint refuse a replayed request.
pub fn signature(secret: &[u8], timestamp: i64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut context = hmac::Context::with_key(&key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body.as_bytes());
    let tag = context.sign();
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// Exponential back-off between attempts at one event: `first`, doubling, at most `max`, each
/// wait spread by ±25% (`jitter` in 0..1) so many daemons do not retry in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
    /// Failed attempts in a row.
    pub failures: u32,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max: max.max(first),
            next: first,
            failures: 0,
        }
    }

    /// An attempt failed: how long to wait before the next.
    pub fn failed(&mut self, jitter: f64) -> Duration {
        self.failures += 1;
        let wait = self.next.mul_f64(0.75 + jitter.clamp(0.0, 1.0) / 2.0);
        self.next = (self.next * 2).min(self.max);
        wait
    }

    /// An attempt succeeded: the next failure starts from `first` again.
    pub fn succeeded(&mut self) {
        self.next = self.first;
        self.failures = 0;
    }

    /// Whether this failure is worth a log line: the first, then every 10th, so an endpoint down
    /// for a day does not fill the log.
    pub fn worth_logging(&self) -> bool {
        self.failures == 1 || self.failures.is_multiple_of(10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Independently computed: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            signature(b"secret", 1_700_000_000, r#"{"a":1}"#),
            "t=1700000000,v1=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
        assert_ne!(
            signature(b"secret", 1_700_000_001, r#"{"a":1}"#),
            signature(b"secret", 1_700_000_000, r#"{"a":1}"#)
        );
    }

    #[test]
    fn back_off_doubles_to_its_cap_and_starts_over_after_a_success() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        let waits: Vec<u64> = (0..6).map(|_| backoff.failed(0.5).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 8, 8]);
        assert_eq!(backoff.failures, 6);
        assert!(
            backoff.failed(0.0) >= Duration::from_secs(6),
            "-25% at most"
        );
        assert!(
            backoff.failed(1.0) <= Duration::from_secs(10),
            "+25% at most"
        );
        backoff.succeeded();
        assert_eq!(backoff.failed(0.5), Duration::from_secs(1));
        assert!(backoff.worth_logging());
        assert!(!backoff.failed(0.5).is_zero() && !backoff.worth_logging());
    }
}
