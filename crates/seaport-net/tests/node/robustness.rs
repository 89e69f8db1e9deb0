//! Hostile or broken JSON-lines input closes only its own connection; liveness works
//! both ways.

use std::time::Duration;

use seaport_net::{HubConfig, RegisterOptions};
use serde_json::json;

use crate::harness::*;

#[async_std::test]
async fn bad_lines_close_only_their_own_connection() {
    let Some(module) = node_seaport() else { return };
    with_deadline(async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let keeper = client(&addr);
        let keep = keeper.register("keep@1.0.0", RegisterOptions::default()).await.unwrap();
        let mut node = Node::connect(module, hub.local_addr().port(), json!({}));
        let (web, _) = node.register("web@1.0.0", json!({}), false).await;
        wait_until("the hub to hold the node service", || hub_ids(&hub).contains(&web)).await;
        let mut expected = vec![keep.id.to_string(), web.clone()];
        expected.sort();

        let bad: [&[u8]; 4] = [
            b"[\"register\", \"x\", {\"role\": \n", // not JSON
            b"{\"role\": \"web\"}\n",               // not an array
            b"[\"free\", 42]\n",                    // a known command with the wrong arguments
            b"[\"register\", \"x\"]\n",             // a register without its record
        ];
        for line in bad {
            let mut raw = Lines::connect(&addr).await;
            raw.send(line).await;
            raw.closed_by_hub().await;
            assert_eq!(hub_ids(&hub), expected);
        }

        // A line longer than the limit (64 KiB plus the metadata limit), never finished.
        let mut raw = Lines::connect(&addr).await;
        raw.send(b"[\"synced\"]\n[\"register\",\"").await;
        raw.send_lossy(&vec![b'x'; 512 * 1024]).await;
        raw.closed_by_hub().await;
        assert_eq!(hub_ids(&hub), expected);

        // Invalid records are refused (and logged); the connection stays.
        let mut raw = Lines::connect(&addr).await;
        raw.send(b"[\"synced\"]\n").await;
        assert_eq!(raw.next().await, Some(json!(["helo", "127.0.0.1"])));
        let mut snapshot = Vec::new();
        loop {
            let line = raw.next().await.expect("the hub's snapshot");
            match line[0].as_str() {
                Some("register") => snapshot.push(line[1].as_str().unwrap().to_string()),
                Some("synced") => break,
                _ => panic!("unexpected line in the snapshot: {line}"),
            }
        }
        snapshot.sort();
        assert_eq!(snapshot, expected);
        raw.send(b"[\"register\",\"bad1\",{\"role\":\"no spaces\",\"port\":4000}]\n").await;
        raw.send(b"[\"register\",\"bad2\",{\"role\":\"x\",\"version\":\"1.2\",\"port\":4000}]\n").await;
        raw.send(b"[\"register\",\"bad3\",{\"role\":\"x\",\"port\":\"4000\"}]\n").await;
        raw.send(b"[\"register\",\"bad4\",{\"role\":\"x\",\"port\":0}]\n").await;
        raw.send(b"[\"whatever\",1,2]\n[]\n\n").await;
        raw.send(b"[\"register\",\"good\",{\"role\":\"raw\",\"version\":\"1.0.0\",\"port\":4000,\"k\":[1]}]\n").await;
        wait_until("the hub to hold the valid record", || hub_ids(&hub).contains(&"good".to_string())).await;
        let mut all = expected.clone();
        all.push("good".into());
        all.sort();
        assert_eq!(hub_ids(&hub), all);
        node.expect("node to see the valid record", |e| e["event"] == "register" && e["id"] == "good").await;
        let found = keeper.get("raw@1").await.unwrap();
        assert_eq!((found[0].host.as_str(), found[0].port), ("127.0.0.1", 4000));

        drop(raw);
        wait_until("the raw client's record to be freed", || hub_ids(&hub) == expected).await;
        assert_eq!(node.query("web").await.len(), 1);

        keeper.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn heartbeats_flow_both_ways_and_silent_node_clients_expire() {
    with_deadline(async {
        let config = HubConfig {
            core: seaport_net::core::HubConfig {
                heartbeat: Duration::from_millis(100),
                timeout: Duration::from_millis(400),
                ..Default::default()
            },
            ..HubConfig::default()
        };
        let (hub, addr) = start_hub(config).await;
        let mut raw = Lines::connect(&addr).await;
        raw.send(b"[\"synced\"]\n[\"register\",\"hb\",{\"role\":\"hb\",\"port\":5000}]\n").await;
        wait_until("the hub to hold the record", || hub_ids(&hub) == vec!["hb".to_string()]).await;

        // Keep the hub busy: it must still send heartbeat lines at its interval (a node
        // client counts only those), not only when idle.
        let busy = client(&addr);
        let busy_task = {
            let busy = busy.clone();
            async_std::task::spawn(async move {
                for i in 0..400 {
                    let r = busy.register(&format!("busy{i}"), RegisterOptions::default()).await.unwrap();
                    busy.free(r.id.as_str()).await.unwrap();
                }
            })
        };
        for _ in 0..4 {
            raw.next_command("heartbeat").await;
            raw.send(b"[\"heartbeat\"]\n").await;
        }
        assert!(hub_ids(&hub).contains(&"hb".to_string()), "heartbeat lines keep the lease");
        busy_task.await;
        busy.close().await;

        // Silence: the lease expires, the connection is closed and the record freed.
        raw.closed_by_hub().await;
        wait_until("the silent client's record to be freed", || hub_ids(&hub).is_empty()).await;
        hub.shutdown().await;
    })
    .await;
}

/// Reads a raw session's greeting: `helo`, the snapshot's record ids, `synced`.
async fn greeting(raw: &mut Lines) -> Vec<String> {
    assert_eq!(raw.next().await.map(|l| l[0].clone()), Some(json!("helo")));
    let mut ids = Vec::new();
    loop {
        let line = raw.next().await.expect("the hub's snapshot");
        match line[0].as_str() {
            Some("register") => ids.push(line[1].as_str().unwrap().to_string()),
            Some("synced") => return ids,
            _ => panic!("unexpected line in the snapshot: {line}"),
        }
    }
}

#[async_std::test]
async fn a_late_echo_of_a_free_does_not_free_the_record_registered_again() {
    with_deadline(async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let owner = client(&addr);
        let fixed = || RegisterOptions { id: Some("x".into()), ..RegisterOptions::default() };
        owner.register("svc@1.0.0", fixed()).await.unwrap();
        let mut raw = Lines::connect(&addr).await;
        raw.send(b"[\"synced\"]\n").await;
        assert_eq!(greeting(&mut raw).await, vec!["x".to_string()]);

        // The record is freed, and registered again under the same id before the node
        // client's echo of the free arrives (a node client sends back every free it gets).
        owner.free("x").await.unwrap();
        assert_eq!(raw.next_command("free").await, json!(["free", "x"]));
        owner.register("svc@1.0.0", fixed()).await.unwrap();
        assert_eq!(raw.next_command("register").await[1], json!("x"));
        raw.send(b"[\"free\",\"x\"]\n").await;
        // A free of an unknown record is ignored (as by a node hub) and the session stays.
        raw.send(b"[\"free\",\"nope\"]\n[\"register\",\"mark\",{\"role\":\"mark\",\"port\":7}]\n").await;
        wait_until("the hub to hold the marker", || hub_ids(&hub).contains(&"mark".to_string())).await;
        assert_eq!(hub_ids(&hub), vec!["mark".to_string(), "x".to_string()], "the late echo freed the record");

        // A free the client means (it knows the record again) goes through.
        raw.send(b"[\"free\",\"x\"]\n").await;
        wait_until("the record to be freed", || hub_ids(&hub) == vec!["mark".to_string()]).await;

        owner.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn a_node_clients_own_frees_are_not_taken_for_echoes() {
    with_deadline(async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let mut raw = Lines::connect(&addr).await;
        raw.send(b"[\"synced\"]\n").await;
        assert!(greeting(&mut raw).await.is_empty());
        // The hub sends a free on to every node client, the one that freed the record
        // too, which does not echo it (it dropped the record itself): each of its frees
        // is meant, however often it registers the same id again.
        for round in 0..3 {
            raw.send(b"[\"register\",\"x\",{\"role\":\"svc\",\"port\":7}]\n").await;
            wait_until("the hub to hold x", || hub_ids(&hub) == vec!["x".to_string()]).await;
            raw.send(b"[\"free\",\"x\"]\n").await;
            assert_eq!(raw.next_command("free").await, json!(["free", "x"]), "round {round}");
            wait_until("x to be freed", || hub_ids(&hub).is_empty()).await;
        }
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn node_clients_leaving_together_are_all_freed_and_the_others_told() {
    with_deadline(async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let mut watcher = Lines::connect(&addr).await;
        watcher.send(b"[\"synced\"]\n").await;
        assert!(greeting(&mut watcher).await.is_empty());
        // Fifty clients with two records each; none of them reads what the hub sends.
        let mut leaving = Vec::new();
        for i in 0..50 {
            let mut raw = Lines::connect(&addr).await;
            let lines = format!(
                "[\"synced\"]\n[\"register\",\"a{i}\",{{\"role\":\"svc\",\"port\":{}}}]\n\
                 [\"register\",\"b{i}\",{{\"role\":\"svc\",\"port\":{}}}]\n",
                10_000 + 2 * i,
                10_001 + 2 * i
            );
            raw.send(lines.as_bytes()).await;
            leaving.push(raw);
        }
        wait_until("the hub to hold every record", || hub_ids(&hub).len() == 100).await;
        // All gone at once: the hub closes their sessions while the others are sent
        // their frees.
        drop(leaving);
        let mut freed = std::collections::BTreeSet::new();
        while freed.len() < 100 {
            let line = watcher.next_command("free").await;
            assert!(freed.insert(line[1].to_string()), "one free per record: {line}");
        }
        wait_until("the hub to hold nothing", || hub_ids(&hub).is_empty()).await;
        // The client that stayed is still served.
        watcher.send(b"[\"register\",\"stays\",{\"role\":\"svc\",\"port\":9}]\n").await;
        wait_until("the hub to hold the record that stays", || hub_ids(&hub) == vec!["stays".to_string()]).await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn re_announced_records_from_a_node_hub_era_keep_their_owner_host() {
    with_deadline(async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        // After a reconnect a node client first re-sends what it has: its own service, with
        // the host a node hub told it (IPv4-mapped), and a record of another machine.
        let mut raw = Lines::connect(&addr).await;
        raw.send(
            b"[\"register\",\"own\",{\"role\":\"web\",\"port\":4100,\"host\":\"::ffff:127.0.0.1\",\"id\":\"own\"}]\n\
              [\"register\",\"other\",{\"role\":\"web\",\"port\":4100,\"host\":\"10.9.9.9\",\"id\":\"other\"}]\n\
              [\"synced\"]\n",
        )
        .await;
        assert_eq!(raw.next().await, Some(json!(["helo", "127.0.0.1"])));
        assert_eq!(raw.next().await, Some(json!(["synced"])));
        // The other machine's record is not taken (its owner registers it if alive), and the
        // client is told so.
        assert_eq!(raw.next_command("free").await, json!(["free", "other"]));
        assert_eq!(hub_ids(&hub), vec!["own".to_string()]);
        assert_eq!(hub.records()[0].host, "127.0.0.1");
        hub.shutdown().await;
    })
    .await;
}
