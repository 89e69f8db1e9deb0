//! Time as data: the core never reads a clock, every time-dependent call takes `now`.

use std::ops::Add;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A point in time in milliseconds since an epoch chosen by whoever drives the core.
///
/// Unlike [`std::time::Instant`] it is plain data: it serializes, compares and can be
/// made up in tests, so a simulation runs on virtual time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The epoch.
    pub const ZERO: Timestamp = Timestamp(0);

    /// A timestamp `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Timestamp {
        Timestamp(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;

    /// Adds a duration, saturating at the far future; sub-millisecond parts are dropped.
    fn add(self, rhs: Duration) -> Timestamp {
        let ms = u64::try_from(rhs.as_millis()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_saturates() {
        let t = Timestamp::from_millis(u64::MAX - 1);
        assert_eq!(t + Duration::from_secs(1), Timestamp::from_millis(u64::MAX));
        assert_eq!(Timestamp::from_millis(5) + Duration::from_micros(2500), Timestamp::from_millis(7));
    }

    #[test]
    fn duration_since_never_underflows() {
        let a = Timestamp::from_millis(10);
        let b = Timestamp::from_millis(25);
        assert_eq!(b.saturating_duration_since(a), Duration::from_millis(15));
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
    }
}
