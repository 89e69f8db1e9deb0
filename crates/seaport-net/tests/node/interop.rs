//! Node services and seaport-rs services find each other through one hub.

use std::collections::BTreeMap;

use async_std::net::TcpStream;
use futures::AsyncReadExt;
use seaport_net::core::{Change, Meta};
use seaport_net::{HubConfig, RegisterOptions};
use serde_json::{json, Value as Json};

use crate::harness::*;

#[async_std::test]
async fn a_node_service_is_found_by_rust_clients() {
    let Some(module) = node_seaport() else { return };
    with_deadline(async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let mut node = Node::connect(module, hub.local_addr().port(), json!({}));
        let meta = json!({
            "color": "blue", "weight": 3, "ratio": 0.5, "tags": ["a", "b"],
            "nested": {"deep": {"x": [1, null, true]}}
        });
        // seaport's documented flow: `var port = ports.register('web@1.2.3', meta)`, then listen.
        let (id, port) = node.register("web@1.2.3", meta.clone(), true).await;

        let user = client(&addr);
        until_registered(&user, "web", &id).await;
        let found = within("a rust get of web@1.2.x", user.get("web@1.2.x")).await.unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        let record = &found[0];
        assert_eq!(record.id.as_str(), id);
        assert_eq!(record.name(), "web@1.2.3");
        assert_eq!((record.host.as_str(), record.port), ("127.0.0.1", port));
        assert_eq!(record.meta, serde_json::from_value::<Meta>(meta.clone()).unwrap());

        // The node service does listen there.
        let mut conn = TcpStream::connect(("127.0.0.1", record.port)).await.expect("connect to the node service");
        let mut greeting = String::new();
        within("the node service's greeting", conn.read_to_string(&mut greeting)).await.unwrap();
        assert_eq!(greeting, "hello from web@1.2.3\n");

        // node's own command line sees the record as node wrote it: one flat object.
        let rows = node_query(module, &addr, "web@1.2.x").await;
        let mut expected = meta.clone();
        for (k, v) in [("role", json!("web")), ("version", json!("1.2.3")), ("host", json!("127.0.0.1"))] {
            expected[k] = v;
        }
        expected["port"] = json!(port);
        expected["id"] = json!(id);
        assert_eq!(rows, vec![expected]);

        // The node client sees other records, but not its own echoed back (nor does a node hub echo).
        let probe = user.register("probe", RegisterOptions::default()).await.unwrap();
        node.expect("node to see the probe", |e| e["event"] == "register" && e["id"] == probe.id.as_str()).await;
        let echoes = node.seen.iter().filter(|e| e["event"] == "register" && e["id"] == id.as_str()).count();
        assert_eq!(echoes, 0, "node was sent its own record: {:?}", node.seen);

        user.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn a_rust_service_is_found_by_a_node_get() {
    let Some(module) = node_seaport() else { return };
    with_deadline(async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let mut node = Node::connect(module, hub.local_addr().port(), json!({}));
        node.expect("node's first sync", |e| e["event"] == "synced").await;
        // Asked before anything matches: node's get waits for a matching register.
        node.send(json!({"cmd": "get", "pattern": "web@1.2.x", "tag": "early"}));

        let service = client(&addr);
        let other = service.register("web@2.0.0", RegisterOptions::default()).await.unwrap();
        let meta: Meta = [("env".to_string(), "prod".into())].into_iter().collect();
        let web = service.register("web@1.2.7", RegisterOptions { meta, ..RegisterOptions::default() }).await.unwrap();

        let got = node.expect("node's get of web@1.2.x", |e| e["event"] == "got" && e["tag"] == "early").await;
        let expected = json!({"role": "web", "version": "1.2.7", "host": "127.0.0.1", "port": web.port,
                              "id": web.id.as_str(), "env": "prod"});
        assert_eq!(got["rows"], json!([expected]));

        // Asked when a match is known: answered at once.
        node.send(json!({"cmd": "get", "pattern": "web@2", "tag": "late"}));
        let got = node.expect("node's get of web@2", |e| e["event"] == "got" && e["tag"] == "late").await;
        assert_eq!(got["rows"][0]["port"], json!(other.port));
        assert_eq!(got["rows"].as_array().map(Vec::len), Some(1));

        service.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn a_killed_node_clients_records_are_freed() {
    let Some(module) = node_seaport() else { return };
    with_deadline(async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let watcher = client(&addr);
        let mut changes = watcher.watch("*").await.unwrap();
        let mut node = Node::connect(module, hub.local_addr().port(), json!({}));
        let (a, _) = node.register("doomed@1.0.0", json!({}), false).await;
        let (b, _) = node.register("doomed@1.0.1", json!({}), false).await;
        let mut seen = vec![summary(&next_change(&mut changes).await), summary(&next_change(&mut changes).await)];
        seen.sort();
        let mut expected = vec![format!("+{a}"), format!("+{b}")];
        expected.sort();
        assert_eq!(seen, expected);

        node.kill();
        let mut freed = vec![summary(&next_change(&mut changes).await), summary(&next_change(&mut changes).await)];
        freed.sort();
        let mut expected = vec![format!("-{a}"), format!("-{b}")];
        expected.sort();
        assert_eq!(freed, expected);
        assert!(hub.records().is_empty());

        watcher.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn a_node_free_reaches_rust_watchers() {
    let Some(module) = node_seaport() else { return };
    with_deadline(async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let watcher = client(&addr);
        let mut changes = watcher.watch("*").await.unwrap();
        let mut node = Node::connect(module, hub.local_addr().port(), json!({}));
        let (id, _) = node.register("web@1.0.0", json!({}), false).await;
        assert_eq!(summary(&next_change(&mut changes).await), format!("+{id}"));
        node.send(json!({"cmd": "free", "id": id}));
        assert_eq!(summary(&next_change(&mut changes).await), format!("-{id}"));
        assert!(hub.records().is_empty());

        // On an open hub anyone may free anything (node seaport's rule): node frees a
        // record a Rust service registered.
        let service = client(&addr);
        let api = service.register("api@1.0.0", RegisterOptions::default()).await.unwrap();
        assert_eq!(summary(&next_change(&mut changes).await), format!("+{}", api.id));
        node.expect("node to learn the api record", |e| e["event"] == "register" && e["id"] == api.id.as_str()).await;
        node.send(json!({"cmd": "free", "id": api.id.as_str()}));
        match next_change(&mut changes).await {
            Change::Free(r) => assert_eq!(r.id, api.id),
            other => panic!("expected the api record freed, got {other:?}"),
        }
        assert!(hub.records().is_empty());

        service.close().await;
        watcher.close().await;
        hub.shutdown().await;
    })
    .await;
}

/// seaport's `test/versions.js` queries, from node's command line, a live node client and
/// a Rust client; `registered` maps each version to its (id, port).
async fn check_versions(module: &std::path::Path, addr: &str, registered: &BTreeMap<String, (String, u16)>) {
    let observer = client(addr);
    let mut node = Node::connect(module, addr.rsplit(':').next().unwrap().parse().unwrap(), json!({}));
    node.expect("the node observer's sync", |e| e["event"] == "synced").await;
    let cases = [
        ("beep", vec!["0.9.2", "1.2.3", "1.3.5"]),
        ("beep@1.2.x", vec!["1.2.3"]),
        ("beep@>1.2.0", vec!["1.2.3", "1.3.5"]),
    ];
    for (pattern, versions) in cases {
        let check_rows = |who: &str, rows: Vec<Json>| {
            let mut got: Vec<(String, String, u64)> = rows
                .iter()
                .map(|r| {
                    (
                        r["version"].as_str().unwrap().to_string(),
                        r["id"].as_str().unwrap().to_string(),
                        r["port"].as_u64().unwrap(),
                    )
                })
                .collect();
            got.sort();
            let expected: Vec<(String, String, u64)> = versions
                .iter()
                .map(|v| (v.to_string(), registered[*v].0.clone(), u64::from(registered[*v].1)))
                .collect();
            assert_eq!(got, expected, "{who}: {pattern}");
        };
        check_rows("node's `seaport query`", node_query(module, addr, pattern).await);
        check_rows("a live node client's query", node.query(pattern).await);
        let rust = observer.query(pattern).await.unwrap();
        let rows = rust
            .iter()
            .map(|r| json!({"version": r.version.as_ref().unwrap().to_string(), "id": r.id.as_str(), "port": r.port}))
            .collect();
        check_rows("a Rust client's query", rows);
    }
    observer.close().await;
}

#[async_std::test]
async fn version_queries_agree_on_node_registered_records() {
    let Some(module) = node_seaport() else { return };
    with_deadline(async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let watcher = client(&addr);
        let mut changes = watcher.watch("beep").await.unwrap();
        let port = hub.local_addr().port();
        let mut nodes = [Node::connect(module, port, json!({})), Node::connect(module, port, json!({}))];
        let mut registered = BTreeMap::new();
        for (which, version) in [(0, "1.2.3"), (0, "1.3.5"), (1, "0.9.2")] {
            let record = nodes[which].register(&format!("beep@{version}"), json!({}), false).await;
            registered.insert(version.to_string(), record);
        }
        for _ in 0..3 {
            assert!(matches!(next_change(&mut changes).await, Change::Register(_)));
        }
        check_versions(module, &addr, &registered).await;
        watcher.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn version_queries_agree_on_rust_registered_records() {
    let Some(module) = node_seaport() else { return };
    with_deadline(async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let (one, two) = (client(&addr), client(&addr));
        let mut registered = BTreeMap::new();
        for (c, version) in [(&one, "1.2.3"), (&one, "1.3.5"), (&two, "0.9.2")] {
            let r = c.register(&format!("beep@{version}"), RegisterOptions::default()).await.unwrap();
            registered.insert(version.to_string(), (r.id.to_string(), r.port));
        }
        check_versions(module, &addr, &registered).await;
        one.close().await;
        two.close().await;
        hub.shutdown().await;
    })
    .await;
}
