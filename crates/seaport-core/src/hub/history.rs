//! The hub's revision counter and its bounded log of recent changes to the view, from
//! which a reconnecting client's subscription resumes.
//!
//! Every change to the view (a record registered, updated or freed, locally or through a
//! peer) gets the next revision and is logged with the record before and after it. The
//! log keeps the most recent changes within a count and an (estimated) byte budget; it
//! covers a resume point `r` when every change after `r` is still in it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::message::Change;
use crate::pattern::Pattern;
use crate::record::{Record, RecordId};
use crate::registry::Registry;

/// What the log keeps of one change besides its records: an estimate of the entry's own
/// size, so the byte budget also bounds a log of tiny records.
const ENTRY_OVERHEAD: usize = 64;

/// One change to the view: two pointers, 16 bytes. Its revision is its place in the log
/// (entries hold consecutive revisions from `floor + 1`), and its estimated size, counted
/// against the byte budget, is computed again from its records when it leaves.
#[derive(Debug)]
struct Entry {
    /// The id's record in the view before the change (`None`: it was not in the view).
    before: Option<Arc<Record>>,
    /// After it (`None`: freed).
    after: Option<Arc<Record>>,
}

impl Entry {
    fn bytes(&self) -> usize {
        let size = |r: &Option<Arc<Record>>| r.as_ref().map_or(0, |r| r.encoded_size_estimate());
        ENTRY_OVERHEAD + size(&self.before) + size(&self.after)
    }
}

/// Entries per block of the log: 8 KiB.
const BLOCK: usize = 512;

/// A queue in blocks of [`BLOCK`] entries: it grows and shrinks a block at a time, so it
/// holds at most one block more than its entries (a `VecDeque` doubles: at 10 000
/// changes it held room for 16 384, a third of the log's memory, and growing it copied
/// the whole log under the hub's lock).
///
/// Every block but the first and the last is full.
#[derive(Debug)]
struct Blocks<T> {
    blocks: VecDeque<VecDeque<T>>,
    len: usize,
}

impl<T> Default for Blocks<T> {
    fn default() -> Self {
        Blocks { blocks: VecDeque::new(), len: 0 }
    }
}

impl<T> Blocks<T> {
    fn len(&self) -> usize {
        self.len
    }

    fn push_back(&mut self, item: T) {
        match self.blocks.back_mut() {
            Some(last) if last.len() < BLOCK => last.push_back(item),
            _ => {
                let mut block = VecDeque::with_capacity(BLOCK);
                block.push_back(item);
                self.blocks.push_back(block);
            }
        }
        self.len += 1;
    }

    fn pop_front(&mut self) -> Option<T> {
        let first = self.blocks.front_mut()?;
        let item = first.pop_front()?;
        if first.is_empty() {
            self.blocks.pop_front();
        }
        self.len -= 1;
        Some(item)
    }

    /// The items from position `skip` on, found without walking the ones before.
    fn iter_from(&self, skip: usize) -> impl Iterator<Item = &T> {
        let first = self.blocks.front().map_or(0, VecDeque::len);
        let (block, at) = if skip < first { (0, skip) } else { (1 + (skip - first) / BLOCK, (skip - first) % BLOCK) };
        let head = self.blocks.get(block).into_iter().flat_map(move |b| b.range(at.min(b.len())..));
        head.chain(self.blocks.range((block + 1).min(self.blocks.len())..).flatten())
    }
}

/// The revision counter and the log.
#[derive(Debug)]
pub(super) struct History {
    entries: Blocks<Entry>,
    /// The revision of the last change (0 before the first).
    head: u64,
    /// Every change after this revision is in `entries`, the first of them being
    /// `floor + 1`.
    floor: u64,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl History {
    pub(super) fn new(max_entries: usize, max_bytes: usize) -> History {
        History { entries: Blocks::default(), head: 0, floor: 0, bytes: 0, max_entries, max_bytes }
    }

    /// The revision of the last change.
    pub(super) fn head(&self) -> u64 {
        self.head
    }

    /// The oldest resume point the log covers.
    pub(super) fn floor(&self) -> u64 {
        self.floor
    }

    /// Counts a change from `before` to `after` (not both `None`) and logs it; returns its
    /// revision. Drops the oldest entries beyond the bounds.
    pub(super) fn record(&mut self, before: Option<&Arc<Record>>, after: Option<&Arc<Record>>) -> u64 {
        self.head = self.head.saturating_add(1);
        let entry = Entry { before: before.cloned(), after: after.cloned() };
        self.bytes += entry.bytes();
        self.entries.push_back(entry);
        while self.entries.len() > self.max_entries || self.bytes > self.max_bytes {
            let Some(old) = self.entries.pop_front() else { break };
            self.bytes -= old.bytes();
            self.floor += 1;
        }
        self.head
    }

    /// The number of changes after `revision`, if the log holds all of them.
    pub(super) fn changes_since(&self, revision: u64) -> Option<u64> {
        (self.floor..=self.head).contains(&revision).then(|| self.head - revision)
    }

    /// What a replica of `pattern` at `revision` (or later) needs to become the view's
    /// matches now, at most one change per id (ascending ids), or `None` if the log does
    /// not cover `revision`. `view` is the current view.
    pub(super) fn resume(&self, pattern: &Pattern, revision: u64, view: &Registry) -> Option<Vec<Change>> {
        self.changes_since(revision)?;
        // Entries hold consecutive revisions, so the first one after `revision` is found
        // by subtraction, not by a search.
        let first = self.floor.saturating_add(1);
        let skip = usize::try_from(revision.saturating_add(1).saturating_sub(first)).ok()?.min(self.entries.len());
        // For each id whose changes touched the pattern (a record before or after matched):
        // its matching record at `revision`, if any (the `before` of its first such entry:
        // an earlier entry for the id neither matched nor left a match), and the last
        // matching record it had.
        let mut touched: BTreeMap<RecordId, (Option<Arc<Record>>, Arc<Record>)> = BTreeMap::new();
        for e in self.entries.iter_from(skip) {
            let before = e.before.as_ref().filter(|r| pattern.matches(r));
            let after = e.after.as_ref().filter(|r| pattern.matches(r));
            let Some(last) = after.or(before) else { continue };
            touched
                .entry(last.id.clone())
                .and_modify(|(_, l)| *l = Arc::clone(last))
                .or_insert_with(|| (before.cloned(), Arc::clone(last)));
        }
        let mut changes = Vec::with_capacity(touched.len());
        for (id, (then, last)) in touched {
            let now = view.get(id.as_str()).filter(|r| pattern.matches(r));
            // Every touched id gets its state now, even one that did not match at
            // `revision` or is back as it was then: harmless for a replica that is at
            // `revision`, and right for one that is further along, so resuming from any
            // point earlier than the replica's own gives the same replica.
            match (then, now) {
                (_, None) => changes.push(Change::Free(last)),
                (Some(then), Some(now)) if same_instance(&then, now) => changes.push(Change::Update(Arc::clone(now))),
                (_, Some(now)) => changes.push(Change::Register(Arc::clone(now))),
            }
        }
        Some(changes)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Whether `a` and `b` are the same registration (only the metadata may differ): the
/// rule by which the hub sends a change as an update rather than a register.
pub(super) fn same_instance(a: &Record, b: &Record) -> bool {
    a.origin == b.origin
        && a.incarnation == b.incarnation
        && a.role == b.role
        && a.version == b.version
        && a.host == b.host
        && a.port == b.port
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{HubId, Role};
    use crate::value::Meta;

    fn rec(id: &str, role: &str) -> Arc<Record> {
        Arc::new(Record {
            id: RecordId::new(id).unwrap(),
            role: Role::new(role).unwrap(),
            version: None,
            host: "h".into(),
            port: 1,
            meta: Meta::new(),
            origin: HubId(1),
            incarnation: 1,
        })
    }

    #[test]
    fn count_bound_moves_the_floor() {
        let mut h = History::new(2, usize::MAX);
        let a = rec("a", "web");
        for _ in 0..5 {
            h.record(None, Some(&a));
        }
        assert_eq!((h.head(), h.floor(), h.len()), (5, 3, 2));
        assert_eq!(h.changes_since(2), None);
        assert_eq!(h.changes_since(3), Some(2));
        assert_eq!(h.changes_since(5), Some(0));
        assert_eq!(h.changes_since(6), None, "a point from the future is not covered");
    }

    #[test]
    fn byte_bound_keeps_the_log_small() {
        let a = rec("a", "web");
        let mut h = History::new(usize::MAX, 3 * (ENTRY_OVERHEAD + a.encoded_size_estimate()));
        for _ in 0..10 {
            h.record(None, Some(&a));
        }
        assert_eq!(h.len(), 3);
        assert_eq!(h.floor(), 7);
    }

    #[test]
    fn blocks_hand_out_what_a_deque_would() {
        let mut blocks = Blocks::default();
        let mut model = VecDeque::new();
        let mut next = 0u32;
        // Grow past several blocks, shrink from the front, grow again, down to empty.
        for (push, pop) in [(3 * BLOCK + 7, 0), (0, BLOCK + 3), (BLOCK, 2 * BLOCK - 1), (5, 0), (0, 2 * BLOCK + 20)] {
            for _ in 0..push {
                blocks.push_back(next);
                model.push_back(next);
                next += 1;
            }
            for _ in 0..pop {
                assert_eq!(blocks.pop_front(), model.pop_front());
            }
            assert_eq!(blocks.len(), model.len());
            assert!(blocks.blocks.len() <= model.len().div_ceil(BLOCK) + 1, "at most one block more than needed");
            for skip in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, model.len().saturating_sub(1), model.len(), model.len() + 3]
            {
                let got: Vec<u32> = blocks.iter_from(skip).copied().collect();
                let want: Vec<u32> = model.iter().skip(skip).copied().collect();
                assert_eq!(got, want, "from {skip} of {}", model.len());
            }
        }
        assert_eq!(blocks.pop_front(), None);
        assert!(blocks.blocks.is_empty());
    }

    #[test]
    fn resume_reads_from_the_resume_point_across_blocks() {
        let mut h = History::new(usize::MAX, usize::MAX);
        let records: Vec<Arc<Record>> = (0..3 * BLOCK).map(|i| rec(&format!("r{i}"), "web")).collect();
        for r in &records {
            h.record(None, Some(r));
        }
        let view = Registry::new(1);
        let pattern: Pattern = "web".parse().unwrap();
        for revision in [0, 1, BLOCK as u64 - 1, BLOCK as u64, 2 * BLOCK as u64 + 5, 3 * BLOCK as u64] {
            let changes = h.resume(&pattern, revision, &view).unwrap();
            // Nothing is in the view any more, so each record registered after the
            // resume point comes back as a free.
            let mut want: Vec<&str> = records[revision as usize..].iter().map(|r| r.id.as_str()).collect();
            want.sort_unstable();
            let got: Vec<&str> = changes.iter().map(|c| c.record().id.as_str()).collect();
            assert_eq!(got, want, "from revision {revision}");
        }
    }

    #[test]
    fn zero_capacity_covers_only_the_head() {
        let mut h = History::new(0, usize::MAX);
        h.record(None, Some(&rec("a", "web")));
        assert_eq!(h.changes_since(1), Some(0));
        assert_eq!(h.changes_since(0), None);
    }
}
