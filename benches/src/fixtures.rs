//! Synthetic registries and hubs shared by the criterion benches.
//!
//! Everything here is deterministic: record `i` of a registry of `n` records is always
//! the same, so figures taken on different days compare.

use std::hint::black_box;

use seaport_core::semver::Version;
use seaport_core::{HubConfig, HubId, Limits, Meta, Record, RecordId, Registry, Role, Value};

/// Records per role in the query registries.
pub const PER_ROLE: usize = 100;
/// Hosts the records are spread over (per 400 000 records, so that no two records of a
/// registry share a host and port).
pub const HOSTS: usize = 8;
/// Records per block of [`HOSTS`] hosts: 50 000 ports on each.
const BLOCK: usize = HOSTS * 50_000;

/// The host of record `i`, as a dotted address.
pub fn host(i: usize) -> String {
    format!("10.{}.0.{}", i / BLOCK, i % HOSTS + 1)
}

/// Record `i` of a registry with `roles` roles.
///
/// Its role is `role-{i % roles}`; its version depends on its rank `k = i / roles`
/// within the role: `{1 + (k/10)%2}.{k%10}.{k%7}`, so half the records of a role are
/// 1.x and 40% match `^1.2.0`. Its metadata is `zone` = `a`, `b` or `c` (`i % 3`), so
/// about a third of any role's records are in zone `a`.
pub fn record(i: usize, roles: usize) -> Record {
    let k = i / roles;
    let mut meta = Meta::new();
    meta.insert("zone".into(), Value::from(["a", "b", "c"][i % 3]));
    Record {
        id: RecordId::new(format!("{i:016x}")).expect("hex ids are valid"),
        role: Role::new(format!("role-{}", i % roles)).expect("role-N is a valid role"),
        version: Some(Version::new(1 + (k / 10 % 2) as u64, (k % 10) as u64, (k % 7) as u64)),
        host: host(i),
        port: 10_000 + (i % BLOCK / HOSTS) as u16,
        meta,
        origin: HubId(1),
        incarnation: 1,
    }
}

/// A registry of `n` records over `n / PER_ROLE` roles (see [`record`]).
pub fn registry(n: usize) -> Registry {
    let roles = (n / PER_ROLE).max(1);
    let mut registry = Registry::new(42);
    for i in 0..n {
        registry.insert(record(i, roles));
    }
    registry
}

/// Drains every output of `hub`; returns the number of deliveries (recipients summed
/// over messages).
pub fn drain(hub: &mut seaport_core::Hub) -> usize {
    let mut delivered = 0;
    while let Some(t) = hub.poll_outgoing() {
        delivered += t.to.len();
        black_box(&t);
    }
    while let Some(e) = hub.poll_event() {
        black_box(&e);
    }
    delivered
}

/// A hub configuration for benches: no request rate limit (a bench sends millions of
/// requests at one `now`, which the default limit of 2 000 a second would refuse after
/// the first burst) and room for `registrations` records per session.
pub fn bench_hub_config(registrations: usize) -> HubConfig {
    HubConfig {
        limits: Limits {
            max_registrations_per_session: registrations,
            max_requests_per_second: u32::MAX,
            max_request_burst: u32::MAX,
            ..Limits::default()
        },
        ..HubConfig::default()
    }
}
