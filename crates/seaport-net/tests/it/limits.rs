//! Every per-connection limit of the hub, hit on purpose: the offender gets an error
//! naming the limit, and the other clients keep everything they had. (Connections,
//! frame size, subscriptions, the handshake deadline and the outgoing queue are hit in
//! `robustness`.)

use seaport_net::core::{ClientMessage, ErrorCode, HubMessage, Meta, Registration, Value};
use seaport_net::{ClientError, HubConfig, RegisterOptions};

use crate::util::*;

fn meta_of(bytes: usize) -> Meta {
    [("blob".to_string(), Value::from("m".repeat(bytes)))].into_iter().collect()
}

fn assert_rejected<T: std::fmt::Debug>(result: Result<T, ClientError>, code: ErrorCode, words: &[&str]) {
    match result {
        Err(ClientError::Rejected { code: c, message }) => {
            assert_eq!(c, code, "{message}");
            for w in words {
                assert!(message.contains(w), "{message:?} should say {w:?}");
            }
        }
        other => panic!("expected a {code:?} rejection, got {other:?}"),
    }
}

#[async_std::test]
async fn registrations_over_the_per_connection_limit_are_refused() {
    with_deadline(TEST_DEADLINE, async {
        let mut config = HubConfig::default();
        config.core.limits.max_registrations_per_session = 3;
        let (hub, addr) = start_hub(config).await;
        let greedy = client(&addr);
        let honest = client(&addr);
        let mine = honest.register("honest", RegisterOptions::default()).await.unwrap();
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(greedy.register("greedy", RegisterOptions::default()).await.unwrap());
        }
        let over = greedy.register("greedy", RegisterOptions::default()).await;
        assert_rejected(over, ErrorCode::TooManyRegistrations, &["3"]);
        assert_eq!(hub.records().iter().filter(|r| r.role.as_str() == "greedy").count(), 3);

        // Registering one it holds again is no new registration.
        let again =
            RegisterOptions { id: Some(held[0].id.to_string()), port: Some(held[0].port), ..Default::default() };
        greedy.register("greedy", again).await.unwrap();

        // The limit is per connection: the honest client is untouched and may go on.
        honest.register("honest", RegisterOptions::default()).await.unwrap();
        assert!(hub.records().iter().any(|r| r.id == mine.id));

        // Freeing one makes room.
        greedy.free(held[1].id.as_str()).await.unwrap();
        greedy.register("greedy", RegisterOptions::default()).await.unwrap();
        greedy.close().await;
        honest.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn metadata_over_the_hubs_limit_is_refused_on_register_and_update() {
    with_deadline(TEST_DEADLINE, async {
        let mut config = HubConfig::default();
        config.core.limits.meta.max_bytes = 1000;
        let (hub, addr) = start_hub(config).await;
        let c = client(&addr);
        let watcher = client(&addr);
        let mut watch = watcher.watch("svc").await.unwrap();

        let big = RegisterOptions { meta: meta_of(2000), ..Default::default() };
        assert_rejected(c.register("svc@1.0.0", big).await, ErrorCode::InvalidMeta, &["metadata", "1000"]);
        assert!(hub.records().iter().all(|r| r.role.as_str() != "svc"));

        let small = RegisterOptions { meta: meta_of(100), ..Default::default() };
        let r = c.register("svc@1.0.0", small).await.unwrap();
        assert_eq!(summary(&next_change(&mut watch).await), format!("+{}", r.id));
        assert_rejected(c.update(r.id.as_str(), meta_of(5000)).await, ErrorCode::InvalidMeta, &["metadata", "1000"]);
        // The record keeps its metadata, and the watcher saw no update.
        let on_hub = hub.records().into_iter().find(|x| x.id == r.id).unwrap();
        assert_eq!(on_hub.meta, meta_of(100));
        c.update(r.id.as_str(), meta_of(200)).await.unwrap();
        assert_eq!(summary(&next_change(&mut watch).await), format!("~{}", r.id));

        c.close().await;
        watcher.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn a_flood_of_registrations_is_rate_limited_and_costs_the_others_nothing() {
    with_deadline(TEST_DEADLINE, async {
        let mut config = HubConfig::default();
        // One request a second after a burst of 20: a flood of 300 is mostly refused
        // however fast or slow this machine is.
        config.core.limits.max_requests_per_second = 1;
        config.core.limits.max_request_burst = 20;
        config.core.limits.max_registrations_per_session = 10_000;
        let (hub, addr) = start_hub(config).await;
        let honest = client(&addr);
        let mine = honest.register("honest", RegisterOptions::default()).await.unwrap();

        let mut flood = Raw::connect(&addr).await;
        let mut bytes = Vec::new();
        for request in 1..=300 {
            let registration = Registration::from_name("flood@1.0.0");
            seaport_net::frame::encode_unsigned(&ClientMessage::Register { request, registration }, &mut bytes)
                .unwrap();
        }
        flood.send_bytes(&bytes).await;
        let (mut accepted, mut limited) = (0, 0);
        while accepted + limited < 300 {
            match flood.recv().await {
                HubMessage::Registered { .. } => accepted += 1,
                HubMessage::Rejected { code: ErrorCode::RateLimited, message, request: Some(_) } => {
                    assert!(message.contains("requests per second"), "{message}");
                    limited += 1;
                }
                HubMessage::Rejected { code, message, .. } => panic!("unexpected rejection {code:?}: {message}"),
                _ => {}
            }
        }
        assert!(accepted >= 20, "the burst is honoured: {accepted}");
        assert!(limited > 200, "most of the flood is refused: {limited} of 300");
        let flooded = hub.records().iter().filter(|r| r.role.as_str() == "flood").count();
        assert_eq!(flooded, accepted);

        // The honest client, on its own budget, goes on as if nothing happened.
        for _ in 0..10 {
            honest.register("honest", RegisterOptions::default()).await.unwrap();
        }
        assert!(honest.query("honest").await.unwrap().iter().any(|r| r.id == mine.id));
        // Heartbeats are free, so the flooder is still connected, and its budget refills.
        within("the flooder's budget to refill", async {
            loop {
                let request = flood.request_id();
                let registration = Registration::from_name("flood@1.0.0");
                flood.send(&ClientMessage::Register { request, registration }).await;
                match flood.reply(request).await {
                    HubMessage::Registered { .. } => break,
                    HubMessage::Rejected { code: ErrorCode::RateLimited, .. } => {
                        async_std::task::sleep(std::time::Duration::from_millis(100)).await
                    }
                    other => panic!("unexpected reply {other:?}"),
                }
            }
        })
        .await;
        honest.close().await;
        hub.shutdown().await;
    })
    .await;
}
