//! `watch`: a stream of the changes to matching records, in order.

use seaport_net::core::{Change, Meta, Value};
use seaport_net::{HubConfig, RegisterOptions};

use crate::util::*;

#[async_std::test]
async fn watch_yields_register_update_free_in_order_for_matching_records_only() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let watcher = client(&addr);
        let mut web = watcher.watch("web").await.unwrap();
        // watch returns once synced; a query of the same pattern shares its subscription.
        assert!(watcher.query("web").await.unwrap().is_empty());

        let service = client(&addr);
        let w1 = service.register("web@1.0.0", RegisterOptions::default()).await.unwrap();
        let db = service.register("db@1.0.0", RegisterOptions::default()).await.unwrap();
        let w2 = service.register("web", RegisterOptions::default()).await.unwrap();
        let meta: Meta = [("state".to_string(), Value::from("ready"))].into_iter().collect();
        service.update(w1.id.as_str(), meta.clone()).await.unwrap();
        service.update(db.id.as_str(), meta.clone()).await.unwrap();
        service.free(db.id.as_str()).await.unwrap();
        service.free(w1.id.as_str()).await.unwrap();
        // A last change that marks the end of the sequence.
        service.free(w2.id.as_str()).await.unwrap();

        let mut seen = Vec::new();
        loop {
            let change = next_change(&mut web).await;
            assert_eq!(change.record().role.as_str(), "web", "a change to a record not matching: {change:?}");
            let done = matches!(&change, Change::Free(r) if r.id == w2.id);
            seen.push(change);
            if done {
                break;
            }
        }
        let expected = vec![
            format!("+{}", w1.id),
            format!("+{}", w2.id),
            format!("~{}", w1.id),
            format!("-{}", w1.id),
            format!("-{}", w2.id),
        ];
        assert_eq!(seen.iter().map(summary).collect::<Vec<_>>(), expected);
        match &seen[2] {
            Change::Update(r) => assert_eq!(r.meta, meta),
            other => panic!("{other:?}"),
        }
        match &seen[0] {
            Change::Register(r) => {
                assert_eq!((r.port, r.version.as_ref().map(|v| v.to_string())), (w1.port, Some("1.0.0".into())))
            }
            other => panic!("{other:?}"),
        }

        watcher.close().await;
        service.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn two_watches_on_one_client_with_different_patterns() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let watcher = client(&addr);
        let mut all = watcher.watch("*").await.unwrap();
        let mut ranged = watcher.watch("web@1.x").await.unwrap();
        assert!(watcher.query("*").await.unwrap().is_empty());
        assert!(watcher.query("web@1.x").await.unwrap().is_empty());

        let service = client(&addr);
        let old = service.register("web@0.9.0", RegisterOptions::default()).await.unwrap();
        let new = service.register("web@1.4.0", RegisterOptions::default()).await.unwrap();
        assert_eq!(summary(&next_change(&mut all).await), format!("+{}", old.id));
        assert_eq!(summary(&next_change(&mut all).await), format!("+{}", new.id));
        // The ranged watch sees only web@1.4.0 (the version range excludes 0.9.0).
        assert_eq!(summary(&next_change(&mut ranged).await), format!("+{}", new.id));
        service.free(old.id.as_str()).await.unwrap();
        service.free(new.id.as_str()).await.unwrap();
        assert_eq!(summary(&next_change(&mut all).await), format!("-{}", old.id));
        assert_eq!(summary(&next_change(&mut all).await), format!("-{}", new.id));
        assert_eq!(summary(&next_change(&mut ranged).await), format!("-{}", new.id));

        watcher.close().await;
        service.close().await;
        hub.shutdown().await;
    })
    .await;
}
