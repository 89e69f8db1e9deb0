//! The point of it all: a node seaport deployment swaps its node hub for a seaport-rs hub
//! on the same port, and its services and clients carry on unchanged.

use async_std::net::TcpStream;
use futures::AsyncReadExt;
use seaport_net::core::Change;
use seaport_net::HubConfig;
use serde_json::json;

use crate::harness::*;

#[async_std::test]
async fn a_node_deployment_moves_to_a_seaport_rs_hub_on_the_same_port() {
    let Some(module) = node_seaport() else { return };
    with_deadline(async {
        // Today: a node hub (listening on every address, as `seaport listen` does), a node
        // service and a node client.
        let (mut old_hub, port) = Node::hub(module).await;
        let mut service = Node::connect(module, port, json!({}));
        let (id, service_port) = service.register("web@1.2.3", json!({"env": "prod"}), true).await;
        let mut user = Node::connect(module, port, json!({}));
        // The driver's `registered` can reach the test before its register (and the free
        // of a port it gave up) reaches the hub: ask until the node hub holds just the
        // service's record.
        let mut asked = 0;
        let row = loop {
            asked += 1;
            let tag = format!("before {asked}");
            user.send(json!({"cmd": "get", "pattern": "web@1.2.x", "tag": tag}));
            let got = user.expect("a get through the node hub", |e| e["event"] == "got" && e["tag"] == tag).await;
            match got["rows"].as_array().map(Vec::as_slice) {
                Some([row]) if row["id"] == json!(id) => break row.clone(),
                _ => {}
            }
        };
        // A node hub tells IPv4 clients their address in IPv6-mapped form.
        assert_eq!(row["host"], json!("::ffff:127.0.0.1"));

        // The swap: the node hub stops, ours starts on the same port.
        old_hub.kill();
        service.expect("the service to lose the node hub", |e| e["event"] == "disconnect").await;
        let addr = format!("127.0.0.1:{port}");
        let hub = rebind_hub(&addr, HubConfig::default()).await;
        let watcher = client(&addr);
        let mut changes = watcher.watch("web").await.unwrap();

        // The service is back, same id and port, with the host in plain IPv4 form.
        let record = loop {
            match next_change(&mut changes).await {
                Change::Register(r) if r.id.as_str() == id => break r,
                Change::Register(_) => {}
                other => panic!("unexpected change {other:?}"),
            }
        };
        assert_eq!(
            (record.name(), record.host.as_str(), record.port),
            ("web@1.2.3".to_string(), "127.0.0.1", service_port)
        );
        assert_eq!(record.meta.get("env").and_then(|v| v.as_str()), Some("prod"));
        assert_eq!(hub.records().len(), 1);

        // Node clients and tools carry on.
        user.send(json!({"cmd": "get", "pattern": "web@1.2.x", "tag": "after"}));
        let got = user.expect("a get through our hub", |e| e["event"] == "got" && e["tag"] == "after").await;
        assert_eq!(got["rows"][0]["port"], json!(service_port));
        let rows = node_query(module, &addr, "web@1.2.x").await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!((&rows[0]["id"], &rows[0]["host"]), (&json!(id), &json!("127.0.0.1")));
        let mut conn = TcpStream::connect(("127.0.0.1", service_port)).await.expect("connect to the node service");
        let mut greeting = String::new();
        within("the node service's greeting", conn.read_to_string(&mut greeting)).await.unwrap();
        assert_eq!(greeting, "hello from web@1.2.3\n");

        watcher.close().await;
        hub.shutdown().await;
    })
    .await;
}
