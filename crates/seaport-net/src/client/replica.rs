//! The client's local replica of the records matching its subscriptions.

use std::collections::BTreeMap;
use std::sync::Arc;

use seaport_core::{Change, Pattern, Record};

/// One subscription's view: the records matching its pattern, kept in sync by the
/// hub's snapshot and changes. Pure data, so it is tested without a network.
#[derive(Debug)]
pub(crate) struct Replica {
    pub(crate) pattern: Pattern,
    records: BTreeMap<String, Arc<Record>>,
    /// While (re)syncing: the snapshot being collected; replaces `records` on sync.
    incoming: Option<BTreeMap<String, Arc<Record>>>,
    synced: bool,
}

impl Replica {
    pub(crate) fn new(pattern: Pattern) -> Replica {
        Replica { pattern, records: BTreeMap::new(), incoming: Some(BTreeMap::new()), synced: false }
    }

    pub(crate) fn is_synced(&self) -> bool {
        self.synced
    }

    /// A new connection: collect a fresh snapshot while keeping the old view for queries.
    pub(crate) fn resync(&mut self) {
        self.incoming = Some(BTreeMap::new());
    }

    pub(crate) fn add_snapshot(&mut self, records: Vec<Arc<Record>>) {
        let target = self.incoming.get_or_insert_with(BTreeMap::new);
        for record in records {
            target.insert(record.id.to_string(), record);
        }
    }

    /// The snapshot is complete: it becomes the view. Returns the changes between the old
    /// view and the new one (empty on the first sync), for watchers.
    pub(crate) fn finish_sync(&mut self) -> Vec<Change> {
        let Some(fresh) = self.incoming.take() else { return Vec::new() };
        let first = !self.synced;
        self.synced = true;
        let old = std::mem::replace(&mut self.records, fresh);
        if first {
            return Vec::new();
        }
        let mut changes = Vec::new();
        for (id, record) in &old {
            if !self.records.contains_key(id) {
                changes.push(Change::Free(Arc::clone(record)));
            }
        }
        for (id, record) in &self.records {
            match old.get(id) {
                None => changes.push(Change::Register(Arc::clone(record))),
                Some(before) if **before != **record => {
                    let moved = before.host != record.host || before.port != record.port;
                    changes.push(if moved {
                        Change::Register(Arc::clone(record))
                    } else {
                        Change::Update(Arc::clone(record))
                    })
                }
                Some(_) => {}
            }
        }
        changes
    }

    /// Applies a change from the hub; returns the change as this subscription sees it
    /// (a record that stops matching is a free here), or `None` if it does not concern it.
    pub(crate) fn apply(&mut self, change: &Change) -> Option<Change> {
        let target = match &mut self.incoming {
            Some(incoming) => incoming,
            None => &mut self.records,
        };
        let record = change.record();
        let id = record.id.as_str();
        match change {
            Change::Free(_) => target.remove(id).map(|_| change.clone()),
            Change::Register(r) | Change::Update(r) => {
                if self.pattern.matches(r) {
                    target.insert(id.to_string(), Arc::clone(r));
                    Some(change.clone())
                } else {
                    target.remove(id).map(Change::Free)
                }
            }
        }
        .filter(|_| self.incoming.is_none())
    }

    /// The records in the current view.
    pub(crate) fn records(&self) -> impl Iterator<Item = &Arc<Record>> + '_ {
        self.records.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seaport_core::{HubId, Meta, RecordId, Role, Value};

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
        assert!(r.finish_sync().is_empty());
        assert_eq!(r.records().count(), 1);
        assert!(r.apply(&Change::Register(rec("b", "web", 2))).is_some());
        assert!(r.apply(&Change::Register(rec("c", "db", 3))).is_none());
        assert!(r.apply(&Change::Free(rec("zz", "web", 3))).is_none());
        assert!(matches!(r.apply(&Change::Free(rec("a", "web", 1))), Some(Change::Free(_))));
        assert_eq!(r.records().map(|r| r.id.to_string()).collect::<Vec<_>>(), vec!["b"]);
    }

    #[test]
    fn leaving_the_pattern_is_a_free() {
        let mut r = Replica::new("web?meta.env=prod".parse().unwrap());
        let mut prod = Record::clone(&rec("a", "web", 1));
        prod.meta.insert("env".into(), Value::from("prod"));
        r.add_snapshot(vec![Arc::new(prod.clone())]);
        r.finish_sync();
        prod.meta.insert("env".into(), Value::from("dev"));
        assert!(matches!(r.apply(&Change::Update(Arc::new(prod))), Some(Change::Free(_))));
        assert_eq!(r.records().count(), 0);
    }

    #[test]
    fn resync_reports_the_difference() {
        let mut r = Replica::new("*".parse().unwrap());
        r.add_snapshot(vec![rec("a", "web", 1), rec("b", "web", 2)]);
        r.finish_sync();
        r.resync();
        // Queries still see the old view while the new snapshot arrives.
        assert_eq!(r.records().count(), 2);
        r.add_snapshot(vec![rec("b", "web", 5), rec("c", "web", 3)]);
        let changes = r.finish_sync();
        let summary: Vec<_> = changes
            .iter()
            .map(|c| match c {
                Change::Register(r) => format!("+{}", r.id),
                Change::Update(r) => format!("~{}", r.id),
                Change::Free(r) => format!("-{}", r.id),
            })
            .collect();
        assert_eq!(summary, vec!["-a", "+b", "+c"]);
    }
}
