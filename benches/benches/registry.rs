//! Registry, version-range and hub benchmarks.
//!
//! Groups:
//! - `query`: registries of 1k, 10k and 100k records (about 100 per role), queried by
//!   role only and by role plus a range matching about 40% of them, through
//!   `for_each_match` and `query(..).count()`. Throughput: records matched per query.
//! - `register_free`: register then free on a 10k-record registry, raw
//!   (`assign_port` + `insert` + `remove`) and through the `Hub` (`handle_message`
//!   Register then Free, outputs drained). Throughput: register+free pairs.
//! - `range`: `VersionRange::parse` and `matches` for typical ranges.
//! - `hub_fanout`: one registration (re-registering the same id) fanned out to 1, 100
//!   and 10k subscribed sessions. Throughput: change deliveries.
//!
//! `cargo bench -p seaport-benches --bench registry -- --noplot`; pick a group with a filter, e.g.
//! `cargo bench -p seaport-benches --bench registry -- query/`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use seaport_core::message::{ClientMessage, HubMessage, SubscriptionId};
use seaport_core::semver;
use seaport_core::{
    Hub, HubConfig, HubId, Limits, Meta, Pattern, PortRequest, Record, RecordId, Registration, Registry, Role,
    SessionId, SessionKind, Timestamp, Value, VersionRange,
};

/// Records per role in the query registries.
const PER_ROLE: usize = 100;
/// Hosts the records are spread over.
const HOSTS: usize = 8;

fn host(i: usize) -> String {
    format!("10.0.0.{}", i % HOSTS + 1)
}

/// Record `i` of a registry with `roles` roles: role `role-{i % roles}`; its version
/// depends on its rank `k` within the role: `{1 + (k/10)%2}.{k%10}.{k%7}`, so half the
/// records of a role are 1.x and 40% match `^1.2.0`.
fn record(i: usize, roles: usize) -> Record {
    let k = i / roles;
    let mut meta = Meta::new();
    meta.insert("zone".into(), Value::from(["a", "b", "c"][i % 3]));
    Record {
        id: RecordId::new(format!("{i:016x}")).unwrap(),
        role: Role::new(format!("role-{}", i % roles)).unwrap(),
        version: Some(semver::Version::new(1 + (k / 10 % 2) as u64, (k % 10) as u64, (k % 7) as u64)),
        host: host(i),
        port: 10_000 + (i / HOSTS) as u16,
        meta,
        origin: HubId(1),
        incarnation: 1,
    }
}

fn registry(n: usize) -> Registry {
    let roles = (n / PER_ROLE).max(1);
    let mut registry = Registry::new(42);
    for i in 0..n {
        registry.insert(record(i, roles));
    }
    registry
}

fn query(c: &mut Criterion) {
    let mut group = c.benchmark_group("query");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(30);
    for n in [1_000, 10_000, 100_000] {
        let registry = registry(n);
        for text in ["role-7", "role-7@^1.2.0"] {
            let pattern: Pattern = text.parse().unwrap();
            let matches = registry.query(&pattern).count();
            group.throughput(Throughput::Elements(matches as u64));
            let label = format!("{n}/{text}");
            group.bench_with_input(BenchmarkId::new("for_each_match", &label), &pattern, |b, pattern| {
                b.iter(|| {
                    let mut count = 0usize;
                    registry.for_each_match(black_box(pattern), |r| count += usize::from(r.port > 0));
                    count
                })
            });
            group.bench_with_input(BenchmarkId::new("query_count", &label), &pattern, |b, pattern| {
                b.iter(|| registry.query(black_box(pattern)).count())
            });
        }
    }
    group.finish();
}

fn register_free(c: &mut Criterion) {
    const N: usize = 10_000;
    let mut group = c.benchmark_group("register_free");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(30);
    group.throughput(Throughput::Elements(1));

    let mut reg = registry(N);
    let role = Role::new("bench").unwrap();
    let id = RecordId::new("bench-record").unwrap();
    let version: semver::Version = "1.2.3".parse().unwrap();
    group.bench_function("registry_assign_insert_remove/10000", |b| {
        b.iter(|| {
            let port = reg.assign_port("10.0.0.1", 10_000..=32_767).unwrap();
            reg.insert(Record {
                id: id.clone(),
                role: role.clone(),
                version: Some(version.clone()),
                host: "10.0.0.1".into(),
                port,
                meta: Meta::new(),
                origin: HubId(1),
                incarnation: 1,
            });
            reg.remove(black_box(id.as_str())).unwrap()
        })
    });

    // Ten sessions on ten hosts own 1000 records each; an eleventh registers and frees.
    let mut hub = Hub::new(HubConfig {
        limits: Limits { max_registrations_per_session: N, ..Limits::default() },
        ..HubConfig::default()
    });
    let now = Timestamp::from_millis(0);
    for s in 0..10u64 {
        hub.handle_session_opened(now, SessionId(s), SessionKind::Client, format!("10.0.1.{s}"));
        for j in 0..N as u64 / 10 {
            let registration = Registration::from_name(&format!("role-{}@1.{}.0", j % 100, j % 10));
            hub.handle_message(now, SessionId(s), None, ClientMessage::Register { request: j, registration });
        }
    }
    let me = SessionId(99);
    hub.handle_session_opened(now, me, SessionKind::Client, "10.0.1.99".into());
    drain(&mut hub);
    assert_eq!(hub.registry().len(), N);
    let mut request = 0;
    group.bench_function("hub_register_free/10000", |b| {
        b.iter(|| {
            request += 1;
            let registration = Registration::from_name("bench@1.2.3");
            hub.handle_message(now, me, None, ClientMessage::Register { request, registration });
            let mut id = None;
            while let Some(t) = hub.poll_outgoing() {
                if let HubMessage::Registered { record, .. } = t.message {
                    id = Some(record.id.to_string());
                }
            }
            while hub.poll_event().is_some() {}
            let id = id.expect("registered");
            hub.handle_message(now, me, None, ClientMessage::Free { request, id });
            drain(&mut hub);
        })
    });
    group.finish();
}

fn drain(hub: &mut Hub) -> usize {
    let mut delivered = 0;
    while let Some(t) = hub.poll_outgoing() {
        delivered += t.to.len();
        black_box(&t);
    }
    while hub.poll_event().is_some() {}
    delivered
}

fn range(c: &mut Criterion) {
    const RANGES: [&str; 7] =
        ["1.2.3", "^1.2.0", "~1.2.3", "1.x", ">=1.2.0 <2.0.0", "1.2 - 2.3.4", "^0.2.3 || ~1.4 || >=3.0.0-beta.1"];
    let versions: Vec<semver::Version> =
        ["0.2.5", "1.2.3", "1.3.0", "1.4.9", "2.0.0", "2.3.4", "3.0.0-beta.2", "3.1.0-rc.1"]
            .iter()
            .map(|v| v.parse().unwrap())
            .collect();
    let mut group = c.benchmark_group("range");
    group.measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500)).sample_size(30);
    group.throughput(Throughput::Elements(1));
    for text in RANGES {
        group.bench_with_input(BenchmarkId::new("parse", text), text, |b, text| {
            b.iter(|| VersionRange::parse(black_box(text)).unwrap())
        });
    }
    group.throughput(Throughput::Elements(versions.len() as u64));
    for text in RANGES {
        let range = VersionRange::parse(text).unwrap();
        group.bench_with_input(BenchmarkId::new("matches", text), &range, |b, range| {
            b.iter(|| versions.iter().filter(|v| range.matches(black_box(v))).count())
        });
    }
    group.finish();
}

fn hub_fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("hub_fanout");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(20);
    let now = Timestamp::from_millis(0);
    for subscribers in [1u64, 100, 10_000] {
        let mut hub = Hub::new(HubConfig::default());
        for s in 0..subscribers {
            hub.handle_session_opened(now, SessionId(s), SessionKind::Client, host(s as usize));
            let pattern = if s % 2 == 0 { "web" } else { "web@^1.2.0" }.to_string();
            hub.handle_message(
                now,
                SessionId(s),
                None,
                ClientMessage::Subscribe { request: 1, subscription: SubscriptionId(1), pattern, resume: None },
            );
        }
        let service = SessionId(u64::MAX);
        hub.handle_session_opened(now, service, SessionKind::Client, "10.0.2.1".into());
        drain(&mut hub);
        group.throughput(Throughput::Elements(subscribers));
        let mut request = 0;
        group.bench_function(BenchmarkId::new("register", subscribers), |b| {
            b.iter(|| {
                request += 1;
                // The same id every time: each register replaces the last and fans out once.
                let registration = Registration {
                    id: Some("web-1".into()),
                    port: PortRequest::Exact(8080),
                    ..Registration::from_name("web@1.2.3")
                };
                hub.handle_message(now, service, None, ClientMessage::Register { request, registration });
                let delivered = drain(&mut hub);
                debug_assert_eq!(delivered as u64, subscribers + 1);
                delivered
            })
        });
    }
    group.finish();
}

criterion_group!(benches, query, register_free, range, hub_fanout);
criterion_main!(benches);
