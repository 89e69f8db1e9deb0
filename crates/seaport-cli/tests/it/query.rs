use rustix::process::Signal;
use serde_json::json;

use crate::harness::{run, Hub, Proc};

/// `seaport register ADDR NAME ARGS...` without a command: holds the registration.
pub fn hold(hub: &Hub, name: &str, args: &[&str]) -> (Proc, serde_json::Value) {
    let mut all = vec!["register", hub.addr.as_str(), name];
    all.extend_from_slice(args);
    let proc = Proc::spawn(&all);
    let line = proc.wait_line("the registered record", |l| l.starts_with('{'));
    let record = serde_json::from_str(&line).unwrap();
    (proc, record)
}

#[test]
fn query_show_and_field_paths() {
    let hub = Hub::start(&[]);
    let (_web, record) = hold(&hub, "web@1.2.3", &["--meta.env=prod", "--meta", "n=3", "--id", "w1"]);
    let (_db, _) = hold(&hub, "db@2.0.0", &["--meta", "env=\"dev\"", "--meta", "tags=[1,\"x\"]"]);

    // Exactly these keys (serde_json sorts them; the printed order is id, role, version,
    // host, port, meta, checked by the unit tests of output.rs).
    let keys: Vec<&str> = record.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["host", "id", "meta", "port", "role", "version"]);
    assert_eq!(record["id"], "w1");
    assert_eq!(record["role"], "web");
    assert_eq!(record["version"], "1.2.3");
    assert_eq!(record["host"], "127.0.0.1");
    assert_eq!(record["meta"], json!({"env": "prod", "n": 3}));

    let web = hub.query("web");
    assert_eq!(web, vec![record.clone()]);
    let db = hub.query("db@2.x");
    assert_eq!(db[0]["meta"], json!({"env": "dev", "tags": [1, "x"]}));
    assert_eq!(hub.query("*?meta.env=prod"), vec![record.clone()]);

    let all = run(&["show", &hub.addr]).ok();
    assert!(all.stdout.lines().count() > 2, "pretty-printed by default: {}", all.stdout);
    assert_eq!(all.json().as_array().unwrap().len(), 2);
    let compact = run(&["show", &hub.addr, "--compact"]).ok();
    assert_eq!(compact.stdout.lines().count(), 1);

    let ports = run(&["query", &hub.addr, "web", "port"]).ok();
    assert_eq!(ports.stdout, format!("{}\n", record["port"]));
    let envs = run(&["query", &hub.addr, "*", "meta", "env"]).ok();
    let mut envs: Vec<&str> = envs.stdout.lines().collect();
    envs.sort_unstable();
    assert_eq!(envs, ["\"dev\"", "\"prod\""]);
    let none = run(&["query", &hub.addr, "nothing"]).ok();
    assert_eq!(none.stdout.trim(), "[]");
}

#[test]
fn malformed_patterns_are_refused_with_the_reason() {
    let hub = Hub::start(&[]);
    let out = run(&["query", &hub.addr, "we b"]).failed();
    assert!(out.stdout.is_empty());
    assert_eq!(out.error(), "seaport: invalid pattern \"we b\": unexpected character ' ' at byte 2");
    let out = run(&["query", &hub.addr, "web?zone=a"]).failed();
    assert!(out.stderr.contains("unknown filter \"zone\""), "{}", out.stderr);
    let out = run(&["get", &hub.addr, "we b", "--timeout", "1"]).failed();
    assert!(out.stderr.contains("invalid pattern"), "{}", out.stderr);
    let out = run(&["query", "no-port", "web"]).failed();
    assert!(out.stderr.contains("HOST:PORT"), "{}", out.stderr);
}

#[test]
fn get_waits_for_a_match() {
    let hub = Hub::start(&[]);
    let mut waiting = Proc::spawn(&["get", &hub.addr, "api@1.x", "port", "--timeout", "20"]);
    let (_api, record) = hold(&hub, "api@1.4.0", &[]);
    assert!(waiting.wait().success(), "{}", waiting.stderr());
    assert_eq!(waiting.stdout(), format!("{}\n", record["port"]));

    let out = run(&["get", &hub.addr, "api", "--compact"]).ok();
    assert_eq!(out.json(), json!([record]));
}

#[test]
fn get_times_out_on_nothing() {
    let hub = Hub::start(&[]);
    let out = run(&["get", &hub.addr, "nothing@1.x", "--timeout", "1"]).failed();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(out.error(), "seaport: no record matching nothing@1.x within 1s");
}

#[test]
fn free_removes_a_record() {
    let hub = Hub::start(&[]);
    let (mut holder, record) = hold(&hub, "web@1.0.0", &["--id", "to-free"]);
    assert_eq!(record["id"], "to-free");
    run(&["free", &hub.addr, "to-free"]).ok();
    assert!(hub.query("web").is_empty());
    let out = run(&["free", &hub.addr, "to-free"]).failed();
    assert!(out.stderr.contains("no record with id \"to-free\""), "{}", out.stderr);
    holder.signal(Signal::TERM);
    assert!(holder.wait().success());
}

#[test]
fn bad_registrations_fail_with_the_reason() {
    let hub = Hub::start(&[]);
    let out = run(&["register", &hub.addr, "web@1.2", "--", "sh", "-c", "exit 0"]).failed();
    assert!(out.error().contains("invalid version \"1.2\""), "{}", out.stderr);
    let out = run(&["register", &hub.addr, "web@1.0.0", "--meta", "novalue"]).failed();
    assert!(out.stderr.contains("KEY=VALUE"), "{}", out.stderr);
    let out = run(&["register", &hub.addr, "web@1.0.0", "--range", "30-20"]).failed();
    assert!(out.stderr.contains("30-20"), "{}", out.stderr);
    assert!(hub.query("*").is_empty());
}
