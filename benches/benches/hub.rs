//! Core `Hub` benchmarks: fan-out of one change, and the snapshot a new subscriber gets.
//!
//! Groups:
//! - `hub_fanout`: one registration (re-registering the same id, so each replaces the
//!   last) fanned out to 1, 100 and 10 000 subscribed sessions, half of them on `web`
//!   and half on `web@^1.2.0`; outputs drained. Throughput: change deliveries.
//! - `hub_snapshot`: a session subscribes to `web` on a hub holding 100, 1 000 or
//!   10 000 `web` records (and as many of other roles); the snapshot messages and
//!   `Synced` are drained. Throughput: records in the snapshot.
//!
//! ```sh
//! cargo bench -p seaport-benches --bench hub
//! cargo bench -p seaport-benches --bench hub -- --warm-up-time 1 --measurement-time 3 hub_fanout/
//! cargo bench -p seaport-benches --bench hub -- --warm-up-time 1 --measurement-time 3 hub_snapshot/
//! ```

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use seaport_benches::fixtures::{bench_hub_config, drain, host};
use seaport_core::message::{ClientMessage, HubMessage, SubscriptionId};
use seaport_core::{Hub, PortRequest, Registration, SessionId, SessionKind, Timestamp};

fn hub_fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("hub_fanout");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(20);
    let now = Timestamp::from_millis(0);
    for subscribers in [1u64, 100, 10_000] {
        let mut hub = Hub::new(bench_hub_config(16));
        for s in 0..subscribers {
            hub.handle_session_opened(now, SessionId(s), SessionKind::Client, host(s as usize));
            let pattern = if s % 2 == 0 { "web" } else { "web@^1.2.0" }.to_string();
            hub.handle_message(
                now,
                SessionId(s),
                None,
                ClientMessage::Subscribe { request: 1, subscription: SubscriptionId(1), pattern },
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
                let registration = Registration {
                    id: Some("web-1".into()),
                    port: PortRequest::Exact(8080),
                    ..Registration::from_name("web@1.2.3")
                };
                hub.handle_message(now, service, None, ClientMessage::Register { request, registration });
                let delivered = drain(&mut hub);
                assert_eq!(delivered as u64, subscribers + 1, "the register reached every subscriber");
                delivered
            })
        });
    }
    group.finish();
}

fn hub_snapshot(c: &mut Criterion) {
    /// Records each registering session holds.
    const PER_SESSION: usize = 1_000;
    let mut group = c.benchmark_group("hub_snapshot");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(20);
    let now = Timestamp::from_millis(0);
    for n in [100usize, 1_000, 10_000] {
        let mut hub = Hub::new(bench_hub_config(PER_SESSION));
        // `n` web records and `n` of other roles, which the subscription must not cost.
        for i in 0..2 * n {
            let session = SessionId((i / PER_SESSION) as u64);
            if i % PER_SESSION == 0 {
                hub.handle_session_opened(now, session, SessionKind::Client, host(i / PER_SESSION));
            }
            let name = if i % 2 == 0 { format!("web@1.{}.{}", i % 10, i % 7) } else { format!("api-{}@2.0.0", i % 50) };
            let registration =
                Registration { meta: [("zone".into(), "a".into())].into(), ..Registration::from_name(&name) };
            hub.handle_message(now, session, None, ClientMessage::Register { request: i as u64, registration });
        }
        let watcher = SessionId(u64::MAX);
        hub.handle_session_opened(now, watcher, SessionKind::Client, "10.0.2.1".into());
        drain(&mut hub);
        assert_eq!(hub.registry().len(), 2 * n);
        group.throughput(Throughput::Elements(n as u64));
        let mut request = 0;
        group.bench_function(BenchmarkId::new("subscribe", n), |b| {
            b.iter(|| {
                request += 1;
                // The same subscription id each time: the new pattern replaces the old.
                let subscribe =
                    ClientMessage::Subscribe { request, subscription: SubscriptionId(1), pattern: "web".into() };
                hub.handle_message(now, watcher, None, subscribe);
                let mut records = 0;
                while let Some(t) = hub.poll_outgoing() {
                    if let HubMessage::Snapshot { records: r, .. } = &t.message {
                        records += r.len();
                    }
                }
                while hub.poll_event().is_some() {}
                assert_eq!(records, n, "the snapshot holds every web record");
                records
            })
        });
    }
    group.finish();
}

criterion_group!(benches, hub_fanout, hub_snapshot);
criterion_main!(benches);
