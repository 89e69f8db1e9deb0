//! In-process query time of `seaport_core::Registry`, on the same data set as the node
//! side of `just compare-node` (benches/compare-node/query.js) and the criterion
//! `query` group: N records over N/100 roles, versions `{1 + (k/10)%2}.{k%10}.{k%7}` for
//! the k-th record of a role, so `role-7` matches 100 records and `role-7@>=1.2.0 <2.0.0` 40 (node seaport's
//! semver 1.1 has no `^`; this range is what `^1.2.0` means).
//!
//! Run: `cargo run --release -p seaport-benches --bin query_bench -- [N...]`
//! (default 1000 10000 100000). Each query collects its matches into a `Vec`, as node's
//! `query()` returns an array. Prints one line per size and pattern:
//! `query records=N kind=role|range matches=M ns_per_query=T`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use seaport_core::semver::Version;
use seaport_core::{HubId, Meta, Pattern, Record, RecordId, Registry, Role, Value};

const PER_ROLE: usize = 100;
const HOSTS: usize = 8;

/// Record `i` of a registry with `roles` roles (the same as benches/benches/registry.rs).
fn record(i: usize, roles: usize) -> Option<Record> {
    let k = i / roles;
    let mut meta = Meta::new();
    meta.insert("zone".into(), Value::from(["a", "b", "c"][i % 3]));
    Some(Record {
        id: RecordId::new(format!("{i:016x}")).ok()?,
        role: Role::new(format!("role-{}", i % roles)).ok()?,
        version: Some(Version::new(1 + (k / 10 % 2) as u64, (k % 10) as u64, (k % 7) as u64).into()),
        host: format!("10.0.0.{}", i % HOSTS + 1).into(),
        port: 10_000 + (i / HOSTS) as u16,
        meta,
        origin: HubId(1),
        incarnation: 1,
    })
}

/// Mean time of one query, over at least 0.5 s of repetitions.
fn time(registry: &Registry, pattern: &Pattern) -> (usize, Duration) {
    let matches = registry.query(pattern).count();
    let (mut runs, start) = (0u32, Instant::now());
    while start.elapsed() < Duration::from_millis(500) || runs < 10 {
        let rows: Vec<_> = registry.query(black_box(pattern)).collect();
        black_box(rows);
        runs += 1;
    }
    (matches, start.elapsed() / runs)
}

fn main() {
    let mut sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![1_000, 10_000, 100_000];
    }
    for n in sizes {
        let roles = (n / PER_ROLE).max(1);
        let mut registry = Registry::new(42);
        for record in (0..n).filter_map(|i| record(i, roles)) {
            registry.insert(record);
        }
        for (kind, text) in [("role", "role-7"), ("range", "role-7@>=1.2.0 <2.0.0")] {
            let Ok(pattern) = text.parse::<Pattern>() else {
                eprintln!("query_bench: cannot parse {text:?}");
                continue;
            };
            let (matches, per_query) = time(&registry, &pattern);
            println!("query records={n} kind={kind} matches={matches} ns_per_query={}", per_query.as_nanos());
        }
    }
}
