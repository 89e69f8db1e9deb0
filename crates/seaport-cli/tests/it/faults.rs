//! Faults with real processes: a registering process stopped past its lease and
//! continued, a hub SIGKILLed and restarted under 500 services, and a client's
//! connection cut underneath it. Each ends with every registration back under the
//! same id and port.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use rustix::process::Signal;
use seaport_net::{Client, ClientConfig, RegisterOptions};

use crate::harness::{poll, Hub, Proc, DEADLINE};
use crate::query::hold;

/// `(id, host, port)` of every record matching `pattern`.
fn fingerprint(hub: &Hub, pattern: &str) -> BTreeSet<(String, String, u64)> {
    hub.query(pattern)
        .iter()
        .map(|r| (r["id"].as_str().unwrap_or("").to_string(), r["host"].to_string(), r["port"].as_u64().unwrap_or(0)))
        .collect()
}

#[test]
fn a_process_stopped_past_its_lease_is_freed_and_comes_back_when_continued() {
    let hub = Hub::start(&["--heartbeat", "100", "--timeout", "400"]);
    let watch = Proc::spawn(&["-v", "watch", &hub.addr, "svc"]);
    watch.wait_stderr("watching");
    let (service, record) = hold(&hub, "svc@1.0.0", &["--id", "stopped"]);
    let (_other, _) = hold(&hub, "other@1.0.0", &[]);
    let addr = format!("{}:{}", record["host"].as_str().unwrap(), record["port"]);

    service.signal(Signal::STOP);
    watch.wait_line("the free of the stopped process's record", |l| l == format!("FREE svc@1.0.0 {addr} [stopped]"));
    assert!(hub.query("svc").is_empty());
    assert_eq!(hub.query("other").len(), 1, "the other service keeps its record");

    service.signal(Signal::CONT);
    let back = poll(DEADLINE, "the record back after SIGCONT", || {
        let records = hub.query("svc");
        (records.len() == 1).then(|| records[0].clone())
    });
    assert_eq!(back, record, "same id, host and port");
    let register = format!("REGISTER svc@1.0.0 {addr} [stopped]");
    assert_eq!(watch.lines().iter().filter(|l| **l == register).count(), 2, "{:?}", watch.lines());
}

#[test]
fn a_hub_killed_under_500_services_gets_all_of_them_back_with_the_same_ports() {
    let mut hub = Hub::start(&[]);
    // 20 services supervised by `seaport register`, 480 held by in-process clients.
    let mut supervised = Vec::new();
    for i in 0..20 {
        let name = format!("proc{i}@1.0.{i}");
        supervised.push(Proc::spawn(&["register", &hub.addr, &name, "--", "sleep", "600"]));
    }
    let config = ClientConfig { check_local_ports: false, ..ClientConfig::default() };
    let clients: Vec<Client> = (0..8).map(|_| Client::connect(&[&hub.addr], config.clone()).unwrap()).collect();
    async_std::task::block_on(async {
        for (i, client) in clients.iter().enumerate() {
            for j in 0..60 {
                let name = format!("svc{i}@1.{j}.0");
                client.register(&name, RegisterOptions::default()).await.unwrap();
            }
        }
    });
    let before = poll(DEADLINE, "all 500 records", || {
        let all = fingerprint(&hub, "*");
        (all.len() == 500).then_some(all)
    });

    hub.proc.signal(Signal::KILL);
    hub.proc.wait();
    let port = hub.addr.rsplit_once(':').map(|(_, p)| p.to_string()).unwrap();
    let again = Proc::spawn(&["listen", &port, "--bind", "127.0.0.1"]);
    again.wait_line("the restarted hub's ready line", |l| l.starts_with("seaport listening on "));
    let restarted = Hub { proc: again, addr: hub.addr.clone() };
    poll(DEADLINE, "all 500 records back with the same ids and ports", || {
        (fingerprint(&restarted, "*") == before).then_some(())
    });
    for service in &mut supervised {
        assert!(service.try_status().is_none(), "the supervisors rode out the restart");
    }
    async_std::task::block_on(async {
        for client in &clients {
            client.close().await;
        }
    });
}

/// A TCP relay to `upstream` whose connections the test can cut, both halves at once,
/// as a network failure or a hub dropping the client would.
struct Relay {
    addr: String,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(upstream: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (upstream, sockets) = (upstream.to_string(), Arc::clone(&open));
        thread::spawn(move || {
            for client in listener.incoming() {
                let (Ok(client), Ok(hub)) = (client, TcpStream::connect(&upstream)) else { continue };
                let mut sockets = sockets.lock().unwrap();
                for (from, to) in [(&client, &hub), (&hub, &client)] {
                    let (mut from, mut to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                    thread::spawn(move || {
                        let mut buf = vec![0u8; 16 * 1024];
                        while let Ok(n @ 1..) = from.read(&mut buf) {
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
                sockets.extend([client, hub]);
            }
        });
        Relay { addr, open }
    }

    /// Cuts every connection relayed so far.
    fn cut(&self) {
        for socket in self.open.lock().unwrap().drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

#[test]
fn a_cut_connection_frees_the_record_and_the_client_registers_it_again() {
    let hub = Hub::start(&[]);
    let relay = Relay::start(&hub.addr);
    let watch = Proc::spawn(&["-v", "watch", &hub.addr, "svc"]);
    watch.wait_stderr("watching");
    let service = Proc::spawn(&["register", &relay.addr, "svc@2.0.0", "--id", "cut"]);
    let line = service.wait_line("the registered record", |l| l.starts_with('{'));
    let record: serde_json::Value = serde_json::from_str(&line).unwrap();
    let addr = format!("{}:{}", record["host"].as_str().unwrap(), record["port"]);
    let register = format!("REGISTER svc@2.0.0 {addr} [cut]");
    watch.wait_line("the register", |l| l == register);

    relay.cut();
    watch.wait_line("the free when the connection is cut", |l| l == format!("FREE svc@2.0.0 {addr} [cut]"));
    poll(DEADLINE, "the second register, after the client reconnects", || {
        (watch.lines().iter().filter(|l| **l == register).count() == 2).then_some(())
    });
    assert_eq!(hub.query("svc"), vec![record], "same id, host and port");
}
