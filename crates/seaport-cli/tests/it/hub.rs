use rustix::process::Signal;

use crate::harness::{run, Hub, Proc, BIN};

#[test]
fn listen_reports_its_port_and_stops_cleanly_on_sigterm() {
    let mut hub = Hub::start(&["--heartbeat", "500", "--peer", "127.0.0.1:1"]);
    assert_eq!(hub.proc.lines().len(), 1, "only the ready line on stdout");
    assert!(hub.query("*").is_empty());
    hub.proc.signal(Signal::TERM);
    assert!(hub.proc.wait().success(), "{}", hub.proc.stderr());
    // The port is released.
    let out = run(&["query", &hub.addr, "--timeout", "0.5"]).failed();
    assert!(out.error().contains(&format!("no answer from the hub at {}", hub.addr)), "{}", out.stderr);
}

#[test]
fn listen_raises_its_open_files_limit_to_the_hard_limit() {
    // A shell lowers the soft limit, then becomes the hub (same pid).
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "ulimit -Sn 256 && exec \"$0\" listen 0 --bind 127.0.0.1", BIN]);
    let hub = Proc::from_command(cmd);
    hub.wait_line("the ready line", |l| l.starts_with("seaport listening on "));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", hub.pid())).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (soft, hard) = (fields[3], fields[4]);
    match hard {
        "unlimited" => assert_eq!(soft, "1048576", "{line}"),
        hard => assert_eq!(soft, hard, "{line}"),
    }
}

#[test]
fn listen_stops_on_sigint_too() {
    let mut hub = Hub::start(&[]);
    hub.proc.signal(Signal::INT);
    assert!(hub.proc.wait().success(), "{}", hub.proc.stderr());
}

#[test]
fn listen_on_a_port_in_use_says_so() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = run(&["listen", &port, "--bind", "127.0.0.1"]).failed();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let line = out.error();
    assert!(line.contains(&format!("127.0.0.1:{port}")) && line.to_lowercase().contains("in use"), "{line}");
}

#[test]
fn listen_rejects_bad_key_files_and_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{\"nope\": 1}").unwrap();
    let out = run(&["listen", "0", junk.to_str().unwrap()]).failed();
    assert!(out.error().contains("junk.json"), "{}", out.stderr);
    let out = run(&["listen", "0", "--heartbeat", "1000", "--timeout", "500"]).failed();
    assert!(out.stderr.contains("--timeout"), "{}", out.stderr);
    let out = run(&["listen", "0", "--port-partition", "3/3"]).failed();
    assert!(out.stderr.contains("index I must be below the count N"), "{}", out.stderr);
    let out = run(&["listen", "0", "--port-partition", "0/0"]).failed();
    assert!(out.stderr.contains("count N must be at least 1"), "{}", out.stderr);
    let out = run(&["listen", "0", "--advertise", "10.0.0.5"]).failed();
    assert!(out.stderr.contains("expected HOST:PORT"), "{}", out.stderr);
    let out = run(&["listen", "0", "--peer", "nohost"]).failed();
    assert!(out.stderr.contains("expected HOST:PORT"), "{}", out.stderr);
    let out = run(&["listen", "0", "--max-registrations", "0"]).failed();
    assert!(out.error().contains("--max-registrations must be at least 1"), "{}", out.stderr);
    let out = run(&["listen", "0", "--max-frame", "2000"]).failed();
    assert!(out.error().contains("--max-meta-bytes"), "{}", out.stderr);
    let out = run(&["listen", "0", "--port-range", "20000-100"]).failed();
    assert!(out.stderr.contains("20000-100"), "{}", out.stderr);
}

#[test]
fn listen_limits_from_the_command_line_are_enforced() {
    let hub = Hub::start(&["--max-meta-bytes", "64"]);
    let out = run(&["register", &hub.addr, "web@1.0.0", "--meta", &format!("blob={}", "x".repeat(100))]).failed();
    assert!(out.error().contains("more than the limit of 64"), "{}", out.stderr);
    let (_small, _) = crate::query::hold(&hub, "web@1.0.0", &["--meta", "env=prod"]);
    assert_eq!(hub.query("web").len(), 1);
}

#[test]
fn help_and_version() {
    let out = run(&["--version"]).ok();
    assert!(out.stdout.starts_with("seaport "), "{}", out.stdout);
    for sub in ["listen", "show", "query", "get", "watch", "register", "free", "keygen", "pubkey"] {
        let out = run(&[sub, "--help"]).ok();
        assert!(out.stdout.contains("USAGE"), "{sub}: {}", out.stdout);
    }
    let mut nothing = Proc::spawn(&["bogus"]);
    assert!(!nothing.wait().success());
}
