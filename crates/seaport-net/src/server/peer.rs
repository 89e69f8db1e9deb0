//! Connections this hub makes to its peers.
//!
//! A peer link is an ordinary client connection (preamble, nonce, welcome) on which both
//! sides then speak `PeerMessage`s: this side sends them as `ClientMessage::Peer`, signed
//! with the hub's key when it has one (a keyed peer only accepts signed hellos), and
//! receives them as `HubMessage::Peer`. The core hub does the rest.

use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_std::net::TcpStream;
use async_std::task;
use futures::{AsyncReadExt, AsyncWriteExt};
use seaport_core::{ClientMessage, HubMessage, PeerMessage, SessionId, SessionKind, HUB_ROLE};

use super::{lock, write_loop, Conn, Frame, Shared, Wire};
use crate::auth::{Signer, NONCE_LEN};
use crate::client::Backoff;
use crate::connection::FrameReader;
use crate::frame::{self, encode_signed, encode_unsigned, PREAMBLE_LEN, PROTOCOL_VERSION};

/// Encodes a core message for a link this hub made: only peer messages go there.
pub(super) fn encode(message: &HubMessage, signer: Option<&mut Signer>) -> Option<Frame> {
    let HubMessage::Peer(p) = message else { return None };
    let message = ClientMessage::Peer(p.clone());
    let mut bytes = Vec::new();
    let encoded = match signer {
        Some(signer) => encode_signed(&message, signer, &mut bytes),
        None => encode_unsigned(&message, &mut bytes),
    };
    match encoded {
        Ok(()) => Some(bytes.into()),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a peer message; dropped");
            None
        }
    }
}

/// Keeps a link to `addr` (or, when it is down, to any hub learned since) until the hub
/// stops.
pub(super) async fn run(shared: Arc<Shared>, addr: String, own_port: u16) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    let mut turn = 0usize;
    // Hubs learned from `seaport` records are remembered: when the link breaks, the
    // records that came through it (those of the hubs behind it) are gone from the view.
    let mut candidates = vec![addr];
    while !shared.stopping.load(Ordering::SeqCst) {
        learn_hubs(&shared, &mut candidates);
        let target = candidates[turn % candidates.len()].clone();
        turn = turn.wrapping_add(1);
        match link(&shared, &target, own_port, &mut candidates).await {
            Ok(()) => backoff.reset(),
            Err(e) => tracing::debug!(peer = %target, error = %e, "peer link failed"),
        }
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let delay = backoff.next_jittered(&mut rand::thread_rng());
        task::sleep(delay).await;
    }
}

/// Adds the other hubs this hub now knows of (not itself) to `known`.
fn learn_hubs(shared: &Shared, known: &mut Vec<String>) {
    let state = lock(&shared.state);
    let own = format!("seaport-{}", state.hub.config().id);
    let Ok(role) = seaport_core::Role::new(HUB_ROLE) else { return };
    for record in state.hub.registry().query(&seaport_core::Pattern::for_role(role)) {
        let address = record.address();
        if record.id.as_str() != own && !known.contains(&address) {
            known.push(address);
        }
    }
}

/// One link: connects, runs until it breaks. `Ok` once it had been up.
async fn link(shared: &Arc<Shared>, target: &str, own_port: u16, known: &mut Vec<String>) -> Result<(), String> {
    let connect = TcpStream::connect(target);
    let stream = async_std::future::timeout(Duration::from_secs(5), connect)
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let mut writer = stream.clone();
    let mut preamble = Vec::with_capacity(PREAMBLE_LEN);
    frame::write_preamble(PROTOCOL_VERSION, &mut preamble);
    writer.write_all(&preamble).await.map_err(|e| format!("write: {e}"))?;
    let mut reader = stream.clone();
    let mut answer = [0u8; PREAMBLE_LEN + NONCE_LEN];
    async_std::future::timeout(Duration::from_secs(5), reader.read_exact(&mut answer))
        .await
        .map_err(|_| "handshake timed out".to_string())?
        .map_err(|e| format!("handshake: {e}"))?;
    let mut head = [0u8; PREAMBLE_LEN];
    head.copy_from_slice(&answer[..PREAMBLE_LEN]);
    let version = frame::parse_preamble(&head).map_err(|e| e.to_string())?;
    if version != PROTOCOL_VERSION {
        return Err(format!("the peer speaks protocol version {version}"));
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&answer[PREAMBLE_LEN..]);
    let mut frames = FrameReader::with_max_frame(reader, shared.config.max_frame);
    let welcome = async_std::future::timeout(Duration::from_secs(5), frames.read_frame())
        .await
        .map_err(|_| "no welcome".to_string())?
        .map_err(|e| e.to_string())?
        .ok_or("closed before the welcome")?
        .decode::<HubMessage>()
        .map_err(|e| e.to_string())?;
    let HubMessage::Welcome { hub, host, .. } = welcome else {
        return Err(format!("expected a welcome, got {welcome:?}"));
    };

    let signer = shared.config.key.clone().map(|key| Box::new(Signer::new(key, nonce)));
    let (tx, rx) = shared.outgoing_queue();
    let session = SessionId(shared.next_session.fetch_add(1, Ordering::Relaxed));
    {
        let mut state = lock(&shared.state);
        if hub == state.hub.config().id {
            drop(state);
            let _ = stream.shutdown(Shutdown::Both);
            return Err("that address is this hub".into());
        }
        if shared.stopping.load(Ordering::SeqCst) {
            return Err("stopping".into());
        }
        if state.hub.config().advertise.is_none() {
            // Clients should reach this hub the way its peer sees it.
            state.hub.set_advertise(host.clone(), own_port);
        }
        state.conns.insert(session, Conn { tx, stream: stream.clone(), wire: Wire::Peer(signer) });
        let now = shared.now();
        state.hub.handle_session_opened(now, session, SessionKind::Peer, target.to_string());
        shared.flush(&mut state, now);
    }
    tracing::info!(peer = %target, hub = %hub, "peered");
    let mut heartbeat = Vec::new();
    let _ = encode_unsigned(&ClientMessage::Heartbeat, &mut heartbeat);
    task::spawn(write_loop(rx, stream.clone(), shared.config.core.heartbeat, heartbeat.into()));

    loop {
        let message = match frames.read_frame().await {
            Ok(Some(frame)) => frame.decode::<HubMessage>(),
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(peer = %target, error = %e, "peer link broken");
                break;
            }
        };
        match message {
            Ok(HubMessage::Peer(p)) => {
                let hub_record = matches!(&p, PeerMessage::Record(r) if r.role.as_str() == HUB_ROLE);
                shared.with_core(|hub, now| hub.handle_peer_message(now, session, p));
                if hub_record {
                    learn_hubs(shared, known);
                }
            }
            Ok(HubMessage::Rejected { message, .. }) => {
                tracing::warn!(peer = %target, %message, "the peer refused");
                shared.with_core(|hub, now| hub.handle_heartbeat(now, session));
            }
            Ok(_) => shared.with_core(|hub, now| hub.handle_heartbeat(now, session)),
            Err(e) => {
                tracing::warn!(peer = %target, error = %e, "bad message from a peer; dropping the link");
                break;
            }
        }
    }
    let mut state = lock(&shared.state);
    if let Some(conn) = state.conns.remove(&session) {
        let _ = conn.stream.shutdown(Shutdown::Both);
        let now = shared.now();
        state.hub.handle_session_closed(now, session);
        shared.flush(&mut state, now);
    }
    tracing::info!(peer = %target, "peer link closed");
    Ok(())
}
