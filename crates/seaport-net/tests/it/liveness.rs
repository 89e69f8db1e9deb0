//! Registrations live exactly as long as the connection that made them
//! (node seaport's killed-client test), and leases expire.

use std::time::Duration;

use seaport_net::core::{CloseReason, Event, FreeReason, HubMessage};
use seaport_net::{ClientConfig, HubConfig, RegisterOptions};

use crate::util::*;

#[async_std::test]
async fn a_killed_clients_records_are_freed() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let watcher = client(&addr);
        let mut changes = watcher.watch("*").await.unwrap();
        assert!(watcher.query("*").await.unwrap().is_empty());
        let survivor = client(&addr);
        let kept = survivor.register("kept", RegisterOptions::default()).await.unwrap();
        assert_eq!(summary(&next_change(&mut changes).await), format!("+{}", kept.id));

        // A process that registers and is killed: its socket just goes away.
        let mut raw = Raw::connect(&addr).await;
        assert_eq!(raw.host, "127.0.0.1");
        let a = raw.register("doomed@1.0.0").await;
        let b = raw.register("doomed@1.0.1").await;
        assert_eq!(summary(&next_change(&mut changes).await), format!("+{}", a.id));
        assert_eq!(summary(&next_change(&mut changes).await), format!("+{}", b.id));
        drop(raw);

        let mut freed = vec![summary(&next_change(&mut changes).await), summary(&next_change(&mut changes).await)];
        freed.sort();
        let mut expected = vec![format!("-{}", a.id), format!("-{}", b.id)];
        expected.sort();
        assert_eq!(freed, expected);
        assert_eq!(hub_ids(&hub), vec![kept.id.to_string()]);

        watcher.close().await;
        survivor.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn closing_a_client_frees_its_records_at_once() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let watcher = client(&addr);
        let mut changes = watcher.watch("svc").await.unwrap();
        assert!(watcher.query("svc").await.unwrap().is_empty());
        let service = client(&addr);
        let mut expected = Vec::new();
        for _ in 0..3 {
            let r = service.register("svc", RegisterOptions::default()).await.unwrap();
            assert_eq!(summary(&next_change(&mut changes).await), format!("+{}", r.id));
            expected.push(format!("-{}", r.id));
        }
        service.close().await;
        let mut freed = Vec::new();
        for _ in 0..3 {
            freed.push(summary(&next_change(&mut changes).await));
        }
        freed.sort();
        expected.sort();
        assert_eq!(freed, expected);
        assert!(hub.records().is_empty());
        wait_until("the closed client's connection to be gone", || hub.connection_count() == 1).await;

        // A closed client refuses further calls.
        assert!(service.register("svc", RegisterOptions::default()).await.is_err());

        watcher.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn a_silent_client_is_expired_and_its_socket_closed() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(short_leases()).await;
        let mut events = hub.events();
        // A well-behaved client beside it keeps its records (it heartbeats often).
        let honest = client_with(&addr, ClientConfig { heartbeat: Some(Duration::from_millis(20)), ..client_config() });
        let kept = honest.register("kept", RegisterOptions::default()).await.unwrap();

        // Handshake, register, then never send again while keeping the socket open.
        let mut raw = Raw::connect(&addr).await;
        let r = raw.register("quiet").await;
        let session = hub_event(&mut events, "the silent client's registration", |e| match e {
            Event::Registered { session, record } if record.id == r.id => Some(*session),
            _ => None,
        })
        .await
        .expect("registered by a session");

        hub_event(&mut events, "the silent client's session to expire", |e| match e {
            Event::SessionClosed { session: s, reason } if *s == session => {
                assert_eq!(*reason, CloseReason::Expired);
                Some(())
            }
            Event::Freed { record, reason, .. } if record.id == r.id => {
                assert_eq!(*reason, FreeReason::OwnerGone);
                None
            }
            _ => None,
        })
        .await;
        assert!(hub.records().iter().all(|rec| rec.id != r.id));

        // The hub closed the socket: only heartbeats (if anything) came before the end.
        let seen = raw.closed_by_hub().await;
        assert!(seen.iter().all(|m| matches!(m, HubMessage::Heartbeat)), "{seen:?}");

        // The honest client is still there (had a stall expired it, it registers again).
        let kept_id = vec![kept.id.to_string()];
        wait_until("only the honest record to remain", || hub_ids(&hub) == kept_id).await;
        honest.close().await;
        hub.shutdown().await;
    })
    .await;
}
