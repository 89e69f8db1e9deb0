use super::*;

/// Connections the kernel completes for a listener nobody accepts from: at most its
/// backlog (plus one on Linux). The rest have their SYNs dropped and never connect.
fn queued_connections(addr: SocketAddr, try_count: usize) -> usize {
    let mut held = Vec::new();
    for _ in 0..try_count {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(stream) => held.push(stream),
            Err(_) => break,
        }
    }
    held.len()
}

#[cfg(target_os = "linux")]
#[test]
fn the_listen_backlog_holds_a_herd_of_connections() {
    // The kernel caps the backlog at net.core.somaxconn; the test needs room above std's 128.
    let cap: usize =
        std::fs::read_to_string("/proc/sys/net/core/somaxconn").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
    if cap < 600 {
        eprintln!("net.core.somaxconn is {cap}; skipping");
        return;
    }
    let herd = 500;
    let default = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = default.local_addr().expect("the listener's address");
    assert!(queued_connections(addr, herd) < herd, "std's default backlog should not hold {herd} connections");
    let raised = task::block_on(bind_listener("127.0.0.1:0", 4096)).expect("bind 127.0.0.1:0");
    let addr = raised.local_addr().expect("the listener's address");
    assert_eq!(queued_connections(addr, herd), herd);
}

fn record(id: &str) -> Arc<Record> {
    Arc::new(Record {
        id: seaport_core::RecordId::new(id).expect("a valid id"),
        role: seaport_core::Role::new("web").expect("a valid role"),
        version: None,
        host: "10.0.0.1".into(),
        port: 80,
        meta: seaport_core::Meta::new(),
        origin: seaport_core::HubId(1),
        incarnation: 1,
    })
}

#[test]
fn equal_snapshots_waiting_share_one_list_of_records() {
    let (a, b) = (record("a"), record("b"));
    let mut share = SnapshotShare::default();
    let first = share.share(&[Arc::clone(&a), Arc::clone(&b)]);
    let again = share.share(&[Arc::clone(&a), Arc::clone(&b)]);
    assert!(Arc::ptr_eq(&first, &again), "the same records in the same order: one list");
    let other = share.share(&[Arc::clone(&b), Arc::clone(&a)]);
    assert!(!Arc::ptr_eq(&first, &other), "another order is another snapshot");
    // A record registered again is another record, even under the same id.
    let changed = share.share(&[Arc::clone(&a), record("b")]);
    assert!(!Arc::ptr_eq(&first, &changed));
    // Once no queue holds a list, it goes.
    drop((first, again));
    let after = share.share(&[Arc::clone(&a), Arc::clone(&b)]);
    assert_eq!(after.len(), 2);
    for i in 0..100 {
        drop(share.share(&[record(&format!("r{i}"))]));
    }
    assert!(share.lists.len() < 100, "the lists nobody holds are dropped");
    let kept = share.share(&[Arc::clone(&a), Arc::clone(&b)]);
    assert!(Arc::ptr_eq(&kept, &after), "a list still held is kept");
    drop((other, changed));
}
