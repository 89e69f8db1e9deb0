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

/// A host with more ports than this in use keeps them in a bitmap.
const MANY: usize = 512;

/// A bitmap whose ports in use drop below this many goes back to a tree.
const FEW: usize = 256;

/// Port to the number of live records using it (explicit ports may be shared).
///
/// A tree while few ports are in use; past [`MANY`], a bitmap of all 65 536 ports
/// (8 KiB, where the tree took about 15 bytes a port: 150 KB for a host of 10 000
/// records) with the uses beyond the first beside it.
#[derive(Clone, Debug)]
enum PortCounts {
    Few(BTreeMap<u16, u32>),
    Many {
        bits: Box<[u64]>,
        /// Uses beyond the first, for the ports used more than once.
        extra: BTreeMap<u16, u32>,
        len: usize,
    },
}

impl Default for PortCounts {
    fn default() -> PortCounts {
        PortCounts::Few(BTreeMap::new())
    }
}

/// Where `port` is in the bitmap: its word, and its bit in that word.
fn bit_of(port: u16) -> (usize, u64) {
    (usize::from(port >> 6), 1 << (port & 63))
}

impl PortCounts {
    fn contains(&self, port: u16) -> bool {
        match self {
            PortCounts::Few(counts) => counts.contains_key(&port),
            PortCounts::Many { bits, .. } => {
                let (word, bit) = bit_of(port);
                bits.get(word).is_some_and(|w| w & bit != 0)
            }
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            PortCounts::Few(counts) => counts.is_empty(),
            PortCounts::Many { len, .. } => *len == 0,
        }
    }

    fn add(&mut self, port: u16) {
        match self {
            PortCounts::Few(counts) => {
                *counts.entry(port).or_insert(0) += 1;
                if counts.len() > MANY {
                    let mut bits = vec![0u64; 1 << 10].into_boxed_slice();
                    let mut extra = BTreeMap::new();
                    for (&port, &count) in counts.iter() {
                        let (word, bit) = bit_of(port);
                        if let Some(word) = bits.get_mut(word) {
                            *word |= bit;
                        }
                        if count > 1 {
                            extra.insert(port, count - 1);
                        }
                    }
                    *self = PortCounts::Many { bits, extra, len: counts.len() };
                }
            }
            PortCounts::Many { bits, extra, len } => {
                let (word, bit) = bit_of(port);
                let Some(word) = bits.get_mut(word) else { return };
                if *word & bit != 0 {
                    *extra.entry(port).or_insert(0) += 1;
                } else {
                    *word |= bit;
                    *len += 1;
                }
            }
        }
    }

    /// Takes one use of `port` away; `true` when that was its last (it is free now).
    fn remove_one(&mut self, port: u16) -> bool {
        match self {
            PortCounts::Few(counts) => {
                let Some(count) = counts.get_mut(&port) else { return false };
                *count -= 1;
                if *count > 0 {
                    return false;
                }
                counts.remove(&port);
                true
            }
            PortCounts::Many { bits, extra, len } => {
                if let Some(more) = extra.get_mut(&port) {
                    *more -= 1;
                    if *more == 0 {
                        extra.remove(&port);
                    }
                    return false;
                }
                let (word, bit) = bit_of(port);
                let Some(word) = bits.get_mut(word) else { return false };
                if *word & bit == 0 {
                    return false;
                }
                *word &= !bit;
                *len -= 1;
                if *len < FEW {
                    let counts = self.ports().into_iter().map(|p| (p, 1 + self.extra_uses(p))).collect();
                    *self = PortCounts::Few(counts);
                }
                true
            }
        }
    }

    fn extra_uses(&self, port: u16) -> u32 {
        match self {
            PortCounts::Few(_) => 0,
            PortCounts::Many { extra, .. } => extra.get(&port).copied().unwrap_or(0),
        }
    }

    /// The ports in use, in order.
    fn ports(&self) -> Vec<u16> {
        match self {
            PortCounts::Few(counts) => counts.keys().copied().collect(),
            PortCounts::Many { bits, len, .. } => {
                let mut ports = Vec::with_capacity(*len);
                for (at, &word) in bits.iter().enumerate() {
                    let mut word = word;
                    while word != 0 {
                        let bit = word.trailing_zeros();
                        if let Ok(port) = u16::try_from(at * 64 + bit as usize) {
                            ports.push(port);
                        }
                        word &= word - 1;
                    }
                }
                ports
            }
        }
    }
}

/// The ports in use on one host, and the ones freed recently.
#[derive(Clone, Debug, Default)]
pub(crate) struct HostPorts {
    used: PortCounts,
    /// Port to the sequence number of its release, for the recently freed ones.
    recent: FxHashMap<u16, u64>,
    /// Release order, oldest first, to forget the oldest when full.
    recent_order: VecDeque<(u16, u64)>,
    released: u64,
}

impl HostPorts {
    pub(crate) fn acquire(&mut self, port: u16) {
        self.used.add(port);
        // Its entry in `recent_order` stays behind and is skipped as stale when reached.
        self.recent.remove(&port);
    }

    pub(crate) fn release(&mut self, port: u16, remember: usize) {
        if !self.used.remove_one(port) || remember == 0 {
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
        self.used.contains(port)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.used.is_empty() && self.recent.is_empty()
    }

    /// The ports in use, in order.
    pub(crate) fn used_ports(&self) -> Vec<u16> {
        self.used.ports()
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
    fn many_ports_counted_as_a_tree_would_across_the_switch_to_a_bitmap_and_back() {
        let mut ports = HostPorts::default();
        let mut model: BTreeMap<u16, u32> = BTreeMap::new();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        // Grow past MANY, shrink below FEW, grow again; some ports used twice or more.
        for (steps, grow) in [(3000, 8), (6000, 2), (3000, 8)] {
            for _ in 0..steps {
                let port = if next(10) == 0 { 65_535 - next(4) as u16 } else { next(2000) as u16 };
                if next(10) < grow {
                    ports.acquire(port);
                    *model.entry(port).or_insert(0) += 1;
                } else if let Some(count) = model.get_mut(&port) {
                    *count -= 1;
                    if *count == 0 {
                        model.remove(&port);
                    }
                    ports.release(port, 0);
                } else {
                    ports.release(port, 0);
                }
                assert_eq!(ports.is_used(port), model.contains_key(&port), "port {port}");
            }
            assert_eq!(ports.used_ports(), model.keys().copied().collect::<Vec<_>>());
            let many = matches!(ports.used, PortCounts::Many { .. });
            assert_eq!(many, model.len() >= FEW && (model.len() > MANY || grow == 2), "{} ports", model.len());
        }
        for (&port, &count) in &model.clone() {
            for left in (0..count).rev() {
                ports.release(port, 0);
                assert_eq!(ports.is_used(port), left > 0);
            }
        }
        assert!(ports.is_empty());
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
