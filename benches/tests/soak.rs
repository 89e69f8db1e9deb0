//! The soak tool on a tiny workload: it must converge and report, with and without
//! hostile connections. (Its figures come from long runs; see docs/reliability.md.)

use std::process::Command;

fn soak(extra: &[&str]) -> String {
    let mut args = vec!["--clients", "8", "--duration", "1", "--interval", "0.5", "--rate", "20", "--hub", "inprocess"];
    args.extend_from_slice(extra);
    let out = Command::new(env!("CARGO_BIN_EXE_soak")).args(&args).output().expect("run the soak tool");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "soak {args:?} failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn a_short_soak_converges_and_reports() {
    let report = soak(&[]);
    assert!(report.contains("checkpoints 2 converged, 0 did not"), "{report}");
    assert!(report.contains("errors    0"), "{report}");
    assert!(report.contains("hub memory:"), "{report}");
}

#[test]
fn a_short_hostile_soak_costs_the_honest_clients_nothing() {
    let report = soak(&["--hostile"]);
    assert!(report.contains("checkpoints 2 converged, 0 did not"), "{report}");
    assert!(report.contains("hostile: garbage"), "{report}");
}

#[test]
fn bad_options_are_refused_with_the_reason() {
    let out = Command::new(env!("CARGO_BIN_EXE_soak")).args(["--clients", "many"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--clients takes a number"));
}
