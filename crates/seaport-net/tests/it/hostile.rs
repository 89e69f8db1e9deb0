//! Hostile clients against a running hub with honest clients registered alongside
//! (more in `robustness`, `limits` and `auth`): garbage after a valid preamble, a frame
//! cut off and then silence, and thousands of connections opened and left idle. The hub
//! stays up, holds nothing for them once they are gone, and the honest clients lose
//! nothing.

use futures::AsyncWriteExt;
use seaport_net::auth::{KeyPair, Signer};
use seaport_net::core::{ClientMessage, ErrorCode, HubMessage, Registration};
use seaport_net::frame::{encode_signed, encode_unsigned};
use seaport_net::{Client, HubConfig, RegisterOptions};

use crate::util::*;

/// Registers `n` honest records and returns their sorted ids.
async fn honest_records(honest: &Client, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(honest.register("honest", RegisterOptions::default()).await.unwrap().id.to_string());
    }
    ids.sort();
    ids
}

/// Leases short enough for a silent connection to expire within the test, long enough
/// that an honest client's heartbeats (every 200 ms) keep it alive on a loaded machine.
fn leases() -> HubConfig {
    let mut config = HubConfig::default();
    config.core.heartbeat = std::time::Duration::from_millis(200);
    config.core.timeout = std::time::Duration::from_secs(2);
    config
}

#[async_std::test]
async fn random_bytes_after_a_valid_preamble_close_only_that_connection() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let honest = client(&addr);
        let expected = honest_records(&honest, 3).await;
        for round in 0..20u32 {
            let mut raw = Raw::connect(&addr).await;
            // Seeded per round, so a failure names bytes that can be replayed.
            let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(round);
            let garbage: Vec<u8> = (0..4096)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            // The hub may close before it has read everything: a failed write is fine.
            let _ = raw.stream.write_all(&garbage).await;
            drain_until_closed(&mut raw.stream).await;
        }
        assert_intact(&hub, &honest, &expected).await;
        wait_until("only the honest connection to be left", || hub.connection_count() == 1).await;
        honest.close().await;
        hub.shutdown().await;
    })
    .await;
}

/// The hub handles the frames that arrive together in batches under one lock: every
/// frame of a long burst is answered in order, a refused one among them costs only
/// itself, and a malformed one ends the connection after those before it.
#[async_std::test]
async fn a_burst_of_frames_in_one_write_is_answered_in_order_up_to_a_malformed_one() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let honest = client(&addr);
        let expected = honest_records(&honest, 3).await;
        let mut raw = Raw::connect(&addr).await;
        let mut burst = Vec::new();
        let mut requests = Vec::new();
        let register =
            |request| ClientMessage::Register { request, registration: Registration::from_name("burst@1.0.0") };
        for i in 0..300 {
            let request = raw.request_id();
            if i == 150 {
                // Signed for another connection's nonce: refused, and only this frame.
                let mut wrong = Signer::new(KeyPair::generate(), [7; 32]);
                encode_signed(&register(request), &mut wrong, &mut burst).expect("encode");
            } else {
                encode_unsigned(&register(request), &mut burst).expect("encode");
            }
            requests.push(request);
        }
        // A length prefix far over the frame limit: the connection ends here.
        burst.extend_from_slice(&u32::MAX.to_be_bytes());
        raw.send_bytes(&burst).await;

        let messages = read_until_closed(&mut raw.reader).await;
        let answers: Vec<(Option<u64>, &str)> = messages
            .iter()
            .filter_map(|m| match m {
                HubMessage::Registered { request, .. } => Some((Some(*request), "registered")),
                HubMessage::Rejected { request, code: ErrorCode::Unauthorized, .. } => Some((*request, "unauthorized")),
                HubMessage::Rejected { request, code: ErrorCode::Malformed, .. } => Some((*request, "malformed")),
                _ => None,
            })
            .collect();
        let mut wanted: Vec<(Option<u64>, &str)> = requests
            .iter()
            .enumerate()
            .map(|(i, &r)| if i == 150 { (None, "unauthorized") } else { (Some(r), "registered") })
            .collect();
        wanted.push((None, "malformed"));
        assert_eq!(answers, wanted);
        // Its records went with the connection; the honest ones stayed.
        wait_until("the burst's records to be freed", || hub_ids(&hub).len() == expected.len()).await;
        assert_intact(&hub, &honest, &expected).await;
        honest.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn a_frame_cut_off_and_then_silence_is_expired_by_its_lease() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(leases()).await;
        let mut events = hub.events();
        let honest = client(&addr);
        let expected = honest_records(&honest, 3).await;

        let mut raw = Raw::connect(&addr).await;
        let cut = raw.register("cut@1.0.0").await;
        let mut whole = Vec::new();
        let registration = Registration::from_name("cut@2.0.0");
        encode_unsigned(&ClientMessage::Register { request: 9, registration }, &mut whole).unwrap();
        // Half a frame, then nothing, with the socket left open.
        raw.send_bytes(&whole[..whole.len() / 2]).await;
        let messages = raw.closed_by_hub().await;
        assert!(rejections(&messages).is_empty(), "expired, not refused: {messages:?}");
        hub_event(&mut events, "the silent connection's lease to expire", |e| match e {
            seaport_net::core::Event::SessionClosed { reason: seaport_net::core::CloseReason::Expired, .. } => Some(()),
            _ => None,
        })
        .await;
        // Its record went with it; the honest client, heartbeating, kept everything.
        wait_until("the cut connection's record to be freed", || hub.records().iter().all(|r| r.id != cut.id)).await;
        assert_intact(&hub, &honest, &expected).await;
        honest.close().await;
        hub.shutdown().await;
    })
    .await;
}

/// How many idle connections of each kind the test opens: a thousand, or fewer where
/// the open-file limit cannot be raised that far (each costs two descriptors here, the
/// hub's end and the test's).
fn idle_connections() -> usize {
    let soft = seaport_net::raise_open_files_limit();
    usize::try_from(soft.saturating_sub(512) / 4).unwrap_or(usize::MAX).min(1000)
}

#[async_std::test]
async fn thousands_of_idle_connections_are_closed_and_cost_the_honest_clients_nothing() {
    with_deadline(TEST_DEADLINE, async {
        let n = idle_connections();
        assert!(n >= 100, "the open-file limit leaves room for only {n} idle connections of each kind");
        let mut config = leases();
        config.handshake_timeout = std::time::Duration::from_millis(300);
        let (hub, addr) = start_hub(config).await;
        let honest = client(&addr);
        let expected = honest_records(&honest, 3).await;

        // `n` that never say anything, and `n` that send the preamble and then nothing.
        let mut mute = Vec::with_capacity(n);
        let mut idle = Vec::with_capacity(n);
        for _ in 0..n {
            mute.push(tcp(&addr).await);
            let mut stream = tcp(&addr).await;
            seaport_net::connection::send_preamble(&mut stream).await.unwrap();
            idle.push(stream);
        }
        // While they are open, the honest client works as usual.
        let more = honest.register("honest", RegisterOptions::default()).await.unwrap();
        let mut expected = expected;
        expected.push(more.id.to_string());
        expected.sort();
        assert_intact(&hub, &honest, &expected).await;

        // The mute ones are refused at the handshake deadline, the idle ones expire.
        for stream in mute.iter_mut().chain(idle.iter_mut()) {
            drain_until_closed(stream).await;
        }
        wait_until("only the honest connection to be left", || hub.connection_count() == 1).await;
        assert_intact(&hub, &honest, &expected).await;
        assert_eq!(hub.records().len(), expected.len());

        // A new client still gets in.
        let late = client(&addr);
        assert_eq!(ids(&late.query("honest").await.unwrap()), expected);
        late.close().await;
        honest.close().await;
        hub.shutdown().await;
    })
    .await;
}
