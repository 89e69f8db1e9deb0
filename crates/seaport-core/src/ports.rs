//! Port assignment per host.
//!
//! A port the hub assigns is unique among the live records on that host and inside the
//! requested range. It is chosen at random among the free ports, not sequentially, and
//! ports freed recently are avoided while others are free: a client that lost its
//! registration but still holds the old port in its configuration must not find that
//! port handed to a different service a moment later.
//!
//! The default range is [`DEFAULT_PORT_RANGE`], `10000..=32767`. Node seaport used
//! `10000..=65535`, which overlaps Linux's ephemeral range (32768-60999 by default,
//! `net.ipv4.ip_local_port_range`): there an outgoing connection of any process on the
//! host may already hold the port, and the service would fail to bind it.

use std::collections::{BTreeMap, VecDeque};
use std::ops::RangeInclusive;

use rand::Rng;
use rustc_hash::FxHashMap;

/// The range the hub assigns from when a registration does not name one.
pub const DEFAULT_PORT_RANGE: RangeInclusive<u16> = 10_000..=32_767;

/// How many random probes are tried before falling back to a scan of the range.
const PROBES: usize = 64;

/// The ports in use on one host, and the ones freed recently.
#[derive(Clone, Debug, Default)]
pub(crate) struct HostPorts {
    /// Port to the number of live records using it (explicit ports may be shared).
    used: BTreeMap<u16, u32>,
    /// Port to the sequence number of its release, for the recently freed ones.
    recent: FxHashMap<u16, u64>,
    /// Release order, oldest first, to forget the oldest when full.
    recent_order: VecDeque<(u16, u64)>,
    released: u64,
}

impl HostPorts {
    pub(crate) fn acquire(&mut self, port: u16) {
        *self.used.entry(port).or_insert(0) += 1;
        // Its entry in `recent_order` stays behind and is skipped as stale when reached.
        self.recent.remove(&port);
    }

    pub(crate) fn release(&mut self, port: u16, remember: usize) {
        let Some(count) = self.used.get_mut(&port) else { return };
        *count -= 1;
        if *count > 0 {
            return;
        }
        self.used.remove(&port);
        if remember == 0 {
            return;
        }
        self.released += 1;
        self.recent.insert(port, self.released);
        self.recent_order.push_back((port, self.released));
        while self.recent.len() > remember {
            let Some((old, seq)) = self.recent_order.pop_front() else { break };
            if self.recent.get(&old) == Some(&seq) {
                self.recent.remove(&old);
            }
        }
        // Ports freed again or taken leave stale entries behind; drop them, keeping the
        // queue within twice the memory without forgetting any current one.
        if self.recent_order.len() > 2 * remember {
            let recent = &self.recent;
            self.recent_order.retain(|(port, seq)| recent.get(port) == Some(seq));
        }
    }

    pub(crate) fn is_used(&self, port: u16) -> bool {
        self.used.contains_key(&port)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.used.is_empty() && self.recent.is_empty()
    }

    pub(crate) fn used_ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.used.keys().copied()
    }

    /// Picks a free port in `range` among those of the share `(index, count)` (see
    /// [`Registry::assign_port_partitioned`](crate::Registry::assign_port_partitioned)):
    /// random, preferring ports not freed recently, and among the recently freed ones the
    /// one freed longest ago. `None` when all are used.
    pub(crate) fn pick<R: Rng>(&self, range: &RangeInclusive<u16>, partition: (u16, u16), rng: &mut R) -> Option<u16> {
        let (low, high) = (*range.start(), *range.end());
        let (index, count) = (u32::from(partition.0), u32::from(partition.1.max(1)));
        if low > high || index >= count {
            return None;
        }
        // The share's ports are low + index + k * count for k in 0..size.
        let span = u32::from(high - low) + 1;
        if index >= span {
            return None;
        }
        let size = (span - index).div_ceil(count);
        let port_at = |k: u32| u16::try_from(u32::from(low) + index + k * count).ok();
        for _ in 0..PROBES {
            let Some(port) = port_at(rng.gen_range(0..size)) else { continue };
            if !self.is_used(port) && !self.recent.contains_key(&port) {
                return Some(port);
            }
        }
        // Crowded: scan from a random start so the pick stays spread out.
        let start = rng.gen_range(0..size);
        let mut oldest_recent: Option<(u64, u16)> = None;
        for i in 0..size {
            let Some(port) = port_at((start + i) % size) else { continue };
            if self.is_used(port) {
                continue;
            }
            match self.recent.get(&port) {
                None => return Some(port),
                Some(&seq) => {
                    if oldest_recent.is_none_or(|(s, _)| seq < s) {
                        oldest_recent = Some((seq, port));
                    }
                }
            }
        }
        oldest_recent.map(|(_, port)| port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn picks_inside_the_range_and_avoids_used() {
        let mut ports = HostPorts::default();
        let mut rng = SmallRng::seed_from_u64(1);
        for _ in 0..10 {
            let p = ports.pick(&(100..=109), (0, 1), &mut rng).unwrap();
            assert!((100..=109).contains(&p));
            assert!(!ports.is_used(p));
            ports.acquire(p);
        }
        assert_eq!(ports.pick(&(100..=109), (0, 1), &mut rng), None);
    }

    #[test]
    fn prefers_ports_not_freed_recently() {
        let mut ports = HostPorts::default();
        let mut rng = SmallRng::seed_from_u64(7);
        for p in 100..=103 {
            ports.acquire(p);
        }
        ports.release(101, 16);
        ports.release(102, 16);
        // 104 is free and never used: it must win over the recently freed ones.
        for _ in 0..50 {
            assert_eq!(ports.pick(&(100..=104), (0, 1), &mut rng), Some(104));
        }
        ports.acquire(104);
        // Only recently freed ports are left: the one freed first is taken.
        assert_eq!(ports.pick(&(100..=104), (0, 1), &mut rng), Some(101));
    }

    #[test]
    fn shared_explicit_ports_are_released_once_unused() {
        let mut ports = HostPorts::default();
        ports.acquire(5);
        ports.acquire(5);
        ports.release(5, 4);
        assert!(ports.is_used(5));
        ports.release(5, 4);
        assert!(!ports.is_used(5));
    }

    #[test]
    fn recent_memory_is_bounded() {
        let mut ports = HostPorts::default();
        for p in 0..1000 {
            ports.acquire(p);
            ports.release(p, 8);
        }
        assert!(ports.recent.len() <= 8);
        assert!(ports.recent_order.len() <= 16);
    }

    #[test]
    fn partitions_never_overlap_and_cover_the_range() {
        let ports = HostPorts::default();
        let mut rng = SmallRng::seed_from_u64(5);
        let mut seen = std::collections::BTreeMap::new();
        for index in 0..3u16 {
            let mut taken = HostPorts::default();
            while let Some(p) = taken.pick(&(1000..=1009), (index, 3), &mut rng) {
                assert_eq!((p - 1000) % 3, index);
                assert!(seen.insert(p, index).is_none(), "port {p} in two shares");
                taken.acquire(p);
            }
        }
        assert_eq!(seen.len(), 10);
        assert_eq!(ports.pick(&(1000..=1001), (5, 3), &mut rng), None);
    }

    #[test]
    fn empty_range_is_exhausted() {
        let ports = HostPorts::default();
        let mut rng = SmallRng::seed_from_u64(0);
        #[allow(clippy::reversed_empty_ranges)]
        let range = 10..=5;
        assert_eq!(ports.pick(&range, (0, 1), &mut rng), None);
    }
}
