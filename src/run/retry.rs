//! Delays between attempts of a command: exponential backoff from `retry_delay`, full
//! jitter, capped at 30 s. Must not: sleep (the caller does, cancellably).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Longest delay between two attempts of a command.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// Delay before attempt `attempt + 1`: full jitter over `base * 2^(attempt-1)`, capped.
pub fn backoff(base: Duration, attempt: u32, seed: &AtomicU64) -> Duration {
    let exp = base
        .saturating_mul(1u32 << (attempt.max(1) - 1).min(20))
        .min(MAX_RETRY_DELAY);
    let r = next_random(seed);
    let frac = (r >> 11) as f64 / (1u64 << 53) as f64;
    exp.mul_f64(frac)
}

/// xorshift64*: enough randomness for jitter, no dependency.
fn next_random(seed: &AtomicU64) -> u64 {
    let mut x = seed.load(Ordering::Relaxed) | 1;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    seed.store(x, Ordering::Relaxed);
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_jittered() {
        let seed = AtomicU64::new(42);
        for attempt in 1..40 {
            let d = backoff(Duration::from_secs(1), attempt, &seed);
            let ceiling = Duration::from_secs(1 << (attempt - 1).min(20)).min(MAX_RETRY_DELAY);
            assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
        }
        let spread: std::collections::HashSet<_> = (0..20)
            .map(|_| backoff(Duration::from_secs(8), 4, &seed))
            .collect();
        assert!(spread.len() > 10, "jitter should vary the delay");
    }
}
