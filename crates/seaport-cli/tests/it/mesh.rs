//! Three real hubs peered in a chain (A - B - C): records registered on any hub are
//! found on every other, and when the middle hub dies the other two link up directly
//! and the services registered on it fail over.

use std::collections::BTreeMap;

use crate::harness::{poll, run, Hub, Proc, DEADLINE};

/// A long-running command that ignores the port appended as its last argument.
const SLEEPER: [&str; 5] = ["sh", "-c", "exec sleep 600", "sh", "--"];

/// The services (role `svc-*`) a hub holds, by role: how many records of each.
fn services(hub: &Hub) -> BTreeMap<String, usize> {
    let mut found = BTreeMap::new();
    for record in hub.query("*") {
        let role = record["role"].as_str().unwrap().to_string();
        if role.starts_with("svc-") {
            *found.entry(role).or_insert(0) += 1;
        }
    }
    found
}

/// Waits until `hub` holds exactly one record of each role in `roles`, and no other service.
fn wait_services(hub: &Hub, name: &str, roles: &[&str]) {
    let want: BTreeMap<String, usize> = roles.iter().map(|r| (r.to_string(), 1)).collect();
    poll(DEADLINE, &format!("hub {name} to hold exactly {roles:?}"), || (services(hub) == want).then_some(()));
}

/// `seaport get HUB ROLE` finds the record, and its port.
fn get(hub: &Hub, role: &str) -> u16 {
    let out = run(&["get", &hub.addr, role, "--compact", "--timeout", "10"]).ok();
    let records = out.json();
    let records = records.as_array().unwrap_or_else(|| panic!("get printed {records}"));
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["role"], role);
    u16::try_from(records[0]["port"].as_u64().unwrap()).unwrap()
}

/// `seaport register HUB ROLE@1.0.0 -- SLEEPER`.
fn register(hub: &Hub, role: &str, verbose: bool) -> Proc {
    let name = format!("{role}@1.0.0");
    let mut args = Vec::new();
    if verbose {
        args.push("-vv");
    }
    args.extend_from_slice(&["register", &hub.addr, &name, "--"]);
    args.extend_from_slice(&SLEEPER[..4]);
    Proc::spawn(&args)
}

#[test]
fn a_chain_of_three_hubs_shares_records_and_survives_losing_its_middle() {
    let b = Hub::start(&["--heartbeat", "1000", "--port-partition", "1/3"]);
    let a = Hub::start(&["--heartbeat", "1000", "--port-partition", "0/3", "--peer", &b.addr]);
    let c = Hub::start(&["--heartbeat", "1000", "--port-partition", "2/3", "--peer", &b.addr]);
    for hub in [&a, &b, &c] {
        assert_eq!(hub.proc.lines().len(), 1, "only the ready line on stdout");
    }

    let _svc_a = register(&a, "svc-a", false);
    let mut svc_b = register(&b, "svc-b", true);
    let _svc_c = register(&c, "svc-c", false);
    let all = ["svc-a", "svc-b", "svc-c"];
    for (hub, name) in [(&a, "A"), (&b, "B"), (&c, "C")] {
        wait_services(hub, name, &all);
    }

    // Across the chain, both ways.
    get(&a, "svc-c");
    get(&c, "svc-a");
    // Each hub assigned from its own share of the default range 10000-32767.
    for (hub, role, index) in [(&a, "svc-a", 0), (&b, "svc-b", 1), (&c, "svc-c", 2)] {
        let port = get(hub, role);
        assert_eq!((port - 10000) % 3, index, "{role} got port {port}");
    }

    // The client holding svc-b has learned A and C (from their `seaport` records) before
    // B goes away, so it has somewhere to fail over to.
    for other in [&a, &c] {
        poll(DEADLINE, &format!("svc-b's client to learn the hub at {}", other.addr), || {
            let learned = format!("hub={}", other.addr);
            svc_b.stderr().lines().any(|l| l.contains("learned a hub") && l.contains(&learned)).then_some(())
        });
    }

    // SIGKILL the middle hub: A and C link up directly, svc-b re-registers on one of them.
    drop(b);
    for (hub, name) in [(&a, "A"), (&c, "C")] {
        wait_services(hub, name, &all);
    }
    for hub in [&a, &c] {
        for role in all {
            get(hub, role);
        }
    }
    assert!(svc_b.try_status().is_none(), "svc-b's register kept running: {}", svc_b.stderr());
}
