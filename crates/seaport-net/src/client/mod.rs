//! The client: registers services, finds them, watches them, and never loses a
//! registration to a hub restart.
//!
//! A [`Client`] is a cheap handle (clone it freely) to a background task that owns the
//! connection. The task reconnects with capped exponential backoff and full jitter,
//! round-robin over the configured hubs and every hub it has learned (records of role
//! `seaport`), and on every (re)connect registers again every live registration with
//! the same id and port, and subscribes again to every pattern it follows, from where
//! its replica stands: back on the same hub incarnation, the hub sends only what
//! changed meanwhile (see `docs/protocol.md`, "Revisions and resuming").

mod backoff;
mod replica;

use std::collections::{BTreeMap, VecDeque};
use std::net::Shutdown;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_std::net::TcpStream;
use async_std::task;
use futures::channel::{mpsc, oneshot};
use futures::{AsyncReadExt, AsyncWriteExt, FutureExt, StreamExt};
use rand::Rng;
use seaport_core::record::{validate_meta, MetaError, MetaLimits};
use seaport_core::{
    Change, ClientMessage, ErrorCode, HubMessage, Meta, ParseError, Pattern, PortRequest, Record, RecordId,
    Registration, RequestId, Role, SubscriptionId, VersionPool,
};

pub use backoff::Backoff;
use replica::Replica;

use crate::auth::{KeyPair, Signer, NONCE_LEN};
use crate::connection::FrameReader;
use crate::frame::{self, encode_signed, encode_unsigned, PREAMBLE_LEN, PROTOCOL_VERSION};

/// The role hubs register themselves under; clients learn other hubs from these records.
pub const HUB_ROLE: &str = "seaport";

/// How a [`Client`] connects and behaves.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Signs every frame with this key (needed to register on a keyed hub).
    pub key: Option<KeyPair>,
    /// How long one connection attempt (TCP connect plus handshake) may take.
    pub connect_timeout: Duration,
    /// First reconnect delay ceiling; doubles per failure.
    pub backoff_initial: Duration,
    /// Largest reconnect delay ceiling.
    pub backoff_max: Duration,
    /// Send a heartbeat this often; `None` uses the interval the hub asks for.
    pub heartbeat: Option<Duration>,
    /// When the hub assigns a port on this machine, check it can be bound and ask for
    /// another if not (another process may hold it).
    pub check_local_ports: bool,
    /// Largest frame accepted from the hub.
    pub max_frame: u32,
    /// Give up after this many consecutive failed connection attempts, failing every
    /// waiting call with [`ClientError::Unreachable`] and closing the client. `None`
    /// (the default) retries for ever, which suits long-running services.
    pub connect_attempts: Option<u32>,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            key: None,
            connect_timeout: Duration::from_secs(5),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            heartbeat: None,
            check_local_ports: true,
            max_frame: frame::DEFAULT_MAX_FRAME,
            connect_attempts: None,
        }
    }
}

/// Options of [`Client::register`]; all optional.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RegisterOptions {
    /// Use exactly this port (no collision check: seaport's behaviour).
    pub port: Option<u16>,
    /// Have the hub pick a free port in this range instead of its default range.
    pub range: Option<RangeInclusive<u16>>,
    /// Advertise this host instead of the address the hub sees.
    pub host: Option<String>,
    /// Use this record id instead of a random one.
    pub id: Option<String>,
    /// Metadata.
    pub meta: Meta,
}

/// Something that happened to the client's connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// Connected (or reconnected) to a hub.
    Connected {
        /// The hub's address.
        hub: String,
    },
    /// Lost the connection; the client is reconnecting.
    Disconnected {
        /// The hub's address.
        hub: String,
        /// Why.
        reason: String,
    },
    /// The hub told the client its address as the hub sees it.
    HostLearned {
        /// The address.
        host: String,
    },
    /// One of the client's registrations was freed by another client or by the hub; it is
    /// no longer kept alive.
    RegistrationFreed {
        /// The record id.
        id: String,
    },
    /// A registration the client held was refused when it registered it again after a
    /// reconnect (for example, its key was revoked); it is no longer kept alive.
    RegistrationLost {
        /// The record id.
        id: String,
        /// The hub's code.
        code: ErrorCode,
        /// The hub's reason.
        message: String,
    },
    /// A subscription (the pattern of a query, get or watch) is in sync with the hub: on
    /// its first subscribe, and again after every reconnect.
    Synced {
        /// The pattern.
        pattern: String,
        /// `true` when the hub resumed it from where the client left off (it sent only
        /// what changed meanwhile); `false` after a full snapshot (the first time, after
        /// a restart of the hub, on another hub, or after a long absence).
        resumed: bool,
        /// How many records (full snapshot) or changes (resumed) the hub sent.
        received: usize,
    },
}

/// What went wrong with a client call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
    /// The hub refused the request.
    #[error("the hub refused: {message}")]
    Rejected {
        /// A stable code.
        code: ErrorCode,
        /// The hub's reason.
        message: String,
    },
    /// Nothing matched (or no answer came) in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// A name, version, id or pattern is malformed.
    #[error(transparent)]
    Invalid(#[from] ParseError),
    /// No hub address was given.
    #[error("no hub address given; pass at least one HOST:PORT")]
    NoHubs,
    /// The metadata is over the hub's default bounds.
    #[error(transparent)]
    InvalidMeta(#[from] MetaError),
    /// The request would not fit in one frame.
    #[error("the request is {size} bytes, more than the {max} bytes a frame may carry; keep large data elsewhere")]
    TooLarge {
        /// Its encoded size.
        size: usize,
        /// The most a frame carries.
        max: usize,
    },
    /// No hub could be reached in [`ClientConfig::connect_attempts`] attempts.
    #[error("no hub reachable at {hubs} after {attempts} attempts")]
    Unreachable {
        /// The addresses tried, comma-separated.
        hubs: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// Every port the hub offered was already bound on this machine.
    #[error("the hub offered {tries} ports that another process on this machine already holds")]
    PortUnavailable {
        /// How many were tried.
        tries: usize,
    },
}

type Reply<T> = oneshot::Sender<Result<T, ClientError>>;

enum Command {
    Register { registration: Registration, reply: Reply<Arc<Record>> },
    Free { id: String, reply: Reply<()> },
    Update { id: String, meta: Meta, reply: Reply<Arc<Record>> },
    Query { pattern: Pattern, need_match: bool, reply: Reply<Vec<Arc<Record>>> },
    Watch { pattern: Pattern, tx: mpsc::UnboundedSender<Change>, reply: Reply<Vec<Arc<Record>>> },
    Events { tx: mpsc::UnboundedSender<ClientEvent> },
    Close { reply: oneshot::Sender<()> },
}

/// A connection to one or more hubs.
///
/// # Examples
/// ```
/// # async_std::task::block_on(async {
/// use seaport_net::{Client, ClientConfig, Hub, HubConfig, RegisterOptions};
/// let hub = Hub::bind("127.0.0.1:0", HubConfig::default()).await.unwrap();
/// let client = Client::connect(&[hub.local_addr().to_string()], ClientConfig::default()).unwrap();
///
/// let web = client.register("web@1.2.3", RegisterOptions::default()).await.unwrap();
/// let found = client.get("web@1.2.x").await.unwrap();
/// assert_eq!(found[0].port, web.port);
///
/// client.close().await;
/// hub.shutdown().await;
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
    max_frame: u32,
}

impl Client {
    /// Starts a client for `hubs` (`HOST:PORT` each). Returns at once: the connection is
    /// made in the background, and calls wait for it.
    ///
    /// # Errors
    /// [`ClientError::NoHubs`] for an empty list.
    pub fn connect<S: AsRef<str>>(hubs: &[S], config: ClientConfig) -> Result<Client, ClientError> {
        if hubs.is_empty() {
            return Err(ClientError::NoHubs);
        }
        let (commands, rx) = mpsc::unbounded();
        let max_frame = config.max_frame;
        let driver = Driver::new(hubs.iter().map(|h| h.as_ref().to_string()).collect(), config);
        task::spawn(driver.run(rx));
        Ok(Client { commands, max_frame })
    }

    /// Refuses metadata the hub would refuse, and requests too large for one frame:
    /// sent anyway, they would be refused on every reconnect.
    fn check_size(&self, message: &ClientMessage) -> Result<(), ClientError> {
        let meta = match message {
            ClientMessage::Register { registration, .. } => &registration.meta,
            ClientMessage::Update { meta, .. } => meta,
            _ => return Ok(()),
        };
        validate_meta(meta, &MetaLimits::default())?;
        let size = frame::encode_message(message).map(|m| m.len()).unwrap_or(usize::MAX);
        let max = self.max_frame as usize - frame::SIGNED_HEADER_LEN - 1;
        if size > max {
            return Err(ClientError::TooLarge { size, max });
        }
        Ok(())
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.commands.unbounded_send(make(tx)).map_err(|_| ClientError::Closed)?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    /// Registers `name` (`role@version`, or a bare `role`) and returns the record as stored,
    /// with its port. The registration lives until [`free`](Client::free), [`close`](Client::close),
    /// or the end of the process; across reconnects it keeps its id and port.
    ///
    /// # Errors
    /// [`ClientError::Invalid`] for a malformed name, version or id;
    /// [`ClientError::Rejected`] when the hub refuses (unauthorized, port range full).
    pub async fn register(&self, name: &str, options: RegisterOptions) -> Result<Arc<Record>, ClientError> {
        let mut registration = Registration::from_name(name);
        Role::new(registration.role.as_str())?;
        if let Some(v) = &registration.version {
            seaport_core::record::parse_version(v)?;
        }
        let id = match options.id {
            Some(id) => RecordId::new(id)?,
            None => RecordId::new(format!("{:016x}", rand::thread_rng().gen::<u64>()))?,
        };
        if let Some(host) = &options.host {
            seaport_core::record::validate_host(host)?;
        }
        registration.id = Some(id.to_string());
        registration.host = options.host;
        registration.meta = options.meta;
        registration.port = match (options.port, options.range) {
            (Some(port), _) => PortRequest::Exact(port),
            (None, Some(range)) => PortRequest::Range { low: *range.start(), high: *range.end() },
            (None, None) => PortRequest::Any,
        };
        let message = ClientMessage::Register { request: 0, registration };
        self.check_size(&message)?;
        let ClientMessage::Register { registration, .. } = message else { return Err(ClientError::Closed) };
        self.call(|reply| Command::Register { registration, reply }).await
    }

    /// Frees a record (one of this client's, or on an open hub any record).
    ///
    /// # Errors
    /// [`ClientError::Rejected`] for an unknown id or a record this client may not free.
    pub async fn free(&self, id: &str) -> Result<(), ClientError> {
        let id = id.to_string();
        self.call(|reply| Command::Free { id, reply }).await
    }

    /// Replaces a record's metadata; watchers see an update.
    ///
    /// # Errors
    /// [`ClientError::Rejected`] for an unknown id, metadata over the hub's limit, or a
    /// record this client may not change.
    pub async fn update(&self, id: &str, meta: Meta) -> Result<Arc<Record>, ClientError> {
        let id = id.to_string();
        let message = ClientMessage::Update { request: 0, id, meta };
        self.check_size(&message)?;
        let ClientMessage::Update { id, meta, .. } = message else { return Err(ClientError::Closed) };
        self.call(|reply| Command::Update { id, meta, reply }).await
    }

    /// The records matching `pattern`, from the local replica. The first query of a
    /// pattern subscribes to it and waits for the hub's snapshot; later ones answer at once.
    ///
    /// # Errors
    /// [`ClientError::Invalid`] for a malformed pattern.
    pub async fn query(&self, pattern: &str) -> Result<Vec<Arc<Record>>, ClientError> {
        let pattern = Pattern::parse(pattern)?;
        self.call(|reply| Command::Query { pattern, need_match: false, reply }).await
    }

    /// Waits until at least one record matches `pattern`, then returns the matches.
    ///
    /// # Errors
    /// [`ClientError::Invalid`] for a malformed pattern.
    pub async fn get(&self, pattern: &str) -> Result<Vec<Arc<Record>>, ClientError> {
        let pattern = Pattern::parse(pattern)?;
        self.call(|reply| Command::Query { pattern, need_match: true, reply }).await
    }

    /// [`get`](Client::get) with a deadline.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] if nothing matched within `timeout`.
    pub async fn get_timeout(&self, pattern: &str, timeout: Duration) -> Result<Vec<Arc<Record>>, ClientError> {
        async_std::future::timeout(timeout, self.get(pattern)).await.map_err(|_| ClientError::Timeout(timeout))?
    }

    /// A stream of the changes to records matching `pattern`: registers, updates and
    /// frees (a record that stops matching is a free). Returns once the client holds the
    /// hub's snapshot of the pattern, so every change after the call is in the stream
    /// ([`query`](Client::query) gives the records before it). After a reconnect, the
    /// difference between what the client knew and what the hub holds arrives as changes.
    /// The stream ends when the client closes or the hub refuses the subscription.
    ///
    /// # Errors
    /// [`ClientError::Invalid`] for a malformed pattern; [`ClientError::Rejected`] if the
    /// hub refuses the subscription; [`ClientError::Closed`] if closed.
    pub async fn watch(&self, pattern: &str) -> Result<mpsc::UnboundedReceiver<Change>, ClientError> {
        let pattern = Pattern::parse(pattern)?;
        let (tx, rx) = mpsc::unbounded();
        self.call(|reply| Command::Watch { pattern, tx, reply }).await?;
        Ok(rx)
    }

    /// A stream of connection events: connected, disconnected, host learned.
    ///
    /// # Errors
    /// [`ClientError::Closed`] if the client was closed.
    pub fn events(&self) -> Result<mpsc::UnboundedReceiver<ClientEvent>, ClientError> {
        let (tx, rx) = mpsc::unbounded();
        self.commands.unbounded_send(Command::Events { tx }).map_err(|_| ClientError::Closed)?;
        Ok(rx)
    }

    /// Closes the connection; the hub frees this client's registrations at once.
    /// Other clones of this handle stop working too.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.unbounded_send(Command::Close { reply: tx }).is_ok() {
            let _ = rx.await;
        }
    }
}

/// A registration the client keeps alive.
struct Desired {
    registration: Registration,
    /// The port request the caller made (an assigned port is pinned after the first reply).
    requested: PortRequest,
    record: Option<Arc<Record>>,
    reply: Option<Reply<Arc<Record>>>,
    port_tries: usize,
    /// How often this id was registered; sent so the newest registration wins in a mesh.
    incarnation: u64,
}

enum Pending {
    Register { id: String },
    Free { id: String, reply: Option<Reply<()>>, retried: bool },
    Update { id: String, meta: Meta, reply: Option<Reply<Arc<Record>>> },
    Subscribe(SubscriptionId),
}

struct Sub {
    replica: Replica,
    watchers: Vec<mpsc::UnboundedSender<Change>>,
}

struct Waiter {
    sub: SubscriptionId,
    need_match: bool,
    reply: Reply<Vec<Arc<Record>>>,
}

enum Input {
    Frame(Result<HubMessage, String>),
    Command(Option<Command>),
    Tick,
}

struct Connection {
    hub: String,
    /// This client's address as the hub sees it.
    host: String,
    stream: TcpStream,
    signer: Option<Signer>,
    frames: mpsc::Receiver<Result<HubMessage, String>>,
    heartbeat: Duration,
    timeout: Duration,
    last_sent: Instant,
    last_received: Instant,
}

struct Driver {
    hubs: Vec<String>,
    learned: Vec<String>,
    next_hub: usize,
    config: ClientConfig,
    backoff: Backoff,
    host: Option<String>,
    desired: BTreeMap<String, Desired>,
    subs: BTreeMap<SubscriptionId, Sub>,
    next_sub: u64,
    waiters: Vec<Waiter>,
    pending: BTreeMap<RequestId, Pending>,
    outbox: VecDeque<Pending>,
    next_request: RequestId,
    events: Vec<mpsc::UnboundedSender<ClientEvent>>,
    closing: Option<oneshot::Sender<()>>,
    /// What waiting calls are told when the driver stops.
    failure: ClientError,
    failed_attempts: u32,
    /// One copy of each version of the records the hubs send (they arrive with one each).
    versions: VersionPool,
}

/// `change` with its record's version the pool's copy.
fn share_version(versions: &mut VersionPool, change: Change) -> Change {
    match change {
        Change::Register(r) => Change::Register(versions.share_record(r)),
        Change::Update(r) => Change::Update(versions.share_record(r)),
        Change::Free(r) => Change::Free(versions.share_record(r)),
    }
}

/// Subscription the client keeps on the hub role, to learn other hubs.
const HUB_SUB: SubscriptionId = SubscriptionId(0);

impl Driver {
    fn new(hubs: Vec<String>, config: ClientConfig) -> Driver {
        let backoff = Backoff::new(config.backoff_initial, config.backoff_max);
        let mut subs = BTreeMap::new();
        subs.insert(HUB_SUB, Sub { replica: Replica::new(Pattern::for_role(hub_role())), watchers: Vec::new() });
        Driver {
            hubs,
            learned: Vec::new(),
            next_hub: 0,
            config,
            backoff,
            host: None,
            desired: BTreeMap::new(),
            subs,
            versions: VersionPool::default(),
            next_sub: 1,
            waiters: Vec::new(),
            pending: BTreeMap::new(),
            outbox: VecDeque::new(),
            next_request: 1,
            events: Vec::new(),
            closing: None,
            failure: ClientError::Closed,
            failed_attempts: 0,
        }
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut lost = false;
        loop {
            let Some(conn) = self.connect(&mut commands, lost).await else { break };
            lost = true;
            let hub = conn.hub.clone();
            let reason = self.serve(conn, &mut commands).await;
            if self.closing.is_some() {
                break;
            }
            match reason {
                Some(reason) => {
                    tracing::info!(%hub, %reason, "disconnected from hub; reconnecting");
                    self.emit(ClientEvent::Disconnected { hub, reason });
                    self.on_disconnect();
                }
                None => break,
            }
        }
        self.fail_everything();
        if let Some(done) = self.closing.take() {
            let _ = done.send(());
        }
    }

    fn emit(&mut self, event: ClientEvent) {
        self.events.retain(|tx| tx.unbounded_send(event.clone()).is_ok());
    }

    fn candidates(&self) -> Vec<String> {
        let mut all = self.hubs.clone();
        for h in &self.learned {
            if !all.contains(h) {
                all.push(h.clone());
            }
        }
        all
    }

    /// Connects to the next hub in turn, backing off between failures, while still
    /// taking commands. `None` when the client is closed. After a lost connection
    /// (`lost`), even the first attempt waits a random time up to the initial backoff:
    /// every client of a hub that restarts or drops off the network loses it at the same
    /// moment, and would otherwise come back at the same moment too.
    async fn connect(&mut self, commands: &mut mpsc::UnboundedReceiver<Command>, lost: bool) -> Option<Connection> {
        if lost {
            let delay = self.backoff.first_delay(&mut rand::thread_rng());
            if !self.pause(delay, commands).await {
                return None;
            }
        }
        loop {
            let candidates = self.candidates();
            let hub = candidates[self.next_hub % candidates.len()].clone();
            self.next_hub = self.next_hub.wrapping_add(1);
            let attempt =
                async_std::future::timeout(self.config.connect_timeout, handshake(hub.clone(), self.config.clone()));
            let result = self.taking_commands(attempt, commands).await?;
            match result {
                Ok(Ok(conn)) => {
                    self.backoff.reset();
                    self.failed_attempts = 0;
                    return Some(conn);
                }
                Ok(Err(e)) => tracing::debug!(%hub, error = %e, "cannot connect"),
                Err(_) => tracing::debug!(%hub, "connection attempt timed out"),
            }
            self.failed_attempts = self.failed_attempts.saturating_add(1);
            if self.config.connect_attempts.is_some_and(|max| self.failed_attempts >= max) {
                self.failure =
                    ClientError::Unreachable { hubs: self.candidates().join(", "), attempts: self.failed_attempts };
                return None;
            }
            let delay = self.backoff.next_jittered(&mut rand::thread_rng());
            if !self.pause(delay, commands).await {
                return None;
            }
        }
    }

    /// Waits `delay` while taking commands; `false` when the client is closed meanwhile.
    async fn pause(&mut self, delay: Duration, commands: &mut mpsc::UnboundedReceiver<Command>) -> bool {
        self.taking_commands(task::sleep(delay), commands).await.is_some()
    }

    /// Awaits `future` while taking commands; `None` when the client is closed meanwhile.
    async fn taking_commands<T>(
        &mut self,
        future: impl std::future::Future<Output = T>,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> Option<T> {
        let mut future = Box::pin(future.fuse());
        loop {
            futures::select! {
                output = future => {
                    // Commands sent while the future ran (an `events()` call right after
                    // `connect`) are taken before its output is acted on, so that what
                    // follows (the `Connected` event) reaches them: `select!` picks at
                    // random when both are ready.
                    loop {
                        match commands.try_recv() {
                            Ok(cmd) => self.handle_command(cmd, None).await,
                            Err(mpsc::TryRecvError::Closed) => return None,
                            Err(mpsc::TryRecvError::Empty) => return Some(output),
                        }
                        if self.closing.is_some() {
                            return None;
                        }
                    }
                }
                cmd = commands.next() => {
                    match cmd {
                        Some(cmd) => self.handle_command(cmd, None).await,
                        None => return None,
                    }
                    if self.closing.is_some() {
                        return None;
                    }
                }
            }
        }
    }

    /// Runs one connection until it fails (`Some(reason)`) or the client closes (`None`).
    async fn serve(&mut self, mut conn: Connection, commands: &mut mpsc::UnboundedReceiver<Command>) -> Option<String> {
        if self.host.as_deref() != Some(conn.host.as_str()) {
            self.host = Some(conn.host.clone());
            self.emit(ClientEvent::HostLearned { host: conn.host.clone() });
        }
        tracing::info!(hub = %conn.hub, "connected to hub");
        self.emit(ClientEvent::Connected { hub: conn.hub.clone() });
        if let Err(e) = self.restore(&mut conn).await {
            return Some(e);
        }
        let mut tick = Duration::from_millis(100).min(conn.heartbeat);
        tick = tick.max(Duration::from_millis(5));
        loop {
            let input = {
                let frame = conn.frames.next().fuse();
                let cmd = commands.next().fuse();
                let sleep = task::sleep(tick).fuse();
                futures::pin_mut!(frame, cmd, sleep);
                futures::select! {
                    f = frame => Input::Frame(f.unwrap_or_else(|| Err("connection closed by the hub".into()))),
                    c = cmd => Input::Command(c),
                    _ = sleep => Input::Tick,
                }
            };
            match input {
                Input::Frame(Ok(message)) => {
                    conn.last_received = Instant::now();
                    if let Err(e) = self.handle_message(&mut conn, message).await {
                        let _ = conn.stream.shutdown(Shutdown::Both);
                        return Some(e);
                    }
                }
                Input::Frame(Err(e)) => {
                    let _ = conn.stream.shutdown(Shutdown::Both);
                    return Some(e);
                }
                Input::Command(None) => {
                    let _ = conn.stream.shutdown(Shutdown::Both);
                    return None;
                }
                Input::Command(Some(cmd)) => {
                    self.handle_command(cmd, Some(&mut conn)).await;
                    if self.closing.is_some() {
                        let _ = conn.stream.shutdown(Shutdown::Both);
                        return None;
                    }
                }
                Input::Tick => {}
            }
            if conn.last_received.elapsed() > conn.timeout {
                let _ = conn.stream.shutdown(Shutdown::Both);
                return Some(format!("no word from the hub for {:?}", conn.timeout));
            }
            if conn.last_sent.elapsed() >= conn.heartbeat {
                if let Err(e) = send(&mut conn, &ClientMessage::Heartbeat).await {
                    return Some(e);
                }
            }
            self.waiters.retain(|w| !w.reply.is_canceled());
        }
    }

    /// After connecting: register every live registration again and resubscribe.
    async fn restore(&mut self, conn: &mut Connection) -> Result<(), String> {
        // Registrations that hold ports go first: their services are bound to them, and a
        // new registration sent before them could be handed one of those ports.
        let mut ids: Vec<(bool, String)> = self
            .desired
            .iter()
            .map(|(id, d)| (!matches!(d.registration.port, PortRequest::Exact(_)), id.clone()))
            .collect();
        ids.sort();
        for (_, id) in ids {
            self.send_register(conn, &id).await?;
        }
        // Each subscription resumes from where its replica stands, if the hub can.
        let subs: Vec<SubscriptionId> = self.subs.keys().copied().collect();
        for sub in subs {
            self.send_subscribe(conn, sub).await?;
        }
        while let Some(p) = self.outbox.pop_front() {
            self.send_pending(conn, p).await?;
        }
        Ok(())
    }

    async fn send_register(&mut self, conn: &mut Connection, id: &str) -> Result<(), String> {
        let Some(d) = self.desired.get_mut(id) else { return Ok(()) };
        d.incarnation += 1;
        let mut registration = d.registration.clone();
        registration.incarnation = Some(d.incarnation);
        let id = id.to_string();
        self.send_request(conn, Pending::Register { id }, |request| ClientMessage::Register { request, registration })
            .await
    }

    async fn send_pending(&mut self, conn: &mut Connection, p: Pending) -> Result<(), String> {
        match p {
            Pending::Free { id, reply, retried } => {
                let message_id = id.clone();
                self.send_request(conn, Pending::Free { id, reply, retried }, |request| ClientMessage::Free {
                    request,
                    id: message_id,
                })
                .await
            }
            Pending::Update { id, meta, reply } => {
                let (message_id, message_meta) = (id.clone(), meta.clone());
                self.send_request(conn, Pending::Update { id, meta, reply }, |request| ClientMessage::Update {
                    request,
                    id: message_id,
                    meta: message_meta,
                })
                .await
            }
            Pending::Register { id } => self.send_register(conn, &id).await,
            Pending::Subscribe(_) => Ok(()),
        }
    }

    async fn send_request(
        &mut self,
        conn: &mut Connection,
        pending: Pending,
        make: impl FnOnce(RequestId) -> ClientMessage,
    ) -> Result<(), String> {
        let request = self.next_request;
        self.next_request += 1;
        self.pending.insert(request, pending);
        send(conn, &make(request)).await
    }

    fn on_disconnect(&mut self) {
        // Requests in flight are sent again on the next connection; registrations and
        // subscriptions are restored from the desired state anyway.
        let pending = std::mem::take(&mut self.pending);
        for (_, p) in pending {
            match p {
                Pending::Free { id, reply, .. } => {
                    self.outbox.push_back(Pending::Free { id, reply, retried: true });
                }
                p @ Pending::Update { .. } => self.outbox.push_back(p),
                Pending::Register { .. } | Pending::Subscribe(_) => {}
            }
        }
        for d in self.desired.values_mut() {
            d.record = None;
        }
    }

    fn fail_everything(&mut self) {
        let failure = self.failure.clone();
        for (_, d) in std::mem::take(&mut self.desired) {
            if let Some(reply) = d.reply {
                let _ = reply.send(Err(failure.clone()));
            }
        }
        for p in std::mem::take(&mut self.outbox).into_iter().chain(std::mem::take(&mut self.pending).into_values()) {
            match p {
                Pending::Free { reply: Some(reply), .. } => {
                    let _ = reply.send(Err(failure.clone()));
                }
                Pending::Update { reply: Some(reply), .. } => {
                    let _ = reply.send(Err(failure.clone()));
                }
                _ => {}
            }
        }
        for w in std::mem::take(&mut self.waiters) {
            let _ = w.reply.send(Err(failure.clone()));
        }
        // Watch streams end.
        self.subs.clear();
    }

    async fn handle_command(&mut self, cmd: Command, mut conn: Option<&mut Connection>) {
        let result = match cmd {
            Command::Register { registration, reply } => {
                let Some(id) = registration.id.clone() else {
                    let _ = reply.send(Err(ClientError::Closed));
                    return;
                };
                let requested = registration.port;
                self.desired.insert(
                    id.clone(),
                    Desired {
                        registration,
                        requested,
                        record: None,
                        reply: Some(reply),
                        port_tries: 0,
                        incarnation: 0,
                    },
                );
                match conn.as_deref_mut() {
                    Some(conn) => self.send_register(conn, &id).await,
                    None => Ok(()),
                }
            }
            Command::Free { id, reply } => {
                let ours = self.desired.remove(&id).is_some();
                match conn.as_deref_mut() {
                    Some(conn) => {
                        self.send_pending(conn, Pending::Free { id, reply: Some(reply), retried: false }).await
                    }
                    None if ours => {
                        // Our record died with the connection; it is not registered again.
                        let _ = reply.send(Ok(()));
                        Ok(())
                    }
                    None => {
                        self.outbox.push_back(Pending::Free { id, reply: Some(reply), retried: false });
                        Ok(())
                    }
                }
            }
            Command::Update { id, meta, reply } => {
                let p = Pending::Update { id, meta, reply: Some(reply) };
                match conn.as_deref_mut() {
                    Some(conn) => self.send_pending(conn, p).await,
                    None => {
                        self.outbox.push_back(p);
                        Ok(())
                    }
                }
            }
            Command::Query { pattern, need_match, reply } => {
                let (sub, new) = self.subscription_for(pattern);
                self.waiters.push(Waiter { sub, need_match, reply });
                self.answer_waiters();
                match (new, conn.as_deref_mut()) {
                    (true, Some(conn)) => self.send_subscribe(conn, sub).await,
                    _ => Ok(()),
                }
            }
            Command::Watch { pattern, tx, reply } => {
                let (sub, new) = self.subscription_for(pattern);
                if let Some(s) = self.subs.get_mut(&sub) {
                    s.watchers.push(tx);
                }
                self.waiters.push(Waiter { sub, need_match: false, reply });
                self.answer_waiters();
                match (new, conn.as_deref_mut()) {
                    (true, Some(conn)) => self.send_subscribe(conn, sub).await,
                    _ => Ok(()),
                }
            }
            Command::Events { tx } => {
                self.events.push(tx);
                Ok(())
            }
            Command::Close { reply } => {
                self.closing = Some(reply);
                Ok(())
            }
        };
        if let (Err(e), Some(conn)) = (result, conn) {
            // The read side notices the broken connection and reconnects.
            tracing::debug!(error = %e, "send failed");
            let _ = conn.stream.shutdown(Shutdown::Both);
        }
    }

    async fn send_subscribe(&mut self, conn: &mut Connection, sub: SubscriptionId) -> Result<(), String> {
        let Some(s) = self.subs.get_mut(&sub) else { return Ok(()) };
        let pattern = s.replica.pattern.to_string();
        let resume = s.replica.resync();
        self.send_request(conn, Pending::Subscribe(sub), |request| ClientMessage::Subscribe {
            request,
            subscription: sub,
            pattern,
            resume,
        })
        .await
    }

    /// The subscription following `pattern`, made if there is none; `true` if new.
    fn subscription_for(&mut self, pattern: Pattern) -> (SubscriptionId, bool) {
        if let Some((id, _)) = self.subs.iter().find(|(_, s)| s.replica.pattern == pattern) {
            return (*id, false);
        }
        let id = SubscriptionId(self.next_sub);
        self.next_sub += 1;
        self.subs.insert(id, Sub { replica: Replica::new(pattern), watchers: Vec::new() });
        (id, true)
    }

    fn answer_waiters(&mut self) {
        let subs = &self.subs;
        let waiters = std::mem::take(&mut self.waiters);
        for w in waiters {
            let ready = subs.get(&w.sub).and_then(|s| {
                let records: Vec<Arc<Record>> = s.replica.records().cloned().collect();
                let ok = s.replica.is_synced() && (!w.need_match || !records.is_empty());
                ok.then_some(records)
            });
            match ready {
                Some(records) => {
                    let _ = w.reply.send(Ok(records));
                }
                None => self.waiters.push(w),
            }
        }
    }

    async fn handle_message(&mut self, conn: &mut Connection, message: HubMessage) -> Result<(), String> {
        match message {
            HubMessage::Registered { request, record } => {
                if let Some(Pending::Register { id }) = self.pending.remove(&request) {
                    self.on_registered(conn, &id, record).await?;
                }
            }
            HubMessage::Updated { request, record } => {
                if let Some(Pending::Update { id, meta, reply }) = self.pending.remove(&request) {
                    if let Some(d) = self.desired.get_mut(&id) {
                        d.registration.meta = meta;
                        d.record = Some(Arc::clone(&record));
                    }
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(record));
                    }
                }
            }
            HubMessage::Done { request } => {
                if let Some(Pending::Free { reply: Some(reply), .. }) = self.pending.remove(&request) {
                    let _ = reply.send(Ok(()));
                }
            }
            HubMessage::Rejected { request: Some(request), code, message } => {
                let error = ClientError::Rejected { code, message: message.clone() };
                match self.pending.remove(&request) {
                    Some(Pending::Register { id }) => {
                        if let Some(d) = self.desired.remove(&id) {
                            match d.reply {
                                Some(reply) => {
                                    tracing::debug!(%id, %message, "registration refused");
                                    let _ = reply.send(Err(error));
                                }
                                None => {
                                    // Refused when registering again after a reconnect.
                                    tracing::warn!(%id, %message, "registration lost: the hub refused it again");
                                    self.emit(ClientEvent::RegistrationLost { id, code, message });
                                }
                            }
                        }
                    }
                    Some(Pending::Free { reply: Some(reply), retried, .. }) => {
                        // A free retried after a reconnect may find the record already gone.
                        let gone = retried && code == ErrorCode::UnknownId;
                        let _ = reply.send(if gone { Ok(()) } else { Err(error) });
                    }
                    Some(Pending::Update { reply: Some(reply), .. }) => {
                        let _ = reply.send(Err(error));
                    }
                    Some(Pending::Subscribe(sub)) => self.subscription_refused(sub, error),
                    _ => {}
                }
            }
            HubMessage::Rejected { request: None, message, .. } => {
                tracing::warn!(hub = %conn.hub, %message, "the hub reported an error");
            }
            HubMessage::Snapshot { subscription, records } => {
                if let Some(s) = self.subs.get_mut(&subscription) {
                    s.replica.add_snapshot(records.into_iter().map(|r| self.versions.share_record(r)).collect());
                }
            }
            HubMessage::Resumed { subscription, changes } => {
                if let Some(s) = self.subs.get_mut(&subscription) {
                    s.replica.add_resumed(changes.into_iter().map(|c| share_version(&mut self.versions, c)).collect());
                }
            }
            HubMessage::Synced { subscription, at, resumed } => {
                if let Some(s) = self.subs.get_mut(&subscription) {
                    let (changes, synced) = s.replica.finish_sync(at, resumed);
                    for change in changes {
                        s.watchers.retain(|w| w.unbounded_send(change.clone()).is_ok());
                    }
                    let pattern = s.replica.pattern.to_string();
                    tracing::debug!(%pattern, resumed = synced.resumed, received = synced.received, "subscription synced");
                    // The client's own subscription to the hubs' records is not the user's.
                    if subscription != HUB_SUB {
                        self.emit(ClientEvent::Synced { pattern, resumed: synced.resumed, received: synced.received });
                    }
                }
                if subscription == HUB_SUB {
                    self.learn_hubs();
                }
                self.answer_waiters();
            }
            HubMessage::Change { revision, change } => {
                let change = share_version(&mut self.versions, change);
                if let Change::Free(record) = &change {
                    self.freed_elsewhere(record);
                }
                for s in self.subs.values_mut() {
                    if let Some(seen) = s.replica.apply(revision, &change) {
                        s.watchers.retain(|w| w.unbounded_send(seen.clone()).is_ok());
                    }
                }
                if change.record().role.as_str() == HUB_ROLE {
                    self.learn_hubs();
                }
                self.answer_waiters();
            }
            HubMessage::Welcome { .. } | HubMessage::Heartbeat | HubMessage::Peer(_) => {}
        }
        Ok(())
    }

    /// One of our records was freed by another client or by the hub: stop keeping it
    /// alive (unless we already registered a newer incarnation).
    fn freed_elsewhere(&mut self, record: &Record) {
        let id = record.id.as_str();
        let current = self.desired.get(id).and_then(|d| d.record.as_ref()).map(|r| r.incarnation);
        if current.is_some_and(|incarnation| incarnation <= record.incarnation) {
            self.desired.remove(id);
            tracing::info!(%id, "our registration was freed by another client or the hub");
            self.emit(ClientEvent::RegistrationFreed { id: id.to_string() });
        }
    }

    /// The hub refused a subscription: its waiters get the error and its watch streams end.
    fn subscription_refused(&mut self, sub: SubscriptionId, error: ClientError) {
        if sub == HUB_SUB {
            tracing::warn!(%error, "the hub refused the subscription to its peers");
            return;
        }
        tracing::debug!(%error, "subscription refused");
        self.subs.remove(&sub);
        let waiters = std::mem::take(&mut self.waiters);
        for w in waiters {
            if w.sub == sub {
                let _ = w.reply.send(Err(error.clone()));
            } else {
                self.waiters.push(w);
            }
        }
    }

    fn learn_hubs(&mut self) {
        if let Some(s) = self.subs.get(&HUB_SUB) {
            for record in s.replica.records() {
                let addr = record.address();
                if !self.learned.contains(&addr) {
                    tracing::debug!(hub = %addr, "learned a hub");
                    self.learned.push(addr);
                }
            }
        }
    }

    async fn on_registered(&mut self, conn: &mut Connection, id: &str, record: Arc<Record>) -> Result<(), String> {
        let check = self.config.check_local_ports;
        let on_this_machine = self.host.as_deref() == Some(record.host.as_str());
        let Some(d) = self.desired.get_mut(id) else { return Ok(()) };
        let assigned = !matches!(d.requested, PortRequest::Exact(_));
        let first_time = d.record.is_none() && !matches!(d.registration.port, PortRequest::Exact(_));
        if check && assigned && first_time && on_this_machine && !port_is_free(record.port) {
            d.port_tries += 1;
            if d.port_tries >= 8 {
                let tries = d.port_tries;
                if let Some(d) = self.desired.remove(id) {
                    if let Some(reply) = d.reply {
                        let _ = reply.send(Err(ClientError::PortUnavailable { tries }));
                    }
                }
                let id = id.to_string();
                return self
                    .send_request(conn, Pending::Free { id: id.clone(), reply: None, retried: true }, |request| {
                        ClientMessage::Free { request, id }
                    })
                    .await;
            }
            tracing::debug!(port = record.port, "assigned port is taken on this machine; asking for another");
            return self.send_register(conn, id).await;
        }
        d.registration.port = PortRequest::Exact(record.port);
        d.incarnation = d.incarnation.max(record.incarnation);
        d.record = Some(Arc::clone(&record));
        if let Some(reply) = d.reply.take() {
            let _ = reply.send(Ok(record));
        }
        Ok(())
    }
}

fn hub_role() -> Role {
    match Role::new(HUB_ROLE) {
        Ok(role) => role,
        Err(_) => unreachable!("the hub role is a valid role"),
    }
}

/// Whether a port can be bound on this machine right now.
fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("0.0.0.0", port)).is_ok()
}

async fn send(conn: &mut Connection, message: &ClientMessage) -> Result<(), String> {
    let mut bytes = Vec::new();
    let encoded = match &mut conn.signer {
        Some(signer) => encode_signed(message, signer, &mut bytes),
        None => encode_unsigned(message, &mut bytes),
    };
    encoded.map_err(|e| format!("cannot encode a request: {e}"))?;
    conn.stream.write_all(&bytes).await.map_err(|e| format!("write failed: {e}"))?;
    conn.last_sent = Instant::now();
    Ok(())
}

/// Connects, exchanges preambles and starts the reader task.
async fn handshake(hub: String, config: ClientConfig) -> Result<Connection, String> {
    let stream = TcpStream::connect(hub.as_str()).await.map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let mut writer = stream.clone();
    let mut preamble = Vec::with_capacity(PREAMBLE_LEN);
    frame::write_preamble(PROTOCOL_VERSION, &mut preamble);
    writer.write_all(&preamble).await.map_err(|e| format!("write: {e}"))?;
    let mut reader = stream.clone();
    let mut answer = [0u8; PREAMBLE_LEN];
    reader.read_exact(&mut answer).await.map_err(|e| format!("handshake: {e}"))?;
    let version = frame::parse_preamble(&answer).map_err(|e| e.to_string())?;
    if version != PROTOCOL_VERSION {
        return Err(format!("the hub speaks protocol version {version}, this client {PROTOCOL_VERSION}"));
    }
    let mut nonce = [0u8; NONCE_LEN];
    reader.read_exact(&mut nonce).await.map_err(|e| format!("handshake: {e}"))?;
    let (tx, mut frames) = mpsc::channel(1024);
    task::spawn(read_loop(FrameReader::with_max_frame(reader, config.max_frame), tx));
    // The welcome comes first; anything else (a hub at its connection limit says why)
    // is a failed attempt, backed off like a refused connect.
    let (host, heartbeat, timeout) = match frames.next().await {
        Some(Ok(HubMessage::Welcome { host, heartbeat_ms, timeout_ms, .. })) => {
            let heartbeat = config.heartbeat.unwrap_or(Duration::from_millis(heartbeat_ms.max(10)));
            (host, heartbeat, Duration::from_millis(timeout_ms.max(30)))
        }
        Some(Ok(HubMessage::Rejected { message, .. })) => {
            let _ = stream.shutdown(Shutdown::Both);
            return Err(format!("the hub refused the connection: {message}"));
        }
        Some(Ok(other)) => {
            let _ = stream.shutdown(Shutdown::Both);
            return Err(format!("expected a welcome, got {other:?}"));
        }
        Some(Err(e)) => return Err(e),
        None => return Err("connection closed during the handshake".into()),
    };
    let now = Instant::now();
    Ok(Connection {
        hub,
        host,
        stream,
        signer: config.key.map(|k| Signer::new(k, nonce)),
        frames,
        heartbeat,
        timeout,
        last_sent: now,
        last_received: now,
    })
}

async fn read_loop<R: futures::AsyncRead + Unpin>(
    mut reader: FrameReader<R>,
    mut tx: mpsc::Sender<Result<HubMessage, String>>,
) {
    use futures::SinkExt;
    loop {
        let item = match reader.read_frame().await {
            Ok(Some(frame)) => frame.decode::<HubMessage>().map_err(|e| format!("bad message from the hub: {e}")),
            Ok(None) => return,
            Err(e) => Err(format!("connection error: {e}")),
        };
        let stop = item.is_err();
        if tx.send(item).await.is_err() || stop {
            return;
        }
    }
}
