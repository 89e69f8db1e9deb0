//! Peered hubs: records flow through a chain, and survive the loss of a hub.

use std::collections::BTreeSet;

use futures::StreamExt;
use seaport_net::core::Change;
use seaport_net::{Client, Hub, HubConfig, RegisterOptions};

use crate::util::*;

/// Hubs with distinct port partitions, as a mesh should be configured.
fn mesh_config(index: u16) -> HubConfig {
    let mut config = HubConfig::default();
    config.core.port_partition = (index, 3);
    config
}

fn services(hub: &Hub) -> BTreeSet<String> {
    hub.records().iter().filter(|r| r.role.as_str() != "seaport").map(|r| format!("{} {}", r.id, r.port)).collect()
}

#[async_std::test]
async fn a_chain_of_three_hubs_shares_every_record_once() {
    with_deadline(TEST_DEADLINE, async {
        let (a, a_addr) = start_hub(mesh_config(0)).await;
        let (b, b_addr) = start_hub(mesh_config(1)).await;
        let (c, c_addr) = start_hub(mesh_config(2)).await;
        a.peer(b_addr.clone());
        c.peer(b_addr.clone());
        // Peering from both sides must not duplicate anything either.
        b.peer(a_addr.clone());
        wait_until("the hubs to peer", || a.peer_count() >= 1 && c.peer_count() >= 1 && b.peer_count() >= 3).await;

        let watcher = client(&c_addr);
        let mut watch = watcher.watch("web").await.unwrap();
        let on_a = client(&a_addr);
        let web = on_a.register("web@1.2.3", RegisterOptions::default()).await.unwrap();

        // The watcher on C sees exactly one register, through B.
        match next_change(&mut watch).await {
            Change::Register(r) => assert_eq!((r.id.clone(), r.port), (web.id.clone(), web.port)),
            other => panic!("expected the register, got {other:?}"),
        }
        let found = watcher.get("web@1.2.x").await.unwrap();
        assert_eq!(found.len(), 1);
        for hub in [&a, &b, &c] {
            wait_until("every hub to list the service", || services(hub).len() == 1).await;
        }
        // Each hub lists itself and the others as `seaport` records.
        for hub in [&a, &b, &c] {
            wait_until("every hub to know three hubs", || {
                hub.records().iter().filter(|r| r.role.as_str() == "seaport").count() == 3
            })
            .await;
        }

        on_a.free(web.id.as_str()).await.unwrap();
        match next_change(&mut watch).await {
            Change::Free(r) => assert_eq!(r.id, web.id),
            other => panic!("expected the free, got {other:?}"),
        }
        for hub in [&a, &b, &c] {
            wait_until("the free to reach every hub", || services(hub).is_empty()).await;
        }
        assert!(
            async_std::future::timeout(std::time::Duration::from_millis(50), watch.next()).await.is_err(),
            "exactly one event per change"
        );
        for x in [on_a, watcher] {
            x.close().await;
        }
        for hub in [a, b, c] {
            hub.shutdown().await;
        }
    })
    .await;
}

#[async_std::test]
async fn losing_the_middle_hub_loses_no_service() {
    with_deadline(TEST_DEADLINE, async {
        let (a, a_addr) = start_hub(mesh_config(0)).await;
        let (b, b_addr) = start_hub(mesh_config(1)).await;
        let (c, c_addr) = start_hub(mesh_config(2)).await;
        a.peer(b_addr.clone());
        c.peer(b_addr.clone());
        wait_until("the chain to form", || b.peer_count() == 2).await;

        let on_a = client(&a_addr);
        let on_b = Client::connect(&[&b_addr], client_config()).unwrap();
        let on_c = client(&c_addr);
        let sa = on_a.register("svc-a", RegisterOptions::default()).await.unwrap();
        let sb = on_b.register("svc-b", RegisterOptions::default()).await.unwrap();
        let sc = on_c.register("svc-c", RegisterOptions::default()).await.unwrap();
        let all: BTreeSet<String> = [&sa, &sb, &sc].iter().map(|r| format!("{} {}", r.id, r.port)).collect();
        for hub in [&a, &b, &c] {
            wait_until("every hub to list all services", || services(hub) == all).await;
        }
        // B's client learns the other hubs from their records before B goes.
        on_b.query("seaport").await.unwrap();

        let b_record = format!(
            "seaport-{}",
            b.records()
                .iter()
                .find(|r| r.host == "127.0.0.1" && r.address() == b_addr)
                .map(|r| r.origin.to_string())
                .unwrap_or_default()
        );
        b.shutdown().await;
        wait_until("A and C to notice B is gone", || {
            [&a, &c].iter().all(|h| !h.records().iter().any(|r| r.id.as_str() == b_record))
        })
        .await;
        // A and C find each other through the hub records they learned, and B's client
        // moves to one of them and registers again with the same id and port.
        for hub in [&a, &c] {
            wait_until("every service back on every surviving hub", || services(hub) == all).await;
        }
        let found = match on_c.get_timeout("svc-a", WAIT).await {
            Ok(found) => found,
            Err(e) => panic!("{e}: C holds {:?}", services(&c)),
        };
        assert_eq!(found[0].port, sa.port);
        for x in [on_a, on_b, on_c] {
            x.close().await;
        }
        a.shutdown().await;
        c.shutdown().await;
    })
    .await;
}
