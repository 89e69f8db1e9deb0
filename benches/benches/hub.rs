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
//! The hubs are built once per size (`seaport_benches::fixtures`), outside the timed loop.
//!
//! ```sh
//! cargo bench -p seaport-benches --bench hub
//! cargo bench -p seaport-benches --bench hub -- --warm-up-time 1 --measurement-time 3 hub_fanout/
//! cargo bench -p seaport-benches --bench hub -- --warm-up-time 1 --measurement-time 3 hub_snapshot/
//! ```

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use seaport_benches::fixtures::{fanout_hub, fanout_register, snapshot_hub, snapshot_subscribe};

fn hub_fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("hub_fanout");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(20);
    for subscribers in [1u64, 100, 10_000] {
        let mut hub = fanout_hub(subscribers);
        group.throughput(Throughput::Elements(subscribers));
        let mut request = 0;
        group.bench_function(BenchmarkId::new("register", subscribers), |b| {
            b.iter(|| {
                request += 1;
                let delivered = fanout_register(&mut hub, request);
                // The subscribers, and the service's own reply.
                assert_eq!(delivered as u64, subscribers + 1, "the register reached every subscriber");
                delivered
            })
        });
    }
    group.finish();
}

fn hub_snapshot(c: &mut Criterion) {
    let mut group = c.benchmark_group("hub_snapshot");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(20);
    for n in [100usize, 1_000, 10_000] {
        let mut hub = snapshot_hub(n);
        group.throughput(Throughput::Elements(n as u64));
        let mut request = 0;
        group.bench_function(BenchmarkId::new("subscribe", n), |b| {
            b.iter(|| {
                request += 1;
                let records = snapshot_subscribe(&mut hub, request);
                assert_eq!(records, n, "the snapshot holds every web record");
                records
            })
        });
    }
    group.finish();
}

criterion_group!(benches, hub_fanout, hub_snapshot);
criterion_main!(benches);
