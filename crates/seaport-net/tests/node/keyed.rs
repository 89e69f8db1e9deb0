//! A keyed hub: node clients (which cannot sign) may read, but not change anything.

use seaport_net::core::{ErrorCode, Event};
use seaport_net::{Client, ClientConfig, HubConfig, KeyPair, RegisterOptions};
use serde_json::json;

use crate::harness::*;

fn unauthorized(event: &Event) -> Option<String> {
    match event {
        Event::Rejected { code: ErrorCode::Unauthorized, message, .. } => Some(message.clone()),
        _ => None,
    }
}

#[async_std::test]
async fn node_clients_can_read_a_keyed_hub_but_not_change_it() {
    let Some(module) = node_seaport() else { return };
    with_deadline(async {
        let key = KeyPair::generate();
        let (hub, addr) = start_hub(HubConfig { authorized: vec![key.public()], ..HubConfig::default() }).await;
        let mut events = hub.events();
        let signed = Client::connect(&[&addr], ClientConfig { key: Some(key.clone()), ..client_config() }).unwrap();
        let api = signed.register("api@1.0.0", RegisterOptions::default()).await.unwrap();

        let mut node = Node::connect(module, hub.local_addr().port(), json!({}));
        node.send(json!({"cmd": "get", "pattern": "api@1", "tag": "api"}));
        let got = node.expect("node's get of api@1", |e| e["event"] == "got" && e["tag"] == "api").await;
        assert_eq!(got["rows"][0]["id"], json!(api.id.as_str()));
        assert_eq!(got["rows"][0]["port"], json!(api.port));

        // Registering is refused (node has no error channel: the hub logs it).
        let (web, _) = node.register("web@1.0.0", json!({}), false).await;
        let reason = hub_event(&mut events, "the refusal of node's register", unauthorized).await;
        assert!(reason.contains("signed"), "{reason}");
        assert!(!hub_ids(&hub).contains(&web));

        // So is freeing.
        node.send(json!({"cmd": "free", "id": api.id.as_str()}));
        hub_event(&mut events, "the refusal of node's free", unauthorized).await;
        assert_eq!(hub_ids(&hub), vec![api.id.to_string()]);

        // The node client is still connected and still told about changes.
        let more = signed.register("api@1.0.1", RegisterOptions::default()).await.unwrap();
        node.expect("node to see a later record", |e| e["event"] == "register" && e["id"] == more.id.as_str()).await;
        assert!(!hub_ids(&hub).contains(&web));

        signed.close().await;
        hub.shutdown().await;
    })
    .await;
}
