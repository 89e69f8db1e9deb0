//! The client's local replica of the records matching its subscriptions.

use std::collections::BTreeMap;
use std::sync::Arc;

use seaport_core::{Change, Pattern, Record, ResumePoint};

/// One subscription's view: the records matching its pattern, kept in sync by the
/// hub's snapshot (or resumed changes) and changes, plus the resume point the next
/// connection subscribes with. Pure data, so it is tested without a network.
///
/// While a connection (re)syncs, the old view stays for queries and the hub's answer is
/// collected aside; it is applied only with the `Synced` that carries its resume point,
/// so a connection lost mid-sync leaves the replica and its point consistent. Changes
/// that arrive before that `Synced` are ignored: the snapshot or resumed changes, made
/// later by the hub, already include them.
#[derive(Debug)]
pub(crate) struct Replica {
    pub(crate) pattern: Pattern,
    records: BTreeMap<String, Arc<Record>>,
    /// While (re)syncing: what the hub sent so far.
    incoming: Option<Incoming>,
    synced: bool,
    /// Where `records` stand in the history of the hub that sent them.
    point: Option<ResumePoint>,
}

#[derive(Debug, Default)]
struct Incoming {
    snapshot: BTreeMap<String, Arc<Record>>,
    resumed: Vec<Change>,
}

/// How a subscription synced on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Synced {
    /// Resumed (only changes came) rather than a full snapshot.
    pub(crate) resumed: bool,
    /// How many records (full) or changes (resumed) the hub sent.
    pub(crate) received: usize,
}

impl Replica {
    pub(crate) fn new(pattern: Pattern) -> Replica {
        Replica { pattern, records: BTreeMap::new(), incoming: Some(Incoming::default()), synced: false, point: None }
    }

    pub(crate) fn is_synced(&self) -> bool {
        self.synced
    }

    /// A new connection: collect the hub's answer while keeping the old view for queries.
    /// Returns the resume point to subscribe with.
    pub(crate) fn resync(&mut self) -> Option<ResumePoint> {
        self.incoming = Some(Incoming::default());
        self.point
    }

    pub(crate) fn add_snapshot(&mut self, records: Vec<Arc<Record>>) {
        let target = &mut self.incoming.get_or_insert_with(Incoming::default).snapshot;
        for record in records {
            target.insert(record.id.to_string(), record);
        }
    }

    pub(crate) fn add_resumed(&mut self, changes: Vec<Change>) {
        self.incoming.get_or_insert_with(Incoming::default).resumed.extend(changes);
    }

    /// The hub's answer is complete: a full snapshot replaces the view, resumed changes
    /// patch it, and `at` becomes the resume point. Returns the changes between the old
    /// view and the new one (empty on the first sync), for watchers, and how it synced.
    pub(crate) fn finish_sync(&mut self, at: ResumePoint, resumed: bool) -> (Vec<Change>, Synced) {
        let incoming = self.incoming.take().unwrap_or_default();
        let first = !self.synced;
        self.synced = true;
        self.point = Some(at);
        if resumed {
            let received = incoming.resumed.len();
            let changes: Vec<Change> = incoming.resumed.iter().filter_map(|c| self.patch(c)).collect();
            return (if first { Vec::new() } else { changes }, Synced { resumed, received });
        }
        let received = incoming.snapshot.len();
        let old = std::mem::replace(&mut self.records, incoming.snapshot);
        let synced = Synced { resumed, received };
        if first {
            return (Vec::new(), synced);
        }
        let mut changes = Vec::new();
        for (id, record) in &old {
            if !self.records.contains_key(id) {
                changes.push(Change::Free(Arc::clone(record)));
            }
        }
        for (id, record) in &self.records {
            if let Some(change) = difference(old.get(id), record) {
                changes.push(change);
            }
        }
        (changes, synced)
    }

    /// Applies one resumed change (the record's state now); returns what watchers see.
    fn patch(&mut self, change: &Change) -> Option<Change> {
        let id = change.record().id.as_str();
        match change {
            Change::Register(r) | Change::Update(r) if self.pattern.matches(r) => {
                let event = difference(self.records.get(id), r);
                self.records.insert(id.to_string(), Arc::clone(r));
                event
            }
            _ => self.records.remove(id).map(|_| Change::Free(Arc::clone(change.record()))),
        }
    }

    /// Applies a change from the hub, numbered `revision`; returns the change as this
    /// subscription sees it (a record that stops matching is a free here), or `None` if
    /// it does not concern it. Every change the hub sends this connection moves a synced
    /// subscription's resume point up, whether it matches or not: the hub sent every
    /// earlier change the subscription cares about before it.
    pub(crate) fn apply(&mut self, revision: u64, change: &Change) -> Option<Change> {
        if self.incoming.is_some() {
            return None;
        }
        if let Some(point) = &mut self.point {
            point.revision = point.revision.max(revision);
        }
        let record = change.record();
        let id = record.id.as_str();
        match change {
            Change::Free(_) => self.records.remove(id).map(|_| change.clone()),
            Change::Register(r) | Change::Update(r) => {
                if self.pattern.matches(r) {
                    self.records.insert(id.to_string(), Arc::clone(r));
                    Some(change.clone())
                } else {
                    self.records.remove(id).map(Change::Free)
                }
            }
        }
    }

    /// The records in the current view.
    pub(crate) fn records(&self) -> impl Iterator<Item = &Arc<Record>> + '_ {
        self.records.values()
    }

    #[cfg(test)]
    fn point(&self) -> Option<ResumePoint> {
        self.point
    }
}

/// What a watcher sees when `now` replaces `before`: a register for a new or moved record,
/// an update for one whose metadata (or incarnation) changed, nothing for the same record.
fn difference(before: Option<&Arc<Record>>, now: &Arc<Record>) -> Option<Change> {
    match before {
        None => Some(Change::Register(Arc::clone(now))),
        Some(before) if **before == **now => None,
        Some(before) if before.host != now.host || before.port != now.port => Some(Change::Register(Arc::clone(now))),
        Some(_) => Some(Change::Update(Arc::clone(now))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seaport_core::{HubId, Meta, RecordId, Role, Value};

    const AT: ResumePoint = ResumePoint { hub: HubId(1), epoch: 2, revision: 10 };

    fn summary(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|c| match c {
                Change::Register(r) => format!("+{}", r.id),
                Change::Update(r) => format!("~{}", r.id),
                Change::Free(r) => format!("-{}", r.id),
            })
            .collect()
    }

    fn rec(id: &str, role: &str, port: u16) -> Arc<Record> {
        Arc::new(Record {
            id: RecordId::new(id).unwrap(),
            role: Role::new(role).unwrap(),
            version: Some("1.0.0".parse().unwrap()),
            host: "h".into(),
            port,
            meta: Meta::new(),
            origin: HubId(0),
            incarnation: 1,
        })
    }

    #[test]
    fn first_sync_then_changes() {
        let mut r = Replica::new("web".parse().unwrap());
        r.add_snapshot(vec![rec("a", "web", 1)]);
        assert!(!r.is_synced());
        assert_eq!(r.finish_sync(AT, false), (Vec::new(), Synced { resumed: false, received: 1 }));
        assert_eq!(r.records().count(), 1);
        assert!(r.apply(11, &Change::Register(rec("b", "web", 2))).is_some());
        assert!(r.apply(12, &Change::Register(rec("c", "db", 3))).is_none());
        assert!(r.apply(13, &Change::Free(rec("zz", "web", 3))).is_none());
        assert!(matches!(r.apply(14, &Change::Free(rec("a", "web", 1))), Some(Change::Free(_))));
        assert_eq!(r.records().map(|r| r.id.to_string()).collect::<Vec<_>>(), vec!["b"]);
        // Changes that are not this pattern's still move its point.
        assert_eq!(r.point(), Some(ResumePoint { revision: 14, ..AT }));
    }

    #[test]
    fn leaving_the_pattern_is_a_free() {
        let mut r = Replica::new("web?meta.env=prod".parse().unwrap());
        let mut prod = Record::clone(&rec("a", "web", 1));
        prod.meta.insert("env".into(), Value::from("prod"));
        r.add_snapshot(vec![Arc::new(prod.clone())]);
        r.finish_sync(AT, false);
        prod.meta.insert("env".into(), Value::from("dev"));
        assert!(matches!(r.apply(11, &Change::Update(Arc::new(prod))), Some(Change::Free(_))));
        assert_eq!(r.records().count(), 0);
    }

    #[test]
    fn resync_reports_the_difference() {
        let mut r = Replica::new("*".parse().unwrap());
        r.add_snapshot(vec![rec("a", "web", 1), rec("b", "web", 2)]);
        r.finish_sync(AT, false);
        assert_eq!(r.resync(), Some(AT));
        // Queries still see the old view while the new snapshot arrives, and changes sent
        // before it are left to the snapshot.
        assert_eq!(r.records().count(), 2);
        assert_eq!(r.apply(11, &Change::Free(rec("a", "web", 1))), None);
        r.add_snapshot(vec![rec("b", "web", 5), rec("c", "web", 3)]);
        let (changes, synced) = r.finish_sync(ResumePoint { epoch: 3, revision: 4, ..AT }, false);
        assert_eq!(summary(&changes), vec!["-a", "+b", "+c"]);
        assert_eq!(synced, Synced { resumed: false, received: 2 });
        assert_eq!(r.point(), Some(ResumePoint { epoch: 3, revision: 4, ..AT }));
    }

    #[test]
    fn resumed_changes_patch_the_view_at_synced() {
        let mut r = Replica::new("web".parse().unwrap());
        r.add_snapshot(vec![rec("a", "web", 1), rec("b", "web", 2), rec("c", "web", 3)]);
        r.finish_sync(AT, false);
        assert_eq!(r.resync(), Some(AT));
        let mut b = Record::clone(&rec("b", "web", 2));
        b.incarnation = 2;
        let moved_to_db = rec("c", "db", 3);
        r.add_resumed(vec![
            Change::Free(rec("a", "web", 1)),
            Change::Update(Arc::new(b)),
            Change::Register(moved_to_db),
            Change::Register(rec("d", "web", 4)),
            Change::Free(rec("never-had", "web", 9)),
        ]);
        // Nothing applies before `Synced`.
        assert_eq!(r.records().count(), 3);
        let at = ResumePoint { revision: 20, ..AT };
        let (changes, synced) = r.finish_sync(at, true);
        assert_eq!(summary(&changes), vec!["-a", "~b", "-c", "+d"]);
        assert_eq!(synced, Synced { resumed: true, received: 5 });
        assert_eq!(r.records().map(|r| r.id.to_string()).collect::<Vec<_>>(), vec!["b", "d"]);
        assert_eq!(r.point(), Some(at));
    }

    #[test]
    fn a_connection_lost_mid_sync_keeps_the_old_point() {
        let mut r = Replica::new("web".parse().unwrap());
        r.finish_sync(AT, false);
        r.resync();
        r.add_resumed(vec![Change::Register(rec("a", "web", 1))]);
        // The connection drops before `Synced`: the next one resumes from the old point
        // and the half-received changes are gone.
        assert_eq!(r.resync(), Some(AT));
        assert_eq!(r.records().count(), 0);
        let (changes, _) = r.finish_sync(ResumePoint { revision: 12, ..AT }, true);
        assert!(changes.is_empty());
        assert_eq!(r.records().count(), 0);
    }
}
