//! node seaport `test/versions.js`: version ranges in queries.

use seaport_net::{HubConfig, RegisterOptions};

use crate::util::*;

#[async_std::test]
async fn queries_by_version_range() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let ports = [client(&addr), client(&addr), client(&addr)];
        let b123 = ports[1].register("beep@1.2.3", RegisterOptions::default()).await.unwrap();
        let b135 = ports[1].register("beep@1.3.5", RegisterOptions::default()).await.unwrap();
        let b092 = ports[2].register("beep@0.9.2", RegisterOptions::default()).await.unwrap();

        let all = ports[0].query("beep").await.unwrap();
        assert_eq!(ids(&all), ids(&[b123.clone(), b135.clone(), b092.clone()]));

        let patch = ports[0].query("beep@1.2.x").await.unwrap();
        assert_eq!(ids(&patch), vec![b123.id.to_string()], "beep@1.2.x gave {patch:?}");
        assert_eq!(patch[0].port, b123.port);

        let above = ports[0].query("beep@>1.2.0").await.unwrap();
        assert_eq!(ids(&above), ids(&[b123.clone(), b135.clone()]), "beep@>1.2.0 gave {above:?}");

        // get resolves at once with the same answers.
        assert_eq!(ports[0].get("beep@1.2.x").await.unwrap().len(), 1);
        assert_eq!(ports[0].get("beep@>1.2.0").await.unwrap().len(), 2);

        for p in &ports {
            p.close().await;
        }
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn node_range_syntax_and_records_without_a_version() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let service = client(&addr);
        let bare = service.register("boop", RegisterOptions::default()).await.unwrap();
        let v1 = service.register("boop@1.2.3", RegisterOptions::default()).await.unwrap();
        let v2 = service.register("boop@2.0.0", RegisterOptions::default()).await.unwrap();
        let pre = service.register("boop@2.1.0-beta.1", RegisterOptions::default()).await.unwrap();

        let user = client(&addr);
        let q = |pattern: &'static str| {
            let user = user.clone();
            async move { ids(&user.query(pattern).await.unwrap()) }
        };
        // No range: every version, and the record without one.
        assert_eq!(q("boop").await, ids(&[bare.clone(), v1.clone(), v2.clone(), pre.clone()]));
        // A range never matches a record without a version.
        assert_eq!(q("boop@1.x").await, vec![v1.id.to_string()]);
        // Bare version: exactly that version (node), not ^1.2.3 (Cargo).
        assert_eq!(q("boop@1.2.3").await, vec![v1.id.to_string()]);
        assert_eq!(q("boop@^1.2.0").await, vec![v1.id.to_string()]);
        assert_eq!(q("boop@1.x || >=2.0.0").await, ids(&[v1.clone(), v2.clone()]));
        assert_eq!(q("boop@1.0.0 - 2.0.0").await, ids(&[v1.clone(), v2.clone()]));
        // node's prerelease rule: only a comparator on 2.1.0 with a prerelease admits it.
        assert_eq!(q("boop@>=2.1.0-beta.0").await, vec![pre.id.to_string()]);
        assert_eq!(q("boop@>=2.0.0").await, vec![v2.id.to_string()]);

        service.close().await;
        user.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn records_of_one_version_share_one_copy_in_the_hub_and_in_a_client() {
    use seaport_net::core::SharedVersion;
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let service = client(&addr);
        let a = service.register("web@2.1.0", RegisterOptions::default()).await.unwrap();
        let b = service.register("api@2.1.0", RegisterOptions::default()).await.unwrap();
        let c = service.register("web@2.1.1", RegisterOptions::default()).await.unwrap();

        let version = |r: &std::sync::Arc<seaport_net::core::Record>| r.version.clone().unwrap();
        let held = hub.records();
        let by_id = |id: &str| held.iter().find(|r| r.id.as_str() == id).cloned().unwrap();
        assert!(SharedVersion::ptr_eq(&version(&by_id(a.id.as_str())), &version(&by_id(b.id.as_str()))));
        assert!(!SharedVersion::ptr_eq(&version(&by_id(a.id.as_str())), &version(&by_id(c.id.as_str()))));

        // A client sent the records (each decoded with a copy of its own) keeps one too.
        let watcher = client(&addr);
        let seen = watcher.query("*").await.unwrap();
        let seen_id = |id: &str| seen.iter().find(|r| r.id.as_str() == id).cloned().unwrap();
        assert_eq!(version(&seen_id(a.id.as_str())).to_string(), "2.1.0");
        assert!(SharedVersion::ptr_eq(&version(&seen_id(a.id.as_str())), &version(&seen_id(b.id.as_str()))));

        watcher.close().await;
        service.close().await;
        hub.shutdown().await;
    })
    .await;
}
