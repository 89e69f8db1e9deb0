//! The hub server: accepts connections and drives the core [`seaport_core::Hub`].
//!
//! One task per connection reads and verifies frames and feeds them to the core under a
//! short lock (every frame that arrived together, up to 64, under one lock); a writer
//! task per connection sends what the core addressed to it. The core never waits for a
//! socket: every connection has a bounded outgoing queue (`server/queue.rs`), filled without
//! blocking, and a connection whose queue is full is dropped with a reason (its records
//! are freed as for any other disconnect). A timer task calls the core's
//! `handle_timeout` at its `poll_timeout`, so leases expire even when nothing else
//! happens.

use std::collections::VecDeque;
use std::future::Future;
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use async_std::net::{TcpListener, TcpStream, ToSocketAddrs};
use async_std::task::{self, JoinHandle};
use futures::channel::mpsc;
use futures::{AsyncReadExt, AsyncWriteExt, FutureExt, StreamExt};
use rustc_hash::FxHashMap;
use seaport_core::{
    Change, ClientMessage, CloseReason, ErrorCode, Event, HubMessage, KeyId, Record, RegistryError, SessionId,
    SessionKind, SubscriptionId, Timestamp,
};

use crate::auth::{generate_nonce, KeyPair, PublicKey, Signer, Verifier, NONCE_LEN};
use crate::connection::FrameReader;
use crate::error::FrameError;
use crate::frame::{self, encode_unsigned, PREAMBLE_LEN, PROTOCOL_VERSION};
use crate::jsonl;

/// Configuration of a [`Hub`] server.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// The core's configuration: heartbeat, timeout, port range, per-session limits.
    /// Its `authorized` and `hub_key` are filled from `authorized` and `key` below.
    pub core: seaport_core::HubConfig,
    /// The hub's own key pair: frames signed with it may change any record.
    pub key: Option<KeyPair>,
    /// Keys allowed to register. Empty: an open hub.
    pub authorized: Vec<PublicKey>,
    /// Largest frame accepted, in bytes; longer length prefixes are refused before reading.
    pub max_frame: u32,
    /// Most connections open at once; further ones are told so and closed.
    pub max_connections: usize,
    /// How long a new connection may take to send its preamble.
    pub handshake_timeout: Duration,
    /// Frames queued for one connection before it counts as too slow and is dropped.
    ///
    /// The default, 262 144, lets a connection absorb a burst of that many changes while
    /// its reader catches up: a node seaport client is sent every registration (node
    /// replicates the whole registry), so at 1 000 clients x 10 services each of them is
    /// sent 10 000 changes at once, and a watcher of a role that 1 000 clients register
    /// 100 services of at once is sent 100 000. A change is encoded once and shared by
    /// every queue it is in, so a queued frame costs a connection a 16-byte slot beyond
    /// the first; `outgoing_bytes` bounds the rest.
    pub outgoing_queue: usize,
    /// Bytes of frames queued for one connection before it counts as too slow and is
    /// dropped, whichever of this and `outgoing_queue` comes first: a connection that
    /// never reads keeps at most this much of the hub's memory alive (a snapshot chunk
    /// alone may be 256 KiB). One frame of any size always fits an empty queue.
    pub outgoing_bytes: usize,
    /// Connections the kernel may queue before the hub accepts them (capped by the
    /// system, `net.core.somaxconn` on Linux). When a hub restarts or the network blips,
    /// every client reconnects at once; with std's default of 128, the connections beyond
    /// it have their SYNs dropped and wait for a retransmit, one second or more.
    pub listen_backlog: u32,
}

impl Default for HubConfig {
    fn default() -> HubConfig {
        HubConfig {
            core: seaport_core::HubConfig::default(),
            key: None,
            authorized: Vec::new(),
            max_frame: frame::DEFAULT_MAX_FRAME,
            max_connections: 16_384,
            handshake_timeout: Duration::from_secs(5),
            outgoing_queue: 262_144,
            outgoing_bytes: 32 << 20,
            listen_backlog: 4096,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Binding the listening socket failed (address in use, no permission, bad address).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address as given.
        addr: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

pub(crate) type Frame = Arc<[u8]>;

/// How a connection's messages are put on the wire.
pub(crate) enum Wire {
    /// seaport-rs frames.
    Frames,
    /// Node seaport's JSON lines ([`jsonl`]), with the session's own state.
    JsonLines(Arc<jsonl::NodeSession>),
    /// A connection this hub made to a peer: it speaks as a client there, so peer
    /// messages go out as `ClientMessage::Peer`, signed with the hub's key if it has one.
    Peer(Option<Box<Signer>>),
}

struct Conn {
    tx: queue::Outbox,
    stream: TcpStream,
    wire: Wire,
}

struct State {
    hub: seaport_core::Hub,
    conns: FxHashMap<SessionId, Conn>,
    watchers: Vec<mpsc::Sender<Event>>,
    /// The frees sent to the node seaport connections, for telling their echoes.
    frees: jsonl::FreeLog,
    /// The records of snapshots waiting in queues, shared by equal ones.
    snapshots: SnapshotShare,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    start: Instant,
    config: HubConfig,
    next_session: AtomicU64,
    stopping: AtomicBool,
    timer_wake: Mutex<Option<mpsc::Sender<()>>>,
    /// The lines sent to node seaport connections, kept once for all of them.
    lines: Arc<queue::SharedLog>,
    /// The heartbeat frame every client connection is sent, and node's heartbeat line:
    /// one copy each for all connections.
    heartbeat_frame: Frame,
    pub(crate) heartbeat_line: Frame,
}

/// A running hub: a TCP listener plus the core state it drives.
///
/// Dropping it (or calling [`shutdown`](Hub::shutdown)) stops accepting, closes every
/// connection and releases the port.
///
/// # Examples
/// ```
/// # async_std::task::block_on(async {
/// use seaport_net::{Hub, HubConfig};
/// let hub = Hub::bind("127.0.0.1:0", HubConfig::default()).await?;
/// println!("seaport listening on {}", hub.local_addr());
/// hub.shutdown().await;
/// # Ok::<(), seaport_net::ServerError>(())
/// # }).unwrap();
/// ```
pub struct Hub {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    stop: Option<futures::channel::oneshot::Sender<()>>,
    accept: Option<JoinHandle<()>>,
}

impl Hub {
    /// Binds `addr` and starts serving.
    ///
    /// # Errors
    /// [`ServerError::Bind`] when the address cannot be bound (for example, in use).
    pub async fn bind(addr: impl ToSocketAddrs + std::fmt::Display, config: HubConfig) -> Result<Hub, ServerError> {
        let shown = addr.to_string();
        let listener = bind_listener(addr, config.listen_backlog)
            .await
            .map_err(|source| ServerError::Bind { addr: shown.clone(), source })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind { addr: shown, source })?;
        let mut core = config.core.clone();
        core.authorized.extend(config.authorized.iter().map(|k| KeyId(k.to_bytes())));
        core.hub_key = config.key.as_ref().map(|k| KeyId(k.public().to_bytes()));
        if core.seed == 0 {
            core.seed = rand::random();
        }
        if core.id.0 == 0 {
            core.id = seaport_core::HubId(rand::random());
        }
        // Every start is a new incarnation, even with a configured id: revisions count
        // from zero again, so clients' resume points from the last run must not match.
        if core.epoch == 0 {
            core.epoch = rand::random::<u64>().max(1);
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                hub: seaport_core::Hub::new(core),
                conns: FxHashMap::default(),
                watchers: Vec::new(),
                frees: jsonl::FreeLog::default(),
                snapshots: SnapshotShare::default(),
            }),
            start: Instant::now(),
            config,
            next_session: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
            timer_wake: Mutex::new(None),
            lines: queue::SharedLog::new(jsonl::record_line),
            heartbeat_frame: {
                let mut frame = Vec::new();
                let _ = encode_unsigned(&HubMessage::Heartbeat, &mut frame);
                frame.into()
            },
            heartbeat_line: jsonl::heartbeat_line(),
        });
        let (stop_tx, stop_rx) = futures::channel::oneshot::channel();
        let (wake_tx, wake_rx) = mpsc::channel(1);
        *lock(&shared.timer_wake) = Some(wake_tx);
        task::spawn(run_timer(Arc::clone(&shared), wake_rx));
        let accept = task::spawn(accept_loop(Arc::clone(&shared), listener, stop_rx));
        tracing::info!(%local_addr, "hub listening");
        Ok(Hub { shared, local_addr, stop: Some(stop_tx), accept: Some(accept) })
    }

    /// The address the hub listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Allows `key` to register from now on. The first key turns an open hub into a keyed one.
    pub fn authorize(&self, key: &PublicKey) {
        self.shared.with_core(|hub, _| hub.authorize(KeyId(key.to_bytes())));
    }

    /// Stops accepting `key` for new registrations, updates and frees. Records it
    /// registered stay until freed or until their connection ends; when their client
    /// reconnects, the hub refuses to register them again. Removing the last key does
    /// not reopen the hub: with no key left, only the hub's own key may register.
    pub fn revoke(&self, key: &PublicKey) {
        self.shared.with_core(|hub, _| hub.revoke(&KeyId(key.to_bytes())));
    }

    /// Peers with the hub at `addr` (`HOST:PORT`): keeps a connection to it, reconnecting
    /// with backoff like a client does, round-robin over `addr` and every hub learned
    /// since (records of role `seaport`). Records and their changes flow both ways.
    pub fn peer(&self, addr: impl Into<String>) {
        task::spawn(peer::run(Arc::clone(&self.shared), addr.into(), self.local_addr.port()));
    }

    /// The number of peer links (made or accepted) that are up.
    pub fn peer_count(&self) -> usize {
        lock(&self.shared.state).hub.peer_count()
    }

    /// Every record the hub holds.
    pub fn records(&self) -> Vec<Arc<Record>> {
        let state = lock(&self.shared.state);
        state.hub.registry().iter().cloned().collect()
    }

    /// The number of open connections.
    pub fn connection_count(&self) -> usize {
        lock(&self.shared.state).conns.len()
    }

    /// Frees a record on the hub's authority; watchers are told.
    ///
    /// # Errors
    /// [`RegistryError::UnknownId`] when no record has this id.
    pub fn free(&self, id: &str) -> Result<Arc<Record>, RegistryError> {
        self.shared.with_core(|hub, now| hub.free(now, id))
    }

    /// A stream of what happens in the hub: connects, disconnects, registrations,
    /// updates, frees and rejections. Events are dropped for a stream whose buffer (4096
    /// events) is full, so a slow consumer never stalls the hub.
    pub fn events(&self) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel(4096);
        lock(&self.shared.state).watchers.push(tx);
        rx
    }

    /// Stops accepting, closes every connection, and waits for the listener to close.
    pub async fn shutdown(mut self) {
        self.stop_now();
        if let Some(accept) = self.accept.take() {
            accept.await;
        }
    }

    fn stop_now(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut wake) = lock(&self.shared.timer_wake).take() {
            let _ = wake.try_send(());
        }
        let mut state = lock(&self.shared.state);
        for (_, conn) in state.conns.drain() {
            let _ = conn.stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop_now();
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("local_addr", &self.local_addr).finish_non_exhaustive()
    }
}

mod peer;
pub(crate) mod queue;
#[cfg(test)]
mod tests;

/// Locks `m`, going on with the data if a thread panicked while holding it (every
/// structure under these locks is left consistent between statements).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub(crate) fn config(&self) -> &HubConfig {
        &self.config
    }

    /// A new connection's outgoing queue, bounded as the configuration says.
    pub(crate) fn outgoing_queue(&self) -> (queue::Outbox, queue::Inbox) {
        queue::channel(self.config.outgoing_queue, self.config.outgoing_bytes)
    }

    /// A node seaport connection's outgoing queue: also takes the shared lines.
    fn json_lines_queue(&self) -> (queue::Outbox, queue::Inbox) {
        queue::channel_with(self.config.outgoing_queue, self.config.outgoing_bytes, Some(Arc::clone(&self.lines)))
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_millis(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// Runs `f` on the core under the lock, then routes everything it produced.
    pub(crate) fn with_core<R>(&self, f: impl FnOnce(&mut seaport_core::Hub, Timestamp) -> R) -> R {
        let mut state = lock(&self.state);
        let now = self.now();
        let result = f(&mut state.hub, now);
        self.flush(&mut state, now);
        result
    }

    /// [`with_core`](Self::with_core) for a node connection's reader, which also reads the
    /// log of the frees node connections were sent.
    pub(crate) fn with_json_lines_core<R>(
        &self,
        f: impl FnOnce(&mut seaport_core::Hub, &jsonl::FreeLog, Timestamp) -> R,
    ) -> R {
        let mut state = lock(&self.state);
        let now = self.now();
        let state = &mut *state;
        let result = f(&mut state.hub, &state.frees, now);
        self.flush(state, now);
        result
    }

    /// Queues `["heartbeat"]` for every node seaport connection, whatever else it is being
    /// sent: a node client counts only heartbeat lines when it decides whether its hub is
    /// alive. One timer for the hub, where each connection's writer had its own.
    fn node_heartbeats(&self) {
        let mut state = lock(&self.state);
        for conn in state.conns.values_mut() {
            if let Wire::JsonLines(_) = conn.wire {
                conn.tx.push_beat(Arc::clone(&self.heartbeat_line));
            }
        }
    }

    fn flush(&self, state: &mut State, now: Timestamp) {
        // Connections dropped as too slow (or whose writer is gone), whose sessions the core
        // is still to close: one at a time, each followed by sending what closing it fanned
        // out. (All at once, a thousand node clients gone together had every one of their
        // frees waiting at the same time, each with its list of a thousand recipients:
        // over 100 MB for a moment.)
        let mut closing = VecDeque::new();
        loop {
            while let Some(transmit) = state.hub.poll_outgoing() {
                // Encoded once per wire format, when the first recipient needs it; the
                // node lines go into the shared log once, as entry `seq`.
                let mut frame: Option<Option<Frame>> = None;
                let mut lines: Option<Option<(usize, u64)>> = None;
                let mut node_frame: Option<Option<Frame>> = None;
                let mut lines_queued = 0;
                let mut owner = None;
                let mut free_place = None;
                for session in transmit.to {
                    let Some(conn) = state.conns.get_mut(&session) else { continue };
                    let pushed = match &mut conn.wire {
                        Wire::Peer(signer) => match peer::encode(&transmit.message, signer.as_deref_mut()) {
                            Some(bytes) => conn.tx.push(bytes),
                            None => continue,
                        },
                        Wire::JsonLines(node) => {
                            let owner =
                                *owner.get_or_insert_with(|| jsonl::register_owner(&transmit.message, &state.hub));
                            if !node.should_send(&transmit.message, session, owner) {
                                continue;
                            }
                            if let HubMessage::Change { change: Change::Free(record), .. } = &transmit.message {
                                let place = *free_place.get_or_insert_with(|| state.frees.push(record.id.clone()));
                                node.sent_free(place, &record.id);
                            }
                            match &transmit.message {
                                HubMessage::Snapshot { records, .. } => {
                                    let estimate = snapshot_estimate(records);
                                    conn.tx.push_lazy(estimate, jsonl::lazy_lines(state.snapshots.share(records)))
                                }
                                // A change goes to every node connection: into the shared log once.
                                HubMessage::Change { change, .. } => {
                                    let entry = lines.get_or_insert_with(|| self.lines.append(change));
                                    let Some((len, seq)) = *entry else { continue };
                                    let pushed = conn.tx.push_shared(seq, len);
                                    lines_queued += usize::from(pushed);
                                    pushed
                                }
                                // The rest (its welcome, its `synced`) goes to one connection.
                                message => {
                                    let line = node_frame.get_or_insert_with(|| {
                                        let mut out = Vec::new();
                                        jsonl::encode_into(message, &mut out);
                                        (!out.is_empty()).then(|| Frame::from(out))
                                    });
                                    let Some(line) = line else { continue };
                                    conn.tx.push(Arc::clone(line))
                                }
                            }
                        }
                        Wire::Frames => match &transmit.message {
                            // A snapshot is addressed to one session: encoded when its writer
                            // comes to it, so a herd of new subscribers does not hold a copy each.
                            HubMessage::Snapshot { subscription, records } => {
                                let estimate = snapshot_estimate(records);
                                conn.tx
                                    .push_lazy(estimate, lazy_snapshot(*subscription, state.snapshots.share(records)))
                            }
                            message => {
                                let Some(bytes) = frame.get_or_insert_with(|| encode_frame(message)) else {
                                    continue;
                                };
                                conn.tx.push(Arc::clone(bytes))
                            }
                        },
                    };
                    // Dropped at once: nothing more is queued for it.
                    if !pushed {
                        if let Some(conn) = state.conns.remove(&session) {
                            if conn.tx.is_closed() {
                                // Its writer ended with the connection: the reader is about to see the end too.
                                tracing::debug!(%session, "connection gone; closing its session");
                            } else {
                                tracing::warn!(%session, messages = self.config.outgoing_queue, bytes = self.config.outgoing_bytes, "connection too slow to read its messages; dropping it");
                            }
                            let _ = conn.stream.shutdown(Shutdown::Both);
                            closing.push_back(session);
                        }
                    }
                }
                if let Some(Some((_, seq))) = lines {
                    self.lines.queued(seq, lines_queued);
                }
            }
            if state.frees.wants_trim() {
                let oldest = state.conns.values().filter_map(|conn| match &conn.wire {
                    Wire::JsonLines(node) => Some(node.oldest_echo()),
                    _ => None,
                });
                let end = state.frees.end();
                state.frees.trim(oldest.fold(end, u64::min));
            }
            let mut closed = Vec::new();
            while let Some(event) = state.hub.poll_event() {
                log_event(&event);
                if let Event::SessionClosed { session, reason: CloseReason::Expired } = &event {
                    closed.push(*session);
                }
                state.watchers.retain_mut(|w| match w.try_send(event.clone()) {
                    Ok(()) => true,
                    Err(e) => !e.is_disconnected(),
                });
            }
            for session in closed {
                if let Some(conn) = state.conns.remove(&session) {
                    tracing::info!(%session, "lease expired; closing the connection");
                    let _ = conn.stream.shutdown(Shutdown::Both);
                }
            }
            let Some(session) = closing.pop_front() else { break };
            state.hub.handle_session_closed(now, session);
        }
    }
}

/// About the bytes a snapshot of `records` takes, for the bound of a connection's queue.
fn snapshot_estimate(records: &[Arc<Record>]) -> usize {
    records.iter().map(|r| r.encoded_size_estimate()).sum()
}

/// A snapshot's frame, encoded by the connection's writer ([`queue::Outbox::push_lazy`]).
fn lazy_snapshot(subscription: SubscriptionId, records: Arc<[Arc<Record>]>) -> queue::Encode {
    Box::new(move |out: &mut Vec<u8>| {
        encode_or_log(&HubMessage::Snapshot { subscription, records: records.to_vec() }, out);
        false
    })
}

/// The records of the snapshots still waiting in connections' queues, so that equal
/// snapshots share one list: subscribers that come one after another with no change in
/// between (a herd of them, after a hub restarts or a peer fails) are sent the same
/// records. A list goes once no queue holds it.
#[derive(Default)]
struct SnapshotShare {
    /// By the address of the list's first record and its length.
    lists: FxHashMap<(usize, usize), Weak<[Arc<Record>]>>,
    /// When there are this many, the lists no queue holds any more are dropped.
    prune_at: usize,
}

impl SnapshotShare {
    /// `records` as a list shared with an equal snapshot still waiting, or a new one.
    fn share(&mut self, records: &[Arc<Record>]) -> Arc<[Arc<Record>]> {
        let key = (records.first().map_or(0, |r| Arc::as_ptr(r) as usize), records.len());
        let same = |list: &Arc<[Arc<Record>]>| list.iter().zip(records).all(|(a, b)| Arc::ptr_eq(a, b));
        if let Some(list) = self.lists.get(&key).and_then(Weak::upgrade).filter(same) {
            return list;
        }
        if self.lists.len() >= self.prune_at {
            self.lists.retain(|_, list| list.strong_count() > 0);
            self.prune_at = (2 * self.lists.len()).max(64);
        }
        let list: Arc<[Arc<Record>]> = records.into();
        self.lists.insert(key, Arc::downgrade(&list));
        list
    }
}

/// `message` as a frame, or `None` (logged) if it cannot be encoded.
fn encode_frame(message: &HubMessage) -> Option<Frame> {
    // Room for a change of a typical record, so encoding it does not grow the buffer
    // five times over.
    let mut bytes = Vec::with_capacity(256);
    encode_or_log(message, &mut bytes).then(|| bytes.into())
}

/// Appends `message` to `out` as a frame; `false` (logged, and `out` left empty) if it
/// cannot be encoded.
fn encode_or_log(message: &HubMessage, out: &mut Vec<u8>) -> bool {
    match encode_unsigned(message, out) {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a hub message; dropped");
            out.clear();
            false
        }
    }
}

fn log_event(event: &Event) {
    match event {
        Event::SessionOpened { session, host } => tracing::debug!(%session, %host, "connected"),
        Event::SessionClosed { session, reason } => tracing::debug!(%session, ?reason, "disconnected"),
        Event::Registered { session, record } => tracing::info!(?session, %record, "register"),
        Event::Updated { session, record } => tracing::info!(?session, %record, "update"),
        Event::Freed { session, record, reason } => tracing::info!(?session, %record, ?reason, "free"),
        Event::Rejected { session, code: code @ (ErrorCode::Unauthorized | ErrorCode::Malformed), message } => {
            tracing::warn!(%session, ?code, %message, "rejected")
        }
        Event::Rejected { session, code, message } => tracing::info!(%session, ?code, %message, "rejected"),
        Event::DuplicatePort { id, other } => {
            tracing::warn!(%id, %other, "two live records share a host and port; one of them cannot bind it")
        }
        _ => tracing::debug!(?event, "event"),
    }
}

/// Binds like async-std's `TcpListener::bind` (the first address that binds), with a
/// listen backlog of `backlog`.
async fn bind_listener(addr: impl ToSocketAddrs, backlog: u32) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in addr.to_socket_addrs().await? {
        match std::net::TcpListener::bind(addr) {
            Ok(listener) => {
                set_backlog(&listener, backlog);
                return Ok(TcpListener::from(listener));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to bind")))
}

/// std listens with a backlog of 128; listening again on the bound socket sets ours.
#[cfg(unix)]
fn set_backlog(listener: &std::net::TcpListener, backlog: u32) {
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    if let Err(e) = rustix::net::listen(listener, backlog) {
        tracing::warn!(error = %e, backlog, "cannot raise the listen backlog; keeping the default");
    }
}

#[cfg(not(unix))]
fn set_backlog(_listener: &std::net::TcpListener, _backlog: u32) {}

/// Raises this process's soft limit on open files to its hard limit, and returns the soft
/// limit in effect afterwards (`u64::MAX` when there is none).
///
/// Every connection holds a descriptor, and the usual soft limit (1 024) is far below the
/// thousands of clients a hub serves (the default `max_connections` is 16 384); the hard
/// limit is what an administrator allows. A hub cannot raise it for its process by itself,
/// so a program embedding one with many clients calls this at start (`seaport listen`
/// does). Failing is not fatal, and is logged: the hub then refuses connections past the
/// limit, as it would anyway.
///
/// # Examples
/// ```
/// let limit = seaport_net::raise_open_files_limit();
/// assert!(limit >= 64);
/// ```
#[cfg(unix)]
pub fn raise_open_files_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    // No hard limit ("unlimited") still cannot exceed the kernel's nr_open, 1 048 576 by default.
    let target = limit.maximum.unwrap_or(1 << 20);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= target {
        return current;
    }
    match setrlimit(Resource::Nofile, Rlimit { current: Some(target), maximum: limit.maximum }) {
        Ok(()) => {
            tracing::debug!(from = current, to = target, "raised the open files limit");
            target
        }
        Err(e) => {
            tracing::warn!(error = %e, current, "cannot raise the open files limit");
            current
        }
    }
}

/// Raises this process's soft limit on open files; on this platform there is none to
/// raise, and it returns `u64::MAX`.
#[cfg(not(unix))]
pub fn raise_open_files_limit() -> u64 {
    u64::MAX
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, stop: futures::channel::oneshot::Receiver<()>) {
    let mut stop = stop.fuse();
    let mut incoming = listener.incoming();
    loop {
        let next = futures::select! {
            _ = stop => break,
            next = incoming.next().fuse() => next,
        };
        match next {
            Some(Ok(stream)) => {
                task::spawn(serve_connection(Arc::clone(&shared), stream));
            }
            Some(Err(e)) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                task::sleep(Duration::from_millis(50)).await;
            }
            None => break,
        }
    }
    tracing::info!("hub stopped accepting");
}

async fn run_timer(shared: Arc<Shared>, mut wake: mpsc::Receiver<()>) {
    let beat = shared.config.core.heartbeat.max(Duration::from_millis(1));
    let mut next_beat = Instant::now() + beat;
    loop {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let next = lock(&shared.state).hub.poll_timeout();
        let now = shared.now();
        // New sessions can bring a deadline earlier than the last wait allowed for (the
        // first session on an idle hub), so never sleep longer than half a timeout.
        let cap = (shared.config.core.timeout / 2).clamp(Duration::from_millis(1), Duration::from_secs(1));
        let wait = next.map_or(cap, |t| t.saturating_duration_since(now)).min(cap);
        let wait = wait.min(next_beat.saturating_duration_since(Instant::now()));
        // A wake-up only means "stop".
        if async_std::future::timeout(wait, wake.next()).await.is_ok() {
            return;
        }
        if Instant::now() >= next_beat {
            shared.node_heartbeats();
            next_beat = Instant::now() + beat;
        }
        shared.with_core(|hub, now| hub.handle_timeout(now));
    }
}

/// Sends a last frame to a connection that never became a session, then closes it.
async fn refuse(mut stream: TcpStream, code: ErrorCode, message: String) {
    let mut bytes = Vec::new();
    frame::write_preamble(PROTOCOL_VERSION, &mut bytes);
    bytes.extend_from_slice(&[0; 32]);
    let _ = encode_unsigned(&HubMessage::Rejected { request: None, code, message }, &mut bytes);
    let _ = async_std::future::timeout(Duration::from_secs(1), stream.write_all(&bytes)).await;
    let _ = stream.shutdown(Shutdown::Both);
}

async fn serve_connection(shared: Arc<Shared>, stream: TcpStream) {
    let peer = match stream.peer_addr() {
        Ok(peer) => peer,
        Err(_) => return,
    };
    let _ = stream.set_nodelay(true);
    let config = &shared.config;
    let mut preamble = [0u8; PREAMBLE_LEN];
    let mut reading = stream.clone();
    // The first byte tells the protocols apart: node seaport clients open with a JSON
    // array, seaport-rs clients with the magic.
    let handshake = async {
        reading.read_exact(&mut preamble[..1]).await?;
        if frame::looks_like_json_lines(preamble[0]) {
            return Ok(true);
        }
        reading.read_exact(&mut preamble[1..]).await.map(|()| false)
    };
    match async_std::future::timeout(config.handshake_timeout, handshake).await {
        Err(_) => {
            tracing::debug!(%peer, "no preamble within the handshake deadline; closing");
            return refuse(stream, ErrorCode::Closing, "no preamble within the handshake deadline".into()).await;
        }
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "connection closed during the handshake");
            return;
        }
        Ok(Ok(true)) => {
            // The connection's own task, sized for its protocol: this one, holding the
            // handshake's state too, ends here.
            task::spawn(jsonl::serve(shared, stream, peer, preamble[0]));
            return;
        }
        Ok(Ok(false)) => {}
    }
    match frame::parse_preamble(&preamble) {
        Ok(PROTOCOL_VERSION) => {}
        Ok(other) => {
            let message = format!("protocol version {other} is not supported; this hub speaks {PROTOCOL_VERSION}");
            tracing::warn!(%peer, %message, "handshake refused");
            return refuse(stream, ErrorCode::Malformed, message).await;
        }
        Err(e) => {
            tracing::warn!(%peer, error = %e, "handshake refused");
            return refuse(stream, ErrorCode::Malformed, format!("{e}")).await;
        }
    }
    task::spawn(serve_frames(shared, stream, reading, peer));
}

/// A seaport-rs client's connection after its preamble: admits it as a session, starts
/// its writer and reads its frames.
#[allow(clippy::manual_async_fn)] // see the comment inside
fn serve_frames(
    shared: Arc<Shared>,
    stream: TcpStream,
    reading: TcpStream,
    peer: SocketAddr,
) -> impl Future<Output = ()> {
    // A plain fn around an `async move` block: an `async fn` keeps its arguments twice
    // in its future, as arguments and as locals.
    async move {
        let config = &shared.config;
        let nonce = generate_nonce();
        let (tx, rx) = shared.outgoing_queue();
        let session = SessionId(shared.next_session.fetch_add(1, Ordering::Relaxed));
        let (admitted, stopping) = {
            let mut state = lock(&shared.state);
            let stopping = shared.stopping.load(Ordering::SeqCst);
            let full = stopping || state.conns.len() >= config.max_connections;
            if !full {
                let mut hello = Vec::with_capacity(PREAMBLE_LEN + 32);
                frame::write_preamble(PROTOCOL_VERSION, &mut hello);
                hello.extend_from_slice(&nonce);
                let mut tx = tx.clone();
                // The queue is empty, so the hello always fits.
                let _ = tx.push(hello.into());
                state.conns.insert(session, Conn { tx, stream: stream.clone(), wire: Wire::Frames });
                let now = shared.now();
                state.hub.handle_session_opened(
                    now,
                    session,
                    SessionKind::Client,
                    peer.ip().to_canonical().to_string(),
                );
                shared.flush(&mut state, now);
            }
            (!full, stopping)
        };
        if stopping {
            return refuse(stream, ErrorCode::Closing, "the hub is shutting down".into()).await;
        }
        if !admitted {
            tracing::warn!(%peer, max = config.max_connections, "connection limit reached; refusing");
            let message = format!("the hub is at its limit of {} connections; try another hub", config.max_connections);
            return refuse(stream, ErrorCode::TooManyConnections, message).await;
        }
        drop(tx);
        task::spawn(write_loop(rx, stream.clone(), config.core.heartbeat, Arc::clone(&shared.heartbeat_frame)));
        read_frames(&shared, reading, peer, session, nonce).await;
    }
}

/// Feeds the core what a client sends until it closes or sends what cannot be read; then
/// closes its session (the writer ends once the session's queue has gone).
#[allow(clippy::manual_async_fn)] // see the comment inside
fn read_frames(
    shared: &Shared,
    reading: TcpStream,
    peer: SocketAddr,
    session: SessionId,
    nonce: [u8; NONCE_LEN],
) -> impl Future<Output = ()> + '_ {
    // A plain fn around an `async move` block: an `async fn` keeps its arguments twice
    // in its future, as arguments and as locals.
    async move {
        let mut reader = FrameReader::with_max_frame(reading, shared.config.max_frame);
        let mut verifier = Verifier::new(nonce);
        let mut batch = Vec::new();
        loop {
            // Wait for a frame, then take every other one already read (a client sends its
            // requests back to back), verify and decode them outside the lock, and hand
            // them all to the core under one lock: one lock per read instead of per frame.
            let mut closing = match reader.read_frame().await {
                Ok(Some(frame)) => {
                    batch.push(Input::of(frame, &mut verifier));
                    false
                }
                Ok(None) => break,
                // A reset or another socket error is a disconnect, not bad input: there is
                // nobody left to tell.
                Err(FrameError::Io(e)) => {
                    tracing::debug!(%session, %peer, error = %e, "connection error; closing");
                    break;
                }
                Err(e) => {
                    tracing::warn!(%session, %peer, error = %e, "bad frame; closing the connection");
                    batch.push(Input::Bad(ErrorCode::Malformed, format!("closing: {e}")));
                    true
                }
            };
            while !closing && batch.len() < MAX_BATCH {
                match reader.buffered_frame() {
                    Ok(Some(frame)) => batch.push(Input::of(frame, &mut verifier)),
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(%session, %peer, error = %e, "bad frame; closing the connection");
                        batch.push(Input::Bad(ErrorCode::Malformed, format!("closing: {e}")));
                        closing = true;
                    }
                }
            }
            // A full batch with more bytes already read is a burst going on: its room is
            // kept for the next. Otherwise it goes, or every idle connection would hold
            // its last batch's peak (800 bytes for one message, some 13 KiB for 64).
            let burst = batch.len() >= MAX_BATCH && !reader.buffered().is_empty();
            shared.with_core(|hub, now| {
                for input in batch.drain(..) {
                    match input {
                        Input::Message(signer, message) => hub.handle_message(now, session, signer, message),
                        Input::Bad(code, message) => hub.handle_bad_input(now, session, code, message),
                    }
                }
            });
            if !burst {
                batch = Vec::new();
            }
            if closing {
                break;
            }
        }
        end_session(shared, session);
    }
}

/// Most frames of one connection handled under one lock of the hub: enough to spare the
/// lock per frame of a client sending requests back to back, few enough that other
/// connections wait no longer than a few hundred microseconds for it.
const MAX_BATCH: usize = 64;

/// A frame read from a connection, verified and decoded, for the core.
enum Input {
    /// A client message, with the key that signed it.
    Message(Option<KeyId>, ClientMessage),
    /// A frame the hub refuses, and why.
    Bad(ErrorCode, String),
}

impl Input {
    fn of(frame: frame::OwnedFrame, verifier: &mut Verifier) -> Input {
        let signer = match frame.signed {
            None => None,
            Some(header) => match verifier.verify(&header, &frame.message) {
                Ok(key) => Some(KeyId(key.to_bytes())),
                Err(e) => return Input::Bad(ErrorCode::Unauthorized, format!("signed frame refused: {e}")),
            },
        };
        match frame.decode::<ClientMessage>() {
            Ok(message) => Input::Message(signer, message),
            Err(e) => Input::Bad(ErrorCode::Malformed, format!("cannot decode the frame as a client message: {e}")),
        }
    }
}

/// Admits a node seaport (JSON-lines) connection as a session unless the hub is stopping
/// or at its connection limit: opens the session in the core and runs `init` on it in the
/// same step. Returns the session, a sender onto its outgoing queue and the receiving end
/// for its writer.
pub(crate) fn open_json_lines_session(
    shared: &Shared,
    stream: &TcpStream,
    peer: SocketAddr,
    node: Arc<jsonl::NodeSession>,
    init: impl FnOnce(&mut seaport_core::Hub, Timestamp, SessionId),
) -> Option<(SessionId, queue::Outbox, queue::Inbox)> {
    let (tx, rx) = shared.json_lines_queue();
    let session = SessionId(shared.next_session.fetch_add(1, Ordering::Relaxed));
    let mut state = lock(&shared.state);
    if shared.stopping.load(Ordering::SeqCst) || state.conns.len() >= shared.config.max_connections {
        return None;
    }
    // Every free from here on goes out to this session as to every node session.
    node.start(&state.frees);
    state.conns.insert(session, Conn { tx: tx.clone(), stream: stream.clone(), wire: Wire::JsonLines(node) });
    let now = shared.now();
    // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; node clients compare hosts
    // as text, so use the plain IPv4 form.
    let host = peer.ip().to_canonical().to_string();
    state.hub.handle_session_opened(now, session, SessionKind::JsonLines, host);
    init(&mut state.hub, now, session);
    shared.flush(&mut state, now);
    Some((session, tx, rx))
}

/// The connection of `session` ended: unless the hub already dropped it, the core closes
/// the session and frees its records.
pub(crate) fn end_session(shared: &Shared, session: SessionId) {
    let mut state = lock(&shared.state);
    if state.conns.remove(&session).is_some() {
        let now = shared.now();
        state.hub.handle_session_closed(now, session);
        shared.flush(&mut state, now);
    }
}

#[allow(clippy::manual_async_fn)] // see the comment inside
fn write_loop(
    rx: queue::Inbox,
    mut stream: TcpStream,
    heartbeat: Duration,
    heartbeat_frame: Frame,
) -> impl Future<Output = ()> {
    // A plain fn around an `async move` block: an `async fn` keeps its arguments twice
    // in its future, as arguments and as locals.
    async move {
        let mut writer = queue::Writer::new(rx);
        loop {
            // Whatever is queued goes out in one write.
            match async_std::future::timeout(heartbeat, writer.take()).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(_) => writer.add(Arc::clone(&heartbeat_frame)),
            }
            if writer.write(&mut stream).await.is_err() {
                break;
            }
        }
        let _ = stream.flush().await;
        let _ = stream.shutdown(Shutdown::Both);
    }
}
