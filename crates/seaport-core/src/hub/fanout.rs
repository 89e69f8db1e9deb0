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

/// Up to this many matching groups are merged run by run; more are sorted.
const MAX_MERGE: usize = 8;

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
            runs if runs.len() <= MAX_MERGE => {
                // Each group's sessions are ascending: merge them, smallest head first.
                let mut heads = vec![0; runs.len()];
                loop {
                    let mut next: Option<(usize, SessionId)> = None;
                    for (i, group) in runs.iter().enumerate() {
                        if let Some(&(session, _)) = group.keys.get(heads[i]) {
                            if next.is_none_or(|(_, best)| session < best) {
                                next = Some((i, session));
                            }
                        }
                    }
                    let Some((i, session)) = next else { break };
                    heads[i] += 1;
                    if to.last() != Some(&session) {
                        to.push(session);
                    }
                }
            }
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
