//! When a failed step is tried again: exponentially later (base · 2^attempt), capped, with
//! jitter so that sagas failing together do not retry together.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    /// Delay after the first failure, in milliseconds.
    pub base_ms: u64,
    /// The longest delay, in milliseconds.
    pub max_ms: u64,
    /// Attempts of a step before the saga gives up on it and unwinds.
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base_ms: 500,
            max_ms: 30_000,
            max_attempts: 8,
        }
    }
}

impl Backoff {
    /// The delay after `attempts` failed attempts (1 for the first): a random point in the
    /// upper half of the exponential delay, so retries spread but never come early.
    pub fn delay(&self, attempts: u32) -> Duration {
        let exponent = attempts.saturating_sub(1).min(32);
        let full = self
            .base_ms
            .saturating_mul(1u64 << exponent)
            .min(self.max_ms)
            .max(1);
        let half = full / 2;
        let jitter = uuid::Uuid::new_v4().as_u128() as u64 % (full - half + 1);
        Duration::from_millis(half + jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_within_the_cap_and_jitter_stays_in_the_upper_half() {
        let backoff = Backoff {
            base_ms: 100,
            max_ms: 1_000,
            max_attempts: 5,
        };
        for _ in 0..200 {
            let first = backoff.delay(1).as_millis();
            assert!((50..=100).contains(&first), "{first}");
            let third = backoff.delay(3).as_millis();
            assert!((200..=400).contains(&third), "{third}");
            let late = backoff.delay(30).as_millis();
            assert!((500..=1_000).contains(&late), "{late}");
        }
        let spread: std::collections::BTreeSet<_> = (0..50).map(|_| backoff.delay(4)).collect();
        assert!(spread.len() > 5, "jitter spreads retries: {spread:?}");
    }
}
