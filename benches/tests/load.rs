//! The load tool runs a tiny workload end to end and reports that it converged.
//!
//! The hub runs inside the tool (`--in-process`): cargo builds no binaries of other
//! packages for this test, so a `seaport` process is not at hand. Bounded by the tool's
//! own `--timeout`; no timing is asserted.

use std::process::Command;

fn load(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_load")).args(args).output().expect("run the load tool");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "load {args:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn registers_watches_and_frees() {
    let report =
        load(&["--in-process", "-c", "20", "-s", "5", "-w", "2", "--samples", "5", "--join", "10", "--timeout", "30"]);
    assert!(report.contains("registrations seen by every watcher: 100 of 100"), "{report}");
    assert!(report.contains("10 connections subscribed at once -> each had all 100 registrations"), "{report}");
    for line in
        ["rate:", "register -> watcher:", "hub bytes per registration:", "connection cut -> watcher sees the free:"]
    {
        assert!(report.contains(line), "no {line:?} in\n{report}");
    }
    assert!(report.contains("15 other connections cut at once -> watchers saw every free"), "{report}");
    assert!(report.ends_with("converged: yes\n"), "{report}");
}

#[test]
fn signed_with_client_handles() {
    let report =
        load(&["--in-process", "--client", "--signed", "-c", "10", "-s", "3", "--samples", "2", "--timeout", "30"]);
    assert!(report.contains("signing on"), "{report}");
    assert!(report.contains("registrations seen by every watcher: 30 of 30"), "{report}");
    assert!(report.ends_with("converged: yes\n"), "{report}");
}

#[test]
fn restart_heals_every_registration() {
    let report = load(&["--in-process", "--restart", "-c", "20", "--timeout", "30"]);
    assert!(report.contains("all 20 registrations back with the same ids and ports"), "{report}");
    assert!(report.ends_with("converged: yes\n"), "{report}");
}

#[test]
fn refuses_bad_arguments() {
    let output = Command::new(env!("CARGO_BIN_EXE_load")).args(["--clients", "many"]).output().expect("run");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage: load"));
}
