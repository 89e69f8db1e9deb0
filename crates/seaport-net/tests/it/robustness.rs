//! Hostile and broken peers: garbage, oversized and truncated frames, slow
//! readers, silent connections, too many connections. None of them may cost
//! an honest client anything.

use std::time::Duration;

use futures::AsyncWriteExt;
use seaport_net::core::{ClientMessage, ErrorCode, Event, Meta, Registration, Value};
use seaport_net::frame::{self, encode_unsigned, MAGIC, PREAMBLE_LEN};
use seaport_net::{HubConfig, RegisterOptions};

use crate::util::*;

fn the_preamble() -> [u8; PREAMBLE_LEN] {
    let mut bytes = Vec::new();
    frame::write_preamble(frame::PROTOCOL_VERSION, &mut bytes);
    bytes.try_into().unwrap()
}

#[async_std::test]
async fn garbage_oversized_and_truncated_frames_leave_other_clients_intact() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let honest = client(&addr);
        let mut expected = Vec::new();
        for _ in 0..3 {
            expected.push(honest.register("honest", RegisterOptions::default()).await.unwrap().id.to_string());
        }
        expected.sort();
        assert_intact(&hub, &honest, &expected).await;

        // (a) Bytes that are not a preamble: the hub answers with its own preamble and a
        // Malformed refusal, then closes.
        let (preamble, _, messages) = refused(&addr, Some(b"GET / HTTP/1")).await;
        assert_eq!(preamble, the_preamble());
        let refusals = rejections(&messages);
        assert_eq!(refusals.len(), 1, "{messages:?}");
        assert_eq!((refusals[0].0, refusals[0].1), (None, ErrorCode::Malformed));
        assert_intact(&hub, &honest, &expected).await;

        // (a') Lots of random bytes: closed (possibly reset, with bytes left unread).
        let mut noise: Vec<u8> = (0..8192).map(|_| rand::random::<u8>()).collect();
        noise[0] = b'#';
        let mut stream = tcp(&addr).await;
        let _ = stream.write_all(&noise).await;
        drain_until_closed(&mut stream).await;
        assert_intact(&hub, &honest, &expected).await;

        // (a'') The node seaport protocol (JSON lines) is refused the same way.
        let mut stream = tcp(&addr).await;
        stream.write_all(b"[\"register\",{}]\n").await.unwrap();
        drain_until_closed(&mut stream).await;

        // (a''') A protocol version this hub does not speak.
        let mut future = Vec::new();
        frame::write_preamble(99, &mut future);
        let (_, _, messages) = refused(&addr, Some(&future)).await;
        let refusals = rejections(&messages);
        assert_eq!(refusals.len(), 1, "{messages:?}");
        assert_eq!(refusals[0].1, ErrorCode::Malformed);
        assert!(refusals[0].2.contains("99"), "{}", refusals[0].2);
        assert_intact(&hub, &honest, &expected).await;

        // (b) A valid preamble, then a 4 GiB length prefix: refused from the prefix alone.
        let mut raw = Raw::connect(&addr).await;
        raw.send_bytes(&[0xff; 4]).await;
        let messages = raw.closed_by_hub().await;
        assert_eq!(rejections(&messages).first().map(|r| r.1), Some(ErrorCode::Malformed), "{messages:?}");
        assert_intact(&hub, &honest, &expected).await;

        // (c) A frame cut off in the middle of its body, then the end of the stream.
        let mut raw = Raw::connect(&addr).await;
        let mut whole = Vec::new();
        let registration = Registration::from_name("cut@1.0.0");
        encode_unsigned(&ClientMessage::Register { request: 1, registration }, &mut whole).unwrap();
        raw.send_bytes(&whole[..whole.len() / 2]).await;
        raw.stream.shutdown(std::net::Shutdown::Write).unwrap();
        let messages = raw.closed_by_hub().await;
        assert_eq!(rejections(&messages).first().map(|r| r.1), Some(ErrorCode::Malformed), "{messages:?}");
        assert!(hub.records().iter().all(|r| r.role.as_str() != "cut"));
        assert_intact(&hub, &honest, &expected).await;

        // (c') An unknown frame kind: the stream cannot be trusted any more, closed.
        let mut raw = Raw::connect(&addr).await;
        raw.send_bytes(&[0, 0, 0, 2, 7, 0]).await;
        raw.closed_by_hub().await;
        assert_intact(&hub, &honest, &expected).await;

        // (d) Well-framed bodies that are not client messages: refused, and the
        // connection stays usable.
        let mut raw = Raw::connect(&addr).await;
        raw.send_bytes(&[0, 0, 0, 4, 0, 0xff, 0xff, 0xff]).await;
        let (request, code, message) = raw.next_rejection().await;
        assert_eq!((request, code), (None, ErrorCode::Malformed), "{message}");
        let mut not_a_message = Vec::new();
        encode_unsigned("hello, hub", &mut not_a_message).unwrap();
        raw.send_bytes(&not_a_message).await;
        let (_, code, _) = raw.next_rejection().await;
        assert_eq!(code, ErrorCode::Malformed);
        let mut trailing = Vec::new();
        encode_unsigned(&ClientMessage::Heartbeat, &mut trailing).unwrap();
        trailing[3] += 1;
        trailing.push(0);
        raw.send_bytes(&trailing).await;
        let (_, code, _) = raw.next_rejection().await;
        assert_eq!(code, ErrorCode::Malformed);
        let after = raw.register("after-junk").await;
        assert!(hub.records().iter().any(|r| r.id == after.id));
        assert_eq!(ids(&raw.subscribe(1, "honest").await), expected);
        assert_intact(&hub, &honest, &expected).await;
        drop(raw);

        // New registrations still work.
        let more = honest.register("honest", RegisterOptions::default()).await.unwrap();
        expected.push(more.id.to_string());
        expected.sort();
        assert_intact(&hub, &honest, &expected).await;

        honest.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn a_slow_reader_is_dropped_and_the_others_carry_on() {
    slow_reader_is_dropped(HubConfig { outgoing_queue: 16, ..HubConfig::default() }).await;
}

#[async_std::test]
async fn a_slow_reader_is_dropped_by_the_bytes_it_leaves_queued() {
    // A queue of many messages, but few bytes: the bytes bound it.
    slow_reader_is_dropped(HubConfig { outgoing_queue: 100_000, outgoing_bytes: 512 * 1024, ..HubConfig::default() })
        .await;
}

/// A connection that subscribes to everything and never reads is dropped once its
/// queue (of `config`) fills, and everyone else carries on.
async fn slow_reader_is_dropped(config: HubConfig) {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(config).await;
        let mut events = hub.events();
        let watcher = client(&addr);
        let mut big_changes = watcher.watch("big").await.unwrap();
        assert!(watcher.query("big").await.unwrap().is_empty());

        // The slow reader owns a record (to tell when it is dropped), subscribes to
        // everything, then never reads again.
        let mut slow = Raw::connect(&addr).await;
        let marker = slow.register("marker").await;
        let slow_session = hub_event(&mut events, "the marker registration", |e| match e {
            Event::Registered { session, record } if record.id == marker.id => Some(*session),
            _ => None,
        })
        .await
        .expect("a session");
        slow.subscribe(1, "*").await;
        let mut slow_stream = slow.stream.clone();

        let service = client(&addr);
        let meta: Meta = [("blob".to_string(), Value::from("x".repeat(60_000)))].into_iter().collect();
        let options = RegisterOptions { meta, ..Default::default() };
        let mut registered = Vec::new();
        while hub.records().iter().any(|r| r.id == marker.id) {
            assert!(registered.len() < 1000, "the slow reader was never dropped");
            registered.push(service.register("big", options.clone()).await.unwrap().id.to_string());
        }
        hub_event(&mut events, "the slow reader's session to close", |e| match e {
            Event::SessionClosed { session, .. } if *session == slow_session => Some(()),
            _ => None,
        })
        .await;

        // The hub closed the slow reader's socket: reading ends after what was buffered.
        let received = drain_until_closed(&mut slow_stream).await;
        drop(slow);
        assert!(received > 0);

        // Everyone else carries on: every record is there, and the watcher saw each one.
        let last = service.register("big", options.clone()).await.unwrap();
        registered.push(last.id.to_string());
        registered.sort();
        let on_hub = {
            let mut v: Vec<String> =
                hub.records().iter().filter(|r| r.role.as_str() == "big").map(|r| r.id.to_string()).collect();
            v.sort();
            v
        };
        assert_eq!(on_hub, registered);
        let mut seen = std::collections::BTreeSet::new();
        within("the watcher to see every registration", async {
            while seen.len() < registered.len() {
                let change = next_change(&mut big_changes).await;
                if let seaport_net::core::Change::Register(r) = change {
                    seen.insert(r.id.to_string());
                }
            }
        })
        .await;
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), registered);
        assert_eq!(ids(&watcher.query("big").await.unwrap()), registered);

        watcher.close().await;
        service.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_handshake_deadline() {
    with_deadline(TEST_DEADLINE, async {
        let config = HubConfig { handshake_timeout: Duration::from_millis(200), ..HubConfig::default() };
        let (hub, addr) = start_hub(config).await;
        let honest = client(&addr);
        let r = honest.register("honest", RegisterOptions::default()).await.unwrap();

        // Nothing at all.
        let (preamble, _, messages) = refused(&addr, Some(&[])).await;
        assert_eq!(preamble, the_preamble());
        let refusals = rejections(&messages);
        assert_eq!(refusals.len(), 1, "{messages:?}");
        assert_eq!(refusals[0].1, ErrorCode::Closing);

        // Half a preamble.
        let (_, _, messages) = refused(&addr, Some(&MAGIC[..5])).await;
        assert_eq!(rejections(&messages).len(), 1, "{messages:?}");

        assert_eq!(hub_ids(&hub), vec![r.id.to_string()]);
        honest.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn connections_over_the_limit_are_refused_and_the_others_keep_working() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig { max_connections: 2, ..HubConfig::default() }).await;
        let a = client(&addr);
        let b = client(&addr);
        let ra = a.register("svc", RegisterOptions::default()).await.unwrap();
        assert!(b.query("nothing").await.unwrap().is_empty());
        assert_eq!(hub.connection_count(), 2);

        let (preamble, nonce, messages) = refused(&addr, None).await;
        assert_eq!(preamble, the_preamble());
        assert_eq!(nonce, [0; 32], "a refused connection gets no real nonce");
        let refusals = rejections(&messages);
        assert_eq!(refusals.len(), 1, "{messages:?}");
        assert_eq!(refusals[0].1, ErrorCode::TooManyConnections);
        assert_eq!(hub.connection_count(), 2);

        // The first two keep working.
        let rb = b.register("svc", RegisterOptions::default()).await.unwrap();
        let b_ = &b;
        let expected = ids(&[ra.clone(), rb.clone()]);
        eventually("both clients to see both records", || {
            let expected = expected.clone();
            async move { ids(&b_.query("svc").await.unwrap()) == expected }
        })
        .await;
        assert_eq!(ids(&a.query("svc").await.unwrap()), expected);

        // A slot frees up when one leaves.
        a.close().await;
        wait_until("the closed client's slot to free up", || hub.connection_count() == 1).await;
        let mut raw = Raw::connect(&addr).await;
        assert_eq!(ids(&raw.subscribe(1, "svc").await), vec![rb.id.to_string()]);
        assert_eq!(hub.connection_count(), 2);
        b.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn a_late_subscriber_gets_the_snapshot_of_records_with_big_metadata() {
    // Metadata up to the hub's limit (64 KiB) is valid; a snapshot of many such
    // records must still reach a client whose frame limit is 1 MiB.
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let service = client(&addr);
        let meta: Meta = [("blob".to_string(), Value::from("y".repeat(60_000)))].into_iter().collect();
        let mut registered = Vec::new();
        for _ in 0..40 {
            let r = service.register("bulky", RegisterOptions { meta: meta.clone(), ..Default::default() });
            registered.push(r.await.unwrap().id.to_string());
        }
        registered.sort();
        let late = client(&addr);
        let found = within("a late query of 40 records of 60 KB each", late.query("bulky")).await.unwrap();
        assert_eq!(ids(&found), registered);
        late.close().await;
        service.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn a_query_over_the_subscription_limit_fails_instead_of_hanging() {
    with_deadline(TEST_DEADLINE, async {
        let mut config = HubConfig::default();
        config.core.limits.max_subscriptions_per_session = 3;
        let (hub, addr) = start_hub(config).await;
        let c = client(&addr);
        let (mut answered, mut refused) = (0, 0);
        for i in 0..5 {
            let pattern = format!("role{i}");
            match within(&format!("the query of {pattern}"), c.query(&pattern)).await {
                Ok(_) => answered += 1,
                Err(seaport_net::ClientError::Rejected { code: ErrorCode::TooManySubscriptions, .. }) => refused += 1,
                Err(e) => panic!("query {pattern}: {e:?}"),
            }
        }
        assert!(answered >= 1 && refused >= 1, "answered {answered}, refused {refused}");
        c.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn a_refusal_from_a_full_hub_counts_as_a_failed_connection_attempt() {
    // A hub at its connection limit answers the preamble, then refuses. For the client
    // that is a failed attempt like any other: it backs off, and with `connect_attempts`
    // it gives up, instead of reconnecting at once for ever.
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig { max_connections: 1, ..HubConfig::default() }).await;
        let holder = client(&addr);
        let kept = holder.register("kept", RegisterOptions::default()).await.unwrap();
        let config = seaport_net::ClientConfig { connect_attempts: Some(3), ..client_config() };
        let refused_client = client_with(&addr, config);
        match within("the refused client to give up", refused_client.register("late", RegisterOptions::default())).await
        {
            Err(seaport_net::ClientError::Unreachable { .. })
            | Err(seaport_net::ClientError::Rejected { code: ErrorCode::TooManyConnections, .. }) => {}
            other => panic!("expected the client to give up, got {other:?}"),
        }
        assert_eq!(hub_ids(&hub), vec![kept.id.to_string()]);
        holder.close().await;
        refused_client.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn a_registration_over_the_frame_limit_fails_without_disturbing_the_others() {
    // Metadata far over every limit makes a frame the hub refuses unread (it cannot even
    // tell which request it was). The call must fail; the client's other registrations
    // must not be freed and registered again in a reconnect loop.
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let mut events = hub.events();
        let c = client(&addr);
        let kept = c.register("kept", RegisterOptions::default()).await.unwrap();
        let huge: Meta = [("blob".to_string(), Value::from("z".repeat(1_500_000)))].into_iter().collect();
        let result = within("the oversized registration to fail", async {
            c.register("huge", RegisterOptions { meta: huge, ..Default::default() }).await
        })
        .await;
        assert!(result.is_err(), "an oversized registration succeeded: {result:?}");
        // The client is still usable, and its other registration was never dropped.
        let after = c.register("after", RegisterOptions::default()).await.unwrap();
        assert!(hub.records().iter().any(|r| r.id == kept.id));
        assert!(hub.records().iter().any(|r| r.id == after.id));
        while let Ok(event) = events.try_recv() {
            if let Event::Freed { record, .. } = &event {
                assert_ne!(record.id, kept.id, "the kept record was freed meanwhile");
            }
        }
        c.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn an_update_over_the_frame_limit_fails_without_disturbing_the_others() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let mut events = hub.events();
        let c = client(&addr);
        let kept = c.register("kept", RegisterOptions::default()).await.unwrap();
        let huge: Meta = [("blob".to_string(), Value::from("z".repeat(1_500_000)))].into_iter().collect();
        let result = within("the oversized update to fail", c.update(kept.id.as_str(), huge)).await;
        assert!(result.is_err(), "an oversized update succeeded: {result:?}");
        assert_eq!(c.update(kept.id.as_str(), Meta::new()).await.unwrap().id, kept.id);
        while let Ok(event) = events.try_recv() {
            if let Event::Freed { record, .. } = &event {
                assert_ne!(record.id, kept.id, "the kept record was freed meanwhile");
            }
        }
        assert_eq!(hub_ids(&hub), vec![kept.id.to_string()]);
        c.close().await;
        hub.shutdown().await;
    })
    .await;
}
