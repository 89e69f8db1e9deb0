//! Version-range benchmarks: `VersionRange::parse` and `VersionRange::matches`.
//!
//! Groups:
//! - `range`: `parse/RANGE` parses one typical range (throughput: one range);
//!   `matches/RANGE` tests eight versions, prereleases among them, against it
//!   (throughput: versions tested).
//!
//! ```sh
//! cargo bench -p seaport-benches --bench range
//! cargo bench -p seaport-benches --bench range -- --warm-up-time 1 --measurement-time 3 range/parse
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use seaport_core::semver;
use seaport_core::VersionRange;

/// What seaport users write, from the simplest to a three-way union with a prerelease.
const RANGES: [&str; 7] =
    ["1.2.3", "^1.2.0", "~1.2.3", "1.x", ">=1.2.0 <2.0.0", "1.2 - 2.3.4", "^0.2.3 || ~1.4 || >=3.0.0-beta.1"];

fn range(c: &mut Criterion) {
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

criterion_group!(benches, range);
criterion_main!(benches);
