//! The registry: records, their indexes, and port assignment.

use std::ops::RangeInclusive;
use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::error::RegistryError;
use crate::pattern::Pattern;
use crate::ports::HostPorts;
use crate::record::{keyed_by_record_id, Host, Record, Role, SharedVersion, VersionPool};
use crate::value::Meta;

/// How many recently freed ports per host the registry remembers by default.
pub const DEFAULT_RECENTLY_FREED: usize = 4096;

/// Records with indexes by id, by role and by host port, plus port assignment.
///
/// A query walks only the records of the pattern's role, so its cost grows with the
/// records of that role, not with the registry. Iteration order depends only on the
/// sequence of operations (fixed hashing, seeded randomness), never on the process.
///
/// # Examples
/// ```
/// use seaport_core::{Registry, Record, RecordId, Role, HubId, Meta, Pattern};
/// let mut registry = Registry::new(42);
/// let port = registry.assign_port("10.0.0.5", 10_000..=10_099).unwrap();
/// registry.insert(Record {
///     id: RecordId::new("w1").unwrap(),
///     role: Role::new("web").unwrap(),
///     version: Some("1.2.3".parse().unwrap()),
///     host: "10.0.0.5".into(),
///     port,
///     meta: Meta::new(),
///     origin: HubId(0),
///     incarnation: 1,
/// });
/// let web: Pattern = "web@1.2.x".parse().unwrap();
/// assert_eq!(registry.query(&web).count(), 1);
/// assert_eq!(registry.query(&"web@2".parse().unwrap()).count(), 0);
/// ```
#[derive(Debug)]
pub struct Registry {
    records: FxHashSet<ById>,
    by_role: FxHashMap<Role, FxHashSet<ById>>,
    hosts: FxHashMap<Host, HostPorts>,
    /// One copy of each version the records carry: see
    /// [`shared_version`](Registry::shared_version).
    versions: VersionPool,
    rng: SmallRng,
    remember_freed: usize,
}

/// A record in a set keyed by its id (16 bytes less an entry, in each of the two
/// indexes, than a map from the id).
#[derive(Debug, Clone)]
struct ById(Arc<Record>);

keyed_by_record_id!(ById, 0);

impl Registry {
    /// An empty registry whose port picks come from a PRNG seeded with `seed`.
    pub fn new(seed: u64) -> Registry {
        Registry {
            records: FxHashSet::default(),
            by_role: FxHashMap::default(),
            hosts: FxHashMap::default(),
            versions: VersionPool::default(),
            rng: SmallRng::seed_from_u64(seed),
            remember_freed: DEFAULT_RECENTLY_FREED,
        }
    }

    /// Sets how many recently freed ports per host are avoided when assigning (0: none).
    pub fn set_recently_freed_capacity(&mut self, capacity: usize) {
        self.remember_freed = capacity;
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The record with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<Record>> {
        self.records.get(id).map(|r| &r.0)
    }

    /// `role` as the registry holds it, if it holds records of that role: a record built
    /// with it shares the registry's copy of the name instead of bringing its own.
    pub fn shared_role(&self, role: &str) -> Option<Role> {
        self.by_role.get_key_value(role).map(|(role, _)| role.clone())
    }

    /// `host` as the registry holds it, if it holds records on that host: a record built
    /// with it shares the registry's copy of the name instead of bringing its own.
    pub fn shared_host(&self, host: &str) -> Option<Host> {
        self.hosts.get_key_value(host).map(|(host, _)| host.clone())
    }

    /// `version` as the registry's shared copy: records built with it share one copy of
    /// each version instead of bringing their own (32 bytes less a record, and one
    /// allocation less). See [`VersionPool`].
    pub fn shared_version(&mut self, version: semver::Version) -> SharedVersion {
        self.versions.share(version)
    }

    /// `record` with its version replaced by the registry's shared copy, when it is the
    /// only holder of the record (one just decoded from the wire); as it is otherwise.
    pub fn share_version(&mut self, record: Arc<Record>) -> Arc<Record> {
        self.versions.share_record(record)
    }

    /// Every record, in an order that depends only on the history of operations.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Record>> + '_ {
        self.records.iter().map(|r| &r.0)
    }

    /// The records matching `pattern`.
    pub fn query<'a>(&'a self, pattern: &'a Pattern) -> impl Iterator<Item = &'a Arc<Record>> + 'a {
        let role = pattern.role();
        let of_role = role.map(|role| self.by_role.get(role.as_str()).into_iter().flatten().map(|r| &r.0));
        let all = role.is_none().then(|| self.iter());
        of_role.into_iter().flatten().chain(all.into_iter().flatten()).filter(move |r| pattern.matches_beyond_role(r))
    }

    /// Calls `f` on each record matching `pattern`; the cheapest way to scan matches.
    pub fn for_each_match(&self, pattern: &Pattern, mut f: impl FnMut(&Arc<Record>)) {
        match pattern.role() {
            Some(role) => {
                if let Some(records) = self.by_role.get(role.as_str()) {
                    records.iter().map(|r| &r.0).filter(|r| pattern.matches_beyond_role(r)).for_each(&mut f);
                }
            }
            None => self.iter().filter(|r| pattern.matches_beyond_role(r)).for_each(f),
        }
    }

    /// The ports in use on `host`, ascending.
    pub fn ports_in_use(&self, host: &str) -> Vec<u16> {
        self.hosts.get(host).map(|h| h.used_ports()).unwrap_or_default()
    }

    /// Whether a live record on `host` uses `port`.
    pub fn port_in_use(&self, host: &str, port: u16) -> bool {
        self.hosts.get(host).is_some_and(|h| h.is_used(port))
    }

    /// Chooses a free port on `host` inside `range` (see the [`ports`](crate::ports) module).
    ///
    /// The port is not reserved: insert the record that uses it before assigning again.
    ///
    /// # Errors
    /// [`RegistryError::InvalidPortRange`] for an empty range or one starting at 0;
    /// [`RegistryError::PortRangeExhausted`] when every port in it is in use on `host`.
    pub fn assign_port(&mut self, host: &str, range: RangeInclusive<u16>) -> Result<u16, RegistryError> {
        self.assign_port_partitioned(host, range, (0, 1))
    }

    /// [`assign_port`](Registry::assign_port) restricted to one share of the range:
    /// `(index, count)` allows only the ports whose offset from the range's start is
    /// `index` modulo `count`, so hubs with distinct indexes never pick the same port.
    ///
    /// # Errors
    /// As [`assign_port`](Registry::assign_port); a share with no port is exhausted.
    pub fn assign_port_partitioned(
        &mut self,
        host: &str,
        range: RangeInclusive<u16>,
        partition: (u16, u16),
    ) -> Result<u16, RegistryError> {
        let (low, high) = (*range.start(), *range.end());
        if low == 0 || low > high {
            return Err(RegistryError::InvalidPortRange { low, high });
        }
        let picked = match self.hosts.get(host) {
            Some(ports) => ports.pick(&range, partition, &mut self.rng),
            None => HostPorts::default().pick(&range, partition, &mut self.rng),
        };
        picked.ok_or_else(|| RegistryError::PortRangeExhausted { host: host.to_string(), low, high })
    }

    /// Inserts a record, replacing any record with the same id. Returns the stored record
    /// and the one it replaced.
    ///
    /// A record passed by value, or as the only holder of its `Arc`, is stored with the
    /// registry's shared copy of its version ([`shared_version`](Registry::shared_version)).
    pub fn insert(&mut self, record: impl Into<Arc<Record>>) -> (Arc<Record>, Option<Arc<Record>>) {
        let record = self.share_version(record.into());
        // The new port is taken before the old one is released: replacing a record on the
        // same port must not pass that port through the recently-freed memory.
        // Ids, roles and hosts clone by reference count.
        match self.hosts.get_mut(&*record.host) {
            Some(ports) => ports.acquire(record.port),
            None => self.hosts.entry(record.host.clone()).or_default().acquire(record.port),
        }
        let old = self.records.replace(ById(Arc::clone(&record))).map(|old| old.0);
        if let Some(old) = &old {
            self.unindex(old);
        }
        self.by_role.entry(record.role.clone()).or_default().insert(ById(Arc::clone(&record)));
        (record, old)
    }

    /// Removes the record with this id, returning it.
    pub fn remove(&mut self, id: &str) -> Option<Arc<Record>> {
        let old = self.records.take(id)?.0;
        self.unindex(&old);
        Some(old)
    }

    /// Replaces the metadata of the record with this id. Returns the new record and the old.
    ///
    /// # Errors
    /// [`RegistryError::UnknownId`] when there is no such record.
    pub fn replace_meta(&mut self, id: &str, meta: Meta) -> Result<(Arc<Record>, Arc<Record>), RegistryError> {
        let Some(old) = self.records.get(id).map(|r| Arc::clone(&r.0)) else {
            return Err(RegistryError::UnknownId(id.to_string()));
        };
        let mut record = Record::clone(&old);
        record.meta = meta;
        let record = Arc::new(record);
        self.records.replace(ById(Arc::clone(&record)));
        if let Some(role) = self.by_role.get_mut(record.role.as_str()) {
            role.replace(ById(Arc::clone(&record)));
        }
        Ok((record, old))
    }

    fn unindex(&mut self, old: &Record) {
        if let Some(role) = self.by_role.get_mut(old.role.as_str()) {
            role.remove(old.id.as_str());
            if role.is_empty() {
                self.by_role.remove(old.role.as_str());
            }
        }
        if let Some(ports) = self.hosts.get_mut(&*old.host) {
            ports.release(old.port, self.remember_freed);
            if ports.is_empty() {
                self.hosts.remove(&*old.host);
            }
        }
    }

    /// Checks every index against a full scan of the records; for tests and fuzzing.
    ///
    /// # Errors
    /// A description of the first inconsistency found.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        let indexed: usize = self.by_role.values().map(|m| m.len()).sum();
        if indexed != self.records.len() {
            return Err(format!("role index holds {indexed} records, registry {}", self.records.len()));
        }
        for record in self.iter() {
            let id = &record.id;
            let in_role = self.by_role.get(record.role.as_str()).and_then(|m| m.get(id.as_str()));
            if !in_role.is_some_and(|r| Arc::ptr_eq(&r.0, record)) {
                return Err(format!("record {id} missing from or stale in the role index"));
            }
            if !self.port_in_use(&record.host, record.port) {
                return Err(format!("port {} of record {id} not marked in use on {}", record.port, record.host));
            }
        }
        for (host, ports) in &self.hosts {
            for port in ports.used_ports() {
                if !self.iter().any(|r| r.host == *host && r.port == port) {
                    return Err(format!("port {port} on {host} marked in use by no record"));
                }
            }
        }
        Ok(())
    }
}

impl Default for Registry {
    fn default() -> Registry {
        Registry::new(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{HubId, RecordId};
    use crate::value::Value;

    fn rec(id: &str, role: &str, version: &str, host: &str, port: u16) -> Record {
        Record {
            id: RecordId::new(id).unwrap(),
            role: Role::new(role).unwrap(),
            version: Some(version.parse().unwrap()),
            host: host.into(),
            port,
            meta: Meta::new(),
            origin: HubId(0),
            incarnation: 1,
        }
    }

    #[test]
    fn same_id_replaces() {
        let mut reg = Registry::new(0);
        reg.insert(rec("a", "web", "1.0.0", "h", 10));
        let (_, old) = reg.insert(rec("a", "db", "2.0.0", "h", 11));
        assert_eq!(old.unwrap().port, 10);
        assert_eq!(reg.len(), 1);
        assert_eq!(reg.query(&"web".parse().unwrap()).count(), 0);
        assert_eq!(reg.ports_in_use("h"), vec![11]);
        reg.check_invariants().unwrap();
    }

    #[test]
    fn records_of_one_version_share_one_copy_of_it() {
        let mut reg = Registry::new(0);
        let (a, _) = reg.insert(rec("a", "web", "1.2.3", "h", 1));
        let (b, _) = reg.insert(rec("b", "db", "1.2.3", "h", 2));
        let (c, _) = reg.insert(rec("c", "web", "1.2.4", "h", 3));
        let version = |r: &Arc<Record>| r.version.clone().unwrap();
        assert!(SharedVersion::ptr_eq(&version(&a), &version(&b)), "equal versions share");
        assert!(!SharedVersion::ptr_eq(&version(&a), &version(&c)));
        assert!(SharedVersion::ptr_eq(&reg.shared_version("1.2.3".parse().unwrap()), &version(&a)));
        // Build metadata makes another version, kept apart.
        let (d, _) = reg.insert(rec("d", "web", "1.2.3+b7", "h", 4));
        assert_eq!(d.version.as_ref().unwrap().to_string(), "1.2.3+b7");
        // A record whose `Arc` is shared elsewhere is stored as it is.
        let shared = Arc::new(rec("e", "web", "1.2.3", "h", 5));
        let (e, _) = reg.insert(Arc::clone(&shared));
        assert!(Arc::ptr_eq(&e, &shared));
        assert_eq!(e.version, a.version);
        reg.check_invariants().unwrap();
    }

    #[test]
    fn versions_no_record_carries_are_forgotten() {
        let mut reg = Registry::new(0);
        for i in 0..10_000u16 {
            let id = format!("r{i}");
            reg.insert(rec(&id, "web", &format!("1.0.{i}"), "h", 1 + i % 100));
            reg.remove(&id);
        }
        assert!(reg.versions.len() <= 64, "{} versions kept", reg.versions.len());
        // Versions still carried survive a sweep.
        let (kept, _) = reg.insert(rec("kept", "web", "9.9.9", "h", 1));
        for i in 0..1_000u16 {
            reg.shared_version(format!("2.0.{i}").parse().unwrap());
        }
        let again = reg.shared_version("9.9.9".parse().unwrap());
        assert!(SharedVersion::ptr_eq(&again, kept.version.as_ref().unwrap()));
    }

    #[test]
    fn versions_scenario() {
        let mut reg = Registry::new(0);
        reg.insert(rec("a", "beep", "1.2.3", "h", 1));
        reg.insert(rec("b", "beep", "1.3.5", "h", 2));
        reg.insert(rec("c", "beep", "0.9.2", "h", 3));
        let count = |p: &str| reg.query(&p.parse().unwrap()).count();
        assert_eq!(count("beep"), 3);
        assert_eq!(count("beep@1.2.x"), 1);
        assert_eq!(count("beep@>1.2.0"), 2);
        assert_eq!(count("boop"), 0);
        assert_eq!(count("*"), 3);
    }

    #[test]
    fn replace_meta_keeps_indexes() {
        let mut reg = Registry::new(0);
        reg.insert(rec("a", "web", "1.0.0", "h", 10));
        let meta: Meta = [("env".to_string(), Value::from("prod"))].into_iter().collect();
        let (new, old) = reg.replace_meta("a", meta).unwrap();
        assert!(old.meta.is_empty());
        assert_eq!(new.meta["env"], Value::from("prod"));
        assert_eq!(reg.query(&"web?meta.env=prod".parse().unwrap()).count(), 1);
        assert_eq!(reg.replace_meta("zz", Meta::new()), Err(RegistryError::UnknownId("zz".into())));
        reg.check_invariants().unwrap();
    }

    #[test]
    fn assigned_ports_are_free_and_exhaustion_is_an_error() {
        let mut reg = Registry::new(3);
        for i in 0..5 {
            let port = reg.assign_port("h", 200..=204).unwrap();
            assert!(!reg.port_in_use("h", port));
            reg.insert(rec(&format!("r{i}"), "x", "1.0.0", "h", port));
        }
        assert_eq!(
            reg.assign_port("h", 200..=204),
            Err(RegistryError::PortRangeExhausted { host: "h".into(), low: 200, high: 204 })
        );
        // Another host has its own ports.
        assert!(reg.assign_port("other", 200..=204).is_ok());
        assert_eq!(reg.assign_port("h", 0..=5), Err(RegistryError::InvalidPortRange { low: 0, high: 5 }));
    }

    #[test]
    fn freed_port_is_not_reassigned_while_others_are_free() {
        let mut reg = Registry::new(9);
        reg.insert(rec("a", "x", "1.0.0", "h", 300));
        reg.remove("a");
        for _ in 0..100 {
            assert_ne!(reg.assign_port("h", 300..=301).unwrap(), 300);
        }
    }
}
