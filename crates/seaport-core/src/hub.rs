//! The hub as a sans-I/O state machine.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rustc_hash::FxHashSet;

use crate::error::RegistryError;
use crate::message::{
    Change, ClientMessage, ErrorCode, HubMessage, PeerMessage, RequestId, ResumePoint, SubscriptionId,
};
use crate::pattern::Pattern;
use crate::ports::DEFAULT_PORT_RANGE;
use crate::record::{
    keyed_by_record_id, parse_version, validate_host, validate_meta, Host, HubId, MetaLimits, PortRequest, Record,
    RecordId, Registration, Role,
};
use crate::registry::{Registry, DEFAULT_RECENTLY_FREED};
use crate::time::Timestamp;
use crate::value::Meta;

/// Identifies a session (a connection) to the hub; chosen by the driver, unique while open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The raw bytes of an ed25519 public key whose signature the driver has verified.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct KeyId(pub [u8; 32]);

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl fmt::Display for KeyId {
    /// The first 8 bytes in hex: enough to tell keys apart in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// What is on the other end of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionKind {
    /// A client: registers, queries, subscribes.
    Client,
    /// Another hub: records and routes flow both ways (see [`PeerMessage`]). A driver
    /// opens a session of this kind for a connection it made to a peer; a connection
    /// accepted as a client becomes a peer when it says [`PeerMessage::Hello`].
    Peer,
    /// A node seaport client speaking the JSON-lines protocol: it announces records
    /// (its own, and after a reconnect every record it knew) instead of registering them,
    /// so announcements go through [`ClientMessage::Announce`]'s rules.
    JsonLines,
}

/// Bounds on what one session may hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Live registrations one session may own.
    pub max_registrations_per_session: usize,
    /// Subscriptions one session may hold.
    pub max_subscriptions_per_session: usize,
    /// Bounds on a record's metadata.
    pub meta: MetaLimits,
    /// Recently freed ports per host avoided when assigning.
    pub recently_freed_ports: usize,
    /// Most records per [`HubMessage::Snapshot`] (a snapshot is also cut at about 256 KiB).
    pub snapshot_chunk: usize,
    /// Requests one client session may make per second, on average (heartbeats are
    /// free; peer links are not limited). Over the rate, requests are refused with
    /// [`ErrorCode::RateLimited`].
    pub max_requests_per_second: u32,
    /// Requests a session may make in a burst above the rate (enough for a client to
    /// register all its services again after a reconnect).
    pub max_request_burst: u32,
    /// Most changes kept in the log that reconnecting clients resume from; a resume
    /// point older than the log gets a full snapshot.
    pub resume_log_changes: usize,
    /// Most bytes (estimated from the records it holds) the resume log may keep.
    pub resume_log_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_registrations_per_session: 4096,
            max_subscriptions_per_session: 256,
            meta: MetaLimits::default(),
            recently_freed_ports: DEFAULT_RECENTLY_FREED,
            snapshot_chunk: 256,
            max_requests_per_second: 2_000,
            max_request_burst: 8_192,
            resume_log_changes: 65_536,
            resume_log_bytes: 32 * 1024 * 1024,
        }
    }
}

/// Configuration of a [`Hub`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubConfig {
    /// This hub's id, stamped on the records registered through it.
    pub id: HubId,
    /// Tells this run of the hub from earlier runs with the same id: revisions count from
    /// zero on every start, so a client's resume point is honoured only if it names this
    /// `(id, epoch)`. A driver must give each start a fresh value (seaport-net's server
    /// draws a random one); the core only compares it.
    pub epoch: u64,
    /// Seed of every random choice (record ids, ports): same seed, same inputs, same outputs.
    pub seed: u64,
    /// How often clients should send something (told to them in the welcome).
    pub heartbeat: Duration,
    /// A session silent this long is closed and its records freed.
    pub timeout: Duration,
    /// Ports assigned when a registration names no range.
    pub port_range: RangeInclusive<u16>,
    /// Keys allowed to register. Empty: an open hub where anyone may do anything.
    pub authorized: BTreeSet<KeyId>,
    /// The hub's own key: may register, update and free anything.
    pub hub_key: Option<KeyId>,
    /// Per-session bounds.
    pub limits: Limits,
    /// Which share of each port range this hub assigns from: `(index, count)` assigns
    /// only ports whose offset in the range is `index` modulo `count`. Peered hubs given
    /// distinct indexes never assign the same port to the same host, even while
    /// partitioned. `(0, 1)`, the default, is the whole range.
    pub port_partition: (u16, u16),
    /// Where clients should reach this hub. When set, the hub registers itself as a
    /// record of role [`HUB_ROLE`] with this host and port, so clients and peers learn it.
    pub advertise: Option<(String, u16)>,
}

/// The role of the records hubs register for themselves.
pub const HUB_ROLE: &str = "seaport";

impl Default for HubConfig {
    /// Heartbeat 15 s, timeout 45 s (seaport's defaults), ports 10000-32767, open.
    fn default() -> HubConfig {
        HubConfig {
            id: HubId(0),
            epoch: 0,
            seed: 0,
            heartbeat: Duration::from_secs(15),
            timeout: Duration::from_secs(45),
            port_range: DEFAULT_PORT_RANGE,
            authorized: BTreeSet::new(),
            hub_key: None,
            limits: Limits::default(),
            port_partition: (0, 1),
            advertise: None,
        }
    }
}

/// Why a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The driver reported the connection closed.
    Disconnected,
    /// Nothing arrived within the timeout; the driver must close the connection.
    Expired,
}

/// Why a record was freed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FreeReason {
    /// A client or the hub's owner asked.
    Requested,
    /// The session that registered it ended.
    OwnerGone,
}

/// Something that happened in the hub, for logs and embedders.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A session started.
    SessionOpened {
        /// The session.
        session: SessionId,
        /// Its address as the driver sees it.
        host: String,
    },
    /// A session ended and its records were freed.
    SessionClosed {
        /// The session.
        session: SessionId,
        /// Why.
        reason: CloseReason,
    },
    /// A record was registered (or registered again under the same id).
    Registered {
        /// Who registered it; `None` for the hub itself.
        session: Option<SessionId>,
        /// The record.
        record: Arc<Record>,
    },
    /// A record's metadata was replaced.
    Updated {
        /// Who updated it; `None` for the hub itself.
        session: Option<SessionId>,
        /// The record after the update.
        record: Arc<Record>,
    },
    /// A record was freed.
    Freed {
        /// Who freed it; `None` for the hub itself.
        session: Option<SessionId>,
        /// The record as it was.
        record: Arc<Record>,
        /// Why.
        reason: FreeReason,
    },
    /// A record was registered with an explicit port that another live record on the
    /// same host already uses (the hub honours explicit ports as given; node seaport
    /// clients pick their own ports). One of the two services will fail to bind.
    DuplicatePort {
        /// The record just registered.
        id: RecordId,
        /// The record already using the port.
        other: Arc<Record>,
    },
    /// A request was refused.
    Rejected {
        /// The session that sent it.
        session: SessionId,
        /// The wire code.
        code: ErrorCode,
        /// What was wrong.
        message: String,
    },
}

/// A message for one or more sessions. The same message goes to every session in `to`,
/// so a driver can encode it once.
#[derive(Clone, Debug, PartialEq)]
pub struct Transmit {
    /// Recipients, ascending.
    pub to: Vec<SessionId>,
    /// The message.
    pub message: HubMessage,
}

#[derive(Debug)]
struct Session {
    kind: SessionKind,
    /// Shared with the records that take it as their host.
    host: Host,
    /// Request budget in thousandths of a request, refilled at the rate (token bucket).
    budget: u64,
    budget_at: Timestamp,
    deadline: Timestamp,
    /// Hashed, not ordered: a registration inserts here, and comparing ids in a tree was
    /// a tenth of the hub's time per registration under load.
    records: FxHashSet<RecordId>,
    /// A list, not a tree: a session has one subscription or a few, and a tree's first
    /// node has room for eleven patterns (1.25 KB a node client's session).
    subscriptions: Vec<(SubscriptionId, Pattern)>,
    /// The owner the session's last registration was stored with, shared with the records
    /// registered the same way.
    owner: Option<Arc<Owner>>,
}

/// A record registered through this hub, and its owner: one set for both, keyed by the
/// record's id (two maps of the same ids cost a hash table entry and a lookup more per
/// registration, and a map would hold the id again beside the record).
#[derive(Debug)]
struct Local {
    record: Arc<Record>,
    owner: Arc<Owner>,
}

keyed_by_record_id!(Local, record);

/// Who holds a local record. Shared: the records a session registers with one key point
/// to one copy (inline, an owner took 24 bytes or more of every entry of the set of local
/// records).
#[derive(Debug, PartialEq, Eq)]
struct Owner {
    session: Option<SessionId>,
    key: Option<KeyId>,
}

type SubKey = (SessionId, SubscriptionId);

/// Who caused a change of the view, for events and for telling a record's owner.
#[derive(Clone, Copy, Debug)]
struct Cause {
    session: Option<SessionId>,
    reason: FreeReason,
    /// A session to tell of a free besides the subscribers (the record's owner).
    tell: Option<SessionId>,
}

/// A snapshot message is cut once its records reach about this many bytes, well under
/// the 1 MiB frame limit even with a record of maximal metadata.
const SNAPSHOT_BYTES: usize = 256 * 1024;

/// A resume may replay this many changes beyond the number of records in the view before
/// the hub prefers a full snapshot (so a small hub's clients still resume).
pub const RESUME_SLACK: u64 = 64;

/// The hub: sessions, leases, subscriptions and authorization around a [`Registry`].
///
/// It does no I/O and reads no clock. A driver (seaport-net's server, or a test) feeds it
/// inputs and, after **every** input, drains every output:
///
/// - Inputs: [`handle_session_opened`](Hub::handle_session_opened),
///   [`handle_message`](Hub::handle_message), [`handle_session_closed`](Hub::handle_session_closed),
///   [`handle_timeout`](Hub::handle_timeout) (when [`poll_timeout`](Hub::poll_timeout) is
///   reached), each with `now`.
/// - Commands from the embedder: [`free`](Hub::free), [`authorize`](Hub::authorize),
///   [`revoke`](Hub::revoke).
/// - Outputs: [`poll_outgoing`](Hub::poll_outgoing) (messages to send),
///   [`poll_event`](Hub::poll_event) (what happened; on
///   [`CloseReason::Expired`] the driver must close that connection), and
///   [`poll_timeout`](Hub::poll_timeout) (when to call `handle_timeout` next).
/// - Getters: [`registry`](Hub::registry), [`config`](Hub::config), [`session_count`](Hub::session_count),
///   [`resume_point`](Hub::resume_point).
///
/// Every change to the view gets the next revision and goes into a bounded log, from
/// which a [`ClientMessage::Subscribe`] with a resume point of this incarnation gets only
/// what changed since ([`HubMessage::Resumed`]) instead of a full snapshot.
///
/// Any message from a session renews its lease; a session silent for
/// [`HubConfig::timeout`] expires exactly at `last message + timeout`.
///
/// # Examples
/// ```
/// use seaport_core::{Hub, HubConfig, SessionId, SessionKind, Timestamp, Registration};
/// use seaport_core::message::{ClientMessage, HubMessage};
///
/// let mut hub = Hub::new(HubConfig::default());
/// let now = Timestamp::from_millis(0);
/// let s = SessionId(1);
/// hub.handle_session_opened(now, s, SessionKind::Client, "10.0.0.5".into());
/// let registration = Registration::from_name("web@1.2.3");
/// hub.handle_message(now, s, None, ClientMessage::Register { request: 1, registration });
///
/// let mut port = None;
/// while let Some(t) = hub.poll_outgoing() {
///     if let HubMessage::Registered { record, .. } = t.message {
///         port = Some(record.port);
///     }
/// }
/// assert!((10_000..=32_767).contains(&port.unwrap()));
/// assert_eq!(hub.poll_timeout(), Some(Timestamp::from_millis(45_000)));
/// ```
#[derive(Debug)]
pub struct Hub {
    config: HubConfig,
    registry: Registry,
    rng: SmallRng,
    sessions: BTreeMap<SessionId, Session>,
    leases: BTreeSet<(Timestamp, SessionId)>,
    /// Records registered through this hub (origin = this hub), with who owns each. The
    /// registry is the view: these plus what peers announce, one winner per id.
    local: FxHashSet<Local>,
    mesh: mesh::Mesh,
    subs: fanout::Subscriptions,
    outgoing: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// Whether the hub was ever given an authorized key. Revoking every key leaves a
    /// keyed hub keyed (only the hub's own key may then register), never open.
    keyed: bool,
    /// The revision counter and the log of recent changes that subscriptions resume from.
    history: history::History,
}

impl Hub {
    /// A hub with no records and no sessions.
    pub fn new(config: HubConfig) -> Hub {
        let mut registry = Registry::new(config.seed ^ 0x5ea9_0a7f_0000_0001);
        registry.set_recently_freed_capacity(config.limits.recently_freed_ports);
        let history = history::History::new(config.limits.resume_log_changes, config.limits.resume_log_bytes);
        let keyed = !config.authorized.is_empty();
        let mut hub = Hub {
            rng: SmallRng::seed_from_u64(config.seed),
            registry,
            config,
            sessions: BTreeMap::new(),
            leases: BTreeSet::new(),
            local: FxHashSet::default(),
            mesh: mesh::Mesh::default(),
            subs: fanout::Subscriptions::default(),
            outgoing: VecDeque::new(),
            events: VecDeque::new(),
            keyed,
            history,
        };
        hub.register_self();
        hub
    }

    // ---- getters ----

    /// The configuration.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// The records.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Where the view stands: this incarnation (id and epoch) and the revision of the
    /// last change. A subscription synced now gets this as its resume point.
    pub fn resume_point(&self) -> ResumePoint {
        ResumePoint { hub: self.config.id, epoch: self.config.epoch, revision: self.history.head() }
    }

    /// The oldest revision a subscription can still resume from (older ones get a full
    /// snapshot): the log holds every change after it.
    pub fn resume_floor(&self) -> u64 {
        self.history.floor()
    }

    /// The number of open sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Whether the hub is open: it was never given an authorized key, so anyone may
    /// register, update and free.
    pub fn is_open(&self) -> bool {
        !self.keyed
    }

    /// The ids of the records a session owns, in no particular order.
    pub fn session_records(&self, session: SessionId) -> impl Iterator<Item = &RecordId> + '_ {
        self.sessions.get(&session).into_iter().flat_map(|s| s.records.iter())
    }

    // ---- inputs ----

    /// A connection was accepted; `host` is the peer address as the driver sees it.
    /// Queues a [`HubMessage::Welcome`] to it.
    pub fn handle_session_opened(&mut self, now: Timestamp, session: SessionId, kind: SessionKind, host: String) {
        if self.sessions.contains_key(&session) {
            self.close_session(session, CloseReason::Disconnected);
        }
        let deadline = now + self.config.timeout;
        // Clients on one machine share one copy of its address: with a record's, or with
        // the last session's.
        let name = match self.registry.shared_host(&host) {
            Some(shared) => shared,
            None => match self.sessions.last_key_value() {
                Some((_, last)) if last.host == host.as_str() => last.host.clone(),
                _ => Host::from(host.as_str()),
            },
        };
        self.sessions.insert(
            session,
            Session {
                kind,
                host: name,
                budget: u64::from(self.config.limits.max_request_burst) * 1000,
                budget_at: now,
                deadline,
                records: FxHashSet::default(),
                subscriptions: Vec::new(),
                owner: None,
            },
        );
        self.leases.insert((deadline, session));
        if kind == SessionKind::Peer {
            self.events.push_back(Event::SessionOpened { session, host });
            self.start_link(session);
            return;
        }
        self.send(
            session,
            HubMessage::Welcome {
                hub: self.config.id,
                host: host.clone(),
                heartbeat_ms: millis(self.config.heartbeat),
                timeout_ms: millis(self.config.timeout),
            },
        );
        self.events.push_back(Event::SessionOpened { session, host });
    }

    /// A connection closed: its records are freed and its subscriptions dropped.
    pub fn handle_session_closed(&mut self, _now: Timestamp, session: SessionId) {
        self.close_session(session, CloseReason::Disconnected);
    }

    /// A message arrived on `session`, signed by `signer` if the driver verified a
    /// signature. Any message renews the session's lease. Messages for unknown sessions
    /// are ignored.
    pub fn handle_message(
        &mut self,
        now: Timestamp,
        session: SessionId,
        signer: Option<KeyId>,
        message: ClientMessage,
    ) {
        if !self.renew(now, session) {
            return;
        }
        if !matches!(message, ClientMessage::Heartbeat | ClientMessage::Peer(_)) && !self.spend_budget(now, session) {
            let max = self.config.limits.max_requests_per_second;
            let message_text = format!("more than {max} requests per second on this connection; slow down");
            self.events.push_back(Event::Rejected {
                session,
                code: ErrorCode::RateLimited,
                message: message_text.clone(),
            });
            let request = message.request();
            return self
                .send(session, HubMessage::Rejected { request, code: ErrorCode::RateLimited, message: message_text });
        }
        match message {
            ClientMessage::Register { request, registration } => match self.register(session, signer, registration) {
                Ok(record) => self.send(session, HubMessage::Registered { request, record }),
                Err(e) => self.reject(session, Some(request), &e),
            },
            ClientMessage::Free { request, id } => match self.free_checked(Some(session), signer, &id) {
                Ok(_) => self.send(session, HubMessage::Done { request }),
                Err(e) => self.reject(session, Some(request), &e),
            },
            ClientMessage::Update { request, id, meta } => match self.update(Some(session), signer, &id, meta) {
                Ok(record) => self.send(session, HubMessage::Updated { request, record }),
                Err(e) => self.reject(session, Some(request), &e),
            },
            ClientMessage::Subscribe { request, subscription, pattern, resume } => {
                if let Err(e) = self.subscribe(session, subscription, &pattern, resume) {
                    self.reject(session, Some(request), &e);
                }
            }
            ClientMessage::Unsubscribe { request, subscription } => {
                if self.unsubscribe(session, subscription) {
                    self.send(session, HubMessage::Done { request });
                } else {
                    self.reject(session, Some(request), &RegistryError::UnknownSubscription(subscription.0));
                }
            }
            ClientMessage::Announce { request, registration, reannounced } => {
                match self.announce(session, signer, registration, reannounced) {
                    Ok(Some(record)) => self.send(session, HubMessage::Registered { request, record }),
                    Ok(None) => self.send(session, HubMessage::Done { request }),
                    Err(e) => self.reject(session, Some(request), &e),
                }
            }
            ClientMessage::Peer(message) => {
                let keyed_out = !self.is_open()
                    && !signer.is_some_and(|k| self.config.authorized.contains(&k) || Some(k) == self.config.hub_key);
                if keyed_out && matches!(message, PeerMessage::Hello { .. }) {
                    let error = RegistryError::Unauthorized(
                        "this hub only peers with hubs whose frames are signed by an authorized key".into(),
                    );
                    return self.reject(session, None, &error);
                }
                self.handle_peer(now, session, message)
            }
            ClientMessage::Heartbeat => {}
        }
    }

    /// A message from a peer on a session this hub opened as [`SessionKind::Peer`] (the
    /// driver receives it as `HubMessage::Peer`). Renews the session's lease.
    pub fn handle_peer_message(&mut self, now: Timestamp, session: SessionId, message: PeerMessage) {
        if self.renew(now, session) {
            self.handle_peer(now, session, message);
        }
    }

    /// Something arrived on `session` that is not a message for the core (a heartbeat on
    /// a connection to a peer): renews the lease.
    pub fn handle_heartbeat(&mut self, now: Timestamp, session: SessionId) {
        self.renew(now, session);
    }

    /// The owner session of a record, if a session holds it.
    pub fn record_owner(&self, id: &str) -> Option<SessionId> {
        self.local.get(id).and_then(|l| l.owner.session)
    }

    /// The kind of a session, if it is open.
    pub fn session_kind(&self, session: SessionId) -> Option<SessionKind> {
        self.sessions.get(&session).map(|s| s.kind)
    }

    /// Tells the driver that `session` sent something the hub could not decode or
    /// refused before the core saw it: the session gets a [`HubMessage::Rejected`] and a
    /// [`Event::Rejected`] is logged. Renews the lease (the session is alive).
    pub fn handle_bad_input(&mut self, now: Timestamp, session: SessionId, code: ErrorCode, message: String) {
        if !self.renew(now, session) {
            return;
        }
        self.events.push_back(Event::Rejected { session, code, message: message.clone() });
        self.send(session, HubMessage::Rejected { request: None, code, message });
    }

    /// Expires every session whose lease ended at or before `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        while let Some(&(deadline, session)) = self.leases.first() {
            if deadline > now {
                break;
            }
            self.close_session(session, CloseReason::Expired);
        }
    }

    // ---- commands ----

    /// Frees a record on the hub's own authority.
    ///
    /// # Errors
    /// [`RegistryError::UnknownId`] when there is no such record.
    pub fn free(&mut self, _now: Timestamp, id: &str) -> Result<Arc<Record>, RegistryError> {
        self.free_checked(None, self.config.hub_key, id).or_else(|e| match e {
            RegistryError::Unauthorized(_) => self.free_record(None, id, FreeReason::Requested),
            e => Err(e),
        })
    }

    /// Adds an authorized key. The first key turns an open hub into a keyed one.
    pub fn authorize(&mut self, key: KeyId) {
        self.config.authorized.insert(key);
        self.keyed = true;
    }

    /// Removes an authorized key. Records it registered stay until freed. A keyed hub
    /// stays keyed when its last key is revoked.
    pub fn revoke(&mut self, key: &KeyId) {
        self.config.authorized.remove(key);
    }

    // ---- outputs ----

    /// The next message to send. Call until `None` after every input.
    #[must_use]
    pub fn poll_outgoing(&mut self) -> Option<Transmit> {
        self.outgoing.pop_front()
    }

    /// The next event. Call until `None` after every input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Hub::handle_timeout) must be called next: the earliest lease.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.leases.first().map(|&(t, _)| t)
    }

    // ---- internals ----

    /// Takes one request from the session's budget; `false` when it is spent.
    fn spend_budget(&mut self, now: Timestamp, session: SessionId) -> bool {
        let limits = &self.config.limits;
        let (rate, burst) = (u64::from(limits.max_requests_per_second), u64::from(limits.max_request_burst) * 1000);
        let Some(s) = self.sessions.get_mut(&session) else { return false };
        if s.kind == SessionKind::Peer {
            return true;
        }
        // `rate` requests a second is `rate` thousandths of a request a millisecond.
        let elapsed = now.as_millis().saturating_sub(s.budget_at.as_millis());
        s.budget = s.budget.saturating_add(elapsed.saturating_mul(rate)).min(burst);
        s.budget_at = s.budget_at.max(now);
        if s.budget < 1000 {
            return false;
        }
        s.budget -= 1000;
        true
    }

    fn renew(&mut self, now: Timestamp, session: SessionId) -> bool {
        let Some(s) = self.sessions.get_mut(&session) else { return false };
        let deadline = now + self.config.timeout;
        if deadline != s.deadline {
            self.leases.remove(&(s.deadline, session));
            s.deadline = deadline;
            self.leases.insert((deadline, session));
        }
        true
    }

    fn send(&mut self, session: SessionId, message: HubMessage) {
        self.outgoing.push_back(Transmit { to: vec![session], message });
    }

    fn reject(&mut self, session: SessionId, request: Option<RequestId>, error: &RegistryError) {
        let (code, message) = (error.code(), error.to_string());
        self.events.push_back(Event::Rejected { session, code, message: message.clone() });
        self.send(session, HubMessage::Rejected { request, code, message });
    }

    fn check_may_register(&self, signer: Option<KeyId>) -> Result<(), RegistryError> {
        if self.is_open() {
            return Ok(());
        }
        match signer {
            None => Err(RegistryError::Unauthorized(
                "this hub only accepts registrations signed by an authorized key".into(),
            )),
            Some(k) if self.config.authorized.contains(&k) || Some(k) == self.config.hub_key => Ok(()),
            Some(k) => Err(RegistryError::Unauthorized(format!("key {k} is not in the hub's authorized list"))),
        }
    }

    fn check_may_modify(&self, signer: Option<KeyId>, id: &str) -> Result<(), RegistryError> {
        if self.is_open() {
            return Ok(());
        }
        let owner_key = self.local.get(id).and_then(|l| l.owner.key);
        match (signer, owner_key) {
            (Some(k), _) if Some(k) == self.config.hub_key => Ok(()),
            (Some(k), Some(owner)) if k == owner => Ok(()),
            (Some(k), None) if self.config.authorized.contains(&k) => Ok(()),
            (None, _) => Err(RegistryError::Unauthorized(format!(
                "record {id:?} can only be changed by a frame signed with the key that registered it"
            ))),
            (Some(k), _) => Err(RegistryError::Unauthorized(format!(
                "key {k} did not register record {id:?} and is not the hub's key"
            ))),
        }
    }

    fn register(
        &mut self,
        session: SessionId,
        signer: Option<KeyId>,
        reg: Registration,
    ) -> Result<Arc<Record>, RegistryError> {
        // Records of one role share one copy of its name.
        let role = match self.registry.shared_role(&reg.role) {
            Some(role) => role,
            None => Role::new(reg.role)?,
        };
        let version = reg.version.as_deref().map(parse_version).transpose()?;
        // Records of one version share one copy of it.
        let version = version.map(|v| self.registry.shared_version(v));
        validate_meta(&reg.meta, &self.config.limits.meta)?;
        // Records on one host share one copy of its name.
        let host = match reg.host {
            Some(h) => match self.registry.shared_host(&h) {
                Some(host) => host,
                None => {
                    validate_host(&h)?;
                    Host::from(h)
                }
            },
            None => self.sessions.get(&session).map(|s| s.host.clone()).unwrap_or_default(),
        };
        let id = reg.id.map(RecordId::new).transpose()?;
        self.check_may_register(signer)?;
        if let Some(id) = &id {
            if self.local.contains(id.as_str()) {
                self.check_may_modify(signer, id.as_str())?;
            }
        }
        let already_owned =
            id.as_ref().is_some_and(|id| self.sessions.get(&session).is_some_and(|s| s.records.contains(id)));
        let held = self.sessions.get(&session).map_or(0, |s| s.records.len());
        let max = self.config.limits.max_registrations_per_session;
        if !already_owned && held >= max {
            return Err(RegistryError::TooManyRegistrations { max });
        }
        let port = match reg.port {
            PortRequest::Exact(0) => return Err(RegistryError::InvalidPort),
            PortRequest::Exact(p) => p,
            PortRequest::Range { low, high } => {
                self.registry.assign_port_partitioned(&host, low..=high, self.config.port_partition)?
            }
            PortRequest::Any => {
                let range = self.config.port_range.clone();
                self.registry.assign_port_partitioned(&host, range, self.config.port_partition)?
            }
        };
        let id = match id {
            Some(id) => id,
            None => self.fresh_id(),
        };
        let known = self.registry.get(id.as_str()).map(|r| r.incarnation);
        let known =
            known.max(self.local.get(id.as_str()).map(|l| l.record.incarnation)).map_or(1, |i| i.saturating_add(1));
        let incarnation = known.max(reg.incarnation.unwrap_or(0));
        let record = Record { id, role, version, host, port, meta: reg.meta, origin: self.config.id, incarnation };
        Ok(self.store(Some(session), signer, record))
    }

    /// Node seaport's `register` line: a record the client has, with its own port.
    ///
    /// - A record this session already holds is replaced.
    /// - A record another session holds is never displaced: if the announcement names the
    ///   same role, version, host and port it is that record's metadata being set
    ///   (node's `set`), and the metadata is updated; otherwise it is ignored.
    /// - An unknown record is registered, owned by this session, unless it was
    ///   `reannounced` (sent before the client's own `synced` after a reconnect) for a
    ///   host other than the session's: that is another process's record the client
    ///   remembers, possibly dead, and its own process registers it if it is alive.
    ///
    /// `Ok(None)` means ignored.
    fn announce(
        &mut self,
        session: SessionId,
        signer: Option<KeyId>,
        reg: Registration,
        reannounced: bool,
    ) -> Result<Option<Arc<Record>>, RegistryError> {
        let Some(id) = reg.id.clone() else {
            return self.register(session, signer, reg).map(Some);
        };
        let session_host = self.sessions.get(&session).map(|s| s.host.clone()).unwrap_or_default();
        match (self.registry.get(&id).cloned(), self.record_owner(&id)) {
            (Some(_), Some(owner)) if owner == session => self.register(session, signer, reg).map(Some),
            // Held by another session, by the hub itself, or by another hub's client.
            (Some(existing), _) => {
                let host = reg.host.as_deref().unwrap_or(&session_host);
                let same = existing.role.as_str() == reg.role
                    && existing.version.as_ref().map(ToString::to_string) == reg.version
                    && existing.host == host
                    && PortRequest::Exact(existing.port) == reg.port;
                if !same {
                    return Err(RegistryError::OwnedElsewhere(id));
                }
                if existing.meta == reg.meta {
                    return Ok(None);
                }
                self.update(Some(session), signer, &id, reg.meta).map(Some)
            }
            (None, _) => {
                let foreign = reg.host.as_deref().is_some_and(|h| h != session_host);
                if reannounced && foreign {
                    return Ok(None);
                }
                self.register(session, signer, reg).map(Some)
            }
        }
    }

    fn fresh_id(&mut self) -> RecordId {
        loop {
            let text = format!("{:016x}", self.rng.gen::<u64>());
            if self.registry.get(&text).is_none() && !self.local.contains(text.as_str()) {
                if let Ok(id) = RecordId::new(text) {
                    return id;
                }
            }
        }
    }

    /// The owner of a record `session` registers signed by `key`: the copy the session's
    /// last registration took if it is the same (a client signs all its registrations with
    /// one key, or none).
    fn shared_owner(&mut self, session: Option<SessionId>, key: Option<KeyId>) -> Arc<Owner> {
        let owner = Owner { session, key };
        let Some(cache) = session.and_then(|s| self.sessions.get_mut(&s)).map(|s| &mut s.owner) else {
            return Arc::new(owner);
        };
        match cache {
            Some(last) if **last == owner => Arc::clone(last),
            _ => Arc::clone(cache.insert(Arc::new(owner))),
        }
    }

    fn store(&mut self, session: Option<SessionId>, signer: Option<KeyId>, record: Record) -> Arc<Record> {
        let id = record.id.clone();
        if self.registry.port_in_use(&record.host, record.port) {
            let other = self
                .registry
                .query(&Pattern::any().with_host(record.host.to_string()))
                .find(|r| r.port == record.port && r.id != record.id)
                .cloned();
            if let Some(other) = other {
                self.events.push_back(Event::DuplicatePort { id: id.clone(), other });
            }
        }
        let record = Arc::new(record);
        let owner = self.shared_owner(session, signer);
        let local = Local { record: Arc::clone(&record), owner };
        if let Some(previous) = self.local.replace(local) {
            if previous.owner.session != session {
                if let Some(s) = previous.owner.session.and_then(|p| self.sessions.get_mut(&p)) {
                    s.records.remove(&id);
                }
            }
        }
        if let Some(s) = session.and_then(|s| self.sessions.get_mut(&s)) {
            s.records.insert(id.clone());
        }
        self.refresh(id.as_str(), Cause { session, reason: FreeReason::Requested, tell: None });
        record
    }

    fn update(
        &mut self,
        session: Option<SessionId>,
        signer: Option<KeyId>,
        id: &str,
        meta: Meta,
    ) -> Result<Arc<Record>, RegistryError> {
        let Some(current) = self.registry.get(id).cloned() else {
            return Err(RegistryError::UnknownId(id.to_string()));
        };
        validate_meta(&meta, &self.config.limits.meta)?;
        let mut record = Record::clone(self.local.get(id).map_or(&current, |l| &l.record));
        record.meta = meta;
        if !self.local.contains(id) {
            // Another hub's record: its origin applies the change and it comes back.
            self.check_may_register(signer)?;
            self.forward_to_origin(
                &current,
                PeerMessage::Update {
                    id: current.id.clone(),
                    incarnation: current.incarnation,
                    meta: record.meta.clone(),
                    signer,
                },
            );
            return Ok(Arc::new(record));
        }
        self.check_may_modify(signer, id)?;
        let record = Arc::new(record);
        if let Some(local) = self.local.take(id) {
            self.local.insert(Local { record: Arc::clone(&record), owner: local.owner });
        }
        self.refresh(id, Cause { session, reason: FreeReason::Requested, tell: None });
        Ok(record)
    }

    fn free_checked(
        &mut self,
        session: Option<SessionId>,
        signer: Option<KeyId>,
        id: &str,
    ) -> Result<Arc<Record>, RegistryError> {
        let freed = if self.local.contains(id) {
            self.check_may_modify(signer, id)?;
            Some(self.free_record(session, id, FreeReason::Requested)?)
        } else {
            None
        };
        // What the view shows now belongs to another hub (if anything): its origin frees
        // it and the free comes back through the mesh.
        match self.registry.get(id).cloned() {
            Some(current) if current.origin != self.config.id => {
                if freed.is_none() && signer != self.config.hub_key {
                    self.check_may_register(signer)?;
                }
                let message = PeerMessage::Free { id: current.id.clone(), incarnation: current.incarnation, signer };
                self.forward_to_origin(&current, message);
                Ok(freed.unwrap_or(current))
            }
            _ => freed.ok_or_else(|| RegistryError::UnknownId(id.to_string())),
        }
    }

    fn free_record(
        &mut self,
        session: Option<SessionId>,
        id: &str,
        reason: FreeReason,
    ) -> Result<Arc<Record>, RegistryError> {
        let Local { record, owner } = self.local.take(id).ok_or_else(|| RegistryError::UnknownId(id.to_string()))?;
        if let Some(s) = owner.session.and_then(|s| self.sessions.get_mut(&s)) {
            s.records.remove(id);
        }
        // An owner whose record someone else freed must hear of it, or it would register
        // the record again on its next reconnect.
        let tell = owner.session.filter(|&owner| Some(owner) != session);
        self.refresh(id, Cause { session, reason, tell });
        Ok(record)
    }

    /// Recomputes the view of one id from the local record and the peers' announcements
    /// (the highest incarnation wins), and tells subscribers, events and peers what changed.
    fn refresh(&mut self, id: &str, cause: Cause) {
        let winner = self.winner(id);
        let current = self.registry.get(id).cloned();
        let change = match (&current, &winner) {
            (None, None) => None,
            (Some(old), Some(new)) if Arc::ptr_eq(old, new) || old == new => None,
            (Some(old), None) => {
                self.registry.remove(id);
                Some((Change::Free(Arc::clone(old)), None))
            }
            (None, Some(new)) => {
                self.registry.insert(Arc::clone(new));
                Some((Change::Register(Arc::clone(new)), None))
            }
            (Some(old), Some(new)) => {
                self.registry.insert(Arc::clone(new));
                let same = history::same_instance(old, new);
                let change = if same { Change::Update(Arc::clone(new)) } else { Change::Register(Arc::clone(new)) };
                Some((change, Some(Arc::clone(old))))
            }
        };
        if let Some((change, before)) = change {
            self.history.record(current.as_ref(), winner.as_ref());
            let event = match &change {
                Change::Register(r) => Event::Registered { session: cause.session, record: Arc::clone(r) },
                Change::Update(r) => Event::Updated { session: cause.session, record: Arc::clone(r) },
                Change::Free(r) => Event::Freed { session: cause.session, record: Arc::clone(r), reason: cause.reason },
            };
            let tell = if matches!(change, Change::Free(_)) { cause.tell } else { None };
            self.fan_out_to(change, before.as_deref(), tell);
            self.events.push_back(event);
        }
        self.sync_record_to_peers(id);
    }

    fn subscribe(
        &mut self,
        session: SessionId,
        subscription: SubscriptionId,
        pattern: &str,
        resume: Option<ResumePoint>,
    ) -> Result<(), RegistryError> {
        let pattern = Pattern::parse(pattern)?;
        let Some(s) = self.sessions.get(&session) else { return Ok(()) };
        let max = self.config.limits.max_subscriptions_per_session;
        if !s.subscriptions.iter().any(|(sub, _)| *sub == subscription) && s.subscriptions.len() >= max {
            return Err(RegistryError::TooManySubscriptions { max });
        }
        self.unsubscribe(session, subscription);
        self.subs.insert((session, subscription), &pattern);
        let chunk = self.config.limits.snapshot_chunk.max(1);
        let resumed = resume.and_then(|point| self.resume_changes(&pattern, point));
        let is_resumed = resumed.is_some();
        if let Some(changes) = resumed {
            for changes in chunked(changes, chunk, |c| c.record().encoded_size_estimate()) {
                self.send(session, HubMessage::Resumed { subscription, changes });
            }
        } else {
            let mut matches = Vec::new();
            self.registry.for_each_match(&pattern, |r| matches.push(Arc::clone(r)));
            for records in chunked(matches, chunk, |r| r.encoded_size_estimate()) {
                self.send(session, HubMessage::Snapshot { subscription, records });
            }
        }
        let at = self.resume_point();
        self.send(session, HubMessage::Synced { subscription, at, resumed: is_resumed });
        if let Some(s) = self.sessions.get_mut(&session) {
            // Room for this one only: an empty `Vec` grows to four patterns at once.
            s.subscriptions.reserve_exact(1);
            s.subscriptions.push((subscription, pattern));
        }
        Ok(())
    }

    /// The changes that bring a replica of `pattern` at `point` up to date, or `None` when
    /// the subscription must get a full snapshot: `point` is of another incarnation, not
    /// covered by the log (too old, or ahead of this hub), or so far back that more
    /// changes happened since than the view holds records (a snapshot is then no dearer,
    /// and this bounds the work a herd of reconnecting clients can cause).
    fn resume_changes(&self, pattern: &Pattern, point: ResumePoint) -> Option<Vec<Change>> {
        if (point.hub, point.epoch) != (self.config.id, self.config.epoch) {
            return None;
        }
        let since = self.history.changes_since(point.revision)?;
        let records = u64::try_from(self.registry.len()).unwrap_or(u64::MAX);
        if since > records.saturating_add(RESUME_SLACK) {
            return None;
        }
        self.history.resume(pattern, point.revision, &self.registry)
    }

    fn unsubscribe(&mut self, session: SessionId, subscription: SubscriptionId) -> bool {
        let Some(s) = self.sessions.get_mut(&session) else { return false };
        let Some(at) = s.subscriptions.iter().position(|(sub, _)| *sub == subscription) else { return false };
        let (_, pattern) = s.subscriptions.swap_remove(at);
        self.subs.remove((session, subscription), &pattern);
        true
    }

    /// Queues `change` for every session with a subscription matching its record, or
    /// matching `before` (the record it replaced), so a watcher sees a record leave its
    /// pattern as well as enter it; and for `also`, if given.
    fn fan_out_to(&mut self, change: Change, before: Option<&Record>, also: Option<SessionId>) {
        let also = also.filter(|s| self.sessions.contains_key(s));
        let to = match before {
            Some(before) => self.subs.recipients(&[change.record(), before], also),
            None => self.subs.recipients(&[change.record()], also),
        };
        if !to.is_empty() {
            let message = HubMessage::Change { revision: self.history.head(), change };
            self.outgoing.push_back(Transmit { to, message });
        }
    }

    fn close_session(&mut self, session: SessionId, reason: CloseReason) {
        let Some(s) = self.sessions.remove(&session) else { return };
        self.leases.remove(&(s.deadline, session));
        if s.kind == SessionKind::Peer {
            self.drop_link(session);
        }
        for (sub, pattern) in &s.subscriptions {
            self.subs.remove((session, *sub), pattern);
        }
        // Freed in id order, so that what watchers see does not depend on the hash.
        let mut ids: Vec<&RecordId> = s.records.iter().collect();
        ids.sort_unstable();
        for id in ids {
            let owned = self.local.get(id.as_str()).is_some_and(|l| l.owner.session == Some(session));
            if owned {
                let _ = self.free_record(Some(session), id.as_str(), FreeReason::OwnerGone);
            }
        }
        self.events.push_back(Event::SessionClosed { session, reason });
    }

    /// Checks the hub's own bookkeeping against its registry; for tests and fuzzing.
    ///
    /// # Errors
    /// A description of the first inconsistency found.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        self.registry.check_invariants()?;
        if self.leases.len() != self.sessions.len() {
            return Err(format!("{} leases for {} sessions", self.leases.len(), self.sessions.len()));
        }
        for (id, s) in &self.sessions {
            if !self.leases.contains(&(s.deadline, *id)) {
                return Err(format!("session {id} has no lease at its deadline"));
            }
            for rid in &s.records {
                if !self.local.contains(rid.as_str()) {
                    return Err(format!("session {id} owns freed record {rid}"));
                }
                if self.local.get(rid.as_str()).map(|l| l.owner.session) != Some(Some(*id)) {
                    return Err(format!("session {id} lists record {rid} it does not own"));
                }
            }
        }
        for id in self.local.iter().map(|l| &l.record.id) {
            let Some(shown) = self.registry.get(id.as_str()) else {
                return Err(format!("local record {id} missing from the view"));
            };
            // Same `Arc`, or equal records (NaN metadata is not equal to itself).
            if !self.winner(id.as_str()).is_some_and(|w| Arc::ptr_eq(&w, shown) || w == *shown) {
                return Err(format!("view of {id} is not the winner"));
            }
        }
        self.mesh.check()?;
        let subs: usize = self.sessions.values().map(|s| s.subscriptions.len()).sum();
        let indexed = self.subs.len();
        if subs != indexed {
            return Err(format!("{subs} subscriptions but {indexed} indexed"));
        }
        for (id, s) in &self.sessions {
            if let Some((sub, _)) = s.subscriptions.iter().find(|(sub, p)| !self.subs.contains((*id, *sub), p)) {
                return Err(format!("subscription {} of session {id} is not indexed under its pattern", sub.0));
            }
        }
        Ok(())
    }
}

/// Cuts `items` into messages of at most `chunk` items and about [`SNAPSHOT_BYTES`].
fn chunked<T>(items: Vec<T>, chunk: usize, size: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
    let mut batches = Vec::new();
    let mut batch = Vec::new();
    let mut batch_bytes = 0;
    for item in items {
        batch_bytes += size(&item);
        batch.push(item);
        if batch.len() == chunk || batch_bytes >= SNAPSHOT_BYTES {
            batches.push(std::mem::take(&mut batch));
            batch_bytes = 0;
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

mod fanout;
mod history;
mod mesh;
#[cfg(test)]
mod tests;
