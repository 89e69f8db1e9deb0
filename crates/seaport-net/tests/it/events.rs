//! Client connection events.

use seaport_net::{ClientEvent, HubConfig};

use crate::util::*;

#[async_std::test]
async fn connected_and_host_learned_then_disconnected_and_connected_across_a_restart() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let c = client(&addr);
        let mut events = c.events().unwrap();
        let mut first = vec![next_client_event(&mut events).await, next_client_event(&mut events).await];
        first.sort_by_key(|e| format!("{e:?}"));
        let mut expected =
            vec![ClientEvent::Connected { hub: addr.clone() }, ClientEvent::HostLearned { host: "127.0.0.1".into() }];
        expected.sort_by_key(|e| format!("{e:?}"));
        assert_eq!(first, expected);

        hub.shutdown().await;
        match next_client_event(&mut events).await {
            ClientEvent::Disconnected { hub, reason } => {
                assert_eq!(hub, addr);
                assert!(!reason.is_empty());
            }
            other => panic!("expected Disconnected, got {other:?}"),
        }
        let hub = rebind_hub(&addr, HubConfig::default()).await;
        // Same host as before: no new HostLearned, just Connected.
        assert_eq!(next_client_event(&mut events).await, ClientEvent::Connected { hub: addr.clone() });

        // A second subscriber to events sees later events only.
        let mut late = c.events().unwrap();
        c.close().await;
        assert!(within("the event stream to end on close", futures::StreamExt::next(&mut late)).await.is_none());
        hub.shutdown().await;
    })
    .await;
}
