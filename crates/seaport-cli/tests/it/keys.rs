use rustix::process::Signal;

use crate::harness::{run, Hub, Proc};
use crate::query::hold;

#[test]
fn keygen_and_pubkey_make_a_keyed_hub_that_accepts_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.json");
    let key_path = key.to_str().unwrap();
    run(&["keygen", "--out", key_path]).ok();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let again = run(&["keygen", "--out", key_path]).failed();
    assert!(again.error().contains("refusing to overwrite"), "{}", again.stderr);

    let public = run(&["pubkey", key_path]).ok();
    let list = public.json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{}", public.stdout);
    assert!(list[0].as_str().unwrap().starts_with("-----BEGIN PUBLIC KEY-----"));
    let authorized = dir.path().join("authorized.json");
    std::fs::write(&authorized, &public.stdout).unwrap();

    let hub = Hub::start(&[authorized.to_str().unwrap()]);
    let (mut holder, record) = hold(&hub, "secure@1.0.0", &["--key", key_path, "--id", "s1"]);
    assert_eq!(hub.query("secure"), vec![record]);

    // Freeing needs the key on a keyed hub.
    let out = run(&["free", &hub.addr, "s1"]).failed();
    assert!(out.error().contains("unauthorized"), "{}", out.stderr);
    run(&["free", &hub.addr, "s1", "--key", key_path]).ok();
    hub.wait_count("secure", 0);
    holder.signal(Signal::TERM);
    assert!(holder.wait().success());
}

#[test]
fn keygen_prints_a_key_pair_to_stdout() {
    let out = run(&["keygen"]).ok();
    let pair = out.json();
    assert!(pair["public"].as_str().unwrap().contains("PUBLIC KEY"));
    assert!(pair["private"].as_str().unwrap().contains("PRIVATE KEY"));
}

#[test]
fn an_unauthorized_key_is_refused_and_the_command_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (good, bad) = (dir.path().join("good.json"), dir.path().join("bad.json"));
    run(&["keygen", "--out", good.to_str().unwrap()]).ok();
    run(&["keygen", "--out", bad.to_str().unwrap()]).ok();
    let authorized = dir.path().join("authorized.json");
    std::fs::write(&authorized, run(&["pubkey", good.to_str().unwrap()]).ok().stdout).unwrap();
    let hub = Hub::start(&[authorized.to_str().unwrap()]);

    let marker = dir.path().join("ran");
    let script = format!("touch '{}'", marker.display());
    for key in [Some(bad.to_str().unwrap()), None] {
        let mut args = vec!["register", hub.addr.as_str(), "web@1.0.0"];
        if let Some(key) = key {
            args.extend(["--key", key]);
        }
        args.extend(["--", "sh", "-c", &script]);
        let mut proc = Proc::spawn(&args);
        let status = proc.wait();
        assert!(!status.success());
        let out = crate::harness::Output { status, stdout: proc.stdout(), stderr: proc.stderr() };
        let line = out.error();
        assert!(line.contains("cannot register web@1.0.0") && line.contains("unauthorized"), "{}", out.stderr);
        assert!(out.stdout.is_empty());
    }
    assert!(!marker.exists(), "the command must never start");
    assert!(hub.query("*").is_empty());
}
