use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use rustix::process::Signal;

use crate::harness::{alive, poll, run, Hub, Proc, DEADLINE};

fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

#[test]
fn register_supervises_a_real_http_server() {
    let hub = Hub::start(&[]);
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("hello.txt"), "hello from seaport\n").unwrap();
    let mut web = Proc::spawn_in(
        &["register", &hub.addr, "web@1.0.0", "--", "python3", "-m", "http.server", "--bind", "127.0.0.1"],
        Some(site.path()),
    );
    let record = hub.wait_count("web@1.x", 1).remove(0);
    let addr = format!("{}:{}", record["host"].as_str().unwrap(), record["port"]);
    let response = poll(DEADLINE, "the HTTP server to answer", || http_get(&addr, "/hello.txt"));
    assert!(response.starts_with("HTTP/1."), "{response}");
    assert!(response.contains("200") && response.ends_with("hello from seaport\n"), "{response}");

    web.signal(Signal::TERM);
    assert!(web.wait().success(), "{}", web.stderr());
    hub.wait_count("web", 0);
    assert!(http_get(&addr, "/").is_none(), "the server is gone too");
}

#[test]
fn register_restarts_a_command_that_exits() {
    let hub = Hub::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs");
    let script = format!("echo \"$PORT $0\" >> '{}'; exit 3", log.display());
    let mut crasher = Proc::spawn(&["register", &hub.addr, "crash@1.0.0", "--", "sh", "-c", &script]);
    let runs = poll(DEADLINE, "three runs of the command", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        (text.lines().count() >= 3).then_some(text)
    });
    let record = hub.wait_count("crash", 1).remove(0);
    for line in runs.lines() {
        // The port both in PORT and as the last argument, the same on every run.
        assert_eq!(line, format!("{} {}", record["port"], record["port"]));
    }
    crasher.wait_stderr("exited (exit status: 3); restarting in");
    crasher.signal(Signal::TERM);
    assert!(crasher.wait().success(), "{}", crasher.stderr());
    hub.wait_count("crash", 0);
}

#[test]
fn sigterm_stops_the_command_and_frees_the_record() {
    let hub = Hub::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let script = format!("echo $$ > '{}'; trap 'exit 0' TERM; while :; do sleep 0.1; done", pid_file.display());
    let mut service = Proc::spawn(&["register", &hub.addr, "svc@1.0.0", "--", "sh", "-c", &script]);
    let pid: i32 = poll(DEADLINE, "the pid file", || std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok());
    hub.wait_count("svc", 1);
    service.signal(Signal::TERM);
    assert!(service.wait().success(), "{}", service.stderr());
    assert!(!alive(pid), "the command got the signal and exited");
    poll(Duration::from_secs(5), "the record to be freed", || hub.query("svc").is_empty().then_some(()));
}

#[test]
fn sigkill_of_register_kills_the_command_and_frees_the_record() {
    let hub = Hub::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let script = format!("echo $$ > '{}'; exec sleep 600", pid_file.display());
    let mut service = Proc::spawn(&["register", &hub.addr, "svc@1.0.0", "--", "sh", "-c", &script]);
    let pid: i32 = poll(DEADLINE, "the pid file", || std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok());
    hub.wait_count("svc", 1);
    assert!(alive(pid));
    service.signal(Signal::KILL);
    assert!(!service.wait().success());
    poll(DEADLINE, "the command to die with its supervisor", || (!alive(pid)).then_some(()));
    poll(Duration::from_secs(5), "the record to be freed", || hub.query("svc").is_empty().then_some(()));
}

#[test]
fn a_command_that_cannot_start_is_an_error() {
    let hub = Hub::start(&[]);
    let out = run(&["register", &hub.addr, "web@1.0.0", "--", "/nonexistent/program"]).failed();
    assert!(out.error().contains("cannot start /nonexistent/program"), "{}", out.stderr);
    hub.wait_count("web", 0);
}

#[test]
fn register_waits_for_a_hub_that_is_not_up_yet() {
    // A port nobody listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let waiting = Proc::spawn(&["register", &addr, "early@1.0.0"]);
    waiting.wait_stderr(&format!("waiting for hub at {addr}"));
    assert!(waiting.stdout().is_empty());
    let hub = Proc::spawn(&["listen", &port.to_string(), "--bind", "127.0.0.1"]);
    hub.wait_line("the hub's ready line", |l| l == format!("seaport listening on {addr}"));
    let line = waiting.wait_line("the record, once the hub is up", |l| l.starts_with('{'));
    assert!(line.contains("\"role\":\"early\""), "{line}");
}

#[test]
fn a_registration_survives_a_hub_restart() {
    let mut hub = Hub::start(&[]);
    let (_holder, record) = crate::query::hold(&hub, "web@1.0.0", &["--id", "keep"]);
    hub.proc.signal(Signal::TERM);
    assert!(hub.proc.wait().success());
    let port = hub.addr.rsplit_once(':').unwrap().1.to_string();
    let again = Proc::spawn(&["listen", &port, "--bind", "127.0.0.1"]);
    again.wait_line("the restarted hub's ready line", |l| l.starts_with("seaport listening on "));
    let restarted = Hub { proc: again, addr: hub.addr.clone() };
    let records = restarted.wait_count("web", 1);
    assert_eq!(records, vec![record], "same id and port after the reconnect");
}
