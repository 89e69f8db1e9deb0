//! Registry benchmarks: pattern queries and register+free.
//!
//! Groups:
//! - `query`: registries of 10^3, 10^4, 10^5 and 10^6 records (100 per role, see
//!   `seaport_benches::fixtures`), queried with `role-7` (role only, 100 matches),
//!   `role-7@^1.2.0` (40 matches) and `role-7@^1.2.0?meta.zone=a` (a metadata filter on
//!   top, 14 matches), through `for_each_match` and `query(..).count()`; plus
//!   `scan`, a pattern with no role (`*@^1.2.0?meta.zone=a`), which walks every record,
//!   on 10^3 to 10^5 records. Throughput: records matched per query (records scanned
//!   for `scan`). Each registry is built once, outside the timed loop.
//! - `register_free`: register then free on a 10^4-record registry, raw (`assign_port` +
//!   `insert` + `remove`) and through the core `Hub` (`handle_message` Register then
//!   Free, outputs drained). Throughput: register+free pairs.
//!
//! Run everything, or one group or bench with a filter:
//!
//! ```sh
//! cargo bench -p seaport-benches --bench registry
//! cargo bench -p seaport-benches --bench registry -- --warm-up-time 1 --measurement-time 3 query/
//! cargo bench -p seaport-benches --bench registry -- --warm-up-time 1 --measurement-time 3 register_free/
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use seaport_benches::fixtures::{bench_hub_config, drain, registry};
use seaport_core::message::{ClientMessage, HubMessage};
use seaport_core::{Hub, HubId, Meta, Pattern, Record, RecordId, Registration, Role, SessionId};
use seaport_core::{SessionKind, SharedVersion, Timestamp};

fn query(c: &mut Criterion) {
    let mut group = c.benchmark_group("query");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(30);
    for n in [1_000, 10_000, 100_000, 1_000_000] {
        let registry = registry(n);
        for text in ["role-7", "role-7@^1.2.0", "role-7@^1.2.0?meta.zone=a"] {
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
        if n <= 100_000 {
            // No role: every record is a candidate, as in node seaport's query().
            let pattern: Pattern = "*@^1.2.0?meta.zone=a".parse().unwrap();
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new("scan", n), &pattern, |b, pattern| {
                b.iter(|| {
                    let mut count = 0usize;
                    registry.for_each_match(black_box(pattern), |r| count += usize::from(r.port > 0));
                    count
                })
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
    let version: SharedVersion = "1.2.3".parse().unwrap();
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
    let mut hub = Hub::new(bench_hub_config(N));
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

criterion_group!(benches, query, register_free);
criterion_main!(benches);
