//! A node client reconnecting to a restarted hub announces what it remembers: its own
//! services come back, a dead service it merely knew about does not.

use seaport_net::core::Change;
use seaport_net::{HubConfig, RegisterOptions};
use serde_json::json;

use crate::harness::*;

#[async_std::test]
async fn a_node_client_restores_its_services_but_not_dead_ones_it_remembers() {
    let Some(module) = node_seaport() else { return };
    with_deadline(async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        // A service on another machine, as a Rust client registers it.
        let remote = client(&addr);
        let options = RegisterOptions { host: Some("10.9.9.9".into()), ..RegisterOptions::default() };
        let dead = remote.register("foreign@1.0.0", options).await.unwrap();

        let mut node = Node::connect(module, hub.local_addr().port(), json!({}));
        let (web, web_port) = node.register("web@1.0.0", json!({"color": "red"}), false).await;
        node.expect("node to learn the remote record", |e| e["event"] == "register" && e["id"] == dead.id.as_str())
            .await;
        wait_until("the hub to hold the node service", || hub_ids(&hub).contains(&web)).await;

        // The hub goes down; while it is down the remote service dies.
        hub.shutdown().await;
        node.expect("node to lose the hub", |e| e["event"] == "disconnect").await;
        within("the remote client to close", remote.close()).await;
        let hub = rebind_hub(&addr, HubConfig::default()).await;
        let watcher = client(&addr);
        let mut changes = watcher.watch("*").await.unwrap();

        // node reconnects (after its fixed 1 s) and re-sends every record it knows, then
        // `synced`. The hub tells it the remembered record is gone...
        node.expect("node to be told the dead record is gone", |e| e["event"] == "free" && e["id"] == dead.id.as_str())
            .await;
        // ...and takes back node's own service, same id and port.
        match next_change(&mut changes).await {
            Change::Register(r) => {
                assert_eq!((r.id.as_str(), r.name(), r.port), (web.as_str(), "web@1.0.0".to_string(), web_port));
                assert_eq!(r.meta.get("color").and_then(|v| v.as_str()), Some("red"));
            }
            other => panic!("expected node's service back, got {other:?}"),
        }
        assert_eq!(hub_ids(&hub), vec![web.clone()], "the dead record was resurrected");
        assert_eq!(node.query("foreign").await, Vec::<serde_json::Value>::new());
        assert_eq!(watcher.query("foreign").await.unwrap(), vec![]);

        // The restored record belongs to the node client's connection like any other.
        node.kill();
        match next_change(&mut changes).await {
            Change::Free(r) => assert_eq!(r.id.as_str(), web),
            other => panic!("expected node's service freed, got {other:?}"),
        }

        watcher.close().await;
        hub.shutdown().await;
    })
    .await;
}
