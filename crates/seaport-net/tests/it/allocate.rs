//! node seaport `test/alloc.js`: the hub assigns ports.

use std::collections::BTreeSet;

use seaport_net::core::{ErrorCode, DEFAULT_PORT_RANGE};
use seaport_net::{ClientConfig, ClientError, HubConfig, RegisterOptions};

use crate::util::*;

#[async_std::test]
async fn registrations_get_distinct_ports_in_the_default_range() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let ports = client(&addr);
        let a = ports.register("http", RegisterOptions::default()).await.unwrap();
        let b = ports.register("http", RegisterOptions::default()).await.unwrap();
        for r in [&a, &b] {
            assert!(DEFAULT_PORT_RANGE.contains(&r.port), "port {} outside {DEFAULT_PORT_RANGE:?}", r.port);
            assert_eq!(r.host, "127.0.0.1");
            assert_eq!(r.role.as_str(), "http");
            assert_eq!(r.version, None);
        }
        assert_ne!(a.port, b.port);
        assert_ne!(a.id, b.id);

        let found = ports.query("http").await.unwrap();
        assert_eq!(ids(&found), ids(&[a.clone(), b.clone()]));
        let by_id = |id: &str| found.iter().find(|r| r.id.as_str() == id).unwrap().port;
        assert_eq!(by_id(a.id.as_str()), a.port);
        assert_eq!(by_id(b.id.as_str()), b.port);

        // Another client sees both as well, and so does the hub.
        let other = client(&addr);
        assert_eq!(ids(&other.query("http").await.unwrap()), ids(&found));
        assert_eq!(hub_ids(&hub), ids(&found));

        ports.close().await;
        other.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn many_registrations_never_share_a_port() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let ports = client(&addr);
        let mut seen = BTreeSet::new();
        for _ in 0..100 {
            let r = ports.register("svc", RegisterOptions::default()).await.unwrap();
            assert!(DEFAULT_PORT_RANGE.contains(&r.port));
            assert!(seen.insert(r.port), "port {} assigned twice", r.port);
        }
        assert_eq!(ports.query("svc").await.unwrap().len(), 100);
        ports.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn a_freed_port_can_be_registered_again_explicitly() {
    // alloc.js: the first client closes, a new one registers the same port by number.
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let mut events = hub.events();
        let first = client(&addr);
        let got = first.register("http", RegisterOptions::default()).await.unwrap();
        first.close().await;
        hub_event(&mut events, "the first registration to be freed", |e| match e {
            seaport_net::core::Event::Freed { record, .. } if record.id == got.id => Some(()),
            _ => None,
        })
        .await;

        let second = client(&addr);
        let again =
            second.register("http", RegisterOptions { port: Some(got.port), ..Default::default() }).await.unwrap();
        assert_eq!(again.port, got.port);
        assert_ne!(again.id, got.id);
        assert_eq!(ids(&hub.records()), vec![again.id.to_string()]);
        second.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn a_requested_range_is_honoured_until_it_is_full() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        // No local bind check: the test is about the hub's assignment alone.
        let ports = client_with(&addr, ClientConfig { check_local_ports: false, ..client_config() });
        let range = 31_000..=31_002;
        let mut seen = BTreeSet::new();
        for _ in 0..3 {
            let r = ports.register("small", RegisterOptions { range: Some(range.clone()), ..Default::default() });
            let r = r.await.unwrap();
            assert!(range.contains(&r.port), "port {} outside {range:?}", r.port);
            assert!(seen.insert(r.port));
        }
        let full = ports.register("small", RegisterOptions { range: Some(range.clone()), ..Default::default() }).await;
        match full {
            Err(ClientError::Rejected { code: ErrorCode::PortRangeExhausted, .. }) => {}
            other => panic!("expected PortRangeExhausted, got {other:?}"),
        }
        assert_eq!(hub.records().len(), 3);
        ports.close().await;
        hub.shutdown().await;
    })
    .await;
}
