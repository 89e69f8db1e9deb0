//! Telling a node client's echo of a free from a free it means.
//!
//! A node client sends every free it is told about back to the hub (for a record it knew),
//! at once and in the order it got them. The echo must not reach the core: the record may
//! have been registered again under the same id before the echo arrives (a reconnecting
//! service), and a free from a node client frees any record.
//!
//! The frees go out to every node session alike, so they are kept once, in one list for
//! all of them ([`FreeLog`]), and each session keeps only how far its client has echoed
//! ([`Echoes`]): a free from the client is an echo if it is in the list past that point.
//! Frees the client skipped (records it did not know) are passed over, since echoes come
//! in order. A count per session and id instead cost every node session an entry per free
//! in flight: when a thousand node clients left at once, the ones still to be closed were
//! sent the others' frees, millions of entries, and the hub grew from 12 to 376 MiB of RSS
//! (docs/benchmarks.md, "Many node clients leaving at once").

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use seaport_core::RecordId;

/// The most frees kept for clients that have not echoed them; past it the oldest go (a
/// client that far behind, or one that does not echo, has its late echoes taken as frees
/// of records that are gone, which the hub ignores).
pub(crate) const MAX_FREES: usize = 65_536;

/// The frees sent to every node session, in the order they went out, each linked to the
/// free of the same id before it: a client's free is looked up from the last free of its
/// id back, not searched for.
#[derive(Debug, Default)]
pub(crate) struct FreeLog {
    /// The place of `ids[0]`: how many frees were dropped from the front.
    first: u64,
    /// Each free's id, and the place of the free of the same id before it ([`NONE`] if none).
    ids: VecDeque<(RecordId, u64)>,
    /// For each id in the list, the place of its last free and how many it has there.
    last: FxHashMap<RecordId, (u64, u32)>,
    /// When the list is this long, it is trimmed to what some session can still echo.
    trim_at: usize,
}

/// No free of the same id before.
const NONE: u64 = u64::MAX;

/// The shortest list worth trimming.
const TRIM_FROM: usize = 1_024;

/// The most frees of one id a lookup steps through (the id's frees the client may still
/// echo, and those of its own it does not): a client freeing the same id over and over
/// while it echoes nothing cannot make every lookup longer.
const MAX_STEPS: usize = 64;

impl FreeLog {
    /// The place the next free will take.
    pub(crate) fn end(&self) -> u64 {
        self.first + self.ids.len() as u64
    }

    /// Adds a free going out to every node session; returns its place.
    pub(crate) fn push(&mut self, id: RecordId) -> u64 {
        if self.ids.len() >= MAX_FREES {
            self.pop_front();
        }
        let place = self.end();
        let prev = match self.last.get_mut(id.as_str()) {
            Some((last, count)) => {
                *count += 1;
                std::mem::replace(last, place)
            }
            None => {
                self.last.insert(id.clone(), (place, 1));
                NONE
            }
        };
        self.ids.push_back((id, prev));
        place
    }

    fn pop_front(&mut self) {
        let Some((id, _)) = self.ids.pop_front() else { return };
        self.first += 1;
        if let Some((_, count)) = self.last.get_mut(id.as_str()) {
            *count -= 1;
            if *count == 0 {
                self.last.remove(id.as_str());
            }
        }
    }

    /// The places of the frees of `id` still in the list, the last first.
    fn places_of<'a>(&'a self, id: &str) -> impl Iterator<Item = u64> + 'a {
        let mut place = self.last.get(id).map_or(NONE, |&(last, _)| last);
        std::iter::from_fn(move || {
            let current = place;
            let (_, prev) = self.ids.get(current.checked_sub(self.first)? as usize)?;
            place = *prev;
            Some(current)
        })
    }

    /// Whether the list is long enough to be trimmed ([`trim`](Self::trim)).
    pub(crate) fn wants_trim(&self) -> bool {
        self.ids.len() >= self.trim_at.max(TRIM_FROM)
    }

    /// Drops the frees before `oldest`, the first free any node session may still echo.
    pub(crate) fn trim(&mut self, oldest: u64) {
        while self.first < oldest && !self.ids.is_empty() {
            self.pop_front();
        }
        // Trimmed again once it has doubled: the sessions are walked once per so many frees.
        self.trim_at = 2 * self.ids.len();
        if self.ids.capacity() > 4 * self.ids.len().max(TRIM_FROM) {
            self.ids.shrink_to(2 * self.ids.len());
            self.last.shrink_to(2 * self.last.len());
        }
    }
}

/// One node session's side: how far its client has echoed, and the exceptions.
#[derive(Debug, Default)]
pub(crate) struct Echoes {
    /// The place of the first free the client may still echo.
    next: u64,
    /// Places of frees of records the client freed itself: it does not echo those.
    own: VecDeque<u64>,
    /// The client's own free being handled: the place its fan-out takes goes to `own`.
    freeing: Option<RecordId>,
    /// Frees sent to this client alone (records it re-announced that the hub did not
    /// take), counted per id.
    alone: FxHashMap<RecordId, u32>,
}

impl Echoes {
    /// Starts at the end of `log`: the session is sent every free from there on.
    pub(crate) fn start(&mut self, log: &FreeLog) {
        self.next = log.end();
    }

    /// The first place of the log this session may still echo.
    pub(crate) fn oldest(&self) -> u64 {
        self.next
    }

    /// The free at `place` of the log went out to this client.
    pub(crate) fn sent(&mut self, place: u64, id: &RecordId) {
        if self.freeing.as_ref() == Some(id) {
            self.freeing = None;
            self.own.push_back(place);
        }
    }

    /// The client frees `id` itself (or stops, with `None`): the hub's free of it that
    /// follows is not echoed.
    pub(crate) fn freeing(&mut self, id: Option<RecordId>) {
        self.freeing = id;
    }

    /// A free of `id` went out to this client alone.
    pub(crate) fn sent_alone(&mut self, id: &RecordId) {
        if self.alone.len() >= MAX_FREES {
            self.alone.clear();
        }
        *self.alone.entry(id.clone()).or_default() += 1;
    }

    /// Whether the client's free of `id` is the echo of one the hub sent it; if so, it is
    /// used up, along with the frees before it that the client skipped.
    pub(crate) fn take(&mut self, log: &FreeLog, id: &str) -> bool {
        if let Some(n) = self.alone.get_mut(id) {
            *n -= 1;
            if *n == 0 {
                self.alone.remove(id);
            }
            return true;
        }
        let from = self.next.max(log.first);
        while self.own.front().is_some_and(|&p| p < from) {
            self.own.pop_front();
        }
        // The first free of `id` from `from` on that is not the client's own.
        let mut echoed = None;
        for place in log.places_of(id).take_while(|&place| place >= from).take(MAX_STEPS) {
            if self.own.binary_search(&place).is_err() {
                echoed = Some(place);
            }
        }
        let Some(place) = echoed else { return false };
        self.next = place + 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> RecordId {
        RecordId::new(s).expect("a valid id")
    }

    /// An empty log and a session started on it.
    fn session() -> (FreeLog, Echoes) {
        let log = FreeLog::default();
        let mut echoes = Echoes::default();
        echoes.start(&log);
        (log, echoes)
    }

    /// A free of `name` going out to the session, as the hub's flush does it.
    fn send(log: &mut FreeLog, echoes: &mut Echoes, name: &str) {
        let place = log.push(id(name));
        echoes.sent(place, &id(name));
    }

    #[test]
    fn echoes_in_order_are_taken_once_each() {
        let (mut log, mut echoes) = session();
        for name in ["a", "b", "a"] {
            send(&mut log, &mut echoes, name);
        }
        assert!(echoes.take(&log, "a"));
        assert!(echoes.take(&log, "b"));
        assert!(echoes.take(&log, "a"), "the second free of a has its own echo");
        assert!(!echoes.take(&log, "a"), "a fourth free of a is the client's own");
    }

    #[test]
    fn frees_the_client_skipped_are_passed_over() {
        let (mut log, mut echoes) = session();
        for name in ["unknown", "known"] {
            send(&mut log, &mut echoes, name);
        }
        assert!(echoes.take(&log, "known"));
        // The client never knew `unknown`: a free of it later is its own.
        assert!(!echoes.take(&log, "unknown"));
    }

    #[test]
    fn frees_before_the_session_began_are_not_its_echoes() {
        let mut log = FreeLog::default();
        log.push(id("old"));
        let mut echoes = Echoes::default();
        echoes.start(&log);
        assert!(!echoes.take(&log, "old"));
    }

    #[test]
    fn the_fan_out_of_the_clients_own_free_is_not_awaited() {
        let (mut log, mut echoes) = session();
        send(&mut log, &mut echoes, "other");
        echoes.freeing(Some(id("mine")));
        send(&mut log, &mut echoes, "mine");
        echoes.freeing(None);
        // Registered again and freed again by the client: that free is meant.
        assert!(!echoes.take(&log, "mine"));
        // The echo sent before it still counts.
        assert!(echoes.take(&log, "other"));
    }

    #[test]
    fn a_client_freeing_the_same_id_over_and_over_has_each_free_taken() {
        let (mut log, mut echoes) = session();
        for _ in 0..4 * MAX_STEPS {
            assert!(!echoes.take(&log, "x"), "its own free of x, not an echo");
            echoes.freeing(Some(id("x")));
            send(&mut log, &mut echoes, "x");
            echoes.freeing(None);
        }
        // Someone else's record freed by the hub: the client's echo of it is still one.
        send(&mut log, &mut echoes, "y");
        assert!(echoes.take(&log, "y"));
    }

    #[test]
    fn a_free_sent_to_the_client_alone_is_awaited() {
        let (log, mut echoes) = session();
        echoes.sent_alone(&id("remembered"));
        assert!(echoes.take(&log, "remembered"));
        assert!(!echoes.take(&log, "remembered"));
    }

    #[test]
    fn trimming_keeps_what_a_session_may_still_echo() {
        let (mut log, mut echoes) = session();
        for i in 0..3 * TRIM_FROM {
            send(&mut log, &mut echoes, &format!("r{i}"));
        }
        assert!(echoes.take(&log, &format!("r{}", TRIM_FROM)));
        assert!(log.wants_trim());
        log.trim(echoes.oldest());
        assert_eq!(log.end(), 3 * TRIM_FROM as u64);
        assert!(!log.wants_trim(), "trimmed again only once it has doubled");
        assert!(!echoes.take(&log, "r0"), "passed over, and trimmed");
        assert!(echoes.take(&log, &format!("r{}", TRIM_FROM + 1)));
    }

    #[test]
    fn the_list_is_bounded_for_clients_that_never_echo() {
        let (mut log, mut echoes) = session();
        for i in 0..MAX_FREES + 10 {
            send(&mut log, &mut echoes, &format!("r{i}"));
        }
        assert_eq!(log.ids.len(), MAX_FREES);
        assert_eq!(log.last.len(), MAX_FREES, "the dropped ids go from the index too");
        assert!(!echoes.take(&log, "r0"), "dropped from the front");
        assert!(echoes.take(&log, "r10"));
    }
}
