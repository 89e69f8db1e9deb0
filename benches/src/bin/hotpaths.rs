//! Runs one hot path of the core a fixed number of times, for profilers.
//!
//! criterion decides how often it runs a bench, so its runs do not suit an instruction
//! count; this tool runs exactly ITERATIONS of one path, with the setup (registries,
//! hubs) outside the function `measured`, so that callgrind can count that alone:
//!
//! ```sh
//! cargo build --release -p seaport-benches --bin hotpaths
//! valgrind --tool=callgrind --toggle-collect='*measured*' \
//!     target/release/hotpaths fanout 10000 20
//! callgrind_annotate --inclusive=yes callgrind.out.PID | head -40
//! ```
//!
//! Paths (`PATH ARG ITERATIONS`):
//! - `fanout SUBSCRIBERS N`: a register fanned out to SUBSCRIBERS sessions (as the
//!   `hub_fanout` bench).
//! - `snapshot RECORDS N`: a subscription to `web` on a hub with RECORDS `web` records
//!   (as the `hub_snapshot` bench).
//! - `parse RANGE N`: `VersionRange::parse(RANGE)`.
//! - `query RECORDS N`: `role-7@^1.2.0?meta.zone=a` on a registry of RECORDS records.
//!
//! Prints the iterations per second (meaningless under valgrind) and a checksum.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use seaport_benches::fixtures::{fanout_hub, fanout_register, registry, snapshot_hub, snapshot_subscribe};
use seaport_core::{Pattern, VersionRange};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, arg, iterations] = &args[..] else {
        eprintln!("usage: hotpaths fanout|snapshot|parse|query ARG ITERATIONS");
        return ExitCode::FAILURE;
    };
    let Ok(iterations) = iterations.parse::<u64>() else {
        eprintln!("ITERATIONS must be a number, not {iterations:?}");
        return ExitCode::FAILURE;
    };
    let size = || arg.parse::<usize>().map_err(|_| eprintln!("{path} needs a number, not {arg:?}"));
    let mut work: Box<dyn FnMut(u64) -> usize> = match path.as_str() {
        "fanout" => {
            let Ok(n) = size() else { return ExitCode::FAILURE };
            let mut hub = fanout_hub(n as u64);
            Box::new(move |i| fanout_register(&mut hub, i))
        }
        "snapshot" => {
            let Ok(n) = size() else { return ExitCode::FAILURE };
            let mut hub = snapshot_hub(n);
            Box::new(move |i| snapshot_subscribe(&mut hub, i))
        }
        "parse" => {
            let text = arg.clone();
            Box::new(move |_| usize::from(black_box(VersionRange::parse(black_box(&text))).is_ok()))
        }
        "query" => {
            let Ok(n) = size() else { return ExitCode::FAILURE };
            let registry = registry(n);
            let pattern: Pattern = "role-7@^1.2.0?meta.zone=a".parse().expect("a valid pattern");
            Box::new(move |_| registry.query(black_box(&pattern)).count())
        }
        _ => {
            eprintln!("unknown path {path:?}: fanout, snapshot, parse or query");
            return ExitCode::FAILURE;
        }
    };
    let start = Instant::now();
    let checksum = measured(&mut *work, iterations);
    let elapsed = start.elapsed();
    println!(
        "{path} {arg}: {iterations} iterations in {elapsed:?} ({:.0}/s), checksum {checksum}",
        iterations as f64 / elapsed.as_secs_f64()
    );
    ExitCode::SUCCESS
}

/// The timed part; callgrind's `--toggle-collect='*measured*'` counts only this.
#[inline(never)]
fn measured(work: &mut dyn FnMut(u64) -> usize, iterations: u64) -> usize {
    (1..=iterations).map(|i| black_box(work(i))).sum()
}
