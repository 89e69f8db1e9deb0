//! node seaport `test/flaky_server.js`: clients keep their registrations across
//! a hub restart, with the same ids and ports.

use std::collections::BTreeSet;

use seaport_net::core::{Meta, Value};
use seaport_net::{HubConfig, RegisterOptions};

use crate::util::*;

/// What must survive a restart: id, name, host, port, metadata.
fn fingerprint(hub: &seaport_net::Hub) -> BTreeSet<String> {
    hub.records().iter().map(|r| format!("{} {} {}:{} {:?}", r.id, r.name(), r.host, r.port, r.meta)).collect()
}

#[async_std::test]
async fn registrations_come_back_with_the_same_ids_and_ports_after_a_hub_restart() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let a = client(&addr);
        let b = client(&addr);
        let meta: Meta = [("beep".to_string(), Value::from("boop"))].into_iter().collect();
        let web = a.register("web@1.2.3", RegisterOptions { meta, ..Default::default() }).await.unwrap();
        a.register("api", RegisterOptions::default()).await.unwrap();
        b.register("db@9.0.0", RegisterOptions { id: Some("db-primary".into()), ..Default::default() }).await.unwrap();
        b.register("cache", RegisterOptions { port: Some(6379), ..Default::default() }).await.unwrap();
        b.register("ranged", RegisterOptions { range: Some(30_000..=30_500), ..Default::default() }).await.unwrap();
        let before = fingerprint(&hub);
        assert_eq!(before.len(), 5);
        let watcher = client(&addr);
        assert_eq!(watcher.query("web").await.unwrap()[0].port, web.port);

        hub.shutdown().await;
        let hub = rebind_hub(&addr, HubConfig::default()).await;
        wait_until("every registration to come back unchanged", || fingerprint(&hub) == before).await;
        // Clients see them on the new hub too.
        let (w, web) = (&watcher, &web);
        eventually("the watcher to see web again", || async move {
            w.get("web").await.unwrap().iter().any(|r| r.id == web.id && r.port == web.port)
        })
        .await;
        let fresh = client(&addr);
        assert_eq!(fresh.query("*").await.unwrap().len(), 5);

        for c in [a, b, watcher, fresh] {
            c.close().await;
        }
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn a_client_closed_while_the_hub_is_down_does_not_come_back() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let ports0 = client(&addr);
        let ports1 = client(&addr);
        let woo = ports0.register("woo", RegisterOptions::default()).await.unwrap();
        let moo = ports1.register("moo", RegisterOptions::default()).await.unwrap();
        assert_eq!(ports0.query("woo").await.unwrap()[0].port, woo.port);
        assert_eq!(ports0.query("moo").await.unwrap()[0].port, moo.port);

        hub.shutdown().await;
        // Still known locally while no hub is up.
        assert_eq!(ports0.query("woo").await.unwrap()[0].port, woo.port);
        ports1.close().await;
        assert_eq!(ports0.query("moo").await.unwrap().len(), 1);

        let hub = rebind_hub(&addr, HubConfig::default()).await;
        let woo_only = vec![woo.id.to_string()];
        wait_until("the new hub to hold woo", || hub_ids(&hub) == woo_only).await;
        let p = &ports0;
        eventually("the client to forget moo", || async move { p.query("moo").await.unwrap().is_empty() }).await;
        assert_eq!(ports0.query("woo").await.unwrap()[0].port, woo.port);
        assert_eq!(hub_ids(&hub), woo_only);

        ports0.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn a_watcher_sees_the_difference_after_a_restart() {
    // Records freed while the hub was away arrive as frees after the resync.
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let watcher = client(&addr);
        let mut changes = watcher.watch("svc").await.unwrap();
        assert!(watcher.query("svc").await.unwrap().is_empty());
        let stays = client(&addr);
        let goes = client(&addr);
        let kept = stays.register("svc", RegisterOptions::default()).await.unwrap();
        let lost = goes.register("svc", RegisterOptions::default()).await.unwrap();
        let mut seen = vec![summary(&next_change(&mut changes).await), summary(&next_change(&mut changes).await)];
        seen.sort();
        let mut expected = vec![format!("+{}", kept.id), format!("+{}", lost.id)];
        expected.sort();
        assert_eq!(seen, expected);

        hub.shutdown().await;
        goes.close().await;
        let hub = rebind_hub(&addr, HubConfig::default()).await;
        // The only change the watcher may report is the loss (kept comes back unchanged,
        // unless the watcher resynced before its owner re-registered, then it returns).
        let freed = format!("-{}", lost.id);
        within("the free of the lost record", async {
            loop {
                let change = summary(&next_change(&mut changes).await);
                if change == freed {
                    break;
                }
                assert!(change.ends_with(kept.id.as_str()), "unexpected change {change}");
            }
        })
        .await;
        let kept_only = vec![kept.id.to_string()];
        wait_until("the new hub to hold only the kept record", || hub_ids(&hub) == kept_only).await;
        let w = &watcher;
        let k = kept_only.clone();
        eventually("the watcher to hold only the kept record", || {
            let k = k.clone();
            async move { ids(&w.query("svc").await.unwrap()) == k }
        })
        .await;

        watcher.close().await;
        stays.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn a_free_asked_while_the_hub_is_down_succeeds_once_reconnected() {
    // The record died with the connection; the free must not report it unknown.
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let c = client(&addr);
        let mut events = c.events().unwrap();
        let gone = c.register("gone", RegisterOptions::default()).await.unwrap();
        let kept = c.register("kept", RegisterOptions::default()).await.unwrap();
        hub.shutdown().await;
        within("the client to notice the hub is gone", async {
            while !matches!(next_client_event(&mut events).await, seaport_net::ClientEvent::Disconnected { .. }) {}
        })
        .await;
        let freeing = {
            let c = c.clone();
            let id = gone.id.to_string();
            async_std::task::spawn(async move { c.free(&id).await })
        };
        let hub = rebind_hub(&addr, HubConfig::default()).await;
        let result = within("the free to complete", freeing).await;
        assert_eq!(result, Ok(()), "free of the client's own record, asked while disconnected");
        let kept_only = vec![kept.id.to_string()];
        wait_until("only the kept record on the new hub", || hub_ids(&hub) == kept_only).await;
        c.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn registrations_move_to_a_learned_hub_when_theirs_goes_away() {
    // node seaport `test/multi.js`: a record of role `seaport` names another hub; when
    // the first hub dies, clients move there with their registrations.
    with_deadline(TEST_DEADLINE, async {
        let (hub0, addr0) = start_hub(HubConfig::default()).await;
        let (hub1, _) = start_hub(HubConfig::default()).await;
        let announcer = client(&addr0);
        let port1 = hub1.local_addr().port();
        announcer
            .register(seaport_net::HUB_ROLE, RegisterOptions { port: Some(port1), ..Default::default() })
            .await
            .unwrap();

        let ports = client(&addr0);
        let woo = ports.register("woo", RegisterOptions::default()).await.unwrap();
        let p = &ports;
        eventually("the client to learn the second hub", || async move {
            p.query(seaport_net::HUB_ROLE).await.unwrap().iter().any(|r| r.port == port1)
        })
        .await;
        assert_eq!(hub_ids(&hub0).len(), 2);

        hub0.shutdown().await;
        let w = (woo.id.clone(), woo.port);
        wait_until("woo to move to the second hub", || hub1.records().iter().any(|r| (r.id.clone(), r.port) == w))
            .await;
        let moo = ports.register("moo", RegisterOptions::default()).await.unwrap();
        assert!(hub1.records().iter().any(|r| r.id == moo.id));
        assert_eq!(ports.query("moo").await.unwrap()[0].port, moo.port);

        ports.close().await;
        announcer.close().await;
        hub1.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn a_refused_update_does_not_change_what_is_registered_again_after_a_restart() {
    // Metadata over the 64 KiB limit is refused (by the client, before the hub sees it);
    // the record keeps its old metadata, and must come back with it after a reconnect.
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let c = client(&addr);
        let mut events = c.events().unwrap();
        let meta: Meta = [("v".to_string(), Value::Int(1))].into_iter().collect();
        let r = c.register("svc", RegisterOptions { meta: meta.clone(), ..Default::default() }).await.unwrap();
        let too_big: Meta = [("blob".to_string(), Value::from("q".repeat(100_000)))].into_iter().collect();
        match c.update(r.id.as_str(), too_big).await {
            Err(seaport_net::ClientError::InvalidMeta(_)) => {}
            other => panic!("expected InvalidMeta, got {other:?}"),
        }
        assert_eq!(hub.records()[0].meta, meta);

        hub.shutdown().await;
        let hub = rebind_hub(&addr, HubConfig::default()).await;
        let want = (r.id.clone(), r.port, meta.clone());
        let lost = within("the record to come back (or be reported lost)", async {
            loop {
                if hub.records().iter().any(|x| (x.id.clone(), x.port, x.meta.clone()) == want) {
                    return None;
                }
                let next = async_std::future::timeout(
                    std::time::Duration::from_millis(10),
                    futures::StreamExt::next(&mut events),
                );
                if let Ok(Some(seaport_net::ClientEvent::RegistrationLost { message, .. })) = next.await {
                    return Some(message);
                }
            }
        })
        .await;
        assert_eq!(lost, None, "the registration was lost after the restart");
        c.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn a_record_freed_by_the_hub_is_not_registered_again_after_a_restart() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let c = client(&addr);
        let mut events = c.events().unwrap();
        // Registered again in id order after a reconnect: "b-kept" comes after "a-gone".
        let gone =
            c.register("gone", RegisterOptions { id: Some("a-gone".into()), ..Default::default() }).await.unwrap();
        let kept =
            c.register("kept", RegisterOptions { id: Some("b-kept".into()), ..Default::default() }).await.unwrap();
        hub.free(gone.id.as_str()).unwrap();
        within("the owner to hear of the free", async {
            loop {
                if let seaport_net::ClientEvent::RegistrationFreed { id } = next_client_event(&mut events).await {
                    assert_eq!(id, "a-gone");
                    break;
                }
            }
        })
        .await;
        hub.shutdown().await;
        let hub = rebind_hub(&addr, HubConfig::default()).await;
        wait_until("the kept record to come back", || hub.records().iter().any(|r| r.id == kept.id)).await;
        assert_eq!(hub_ids(&hub), vec!["b-kept".to_string()]);
        c.close().await;
        hub.shutdown().await;
    })
    .await;
}
