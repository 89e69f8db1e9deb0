//! node seaport `test/authorized.js`, `rejected.js`, `missing_key.js`,
//! `no_key_provided.js`; and replay protection of signed frames.

use seaport_net::auth::Signer;
use seaport_net::core::{ClientMessage, ErrorCode, Event, HubMessage, Meta, Registration};
use seaport_net::{ClientConfig, ClientError, HubConfig, KeyPair, RegisterOptions};

use crate::util::*;

fn keyed(key: &KeyPair) -> ClientConfig {
    ClientConfig { key: Some(key.clone()), ..client_config() }
}

fn assert_unauthorized<T: std::fmt::Debug>(result: Result<T, ClientError>, what: &str) {
    match result {
        Err(ClientError::Rejected { code: ErrorCode::Unauthorized, .. }) => {}
        other => panic!("{what}: expected Rejected Unauthorized, got {other:?}"),
    }
}

#[async_std::test]
async fn only_authorized_keys_may_register() {
    with_deadline(TEST_DEADLINE, async {
        let good = KeyPair::generate();
        let other = KeyPair::generate();
        let (hub, addr) = start_hub(HubConfig { authorized: vec![good.public()], ..HubConfig::default() }).await;
        let mut events = hub.events();

        let allowed = client_with(&addr, keyed(&good));
        let r = allowed.register("http", RegisterOptions::default()).await.unwrap();
        assert_eq!(r.host, "127.0.0.1");
        hub_event(&mut events, "the authorized registration", |e| match e {
            Event::Registered { record, .. } if record.id == r.id => Some(()),
            _ => None,
        })
        .await;

        let stranger = client_with(&addr, keyed(&other));
        assert_unauthorized(stranger.register("http", RegisterOptions::default()).await, "another key");
        hub_event(&mut events, "the hub's reject event", |e| match e {
            Event::Rejected { code: ErrorCode::Unauthorized, .. } => Some(()),
            _ => None,
        })
        .await;
        let unsigned = client(&addr);
        assert_unauthorized(unsigned.register("http", RegisterOptions::default()).await, "no key");
        assert_eq!(hub_ids(&hub), vec![r.id.to_string()], "nothing but the authorized registration");

        // Queries need no key.
        assert_eq!(ids(&unsigned.query("http").await.unwrap()), vec![r.id.to_string()]);
        assert_eq!(ids(&stranger.query("http").await.unwrap()), vec![r.id.to_string()]);

        // Nor may they change the authorized record.
        assert_unauthorized(unsigned.free(r.id.as_str()).await, "unsigned free");
        assert_unauthorized(stranger.free(r.id.as_str()).await, "free with another key");
        assert_unauthorized(stranger.update(r.id.as_str(), Meta::new()).await, "update with another key");
        assert_unauthorized(unsigned.update(r.id.as_str(), Meta::new()).await, "unsigned update");
        assert_eq!(hub_ids(&hub), vec![r.id.to_string()]);

        // The owner may.
        allowed.update(r.id.as_str(), Meta::new()).await.unwrap();
        allowed.free(r.id.as_str()).await.unwrap();
        assert!(hub.records().is_empty());

        allowed.close().await;
        stranger.close().await;
        unsigned.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn authorizing_a_key_at_run_time() {
    with_deadline(TEST_DEADLINE, async {
        let first = KeyPair::generate();
        let later = KeyPair::generate();
        let (hub, addr) = start_hub(HubConfig { authorized: vec![first.public()], ..HubConfig::default() }).await;
        let c = client_with(&addr, keyed(&later));
        assert_unauthorized(c.register("late", RegisterOptions::default()).await, "before authorize");
        hub.authorize(&later.public());
        let r = c.register("late", RegisterOptions::default()).await.unwrap();
        assert_eq!(hub_ids(&hub), vec![r.id.to_string()]);
        c.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn revoking_keys_at_run_time_never_reopens_the_hub() {
    with_deadline(TEST_DEADLINE, async {
        let only = KeyPair::generate();
        let (hub, addr) = start_hub(HubConfig { authorized: vec![only.public()], ..HubConfig::default() }).await;
        let c = client_with(&addr, keyed(&only));
        let kept = c.register("svc", RegisterOptions::default()).await.unwrap();
        hub.revoke(&only.public());
        assert_unauthorized(c.register("svc", RegisterOptions::default()).await, "after revoke");
        let unsigned = client(&addr);
        assert_unauthorized(unsigned.register("svc", RegisterOptions::default()).await, "unsigned, no key left");
        // What the key registered stays until it is freed or its connection ends.
        assert_eq!(hub_ids(&hub), vec![kept.id.to_string()]);
        c.close().await;
        unsigned.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn a_replayed_signed_frame_is_refused() {
    with_deadline(TEST_DEADLINE, async {
        let key = KeyPair::generate();
        let (hub, addr) = start_hub(HubConfig { authorized: vec![key.public()], ..HubConfig::default() }).await;
        let mut raw = Raw::connect(&addr).await;
        let mut signer = Signer::new(key.clone(), raw.nonce);
        let register =
            |request| ClientMessage::Register { request, registration: Registration::from_name("signed@1.0.0") };

        let captured = raw.send_signed(&register(1), &mut signer).await;
        assert_eq!(signer.next_seq(), 2);
        let first = raw.expect_registered(1).await;

        // The same bytes again on the same connection: an old sequence number.
        raw.send_bytes(&captured).await;
        let (request, code, message) = raw.next_rejection().await;
        assert_eq!((request, code), (None, ErrorCode::Unauthorized), "{message}");
        assert!(message.contains("replay"), "the refusal should say it is a replay: {message}");
        assert_eq!(hub_ids(&hub), vec![first.id.to_string()]);

        // The connection stays usable: the next sequence number is accepted.
        raw.send_signed(&register(2), &mut signer).await;
        let second = raw.expect_registered(2).await;
        assert_eq!(hub_ids(&hub), ids(&[first.clone(), second.clone()]));

        // A tampered frame fails its signature.
        let mut tampered = Vec::new();
        seaport_net::frame::encode_signed(&register(3), &mut signer, &mut tampered).unwrap();
        let last = tampered.len() - 1;
        tampered[last] ^= 0x01;
        raw.send_bytes(&tampered).await;
        let (_, code, message) = raw.next_rejection().await;
        assert_eq!(code, ErrorCode::Unauthorized, "{message}");
        assert_eq!(hub.records().len(), 2);

        // The captured frame on a new connection (another nonce) is worthless.
        let mut other = Raw::connect(&addr).await;
        assert_ne!(other.nonce, raw.nonce);
        other.send_bytes(&captured).await;
        match other.recv().await {
            HubMessage::Rejected { code: ErrorCode::Unauthorized, .. } => {}
            reply => panic!("the captured frame on another connection got {reply:?}"),
        }
        assert_eq!(hub_ids(&hub), ids(&[first, second]));

        // And the new connection works with its own signer.
        let mut own = Signer::new(key.clone(), other.nonce);
        other.send_signed(&register(1), &mut own).await;
        other.expect_registered(1).await;
        assert_eq!(hub.records().len(), 3);

        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn signed_registrations_come_back_after_a_keyed_hub_restarts() {
    // Each connection has its own nonce: the client must sign afresh after reconnecting.
    with_deadline(TEST_DEADLINE, async {
        let key = KeyPair::generate();
        let config = HubConfig { authorized: vec![key.public()], ..HubConfig::default() };
        let (hub, addr) = start_hub(config.clone()).await;
        let c = client_with(&addr, keyed(&key));
        let r = c.register("signed", RegisterOptions::default()).await.unwrap();
        hub.shutdown().await;
        let hub = crate::util::rebind_hub(&addr, config).await;
        let want = (r.id.clone(), r.port);
        wait_until("the signed registration to come back", || {
            hub.records().iter().any(|x| (x.id.clone(), x.port) == want)
        })
        .await;
        // And the owner may still change it.
        c.update(r.id.as_str(), Meta::new()).await.unwrap();
        c.free(r.id.as_str()).await.unwrap();
        assert!(hub.records().is_empty());
        c.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn the_hubs_own_key_may_change_any_record() {
    with_deadline(TEST_DEADLINE, async {
        let admin = KeyPair::generate();
        let member = KeyPair::generate();
        let config = HubConfig { key: Some(admin.clone()), authorized: vec![member.public()], ..HubConfig::default() };
        let (hub, addr) = start_hub(config).await;
        let owner = client_with(&addr, keyed(&member));
        let r = owner.register("svc", RegisterOptions::default()).await.unwrap();
        let operator = client_with(&addr, keyed(&admin));
        operator.update(r.id.as_str(), Meta::new()).await.unwrap();
        operator.free(r.id.as_str()).await.unwrap();
        assert!(hub.records().is_empty());
        // It may register too.
        operator.register("ops", RegisterOptions::default()).await.unwrap();
        owner.close().await;
        operator.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn a_registration_refused_after_a_restart_is_reported_as_lost() {
    with_deadline(TEST_DEADLINE, async {
        let old_key = KeyPair::generate();
        let (hub, addr) = start_hub(HubConfig { authorized: vec![old_key.public()], ..HubConfig::default() }).await;
        let c = client_with(&addr, keyed(&old_key));
        let mut events = c.events().unwrap();
        let r = c.register("svc", RegisterOptions::default()).await.unwrap();
        hub.shutdown().await;
        // The new hub no longer trusts the key.
        let other = KeyPair::generate();
        let hub =
            crate::util::rebind_hub(&addr, HubConfig { authorized: vec![other.public()], ..HubConfig::default() })
                .await;
        let (id, code) = within("the registration to be reported lost", async {
            loop {
                if let seaport_net::ClientEvent::RegistrationLost { id, code, .. } =
                    next_client_event(&mut events).await
                {
                    return (id, code);
                }
            }
        })
        .await;
        assert_eq!((id, code), (r.id.to_string(), ErrorCode::Unauthorized));
        assert!(hub.records().is_empty());
        c.close().await;
        hub.shutdown().await;
    })
    .await;
}
