//! End-to-end latencies on loopback: register-to-watcher, free-on-disconnect, and
//! hub-restart healing. Prints a table; used for docs/benchmarks.md.
//!
//! Run: `cargo run --release -p seaport-benches --bin latency -- [SAMPLES] [CLIENTS]`
//! (defaults 1000 samples, 100 clients for the restart test). A second part runs a
//! chain of three peered hubs: latency from a register on the first to a watcher on the
//! third, and the time until 1 000 registrations of the middle hub's clients are back
//! on the other two after the middle hub stops.

use std::net::Shutdown;
use std::time::{Duration, Instant};

use async_std::net::TcpStream;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use seaport_net::core::{Change, ClientMessage, Registration};
use seaport_net::frame::{encode_unsigned, write_preamble, PROTOCOL_VERSION};
use seaport_net::{Client, ClientConfig, Hub, HubConfig, RegisterOptions};

fn report(name: &str, mut samples: Vec<Duration>) {
    println!("{name:<32} {}", seaport_benches::Summary::of(&mut samples));
}

async fn next_change(watch: &mut futures::channel::mpsc::UnboundedReceiver<Change>) -> Change {
    match async_std::future::timeout(Duration::from_secs(10), watch.next()).await {
        Ok(Some(change)) => change,
        _ => panic!("no change within 10 s"),
    }
}

/// A client that registers over a raw socket, so the test can cut its connection the
/// way the kernel does when a process is killed.
async fn raw_register(addr: &str, role: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut bytes = Vec::new();
    write_preamble(PROTOCOL_VERSION, &mut bytes);
    let register = ClientMessage::Register { request: 1, registration: Registration::new(role) };
    encode_unsigned(&register, &mut bytes).expect("encode");
    stream.write_all(&bytes).await.expect("write");
    let mut hello = [0u8; 44];
    stream.read_exact(&mut hello).await.expect("hello");
    stream
}

async fn run(samples: usize, clients: usize) {
    let hub = Hub::bind("127.0.0.1:0", HubConfig::default()).await.expect("bind");
    let addr = hub.local_addr().to_string();
    let config = ClientConfig { check_local_ports: false, ..ClientConfig::default() };

    // 1. register -> watcher
    let watcher = Client::connect(&[&addr], config.clone()).expect("client");
    let mut watch = watcher.watch("lat").await.expect("watch");
    let service = Client::connect(&[&addr], config.clone()).expect("client");
    service.query("warmup").await.expect("connect");
    let mut register = Vec::with_capacity(samples);
    for i in 0..samples {
        let start = Instant::now();
        let record = service.register(&format!("lat@1.0.{i}"), RegisterOptions::default()).await.expect("register");
        loop {
            if let Change::Register(r) = next_change(&mut watch).await {
                if r.id == record.id {
                    break;
                }
            }
        }
        register.push(start.elapsed());
        service.free(record.id.as_str()).await.expect("free");
        loop {
            if let Change::Free(r) = next_change(&mut watch).await {
                if r.id == record.id {
                    break;
                }
            }
        }
    }
    report("register -> watcher sees it", register);

    // 2. connection cut -> watcher sees the free
    let mut freed = Vec::with_capacity(samples.min(200));
    let mut kill_watch = watcher.watch("killme").await.expect("watch");
    for _ in 0..samples.min(200) {
        let stream = raw_register(&addr, "killme").await;
        loop {
            if let Change::Register(_) = next_change(&mut kill_watch).await {
                break;
            }
        }
        let start = Instant::now();
        stream.shutdown(Shutdown::Both).expect("shutdown");
        drop(stream);
        loop {
            if let Change::Free(_) = next_change(&mut kill_watch).await {
                break;
            }
        }
        freed.push(start.elapsed());
    }
    report("connection cut -> watcher sees free", freed);

    // 3. hub restart -> every client's registration is back
    let mut many = Vec::new();
    for i in 0..clients {
        let c = Client::connect(&[&addr], config.clone()).expect("client");
        c.register(&format!("svc{i}@1.0.0"), RegisterOptions::default()).await.expect("register");
        many.push(c);
    }
    let before = hub.records().len();
    let port = hub.local_addr();
    hub.shutdown().await;
    let start = Instant::now();
    let hub = loop {
        match Hub::bind(port.to_string(), HubConfig::default()).await {
            Ok(hub) => break hub,
            Err(_) => async_std::task::sleep(Duration::from_millis(5)).await,
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while hub.records().len() < before {
        assert!(Instant::now() < deadline, "restart did not heal within 30 s");
        async_std::task::sleep(Duration::from_millis(2)).await;
    }
    println!("{:<32} clients={clients} records={before} healed in {:.1?}", "hub restart -> all back", start.elapsed());
    for c in many {
        c.close().await;
    }
    service.close().await;
    watcher.close().await;
    hub.shutdown().await;
}

/// A chain of three peered hubs: register-on-A to watcher-on-C latency, then the time
/// until every registration of the middle hub's clients is back after it is stopped.
async fn mesh(samples: usize, registrations: usize) {
    let config = |index| {
        let mut c = HubConfig::default();
        c.core.port_partition = (index, 3);
        c
    };
    let a = Hub::bind("127.0.0.1:0", config(0)).await.expect("bind");
    let b = Hub::bind("127.0.0.1:0", config(1)).await.expect("bind");
    let c = Hub::bind("127.0.0.1:0", config(2)).await.expect("bind");
    let (a_addr, b_addr, c_addr) = (a.local_addr().to_string(), b.local_addr().to_string(), c.local_addr().to_string());
    a.peer(b_addr.clone());
    c.peer(b_addr.clone());
    while b.peer_count() < 2 {
        async_std::task::sleep(Duration::from_millis(5)).await;
    }
    let client_config = ClientConfig { check_local_ports: false, ..ClientConfig::default() };
    let watcher = Client::connect(&[&c_addr], client_config.clone()).expect("client");
    let mut watch = watcher.watch("mesh").await.expect("watch");
    let service = Client::connect(&[&a_addr], client_config.clone()).expect("client");
    let mut through = Vec::with_capacity(samples);
    for i in 0..samples {
        let start = Instant::now();
        let record = service.register(&format!("mesh@1.0.{i}"), RegisterOptions::default()).await.expect("register");
        loop {
            if let Change::Register(r) = next_change(&mut watch).await {
                if r.id == record.id {
                    break;
                }
            }
        }
        through.push(start.elapsed());
        service.free(record.id.as_str()).await.expect("free");
    }
    report("register on A -> watcher on C via B", through);

    // Clients of B with `registrations` records in all, spread over 100 clients.
    let per_client = registrations.div_ceil(100).max(1);
    let mut clients = Vec::new();
    for i in 0..registrations.div_ceil(per_client) {
        let client = Client::connect(&[&b_addr], client_config.clone()).expect("client");
        for j in 0..per_client {
            client.register(&format!("b{i}x{j}"), RegisterOptions::default()).await.expect("register");
        }
        client.query("seaport").await.expect("learn the hubs");
        clients.push(client);
    }
    let expected = registrations.div_ceil(per_client) * per_client;
    let count = |hub: &Hub| hub.records().iter().filter(|r| r.role.as_str().starts_with('b')).count();
    while count(&a) < expected || count(&c) < expected {
        async_std::task::sleep(Duration::from_millis(5)).await;
    }
    let start = Instant::now();
    b.shutdown().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    // First the records drop (they came through B), then they come back.
    while count(&a) == expected && start.elapsed() < Duration::from_secs(1) {
        async_std::task::sleep(Duration::from_millis(1)).await;
    }
    while count(&a) < expected || count(&c) < expected {
        assert!(Instant::now() < deadline, "failover did not complete within 60 s");
        async_std::task::sleep(Duration::from_millis(2)).await;
    }
    println!(
        "{:<32} registrations={expected} back on both surviving hubs in {:.1?}",
        "middle hub stopped -> failover",
        start.elapsed()
    );
    for client in clients {
        client.close().await;
    }
    service.close().await;
    watcher.close().await;
    a.shutdown().await;
    c.shutdown().await;
}

fn main() {
    let mut args = std::env::args().skip(1);
    let samples = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let clients = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    async_std::task::block_on(run(samples, clients));
    async_std::task::block_on(mesh(samples.min(500), 1000));
}
