use rustix::process::Signal;

use crate::harness::{Hub, Proc};
use crate::query::hold;

#[test]
fn watch_prints_register_and_free_lines() {
    let hub = Hub::start(&[]);
    let text = Proc::spawn(&["-v", "watch", &hub.addr, "web"]);
    let meta = Proc::spawn(&["-v", "watch", &hub.addr, "web@1.x", "--meta"]);
    let json = Proc::spawn(&["-v", "watch", &hub.addr, "--json"]);
    for watcher in [&text, &meta, &json] {
        watcher.wait_stderr("watching");
    }
    let (mut web, record) = hold(&hub, "web@1.2.3", &["--id", "w1", "--meta.env=prod"]);
    let (_other, _) = hold(&hub, "db@1.0.0", &[]);
    let addr = format!("127.0.0.1:{}", record["port"]);
    let register = format!("REGISTER web@1.2.3 {addr} [w1]");
    text.wait_line("REGISTER", |l| l == register);
    meta.wait_line("REGISTER with meta", |l| l == format!("{register} {{\"env\":\"prod\"}}"));
    let line = json.wait_line("a JSON register", |l| l.contains("\"w1\""));
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event, serde_json::json!({"event": "register", "record": record}));

    web.signal(Signal::TERM);
    assert!(web.wait().success());
    let free = format!("FREE web@1.2.3 {addr} [w1]");
    text.wait_line("FREE", |l| l == free);
    json.wait_line("a JSON free", |l| l.contains("\"free\"") && l.contains("\"w1\""));
    assert_eq!(text.lines(), [register, free], "only web records, one line per change");
    assert!(json.lines().iter().any(|l| l.contains("db")), "the JSON watcher sees every role");
}
