//! Waiting for the earliest deadline a sans-IO state machine asked for.

use std::time::Instant;

/// Sleeps until `deadline`; with none, never wakes (so a `select!` branch stays quiet).
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
