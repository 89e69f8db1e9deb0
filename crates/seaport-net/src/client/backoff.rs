//! Reconnect delays: capped exponential backoff with full jitter, as a pure value.

use std::time::Duration;

/// Computes reconnect delays: the n-th consecutive failure waits a uniformly random time
/// in `[0, min(max, initial * 2^n)]` ("full jitter"), so a thousand clients that lost the
/// same hub do not come back in lockstep.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use seaport_net::Backoff;
/// let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
/// assert_eq!(b.ceiling(), Duration::from_millis(100));
/// let first = b.next_delay(0.5);
/// assert_eq!(first, Duration::from_millis(50));
/// assert_eq!(b.ceiling(), Duration::from_millis(200));
/// b.reset();
/// assert_eq!(b.ceiling(), Duration::from_millis(100));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// Delays start at up to `initial` and double per failure, capped at `max`.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff { initial, max: max.max(initial), failures: 0 }
    }

    /// The upper bound of the next delay.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.initial.checked_mul(factor).unwrap_or(self.max).min(self.max)
    }

    /// The delay before the next attempt, given `unit`, a uniform random number in
    /// `[0, 1]` (clamped); counts one more failure.
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        let delay = self.ceiling().mul_f64(unit.clamp(0.0, 1.0));
        self.failures = self.failures.saturating_add(1);
        delay
    }

    /// [`next_delay`](Backoff::next_delay) with the random number drawn from `rng`.
    pub fn next_jittered(&mut self, rng: &mut impl rand::Rng) -> Duration {
        self.next_delay(rng.gen_range(0.0..=1.0))
    }

    /// The wait before the first attempt after a lost connection: uniform in
    /// `[0, initial]`, without counting a failure.
    pub fn first_delay(&self, rng: &mut impl rand::Rng) -> Duration {
        self.initial.mul_f64(rng.gen_range(0.0..=1.0))
    }

    /// After a successful connection: the next failure starts from `initial` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let ceilings: Vec<_> = (0..6)
            .map(|_| {
                let c = b.ceiling();
                b.next_delay(1.0);
                c.as_millis()
            })
            .collect();
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn jitter_spans_zero_to_ceiling() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        assert_eq!(b.next_delay(0.0), Duration::ZERO);
        assert_eq!(b.next_delay(1.0), Duration::from_millis(200));
        assert_eq!(b.next_delay(7.0), Duration::from_millis(400), "out-of-range unit is clamped");
    }

    /// A thousand clients that lost the same hub: their delays spread over the whole
    /// window instead of bunching (each tenth of it gets at least half its share).
    #[test]
    fn a_herd_spreads_over_the_window() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let (initial, max) = (Duration::from_millis(100), Duration::from_secs(2));
        for failures in [0u32, 1, 3, 10] {
            let mut buckets = [0u32; 10];
            let mut ceiling = Duration::ZERO;
            for _ in 0..1000 {
                let mut b = Backoff::new(initial, max);
                for _ in 0..failures {
                    b.next_delay(1.0);
                }
                ceiling = b.ceiling();
                let delay = b.next_jittered(&mut rng);
                assert!(delay <= ceiling);
                let bucket = (delay.as_secs_f64() / ceiling.as_secs_f64() * 10.0) as usize;
                buckets[bucket.min(9)] += 1;
            }
            assert!(buckets.iter().all(|&n| n >= 50), "after {failures} failures (ceiling {ceiling:?}): {buckets:?}");
        }
        let b = Backoff::new(initial, max);
        let mut firsts: Vec<Duration> = (0..1000).map(|_| b.first_delay(&mut rng)).collect();
        firsts.sort();
        assert!(firsts[999] <= initial);
        assert!(firsts[100] < initial / 5 && firsts[900] > initial * 4 / 5, "first delays bunch: {firsts:?}");
    }

    #[test]
    fn many_failures_never_overflow() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        for _ in 0..10_000 {
            assert!(b.next_delay(1.0) <= Duration::from_secs(30));
        }
    }
}
