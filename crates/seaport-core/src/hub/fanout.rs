//! The subscription index fan-out reads.
//!
//! Subscriptions are grouped by role, then by distinct pattern. A change is matched
//! once per distinct pattern of its role (and once per distinct role-less pattern), not
//! once per subscription, and a matching group hands over its subscribers' sessions
//! directly, without looking each session up: with thousands of watchers on a few
//! patterns, fan-out costs little more than copying their session ids.

use std::collections::BTreeMap;

use super::{SessionId, SubKey};
use crate::pattern::Pattern;
use crate::record::{Record, Role};

/// The subscriptions that share one pattern.
#[derive(Debug)]
struct Group {
    pattern: Pattern,
    /// Ascending and distinct: fan-out copies the sessions out in order. A sorted `Vec`
    /// rather than a set because fan-out reads it far more often than subscriptions
    /// change, and a subscribe already costs a snapshot.
    keys: Vec<SubKey>,
}

/// Groups by the pattern's text. Patterns print back to what they parse from, so equal
/// text is an equal pattern; a `BTreeMap` keeps the order independent of the process.
type Groups = BTreeMap<String, Group>;

/// Every live subscription, by role and by pattern.
#[derive(Debug, Default)]
pub(super) struct Subscriptions {
    by_role: BTreeMap<Role, Groups>,
    any: Groups,
    len: usize,
}

impl Subscriptions {
    pub(super) fn insert(&mut self, key: SubKey, pattern: &Pattern) {
        let groups = match pattern.role() {
            Some(role) => self.by_role.entry(role.clone()).or_default(),
            None => &mut self.any,
        };
        let group =
            groups.entry(pattern.to_string()).or_insert_with(|| Group { pattern: pattern.clone(), keys: Vec::new() });
        if let Err(at) = group.keys.binary_search(&key) {
            group.keys.insert(at, key);
            self.len += 1;
        }
    }

    pub(super) fn remove(&mut self, key: SubKey, pattern: &Pattern) {
        let text = pattern.to_string();
        let groups = match pattern.role() {
            Some(role) => match self.by_role.get_mut(role) {
                Some(groups) => groups,
                None => return,
            },
            None => &mut self.any,
        };
        if let Some(group) = groups.get_mut(&text) {
            if let Ok(at) = group.keys.binary_search(&key) {
                group.keys.remove(at);
                self.len -= 1;
            }
            if group.keys.is_empty() {
                groups.remove(&text);
            }
        }
        if let Some(role) = pattern.role() {
            if self.by_role.get(role).is_some_and(BTreeMap::is_empty) {
                self.by_role.remove(role);
            }
        }
    }

    /// The number of subscriptions.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether `key` is indexed under `pattern`.
    pub(super) fn contains(&self, key: SubKey, pattern: &Pattern) -> bool {
        let groups = match pattern.role() {
            Some(role) => self.by_role.get(role),
            None => Some(&self.any),
        };
        groups.and_then(|g| g.get(&pattern.to_string())).is_some_and(|g| g.keys.binary_search(&key).is_ok())
    }

    /// The sessions with a subscription matching any of `records`, and `also`;
    /// ascending, each once.
    pub(super) fn recipients(&self, records: &[&Record], also: Option<SessionId>) -> Vec<SessionId> {
        let mut matched: Vec<&Group> = Vec::new();
        for record in records {
            let of_role = self.by_role.get(record.role.as_str()).into_iter().flat_map(BTreeMap::values);
            for group in of_role.chain(self.any.values()) {
                // The same group may match the record and the one it replaced.
                if group.pattern.matches(record) && !matched.iter().any(|m| std::ptr::eq(*m, group)) {
                    matched.push(group);
                }
            }
        }
        let total: usize = matched.iter().map(|g| g.keys.len()).sum();
        let mut to = Vec::with_capacity(total + usize::from(also.is_some()));
        match &matched[..] {
            [] => {}
            [group] => {
                to.extend(group.keys.iter().map(|&(session, _)| session));
                // A session may hold the same pattern twice, under two subscription ids.
                to.dedup();
            }
            [first, second] => merge(&first.keys, &second.keys, &mut to),
            runs => {
                to.extend(runs.iter().flat_map(|g| g.keys.iter().map(|&(session, _)| session)));
                to.sort_unstable();
                to.dedup();
            }
        }
        if let Some(session) = also {
            if let Err(at) = to.binary_search(&session) {
                to.insert(at, session);
            }
        }
        to
    }
}

/// Appends the sessions of two ascending key lists to `to`, ascending, each once.
fn merge(a: &[SubKey], b: &[SubKey], to: &mut Vec<SessionId>) {
    let mut push = |session| {
        if to.last() != Some(&session) {
            to.push(session);
        }
    };
    let (mut i, mut j) = (0, 0);
    while let (Some(&(x, _)), Some(&(y, _))) = (a.get(i), b.get(j)) {
        if x <= y {
            push(x);
            i += 1;
        } else {
            push(y);
            j += 1;
        }
    }
    a[i..].iter().chain(&b[j..]).for_each(|&(session, _)| push(session));
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::message::SubscriptionId;
    use crate::record::{HubId, RecordId};
    use crate::value::{Meta, Value};

    fn record(role: &str, version: &str, zone: &str) -> Record {
        Record {
            id: RecordId::new("r").unwrap(),
            role: Role::new(role).unwrap(),
            version: Some(version.parse().unwrap()),
            host: "h".into(),
            port: 1,
            meta: [("zone".to_string(), Value::from(zone))].into_iter().collect::<Meta>(),
            origin: HubId(0),
            incarnation: 1,
        }
    }

    /// Recipients equal a scan of every subscription, for one to six matching groups,
    /// sessions holding several subscriptions, and removals.
    #[test]
    fn recipients_are_every_matching_session_once_in_order() {
        let patterns = ["web", "web@^1.2.0", "*", "web?meta.zone=a", "*@1.x", "web@~1.2.3", "db", "web@2"];
        let mut subs = Subscriptions::default();
        let mut all: Vec<(SubKey, Pattern)> = Vec::new();
        // A fixed, scrambled assignment of patterns to sessions and subscription ids.
        for i in 0..400u64 {
            let key = (SessionId(i * 7 % 61), SubscriptionId(i % 3));
            let pattern: Pattern = patterns[(i * 5 % 8) as usize].parse().unwrap();
            if all.iter().any(|(k, _)| *k == key) {
                continue;
            }
            subs.insert(key, &pattern);
            all.push((key, pattern));
        }
        for (i, (key, pattern)) in all.clone().iter().enumerate().filter(|(i, _)| i % 4 == 0) {
            subs.remove(*key, pattern);
            all.retain(|(k, _)| k != key);
            assert!(!subs.contains(*key, pattern), "{i}");
        }
        assert_eq!(subs.len(), all.len());
        // Matching 6, 3, 3, 1 ("*") and 2 ("*", "db") groups.
        let records = [
            record("web", "1.2.4", "a"),
            record("web", "2.0.0", "b"),
            record("db", "1.0.0", "a"),
            record("api", "3.0.0", "c"),
            record("db", "2.0.0", "c"),
        ];
        let pairs = [(0, None), (1, None), (2, None), (3, None), (4, None), (0, Some(1)), (3, Some(4)), (4, Some(3))];
        for (a, b) in pairs {
            let mut with: Vec<&Record> = vec![&records[a]];
            with.extend(b.map(|b| &records[b]));
            for also in [None, Some(SessionId(1000)), Some(SessionId(7))] {
                let want: BTreeSet<SessionId> = all
                    .iter()
                    .filter(|(_, p)| with.iter().any(|r| p.matches(r)))
                    .map(|((s, _), _)| *s)
                    .chain(also)
                    .collect();
                let got = subs.recipients(&with, also);
                assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "{a} {b:?} {also:?}");
            }
        }
    }
}
