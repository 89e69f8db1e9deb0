//! node seaport `test/meta.js`, `meta_service.js`, `meta_update.js`: metadata.

use seaport_net::core::{Change, Meta, Value};
use seaport_net::{HubConfig, RegisterOptions};

use crate::util::*;

fn meta(pairs: &[(&str, Value)]) -> Meta {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

#[async_std::test]
async fn metadata_given_on_register_is_visible_in_queries() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let ports = client(&addr);
        let given = meta(&[
            ("beep", Value::from("boop")),
            ("weight", Value::Int(3)),
            ("tags", Value::List(vec![Value::from("a"), Value::Bool(true), Value::Null])),
        ]);
        let r = ports.register("http", RegisterOptions { meta: given.clone(), ..Default::default() }).await.unwrap();
        assert_eq!(r.meta, given);

        let user = client(&addr);
        let found = user.query("http").await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].port, r.port);
        assert_eq!(found[0].host, "127.0.0.1");
        assert_eq!(found[0].meta, given);
        assert_eq!(user.query("http?meta.beep=boop").await.unwrap().len(), 1);
        assert_eq!(user.query("http?meta.weight=3").await.unwrap().len(), 1);
        assert!(user.query("http?meta.beep=BOOP").await.unwrap().is_empty());
        assert_eq!(hub.records()[0].meta, given);

        ports.close().await;
        user.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn metadata_updated_at_run_time_reaches_watchers_and_queries() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let service = client(&addr);
        let user = client(&addr);
        let watcher = client(&addr);
        let mut changes = watcher.watch("woo").await.unwrap();
        assert!(watcher.query("woo").await.unwrap().is_empty());

        let r = service
            .register("woo", RegisterOptions { meta: meta(&[("beep", Value::from("boop"))]), ..Default::default() })
            .await
            .unwrap();
        assert_eq!(summary(&next_change(&mut changes).await), format!("+{}", r.id));
        let found = user.get("woo").await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].meta.get("beep"), Some(&Value::from("boop")));
        assert_eq!(service.query("woo").await.unwrap()[0].meta.get("beep"), Some(&Value::from("boop")));

        // Another client changes it (an open hub lets anyone, as in seaport's test).
        let new_meta = meta(&[("beep", Value::from("BOOP"))]);
        let updated = user.update(r.id.as_str(), new_meta.clone()).await.unwrap();
        assert_eq!(updated.meta, new_meta);
        assert_eq!((updated.id.clone(), updated.port, updated.host.clone()), (r.id.clone(), r.port, r.host.clone()));
        match next_change(&mut changes).await {
            Change::Update(u) => {
                assert_eq!(u.id, r.id);
                assert_eq!(u.meta, new_meta);
            }
            other => panic!("expected an update, got {other:?}"),
        }
        let s = &service;
        eventually("the owner's query to show the new metadata", || async move {
            s.query("woo").await.unwrap()[0].meta.get("beep") == Some(&Value::from("BOOP"))
        })
        .await;
        assert_eq!(hub.records()[0].meta, new_meta);
        assert!(user.query("woo?meta.beep=boop").await.unwrap().is_empty());
        assert_eq!(user.query("woo?meta.beep=BOOP").await.unwrap().len(), 1);

        // The owner updates it too.
        let third = meta(&[("beep", Value::from("bop")), ("n", Value::Int(2))]);
        service.update(r.id.as_str(), third.clone()).await.unwrap();
        match next_change(&mut changes).await {
            Change::Update(u) => assert_eq!(u.meta, third),
            other => panic!("expected an update, got {other:?}"),
        }

        service.close().await;
        user.close().await;
        watcher.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn a_watcher_filtering_on_metadata_sees_a_record_leave_as_a_free() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let service = client(&addr);
        let watcher = client(&addr);
        let mut prod = watcher.watch("web?meta.env=prod").await.unwrap();
        assert!(watcher.query("web?meta.env=prod").await.unwrap().is_empty());
        let r = service
            .register("web", RegisterOptions { meta: meta(&[("env", Value::from("prod"))]), ..Default::default() })
            .await
            .unwrap();
        assert_eq!(summary(&next_change(&mut prod).await), format!("+{}", r.id));
        service.update(r.id.as_str(), meta(&[("env", Value::from("dev"))])).await.unwrap();
        assert_eq!(summary(&next_change(&mut prod).await), format!("-{}", r.id));
        service.close().await;
        watcher.close().await;
        hub.shutdown().await;
    })
    .await;
}
