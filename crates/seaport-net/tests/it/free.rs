//! node seaport `test/free.js`, `free_portonly.js`, `free_port.js`: freeing
//! by record, by id, by port, and from the hub.

use seaport_net::core::{Change, ErrorCode, RegistryError};
use seaport_net::{ClientError, HubConfig, RegisterOptions};

use crate::util::*;

#[async_std::test]
async fn free_by_record_by_id_by_port_and_from_the_hub() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let owner = client(&addr);
        let watcher = client(&addr);
        let mut changes = watcher.watch("http").await.unwrap();
        assert!(watcher.query("http").await.unwrap().is_empty());

        let mut records = Vec::new();
        for _ in 0..4 {
            records.push(owner.register("http", RegisterOptions::default()).await.unwrap());
        }
        for r in &records {
            assert_eq!(summary(&next_change(&mut changes).await), format!("+{}", r.id));
        }
        let [by_record, by_id, by_port, by_hub] = [0, 1, 2, 3].map(|i| records[i].clone());

        // By record (what query returned).
        let found = owner.query("http").await.unwrap();
        let record = found.iter().find(|r| r.id == by_record.id).unwrap();
        owner.free(record.id.as_str()).await.unwrap();
        match next_change(&mut changes).await {
            Change::Free(r) => assert_eq!(*r, *by_record),
            other => panic!("expected a free, got {other:?}"),
        }

        // By id.
        owner.free(by_id.id.as_str()).await.unwrap();
        assert_eq!(summary(&next_change(&mut changes).await), format!("-{}", by_id.id));

        // By port: the caller looks the port up in the query results.
        let found = owner.query("http").await.unwrap();
        let record = found.iter().find(|r| r.port == by_port.port).expect("the port in the query results");
        owner.free(record.id.as_str()).await.unwrap();
        assert_eq!(summary(&next_change(&mut changes).await), format!("-{}", by_port.id));

        // From the hub.
        let freed = hub.free(by_hub.id.as_str()).unwrap();
        assert_eq!(freed.id, by_hub.id);
        assert_eq!(summary(&next_change(&mut changes).await), format!("-{}", by_hub.id));

        assert!(hub.records().is_empty());
        let o = &owner;
        eventually("the owner's replica to be empty", || async move { o.query("http").await.unwrap().is_empty() })
            .await;
        assert!(watcher.query("http").await.unwrap().is_empty());

        owner.close().await;
        watcher.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn freeing_an_unknown_id_is_refused() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let c = client(&addr);
        match c.free("no-such-id").await {
            Err(ClientError::Rejected { code: ErrorCode::UnknownId, .. }) => {}
            other => panic!("expected UnknownId, got {other:?}"),
        }
        assert!(matches!(hub.free("no-such-id"), Err(RegistryError::UnknownId(_))));
        c.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn on_an_open_hub_anyone_may_free_a_record() {
    // seaport's own tests free records registered by other clients.
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let owner = client(&addr);
        let other = client(&addr);
        let r = owner.register("http", RegisterOptions::default()).await.unwrap();
        other.free(r.id.as_str()).await.unwrap();
        assert!(hub.records().is_empty());
        owner.close().await;
        other.close().await;
        hub.shutdown().await;
    })
    .await;
}
