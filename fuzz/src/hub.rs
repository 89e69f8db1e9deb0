//! The `hub` target: an arbitrary sequence of operations on one [`Hub`], checked after
//! every step against a small model.
//!
//! The input decodes (with `arbitrary`) as a [`Setup`] (open or keyed hub, seed, port
//! range, lease timeout, per-session limits) and a list of [`Op`]s: sessions opening and
//! closing, every client message with raw or table-picked strings, ports, ids, metadata
//! and patterns, undecodable input, time moving (including to just before and at a lease
//! deadline) with `handle_timeout`, the embedder freeing records and authorizing or
//! revoking keys.
//!
//! After every step [`Driver::step`] checks:
//!
//! - `hub.check_invariants()`; the live records are exactly the model's, and each is owned
//!   by an open session (registrations die with their connection);
//! - every outgoing message encodes with `encode_unsigned` into a frame a client accepts,
//!   recipients are strictly ascending, and no output goes to a session that was never open;
//! - replies: a message from an unknown session produces nothing; otherwise exactly the
//!   answer `docs/protocol.md` gives, carrying the request id (`Registered` / `Done` /
//!   `Updated` / `Rejected`, `Snapshot`s then `Synced` with the matching records), and one
//!   `Rejected` event per rejection;
//! - registrations: fields as requested, incarnation one more than the record replaced,
//!   explicit ports as given, assigned ports inside the requested (or the hub's) range and
//!   not used on that host when assigned; among records whose port was assigned, no two
//!   share a port on a host; an announcement never displaces another session's record;
//! - authorization on a keyed hub: registering needs an authorized key or the hub's key;
//!   updating and freeing the registering key, the hub's key, or an authorized key for a
//!   record registered unsigned;
//! - fan-out: at most one `Change` per record and step, of the right kind, to every open
//!   session with a subscription matching the record (or the record it replaced), plus the
//!   owner of a record someone else freed, and to nobody else;
//! - leases: `poll_timeout()` is the earliest `last message + timeout`;
//!   `handle_timeout(now)` closes exactly the sessions whose deadline is `<= now`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use seaport_core::message::{Change, ClientMessage, ErrorCode, HubMessage, SubscriptionId};
use seaport_core::record::{parse_version, validate_meta};
use seaport_core::{
    CloseReason, Event, FreeReason, Hub, HubConfig, HubId, KeyId, Limits, Meta, MetaLimits, Pattern, PortRequest,
    Record, Registration, SessionId, SessionKind, Timestamp, Value, DEFAULT_PORT_RANGE,
};

use crate::wire::check_hub_message_encodes;

/// Session ids operations use: `0..SESSIONS` (the first [`OPEN_AT_START`] open at time 0).
pub const SESSIONS: u8 = 7;
/// Sessions open when a run starts.
pub const OPEN_AT_START: u8 = 5;
/// Subscription ids operations use per session.
pub const SUBS: u8 = 4;
/// At most this many operations of an input are run.
pub const MAX_OPS: usize = 400;

/// Session hosts and registration hosts (the last two are invalid as registration hosts).
pub const HOSTS: [&str; 6] = ["10.0.0.1", "10.0.0.2", "::1", "h", "bad host", ""];
/// Roles (the last two are invalid).
pub const ROLES: [&str; 6] = ["web", "db", "seaport", "a-b_c.d/e:f", "bad role!", ""];
/// Versions (the last three are invalid).
pub const VERSIONS: [&str; 8] = ["1.0.0", "1.2.3", "2.0.0-beta.1", "1.2.3+build.5", "0.0.1", "1.2", "01.2.3", ""];
/// Record ids (the last two are invalid).
pub const IDS: [&str; 6] = ["a", "b", "c", "x:y.z-1_2", "bad id!", ""];
/// Subscription patterns (the last two are invalid).
pub const PATTERNS: [&str; 16] = [
    "*",
    "",
    "web",
    "db",
    "seaport",
    "web@1.x",
    "*@>=1.2.0",
    "web@^1.2.3 || 2.x",
    "*?host=10.0.0.1",
    "web?meta.env=prod",
    "*?meta.n=3",
    "*?meta.n=\"3\"",
    "web@>=2.0.0-beta.0",
    "db@1.2.3 - 2",
    "bad role!",
    "web?zone=a",
];
/// Metadata keys.
pub const META_KEYS: [&str; 4] = ["env", "n", "zone", ""];
/// Metadata strings.
pub const STRINGS: [&str; 6] = ["prod", "dev", "3", "\"3\"", "", "a&b"];

/// Authorized on a keyed hub.
pub const K1: KeyId = KeyId([1; 32]);
/// Authorized on a keyed hub.
pub const K2: KeyId = KeyId([2; 32]);
/// Never authorized unless an `Authorize` op says so.
pub const KU: KeyId = KeyId([3; 32]);
/// The hub's own key, when the setup has one.
pub const KH: KeyId = KeyId([4; 32]);
/// Signers of client messages.
pub const SIGNERS: [Option<KeyId>; 5] = [None, Some(K1), Some(K2), Some(KU), Some(KH)];
/// Keys the embedder authorizes and revokes.
pub const KEYS: [KeyId; 4] = [K1, K2, KU, KH];

// ---------------------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------------------

/// A whole fuzz input.
#[derive(Arbitrary, Clone, Debug)]
pub struct Input {
    /// The hub variant.
    pub setup: Setup,
    /// What happens to it.
    pub ops: Vec<Op>,
}

/// The hub variant a run uses.
#[derive(Arbitrary, Clone, Debug)]
pub struct Setup {
    /// K1 and K2 authorized; otherwise an open hub.
    pub keyed: bool,
    /// Whether the hub has a key (KH).
    pub hub_key: bool,
    /// The hub's seed.
    pub seed: u64,
    /// The hub's default port range.
    pub range: RangeIn,
    /// Picks the lease timeout.
    pub timeout: u8,
    /// Picks the registrations allowed per session.
    pub max_regs: u8,
    /// Picks the subscriptions allowed per session.
    pub max_subs: u8,
    /// Picks how many recently freed ports are remembered.
    pub remember: u8,
    /// Picks the snapshot chunk size.
    pub chunk: u8,
    /// Picks the metadata limits.
    pub meta: u8,
    /// Picks the hub's share of port ranges (`port_partition`).
    pub partition: u8,
    /// Picks the request rate limit and burst.
    pub rate: u8,
}

/// The hub's default port range.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum RangeIn {
    /// 20000-20005.
    Small,
    /// 20000-20001.
    Tiny,
    /// The default, 10000-32767.
    Default,
    /// 1-65535.
    Wide,
    /// As given, possibly empty or starting at 0.
    Raw {
        /// Low end.
        low: u16,
        /// High end.
        high: u16,
    },
}

/// Text picked from a table, or raw.
#[derive(Arbitrary, Clone, Debug)]
pub enum Text {
    /// Entry `n % len` of the table for this field.
    Pick(u8),
    /// Anything.
    Raw(String),
}

impl Text {
    fn get(&self, table: &[&str]) -> String {
        match self {
            Text::Pick(n) => table[usize::from(*n) % table.len()].to_string(),
            Text::Raw(s) => s.clone(),
        }
    }
}

/// A record id.
#[derive(Arbitrary, Clone, Debug)]
pub enum IdRef {
    /// The n-th live record (ids in order), or an unknown id when there are none.
    Live(u8),
    /// From [`IDS`].
    Pick(u8),
    /// Anything.
    Raw(String),
}

/// A port request.
#[derive(Arbitrary, Clone, Debug)]
pub enum PortIn {
    /// `Any`.
    Any,
    /// `Exact(p)`, any p.
    Exact(u16),
    /// `Exact(20000 + n % 8)`, near the small default ranges.
    Near(u8),
    /// `Range { low, high }`, anything.
    Range {
        /// Low end.
        low: u16,
        /// High end.
        high: u16,
    },
    /// A range of up to 8 ports from `20000 + low % 8`.
    NearRange {
        /// Start offset.
        low: u8,
        /// Width - 1.
        width: u8,
    },
    /// `Exact` with the port of the n-th live record (`Any` when there is none).
    LivePort(u8),
}

/// A metadata value, kept flat so that decoding the input never recurses deeply.
#[derive(Arbitrary, Clone, Debug)]
pub enum ValueIn {
    /// A scalar.
    Leaf(Leaf),
    /// A list of scalars.
    List(Vec<Leaf>),
    /// A map of scalars.
    Map(Vec<(Text, Leaf)>),
    /// Lists nested `n % 24` deep around `null`.
    Deep(u8),
    /// A string of `n` bytes.
    Big(u16),
}

/// A scalar metadata value.
#[derive(Arbitrary, Clone, Debug)]
pub enum Leaf {
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float, NaN and infinities included.
    Float(f64),
    /// A string from [`STRINGS`] or raw.
    Str(Text),
}

impl Leaf {
    fn value(&self) -> Value {
        match self {
            Leaf::Null => Value::Null,
            Leaf::Bool(b) => Value::Bool(*b),
            Leaf::Int(i) => Value::Int(*i),
            Leaf::Float(x) => Value::Float(*x),
            Leaf::Str(t) => Value::String(t.get(&STRINGS)),
        }
    }
}

impl ValueIn {
    fn value(&self) -> Value {
        match self {
            ValueIn::Leaf(l) => l.value(),
            ValueIn::List(items) => Value::List(items.iter().map(Leaf::value).collect()),
            ValueIn::Map(items) => Value::Map(items.iter().map(|(k, v)| (k.get(&META_KEYS), v.value())).collect()),
            ValueIn::Deep(n) => (0..n % 24).fold(Value::Null, |v, _| Value::List(vec![v])),
            ValueIn::Big(n) => Value::String("x".repeat(usize::from(*n))),
        }
    }
}

fn meta(items: &[(Text, ValueIn)]) -> Meta {
    items.iter().map(|(k, v)| (k.get(&META_KEYS), v.value())).collect()
}

/// A registration.
#[derive(Arbitrary, Clone, Debug)]
pub struct RegIn {
    /// The id, if any.
    pub id: Option<IdRef>,
    /// The role.
    pub role: Text,
    /// The version, if any.
    pub version: Option<Text>,
    /// The host, if any (from [`HOSTS`] or raw).
    pub host: Option<Text>,
    /// The port request.
    pub port: PortIn,
    /// The metadata.
    pub meta: Vec<(Text, ValueIn)>,
    /// The lowest incarnation the client asks for (it restores a record it had).
    pub incarnation: Option<u64>,
}

/// One step. Session numbers are taken modulo [`SESSIONS`], signers modulo the length of
/// [`SIGNERS`].
#[derive(Arbitrary, Clone, Debug)]
pub enum Op {
    /// A connection is accepted (on an open session: it is closed first).
    Open {
        /// The session.
        session: u8,
        /// Its address.
        host: Text,
        /// `SessionKind::JsonLines` instead of `Client`.
        json_lines: bool,
    },
    /// The connection closed.
    Close {
        /// The session.
        session: u8,
    },
    /// `ClientMessage::Register`.
    Register {
        /// The session.
        session: u8,
        /// The signer.
        signer: u8,
        /// What to register.
        reg: RegIn,
    },
    /// `ClientMessage::Announce`.
    Announce {
        /// The session.
        session: u8,
        /// The signer.
        signer: u8,
        /// What to announce.
        reg: RegIn,
        /// Sent again after a reconnect.
        reannounced: bool,
    },
    /// `ClientMessage::Free`.
    Free {
        /// The session.
        session: u8,
        /// The signer.
        signer: u8,
        /// Which record.
        id: IdRef,
    },
    /// `ClientMessage::Update`.
    Update {
        /// The session.
        session: u8,
        /// The signer.
        signer: u8,
        /// Which record.
        id: IdRef,
        /// The new metadata.
        meta: Vec<(Text, ValueIn)>,
    },
    /// `ClientMessage::Subscribe` with a pattern from [`PATTERNS`] or raw.
    Subscribe {
        /// The session.
        session: u8,
        /// The subscription id (modulo [`SUBS`]).
        sub: u8,
        /// The pattern.
        pattern: Text,
    },
    /// `ClientMessage::Unsubscribe`.
    Unsubscribe {
        /// The session.
        session: u8,
        /// The subscription id (modulo [`SUBS`]).
        sub: u8,
    },
    /// `ClientMessage::Heartbeat`.
    Heartbeat {
        /// The session.
        session: u8,
    },
    /// `handle_bad_input`.
    BadInput {
        /// The session.
        session: u8,
        /// Code `Unauthorized` rather than `Malformed`.
        unauthorized: bool,
        /// The message.
        message: String,
    },
    /// Time moves on by up to a minute, no input.
    Advance {
        /// Milliseconds.
        ms: u16,
    },
    /// Time jumps (saturating at the far future), no input.
    Leap {
        /// Milliseconds.
        ms: u64,
    },
    /// `handle_timeout(now)`.
    Timeout,
    /// Time moves to the earliest lease deadline (or one ms before it), then `handle_timeout`.
    ToDeadline {
        /// One millisecond before the deadline.
        before: bool,
    },
    /// `Hub::free` on the embedder's authority.
    HubFree {
        /// Which record.
        id: IdRef,
    },
    /// `Hub::authorize`.
    Authorize {
        /// From [`KEYS`].
        key: u8,
    },
    /// `Hub::revoke`.
    Revoke {
        /// From [`KEYS`].
        key: u8,
    },
}

impl Setup {
    /// The lease timeout in ms.
    pub fn timeout_ms(&self) -> u64 {
        [1_000, 0, 1, 45_000, u64::MAX][usize::from(self.timeout) % 5]
    }

    /// Requests per second and burst.
    pub fn rate_limit(&self) -> (u32, u32) {
        [(2_000, 8_192), (1, 2), (0, 0), (1_000, 1), (u32::MAX, u32::MAX)][usize::from(self.rate) % 5]
    }

    /// The hub configuration.
    #[allow(clippy::needless_update)] // `Limits` and `HubConfig` grow new fields.
    pub fn config(&self) -> HubConfig {
        let port_range = match self.range {
            RangeIn::Small => 20_000..=20_005,
            RangeIn::Tiny => 20_000..=20_001,
            RangeIn::Default => DEFAULT_PORT_RANGE,
            RangeIn::Wide => 1..=u16::MAX,
            RangeIn::Raw { low, high } => low..=high,
        };
        let (max_bytes, max_depth) = [(200, 2), (64 * 1024, 16), (0, 0), (40, 1)][usize::from(self.meta) % 4];
        HubConfig {
            id: HubId(7),
            seed: self.seed,
            heartbeat: Duration::from_millis(300),
            timeout: Duration::from_millis(self.timeout_ms()),
            port_range,
            authorized: if self.keyed { [K1, K2].into_iter().collect() } else { BTreeSet::new() },
            hub_key: self.hub_key.then_some(KH),
            limits: Limits {
                max_registrations_per_session: 1 + usize::from(self.max_regs % 6),
                max_subscriptions_per_session: 1 + usize::from(self.max_subs % 4),
                meta: MetaLimits { max_bytes, max_depth },
                recently_freed_ports: [0, 1, 2, 4096][usize::from(self.remember) % 4],
                snapshot_chunk: [0, 1, 2, 256][usize::from(self.chunk) % 4],
                max_requests_per_second: self.rate_limit().0,
                max_request_burst: self.rate_limit().1,
                ..Limits::default()
            },
            port_partition: [(0, 1), (0, 2), (1, 2), (2, 3), (0, 0), (3, 3)][usize::from(self.partition) % 6],
            ..HubConfig::default()
        }
    }
}

/// Runs a fuzz input: decodes it, then runs its operations, panicking at the first
/// failed check. Inputs that do not decode are skipped.
///
/// With `SEAPORT_FUZZ_PRINT` set in the environment, prints the decoded input first.
pub fn run(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else { return };
    if std::env::var_os("SEAPORT_FUZZ_PRINT").is_some() {
        eprintln!("{input:#?}");
    }
    run_input(&input);
}

/// Runs decoded input, panicking at the first failed check.
pub fn run_input(input: &Input) {
    let mut driver = Driver::new(&input.setup).unwrap_or_else(|e| panic!("opening sessions: {e}"));
    for (i, op) in input.ops.iter().take(MAX_OPS).enumerate() {
        if let Err(e) = driver.step(op) {
            panic!("step {i} {op:?} at t={}ms: {e}\nsetup: {:?}", driver.now, input.setup);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct ModelSession {
    host: String,
    deadline: u64,
    subs: BTreeMap<u64, Pattern>,
    /// Request budget in thousandths of a request (a token bucket), as of `budget_at`.
    budget: u64,
    budget_at: u64,
}

#[derive(Clone, Debug)]
struct ModelRecord {
    /// The range its port was assigned from; `None` for an explicit port.
    assigned: Option<(u16, u16)>,
    /// The key that registered it.
    key: Option<KeyId>,
}

/// What an operation asked of the hub, for checking its answer.
#[derive(Clone, Debug)]
enum Asked {
    /// An input that answers nothing (time, timeouts, embedder commands).
    Quiet,
    /// The driver closed a session.
    Close { session: u64 },
    /// A session opened: a welcome.
    Open { session: u64, host: String },
    /// A client message or bad input from `session`.
    Message {
        session: u64,
        signer: Option<KeyId>,
        what: Msg,
        /// Over the session's request rate: refused as `RateLimited`, nothing else happens.
        limited: bool,
    },
}

#[derive(Clone, Debug)]
enum Msg {
    Register { request: u64, reg: Registration, announce: bool },
    Free { request: u64 },
    Update { request: u64, meta: Meta },
    Subscribe { request: u64, sub: u64, pattern: String },
    Unsubscribe { request: u64, sub: u64 },
    Heartbeat,
    BadInput { code: ErrorCode, message: String },
}

/// A hub, the model of it and the virtual clock.
#[derive(Debug)]
pub struct Driver {
    /// The hub under test.
    pub hub: Hub,
    /// Virtual time, ms.
    pub now: u64,
    config: HubConfig,
    timeout_ms: u64,
    sessions: BTreeMap<u64, ModelSession>,
    records: BTreeMap<String, ModelRecord>,
    authorized: BTreeSet<KeyId>,
    /// Given an authorized key at some point: a hub stays keyed when every key is revoked.
    keyed: bool,
    next_request: u64,
    /// Sessions ever opened (outputs may only go to them).
    ever_open: BTreeSet<u64>,
}

/// What the hub emitted after one input.
struct Outputs {
    changes: Vec<(Vec<u64>, Change)>,
    replies: Vec<(u64, HubMessage)>,
    events: Vec<Event>,
}

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

/// Equality through `Debug`, so that NaN metadata compares equal to itself.
fn same<T: Debug>(a: &T, b: &T) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

impl Driver {
    /// A fresh hub for `setup` with sessions `0..OPEN_AT_START` open at time 0.
    ///
    /// # Errors
    /// A failed check while opening them.
    pub fn new(setup: &Setup) -> Result<Driver, String> {
        let config = setup.config();
        let mut d = Driver {
            hub: Hub::new(config.clone()),
            now: 0,
            timeout_ms: setup.timeout_ms(),
            keyed: !config.authorized.is_empty(),
            authorized: config.authorized.clone(),
            config,
            sessions: BTreeMap::new(),
            records: BTreeMap::new(),
            next_request: 0,
            ever_open: BTreeSet::new(),
        };
        for session in 0..OPEN_AT_START {
            d.step(&Op::Open { session, host: Text::Pick(session % 3), json_lines: false })?;
        }
        Ok(d)
    }

    fn is_open_hub(&self) -> bool {
        !self.keyed
    }

    fn may_register(&self, signer: Option<KeyId>) -> bool {
        self.is_open_hub() || signer.is_some_and(|k| self.authorized.contains(&k) || Some(k) == self.config.hub_key)
    }

    fn may_modify(&self, signer: Option<KeyId>, owner_key: Option<KeyId>) -> bool {
        if self.is_open_hub() {
            return true;
        }
        let Some(k) = signer else { return false };
        Some(k) == self.config.hub_key || owner_key == Some(k) || (owner_key.is_none() && self.authorized.contains(&k))
    }

    fn deadline(&self) -> u64 {
        self.now.saturating_add(self.timeout_ms)
    }

    fn live_id(&self, n: u8) -> String {
        let ids: Vec<&String> = self.records.keys().collect();
        if ids.is_empty() {
            "nope".to_string()
        } else {
            ids[usize::from(n) % ids.len()].clone()
        }
    }

    fn id(&self, id: &IdRef) -> String {
        match id {
            IdRef::Live(n) => self.live_id(*n),
            IdRef::Pick(n) => IDS[usize::from(*n) % IDS.len()].to_string(),
            IdRef::Raw(s) => s.clone(),
        }
    }

    fn registration(&self, reg: &RegIn) -> Registration {
        let port = match reg.port {
            PortIn::Any => PortRequest::Any,
            PortIn::Exact(p) => PortRequest::Exact(p),
            PortIn::Near(n) => PortRequest::Exact(20_000 + u16::from(n % 8)),
            PortIn::Range { low, high } => PortRequest::Range { low, high },
            PortIn::NearRange { low, width } => {
                let low = 20_000 + u16::from(low % 8);
                PortRequest::Range { low, high: low + u16::from(width % 8) }
            }
            PortIn::LivePort(n) => match self.hub.registry().get(&self.live_id(n)) {
                Some(r) => PortRequest::Exact(r.port),
                None => PortRequest::Any,
            },
        };
        Registration {
            id: reg.id.as_ref().map(|id| self.id(id)),
            role: reg.role.get(&ROLES),
            version: reg.version.as_ref().map(|v| v.get(&VERSIONS)),
            host: reg.host.as_ref().map(|h| h.get(&HOSTS)),
            port,
            meta: meta(&reg.meta),
            incarnation: reg.incarnation,
        }
    }

    fn request(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }

    fn signer(n: u8) -> Option<KeyId> {
        SIGNERS[usize::from(n) % SIGNERS.len()]
    }

    fn session(n: u8) -> u64 {
        u64::from(n % SESSIONS)
    }

    /// Sends a client message, renewing the model's lease and spending its request
    /// budget as the hub should.
    fn message(&mut self, session: u64, signer: Option<KeyId>, message: ClientMessage, what: Msg) -> Asked {
        let at = Timestamp::from_millis(self.now);
        let request = !matches!(message, ClientMessage::Heartbeat);
        self.hub.handle_message(at, SessionId(session), signer, message);
        let (deadline, now) = (self.deadline(), self.now);
        let (rate, burst) =
            (u64::from(self.config.limits.max_requests_per_second), self.config.limits.max_request_burst);
        let mut limited = false;
        if let Some(s) = self.sessions.get_mut(&session) {
            s.deadline = deadline;
            if request {
                let elapsed = now.saturating_sub(s.budget_at);
                s.budget = s.budget.saturating_add(elapsed.saturating_mul(rate)).min(u64::from(burst) * 1000);
                s.budget_at = s.budget_at.max(now);
                limited = s.budget < 1000;
                if !limited {
                    s.budget -= 1000;
                }
            }
        }
        Asked::Message { session, signer, what, limited }
    }

    /// Applies one operation, then checks everything.
    ///
    /// # Errors
    /// What disagreed.
    pub fn step(&mut self, op: &Op) -> Result<(), String> {
        let before: BTreeMap<String, Arc<Record>> =
            self.hub.registry().iter().map(|r| (r.id.to_string(), Arc::clone(r))).collect();
        let owners: BTreeMap<String, Option<u64>> =
            before.keys().map(|id| (id.clone(), self.hub.record_owner(id).map(|s| s.0))).collect();
        let sessions_before = self.sessions.clone();
        let at = Timestamp::from_millis(self.now);
        let mut timed_out = false;
        let asked = match op {
            Op::Open { session, host, json_lines } => {
                let (session, host) = (Self::session(*session), host.get(&HOSTS));
                let kind = if *json_lines { SessionKind::JsonLines } else { SessionKind::Client };
                self.hub.handle_session_opened(at, SessionId(session), kind, host.clone());
                self.ever_open.insert(session);
                Asked::Open { session, host }
            }
            Op::Close { session } => {
                let session = Self::session(*session);
                self.hub.handle_session_closed(at, SessionId(session));
                Asked::Close { session }
            }
            Op::Register { session, signer, reg } => {
                let (session, signer, reg) = (Self::session(*session), Self::signer(*signer), self.registration(reg));
                let request = self.request();
                let message = ClientMessage::Register { request, registration: reg.clone() };
                self.message(session, signer, message, Msg::Register { request, reg, announce: false })
            }
            Op::Announce { session, signer, reg, reannounced } => {
                let (session, signer, reg) = (Self::session(*session), Self::signer(*signer), self.registration(reg));
                let request = self.request();
                let message = ClientMessage::Announce { request, registration: reg.clone(), reannounced: *reannounced };
                self.message(session, signer, message, Msg::Register { request, reg, announce: true })
            }
            Op::Free { session, signer, id } => {
                let (session, signer, id) = (Self::session(*session), Self::signer(*signer), self.id(id));
                let request = self.request();
                self.message(session, signer, ClientMessage::Free { request, id }, Msg::Free { request })
            }
            Op::Update { session, signer, id, meta: m } => {
                let (session, signer, id, m) = (Self::session(*session), Self::signer(*signer), self.id(id), meta(m));
                let request = self.request();
                let message = ClientMessage::Update { request, id, meta: m.clone() };
                self.message(session, signer, message, Msg::Update { request, meta: m })
            }
            Op::Subscribe { session, sub, pattern } => {
                let (session, sub, pattern) = (Self::session(*session), u64::from(sub % SUBS), pattern.get(&PATTERNS));
                let request = self.request();
                // No resume point: `Op` keeps its shape so the stored inputs still decode as
                // they did (resuming is covered by seaport-core's resume_props).
                let message = ClientMessage::Subscribe {
                    request,
                    subscription: SubscriptionId(sub),
                    pattern: pattern.clone(),
                    resume: None,
                };
                self.message(session, None, message, Msg::Subscribe { request, sub, pattern })
            }
            Op::Unsubscribe { session, sub } => {
                let (session, sub) = (Self::session(*session), u64::from(sub % SUBS));
                let request = self.request();
                let message = ClientMessage::Unsubscribe { request, subscription: SubscriptionId(sub) };
                self.message(session, None, message, Msg::Unsubscribe { request, sub })
            }
            Op::Heartbeat { session } => {
                self.message(Self::session(*session), None, ClientMessage::Heartbeat, Msg::Heartbeat)
            }
            Op::BadInput { session, unauthorized, message } => {
                let session = Self::session(*session);
                let code = if *unauthorized { ErrorCode::Unauthorized } else { ErrorCode::Malformed };
                self.hub.handle_bad_input(at, SessionId(session), code, message.clone());
                let deadline = self.deadline();
                if let Some(s) = self.sessions.get_mut(&session) {
                    s.deadline = deadline;
                }
                let what = Msg::BadInput { code, message: message.clone() };
                Asked::Message { session, signer: None, what, limited: false }
            }
            Op::Advance { ms } => {
                self.now = self.now.saturating_add(u64::from(*ms));
                Asked::Quiet
            }
            Op::Leap { ms } => {
                self.now = self.now.saturating_add(*ms);
                Asked::Quiet
            }
            Op::Timeout => {
                self.hub.handle_timeout(at);
                timed_out = true;
                Asked::Quiet
            }
            Op::ToDeadline { before } => {
                if let Some(t) = self.hub.poll_timeout() {
                    let target = if *before { t.as_millis().saturating_sub(1) } else { t.as_millis() };
                    self.now = self.now.max(target);
                }
                self.hub.handle_timeout(Timestamp::from_millis(self.now));
                timed_out = true;
                Asked::Quiet
            }
            Op::HubFree { id } => {
                let id = self.id(id);
                let result = self.hub.free(at, &id);
                match (before.get(&id), &result) {
                    (Some(r), Ok(freed)) => ensure(same(r, freed), || format!("Hub::free returned {freed:?}"))?,
                    (None, Err(e)) => ensure(e.code() == ErrorCode::UnknownId, || format!("Hub::free: {e}"))?,
                    (known, result) => return Err(format!("Hub::free({id:?}) = {result:?}, record {known:?}")),
                }
                Asked::Quiet
            }
            Op::Authorize { key } => {
                let key = KEYS[usize::from(*key) % KEYS.len()];
                self.hub.authorize(key);
                self.authorized.insert(key);
                self.keyed = true;
                Asked::Quiet
            }
            Op::Revoke { key } => {
                let key = KEYS[usize::from(*key) % KEYS.len()];
                self.hub.revoke(&key);
                self.authorized.remove(&key);
                Asked::Quiet
            }
        };
        let out = self.drain()?;
        self.check_step(&asked, &before, &owners, &sessions_before, out, timed_out)
    }

    /// Drains every output; checks recipients and that every message encodes.
    fn drain(&mut self) -> Result<Outputs, String> {
        let mut out = Outputs { changes: Vec::new(), replies: Vec::new(), events: Vec::new() };
        while let Some(t) = self.hub.poll_outgoing() {
            check_hub_message_encodes(&t.message);
            let to: Vec<u64> = t.to.iter().map(|s| s.0).collect();
            ensure(!to.is_empty() && to.windows(2).all(|w| w[0] < w[1]), || {
                format!("recipients not strictly ascending: {to:?} for {:?}", t.message)
            })?;
            if let Some(s) = to.iter().find(|s| !self.ever_open.contains(s)) {
                return Err(format!("message to session {s}, never opened: {:?}", t.message));
            }
            match t.message {
                HubMessage::Change { change, .. } => out.changes.push((to, change)),
                message => match to.as_slice() {
                    [s] => out.replies.push((*s, message)),
                    _ => return Err(format!("reply to several sessions {to:?}: {message:?}")),
                },
            }
        }
        while let Some(e) = self.hub.poll_event() {
            out.events.push(e);
        }
        Ok(out)
    }

    #[allow(clippy::too_many_lines)]
    fn check_step(
        &mut self,
        asked: &Asked,
        before: &BTreeMap<String, Arc<Record>>,
        owners: &BTreeMap<String, Option<u64>>,
        sessions_before: &BTreeMap<u64, ModelSession>,
        out: Outputs,
        timed_out: bool,
    ) -> Result<(), String> {
        let Outputs { changes, replies, events } = out;
        let (asker, signer) = match asked {
            Asked::Message { session, signer, .. } => (Some(*session), *signer),
            Asked::Open { session, .. } | Asked::Close { session } => (Some(*session), None),
            Asked::Quiet => (None, None),
        };
        // A message from a session that is not open is ignored.
        if let Asked::Message { session, .. } = asked {
            if !sessions_before.contains_key(session) {
                ensure(changes.is_empty() && replies.is_empty() && events.is_empty(), || {
                    format!("output for a message from closed session {session}: {replies:?} {events:?}")
                })?;
                return self.check_state(timed_out);
            }
        }

        // Events, in order, drive the model. A session's records are freed before its
        // `SessionClosed`, so the closing sessions are gathered first.
        let closed: BTreeSet<u64> = events
            .iter()
            .filter_map(|e| match e {
                Event::SessionClosed { session, .. } => Some(session.0),
                _ => None,
            })
            .collect();
        let mut duplicates = Vec::new();
        let mut rejected_events = 0;
        // Per record id: the event kind and the record, for matching changes.
        let mut changed: BTreeMap<String, (&'static str, Arc<Record>, Option<u64>)> = BTreeMap::new();
        let mut registered: Option<Arc<Record>> = None;
        let mut updated: Option<Arc<Record>> = None;
        let mut freed_by_request = 0;
        for event in &events {
            match event {
                Event::SessionOpened { session, host } => {
                    let ok = matches!(asked, Asked::Open { session: s, host: h } if *s == session.0 && h == host);
                    ensure(ok, || format!("unexpected {event:?}"))?;
                    let (deadline, now) = (self.deadline(), self.now);
                    let budget = u64::from(self.config.limits.max_request_burst) * 1000;
                    let subs = BTreeMap::new();
                    let model = ModelSession { host: host.clone(), deadline, subs, budget, budget_at: now };
                    self.sessions.insert(session.0, model);
                }
                Event::SessionClosed { session, reason } => {
                    let s = self.sessions.remove(&session.0).ok_or_else(|| format!("{event:?}: not open"))?;
                    match reason {
                        CloseReason::Expired => ensure(timed_out && s.deadline <= self.now, || {
                            format!("{event:?} with deadline {} at {}", s.deadline, self.now)
                        })?,
                        CloseReason::Disconnected => {
                            let ok = match asked {
                                Asked::Open { session: s, .. } | Asked::Close { session: s } => *s == session.0,
                                Asked::Quiet | Asked::Message { .. } => false,
                            };
                            ensure(ok, || format!("unexpected {event:?}"))?;
                        }
                        other => return Err(format!("unknown close reason {other:?}")),
                    }
                }
                Event::Registered { session, record } => {
                    let Asked::Message { session: s, what: Msg::Register { reg, announce, .. }, .. } = asked else {
                        return Err(format!("unexpected {event:?}"));
                    };
                    ensure(*session == Some(SessionId(*s)) && registered.is_none(), || {
                        format!("unexpected {event:?}")
                    })?;
                    let assigned = self.check_registered(*s, signer, reg, *announce, record, before, owners)?;
                    self.records.insert(record.id.to_string(), ModelRecord { assigned, key: signer });
                    registered = Some(Arc::clone(record));
                    changed.insert(record.id.to_string(), ("register", Arc::clone(record), None));
                }
                Event::Updated { session, record } => {
                    let Asked::Message { session: s, what, .. } = asked else {
                        return Err(format!("unexpected {event:?}"));
                    };
                    let wanted = match what {
                        Msg::Update { meta, .. } => meta,
                        // An announcement setting another session's metadata; or a
                        // registration whose incarnation is stuck at the maximum, which
                        // refreshes the record in place.
                        Msg::Register { reg, announce, .. } if *announce || record.incarnation == u64::MAX => &reg.meta,
                        _ => return Err(format!("unexpected {event:?}")),
                    };
                    ensure(*session == Some(SessionId(*s)) && updated.is_none(), || format!("unexpected {event:?}"))?;
                    let id = record.id.as_str();
                    let old = before.get(id).ok_or_else(|| format!("{event:?}: no such record before"))?;
                    let key = self.records.get(id).ok_or_else(|| format!("{event:?}: not in the model"))?.key;
                    ensure(self.may_modify(signer, key), || format!("{signer:?} updated {id}, registered by {key:?}"))?;
                    ensure(same(&record.meta, wanted), || format!("{event:?}: metadata is not {wanted:?}"))?;
                    ensure(validate_meta(&record.meta, &self.config.limits.meta).is_ok(), || {
                        format!("{event:?}: metadata over the limits")
                    })?;
                    let unchanged = Record { meta: old.meta.clone(), ..Record::clone(record) };
                    ensure(same(&unchanged, &**old), || format!("{event:?} changed more than metadata: {old:?}"))?;
                    updated = Some(Arc::clone(record));
                    changed.insert(id.to_string(), ("update", Arc::clone(record), None));
                }
                Event::Freed { session, record, reason } => {
                    let id = record.id.to_string();
                    let old = before.get(&id).ok_or_else(|| format!("{event:?}: no such record before"))?;
                    ensure(same(&**old, &**record), || format!("{event:?}: the record was {old:?}"))?;
                    let model = self.records.remove(&id).ok_or_else(|| format!("{event:?}: not in the model"))?;
                    let owner = owners.get(&id).copied().flatten();
                    match reason {
                        FreeReason::OwnerGone => {
                            let gone = owner.filter(|o| closed.contains(o));
                            ensure(gone.is_some() && *session == gone.map(SessionId), || {
                                format!("{event:?}: owner {owner:?}, closed {closed:?}")
                            })?;
                        }
                        FreeReason::Requested => {
                            freed_by_request += 1;
                            match asked {
                                Asked::Message { session: s, what: Msg::Free { .. }, .. } => {
                                    ensure(*session == Some(SessionId(*s)), || format!("unexpected {event:?}"))?;
                                    ensure(self.may_modify(signer, model.key), || {
                                        format!("{signer:?} freed {id}, registered by {:?}", model.key)
                                    })?;
                                }
                                Asked::Quiet => ensure(session.is_none(), || format!("unexpected {event:?}"))?,
                                _ => return Err(format!("unexpected {event:?}")),
                            }
                        }
                        other => return Err(format!("unknown free reason {other:?}")),
                    }
                    let told = owner.filter(|o| *reason == FreeReason::Requested && Some(SessionId(*o)) != *session);
                    ensure(!changed.contains_key(&id), || format!("record {id} changed twice in one step"))?;
                    changed.insert(id, ("free", Arc::clone(record), told));
                }
                Event::Rejected { session, message, .. } => {
                    // The driver's text for bad input is passed on as it is; the hub's own
                    // rejections say what was wrong.
                    let bad_input = matches!(asked, Asked::Message { what: Msg::BadInput { .. }, .. });
                    ensure(Some(session.0) == asker && (bad_input || !message.is_empty()), || {
                        format!("unexpected {event:?}")
                    })?;
                    rejected_events += 1;
                }
                Event::DuplicatePort { id, other } => duplicates.push((id.to_string(), Arc::clone(other))),
                other => return Err(format!("unknown event {other:?}")),
            }
        }
        // A record stored by a registration (or an announcement taking the register path),
        // on a port another record on its host uses, is reported, and only then. (Its event
        // is `Updated`, or none, when its incarnation is stuck at the maximum.)
        let stored = match asked {
            Asked::Message { session, what: Msg::Register { announce, .. }, .. } => {
                replies.iter().find_map(|(_, m)| match m {
                    HubMessage::Registered { record, .. } => {
                        let id = record.id.as_str();
                        let path = !announce || owners.get(id).is_none_or(|o| *o == Some(*session));
                        path.then(|| Arc::clone(record))
                    }
                    _ => None,
                })
            }
            _ => None,
        };
        if let Some(r) = &stored {
            let sharing: Vec<&Arc<Record>> =
                before.values().filter(|o| o.host == r.host && o.port == r.port && o.id != r.id).collect();
            match duplicates.as_slice() {
                [] => ensure(sharing.is_empty(), || format!("no DuplicatePort for {r}, sharing with {sharing:?}"))?,
                [(id, other)] => ensure(*id == r.id.as_str() && sharing.iter().any(|o| same(*o, other)), || {
                    format!("DuplicatePort {id} {other:?} for {r}, sharing with {sharing:?}")
                })?,
                more => return Err(format!("several DuplicatePort events {more:?}")),
            }
        } else {
            ensure(duplicates.is_empty(), || format!("DuplicatePort without a registration: {duplicates:?}"))?;
        }
        if timed_out {
            let late: Vec<u64> =
                self.sessions.iter().filter(|(_, s)| s.deadline <= self.now).map(|(k, _)| *k).collect();
            ensure(late.is_empty(), || format!("sessions {late:?} outlived their deadline at {}", self.now))?;
        }

        self.check_replies(asked, &replies, rejected_events, registered.as_deref(), updated.as_deref())?;
        if let Asked::Message { what: Msg::Free { .. }, .. } = asked {
            let done = matches!(replies.as_slice(), [(_, HubMessage::Done { .. })]);
            ensure(done == (freed_by_request == 1), || format!("free answered {replies:?} with {events:?}"))?;
        }
        self.check_changes(changes, &changed, before, sessions_before, &closed)?;
        self.check_state(timed_out)
    }

    /// Checks a registration against what was asked; returns the range its port was
    /// assigned from, if it was.
    #[allow(clippy::too_many_arguments)]
    fn check_registered(
        &self,
        session: u64,
        signer: Option<KeyId>,
        reg: &Registration,
        announce: bool,
        record: &Record,
        before: &BTreeMap<String, Arc<Record>>,
        owners: &BTreeMap<String, Option<u64>>,
    ) -> Result<Option<(u16, u16)>, String> {
        let id = record.id.as_str();
        ensure(self.may_register(signer), || format!("{signer:?} may not register, but registered {record}"))?;
        let old = before.get(id);
        if old.is_some() {
            let key = self.records.get(id).and_then(|r| r.key);
            ensure(self.may_modify(signer, key), || format!("{signer:?} replaced {id}, registered by {key:?}"))?;
            if announce {
                let owner = owners.get(id).copied().flatten();
                ensure(owner == Some(session), || format!("announce displaced {id}, held by {owner:?}"))?;
            }
        }
        match &reg.id {
            Some(given) => ensure(id == given, || format!("asked for id {given:?}, got {id:?}"))?,
            None => ensure(old.is_none(), || format!("fresh id {id} was taken"))?,
        }
        let host = match &reg.host {
            Some(h) => h.clone(),
            None => self.sessions.get(&session).map(|s| s.host.clone()).unwrap_or_default(),
        };
        let version = match &reg.version {
            Some(v) => Some(parse_version(v).map_err(|e| format!("registered with a bad version: {e}"))?.into()),
            None => None,
        };
        let incarnation = old.map_or(1, |o| o.incarnation.saturating_add(1)).max(reg.incarnation.unwrap_or(0));
        let expected = Record {
            id: record.id.clone(),
            role: record.role.clone(),
            version,
            host: host.into(),
            port: record.port,
            meta: reg.meta.clone(),
            origin: self.config.id,
            incarnation,
        };
        ensure(record.role.as_str() == reg.role && same(record, &expected), || {
            format!("registered {record:?}, expected {expected:?}")
        })?;
        ensure(validate_meta(&record.meta, &self.config.limits.meta).is_ok(), || {
            format!("registered metadata over the limits: {record:?}")
        })?;
        let range = match reg.port {
            PortRequest::Exact(p) => {
                ensure(record.port == p && p != 0, || format!("asked for port {p}, got {}", record.port))?;
                return Ok(None);
            }
            PortRequest::Range { low, high } => (low, high),
            PortRequest::Any => (*self.config.port_range.start(), *self.config.port_range.end()),
        };
        let port = record.port;
        ensure(range.0 != 0 && (range.0..=range.1).contains(&port), || {
            format!("assigned port {port} outside {range:?}")
        })?;
        let (index, count) = self.config.port_partition;
        ensure((port - range.0) % count.max(1) == index, || {
            format!("assigned port {port} of {range:?} outside the hub's share {index} of {count}")
        })?;
        let user = before.values().find(|r| r.host == record.host && r.port == port);
        ensure(user.is_none(), || format!("assigned port {port} was in use on {}: {user:?}", record.host))?;
        Ok(Some(range))
    }

    fn check_replies(
        &mut self,
        asked: &Asked,
        replies: &[(u64, HubMessage)],
        rejected_events: usize,
        registered: Option<&Record>,
        updated: Option<&Record>,
    ) -> Result<(), String> {
        let rejections = replies.iter().filter(|(_, m)| matches!(m, HubMessage::Rejected { .. })).count();
        ensure(rejections == rejected_events, || {
            format!("{rejections} rejections sent, {rejected_events} rejected events: {replies:?}")
        })?;
        let (session, what) = match asked {
            Asked::Quiet | Asked::Close { .. } => {
                return ensure(replies.is_empty(), || format!("unexpected replies {replies:?}"));
            }
            Asked::Open { session, host } => {
                let welcome = HubMessage::Welcome {
                    hub: self.config.id,
                    host: host.clone(),
                    heartbeat_ms: 300,
                    timeout_ms: self.timeout_ms,
                };
                return ensure(replies == [(*session, welcome)], || format!("open answered {replies:?}"));
            }
            Asked::Message { session, what, limited, .. } => {
                let limit =
                    replies.iter().any(|(_, m)| matches!(m, HubMessage::Rejected { code: ErrorCode::RateLimited, .. }));
                if *limited {
                    let ok = matches!(replies, [(s, HubMessage::Rejected { code: ErrorCode::RateLimited, .. })] if s == session);
                    return ensure(ok, || format!("a request over the rate answered {replies:?}"));
                }
                ensure(!limit, || format!("a request within the rate refused: {replies:?}"))?;
                (*session, what)
            }
        };
        if let Some((other, m)) = replies.iter().find(|(s, _)| *s != session) {
            return Err(format!("reply to session {other}, not the asker {session}: {m:?}"));
        }
        let only: Vec<&HubMessage> = replies.iter().map(|(_, m)| m).collect();
        if !matches!(what, Msg::BadInput { .. }) {
            let silent = only.iter().any(|m| matches!(m, HubMessage::Rejected { message, .. } if message.is_empty()));
            ensure(!silent, || format!("a rejection without a message: {only:?}"))?;
        }
        let rejected =
            |request: u64| matches!(only.as_slice(), [HubMessage::Rejected { request: r, .. }] if *r == Some(request));
        match what {
            Msg::Register { request, announce, .. } => {
                let ok = match only.as_slice() {
                    [HubMessage::Registered { request: r, record }] => {
                        *r == *request
                            && match (registered, updated) {
                                (Some(e), None) => same(e, &**record),
                                (None, Some(e)) => (*announce || record.incarnation == u64::MAX) && same(e, &**record),
                                // Registered again as it was, at the maximum incarnation.
                                (None, None) => {
                                    record.incarnation == u64::MAX
                                        && self.hub.registry().get(record.id.as_str()).is_some_and(|l| **l == **record)
                                }
                                (Some(_), Some(_)) => false,
                            }
                    }
                    [HubMessage::Done { request: r }] => {
                        *announce && *r == *request && registered.is_none() && updated.is_none()
                    }
                    _ => rejected(*request) && registered.is_none() && updated.is_none(),
                };
                ensure(ok, || format!("register answered {only:?}"))
            }
            Msg::Free { request } => {
                let ok = matches!(only.as_slice(), [HubMessage::Done { request: r }] if r == request);
                ensure(ok || rejected(*request), || format!("free answered {only:?}"))
            }
            Msg::Update { request, .. } => {
                let ok = match only.as_slice() {
                    // Metadata set to what it was changes nothing: no event, no change.
                    [HubMessage::Updated { request: r, record }] => {
                        r == request
                            && match updated {
                                Some(u) => same(u, &**record),
                                None => self.hub.registry().get(record.id.as_str()).is_some_and(|l| **l == **record),
                            }
                    }
                    _ => rejected(*request) && updated.is_none(),
                };
                ensure(ok, || format!("update answered {only:?}"))
            }
            Msg::Subscribe { request, sub, pattern } => self.check_subscribe(session, *request, *sub, pattern, &only),
            Msg::Unsubscribe { request, sub } => {
                let had = self.sessions.get_mut(&session).and_then(|s| s.subs.remove(sub)).is_some();
                let ok = match only.as_slice() {
                    [HubMessage::Done { request: r }] => had && r == request,
                    [HubMessage::Rejected { request: r, code: ErrorCode::UnknownSubscription, .. }] => {
                        !had && *r == Some(*request)
                    }
                    _ => false,
                };
                ensure(ok, || format!("unsubscribe of {sub} (held: {had}) answered {only:?}"))
            }
            Msg::Heartbeat => ensure(only.is_empty(), || format!("heartbeat answered {only:?}")),
            Msg::BadInput { code, message } => {
                let ok = matches!(only.as_slice(),
                    [HubMessage::Rejected { request: None, code: c, message: m }] if c == code && m == message);
                ensure(ok, || format!("bad input answered {only:?}"))
            }
        }
    }

    fn check_subscribe(
        &mut self,
        session: u64,
        request: u64,
        sub: u64,
        text: &str,
        only: &[&HubMessage],
    ) -> Result<(), String> {
        let held = &self.sessions[&session].subs;
        let max = self.config.limits.max_subscriptions_per_session;
        let pattern = match Pattern::parse(text) {
            Ok(p) => p,
            Err(_) => {
                let ok = matches!(only, [HubMessage::Rejected { request: r, code: ErrorCode::Invalid, .. }] if *r == Some(request));
                return ensure(ok, || format!("bad pattern {text:?} answered {only:?}"));
            }
        };
        if !held.contains_key(&sub) && held.len() >= max {
            let ok = matches!(only, [HubMessage::Rejected { request: r, code: ErrorCode::TooManySubscriptions, .. }] if *r == Some(request));
            return ensure(ok, || format!("subscription over the limit answered {only:?}"));
        }
        let Some((HubMessage::Synced { subscription, at, resumed }, snapshots)) = only.split_last() else {
            return Err(format!("subscribe to {text:?} answered {only:?}"));
        };
        ensure(subscription.0 == sub, || format!("synced {subscription:?} for {sub}"))?;
        let here = self.hub.resume_point();
        ensure(*at == here && !resumed, || format!("synced at {at:?} (resumed: {resumed}), the hub is at {here:?}"))?;
        let chunk = self.config.limits.snapshot_chunk.max(1);
        let mut ids = BTreeSet::new();
        for m in snapshots {
            let HubMessage::Snapshot { subscription, records } = m else {
                return Err(format!("subscribe to {text:?} answered {only:?}"));
            };
            ensure(subscription.0 == sub && !records.is_empty() && records.len() <= chunk, || {
                format!("snapshot chunk of {} records for {subscription:?}", records.len())
            })?;
            for r in records {
                let live = self.hub.registry().get(r.id.as_str());
                ensure(live.is_some_and(|l| same(&**l, &**r)), || format!("snapshot of a stale record {r:?}"))?;
                ensure(ids.insert(r.id.to_string()), || format!("record {} twice in a snapshot", r.id))?;
            }
        }
        let expected: BTreeSet<String> =
            self.hub.registry().iter().filter(|r| pattern.matches(r)).map(|r| r.id.to_string()).collect();
        ensure(ids == expected, || format!("snapshot of {text:?} is {ids:?}, expected {expected:?}"))?;
        if let Some(s) = self.sessions.get_mut(&session) {
            s.subs.insert(sub, pattern);
        }
        Ok(())
    }

    fn check_changes(
        &self,
        changes: Vec<(Vec<u64>, Change)>,
        changed: &BTreeMap<String, (&'static str, Arc<Record>, Option<u64>)>,
        before: &BTreeMap<String, Arc<Record>>,
        sessions_before: &BTreeMap<u64, ModelSession>,
        closed: &BTreeSet<u64>,
    ) -> Result<(), String> {
        let mut seen = BTreeSet::new();
        for (_, change) in &changes {
            let kind = match change {
                Change::Register(_) => "register",
                Change::Update(_) => "update",
                Change::Free(_) => "free",
            };
            let id = change.record().id.to_string();
            ensure(seen.insert(id.clone()), || format!("two changes for record {id} in one step"))?;
            let Some((event_kind, record, _)) = changed.get(&id) else {
                return Err(format!("change {change:?} without an event"));
            };
            ensure(*event_kind == kind && same(&**record, &**change.record()), || {
                format!("change {change:?} for event {event_kind} {record:?}")
            })?;
        }
        for (id, (kind, record, told)) in changed {
            let old = if *kind == "free" { None } else { before.get(id) };
            let interested =
                |s: &ModelSession| s.subs.values().any(|p| p.matches(record) || old.is_some_and(|o| p.matches(o)));
            let may: BTreeSet<u64> = sessions_before
                .iter()
                .filter(|(_, s)| interested(s))
                .map(|(k, _)| *k)
                .chain(told.iter().copied())
                .collect();
            let must: BTreeSet<u64> =
                may.iter().copied().filter(|s| !closed.contains(s) && self.sessions.contains_key(s)).collect();
            let to: BTreeSet<u64> = changes
                .iter()
                .find(|(_, c)| c.record().id.as_str() == id)
                .map(|(to, _)| to.iter().copied().collect())
                .unwrap_or_default();
            ensure(must.is_subset(&to) && to.is_subset(&may), || {
                format!("{kind} of {record} went to {to:?}; must reach {must:?}, may reach {may:?}")
            })?;
        }
        Ok(())
    }

    /// Checks the hub's state against the model after a step.
    fn check_state(&self, timed_out: bool) -> Result<(), String> {
        let hub = &self.hub;
        hub.check_invariants().map_err(|e| format!("check_invariants: {e}"))?;
        let live: BTreeSet<String> = hub.registry().iter().map(|r| r.id.to_string()).collect();
        let model: BTreeSet<String> = self.records.keys().cloned().collect();
        ensure(live == model, || format!("records {live:?}, model {model:?}"))?;
        for r in hub.registry().iter() {
            let owner = hub.record_owner(r.id.as_str());
            ensure(owner.is_some_and(|o| self.sessions.contains_key(&o.0)), || {
                format!("record {r} owned by {owner:?}, not an open session")
            })?;
        }
        ensure(hub.session_count() == self.sessions.len(), || {
            format!("{} sessions, model {}", hub.session_count(), self.sessions.len())
        })?;
        let earliest = self.sessions.values().map(|s| s.deadline).min().map(Timestamp::from_millis);
        ensure(hub.poll_timeout() == earliest, || {
            format!("poll_timeout {:?}, earliest lease {earliest:?}", hub.poll_timeout())
        })?;
        if timed_out {
            ensure(earliest.is_none_or(|t| t.as_millis() > self.now), || "a lease is due after handle_timeout".into())?;
        }
        let mut taken: BTreeMap<(&str, u16), &str> = BTreeMap::new();
        for (id, m) in &self.records {
            let Some((low, high)) = m.assigned else { continue };
            let r = hub.registry().get(id).ok_or_else(|| format!("record {id} missing"))?;
            ensure((low..=high).contains(&r.port), || format!("{r}: assigned port outside {low}-{high}"))?;
            if let Some(other) = taken.insert((r.host.as_str(), r.port), id) {
                return Err(format!("records {other} and {id} both hold assigned port {} on {:?}", r.port, r.host));
            }
        }
        ensure(hub.is_open() == self.is_open_hub(), || "is_open disagrees".into())
    }
}
