//! Property tests for the hub: random operation sequences against one [`Hub`], checked
//! after every step against a naive model (plain `BTreeMap`s, full scans, no indexes).
//!
//! After every step [`Harness::step`] checks:
//!
//! 1. `hub.check_invariants()`, the registry's contents equal the model's, and
//!    `query` / `for_each_match` equal a naive filter over `iter()` for every pattern in
//!    [`PATTERNS`]; ports in use per host, session count and per-session records agree.
//! 2. Hub-assigned ports: in the requested range, free on the host when assigned (an
//!    exhausted range is refused exactly when the model says every port is taken),
//!    never a recently freed port while another is free, and no two live assigned
//!    records share a port on one host.
//! 3. Every change yields exactly one [`HubMessage::Change`] per interested session (a
//!    session with a subscription matching the record, or for a register/update the
//!    record it replaced; for a free by someone else, also the record's owner), none to
//!    anyone else; replies, snapshots and events are the ones the model predicts. The
//!    model also encodes the hub's current rules that an update setting the same
//!    metadata changes nothing (no change, no event) and that an explicit port already
//!    used on the host raises `Event::DuplicatePort`. Change messages carry strictly
//!    increasing revisions, none beyond the hub's; `Synced` carries the hub's resume point.
//! 4. Leases: `poll_timeout()` is the earliest `last_seen + timeout` of the open sessions;
//!    [`Op::ExpiryProbe`] checks a session is open after `handle_timeout(deadline - 1ms)`
//!    and closed after `handle_timeout(deadline)`.
//! 5. Authorization on a keyed hub: registering without an authorized (or the hub's) key
//!    never creates a record and is answered `Rejected { code: Unauthorized }`; updates
//!    and frees need the registering key or the hub's key.
//!
//! Not modeled: peers (`SessionKind::Peer`, `ClientMessage::Peer`) and node seaport's
//! `Announce`; the arbitrary-message property feeds `Announce` and JSON-lines sessions
//! to the hub and checks only that it never panics and keeps its invariants.
//!
//! Sharing with a fuzz target: [`Op`], [`Setup`], [`Model`], [`Harness`] and [`drain`]
//! use nothing from proptest and report failures as `Err(String)`, so a cargo-fuzz target
//! can decode `Op`s from its input and drive the same harness (move them to a module
//! both can include). The proptest strategies live in the [`strategies`] module.
//! `PROPTEST_CASES=N` runs more cases than the defaults.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use seaport_core::message::{Change, ClientMessage, ErrorCode, HubMessage, ResumePoint, SubscriptionId};
use seaport_core::record::parse_version;
use seaport_core::{
    CloseReason, Event, FreeReason, Hub, HubConfig, HubId, KeyId, Limits, Meta, MetaLimits, Pattern, PortRequest,
    Record, RecordId, Registration, Role, SessionId, SessionKind, Timestamp, Value, VersionRange,
};

// ---------------------------------------------------------------------------------------
// The small universe the operations draw from
// ---------------------------------------------------------------------------------------

/// Hosts of the sessions and of explicit registration hosts.
pub const HOSTS: [&str; 3] = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
/// An invalid host (whitespace).
pub const BAD_HOST: &str = "bad host";
/// Lease timeout of the hub under test.
pub const TIMEOUT_MS: u64 = 1_000;
/// Heartbeat interval announced in the welcome.
pub const HEARTBEAT_MS: u64 = 300;
/// The hub's default port range: six ports, so it runs out.
pub const DEFAULT_RANGE: (u16, u16) = (20_000, 20_005);
/// Registrations per session.
pub const MAX_REGS: usize = 3;
/// Subscriptions per session.
pub const MAX_SUBS: usize = 2;
/// Records per snapshot message.
pub const SNAPSHOT_CHUNK: usize = 2;
/// The hub's id, stamped on records.
pub const HUB_ID: HubId = HubId(7);
/// How many sessions ids operations use (the harness opens all but the last at start).
pub const SESSIONS: u8 = 6;
/// How many subscription ids operations use per session (more than [`MAX_SUBS`]).
pub const SUBS: u8 = 3;

/// Roles and whether they are valid.
pub const ROLES: [(&str, bool); 4] = [("web", true), ("db", true), ("cache", true), ("bad role!", false)];
/// Versions and whether they are valid.
pub const VERSIONS: [(Option<&str>, bool); 5] =
    [(None, true), (Some("1.0.0"), true), (Some("1.2.3"), true), (Some("2.0.0-beta.1"), true), (Some("1.2"), false)];
/// Explicit record ids and whether they are valid.
pub const IDS: [(Option<&str>, bool); 5] =
    [(None, true), (Some("a"), true), (Some("b"), true), (Some("c"), true), (Some("bad id!"), false)];
/// Ids no record ever has (the second one is not even a valid id).
pub const UNKNOWN_IDS: [&str; 2] = ["nope", "bad id!"];

/// Port requests and whether they are valid.
pub const PORTS: [(PortRequest, bool); 11] = [
    (PortRequest::Any, true),
    (PortRequest::Range { low: 30_000, high: 30_002 }, true),
    (PortRequest::Range { low: 30_001, high: 30_003 }, true),
    (PortRequest::Range { low: 40_000, high: 40_000 }, true),
    (PortRequest::Range { low: 65_534, high: 65_535 }, true),
    (PortRequest::Exact(30_001), true),
    (PortRequest::Exact(20_002), true),
    (PortRequest::Exact(40_000), true),
    (PortRequest::Exact(0), false),
    (PortRequest::Range { low: 5, high: 3 }, false),
    (PortRequest::Range { low: 0, high: 10 }, false),
];

/// Metadata choices and whether they pass the hub's limits (200 bytes, depth 2).
pub fn meta_choice(i: u8) -> (Meta, bool) {
    let one = |k: &str, v: Value| -> Meta { [(k.to_string(), v)].into_iter().collect() };
    match i % 5 {
        0 => (Meta::new(), true),
        1 => (one("env", "prod".into()), true),
        2 => (one("env", "dev".into()), true),
        3 => (one("blob", "x".repeat(300).into()), false),
        _ => (one("deep", Value::List(vec![Value::List(vec![Value::List(vec![Value::Null])])])), false),
    }
}
/// How many metadata choices there are, valid ones first.
pub const METAS: (u8, u8) = (3, 2);

/// Authorized keys, an unauthorized key and the hub's own key.
pub const K1: KeyId = KeyId([1; 32]);
/// The second authorized key.
pub const K2: KeyId = KeyId([2; 32]);
/// A key nobody authorized.
pub const KU: KeyId = KeyId([3; 32]);
/// The hub's key.
pub const KH: KeyId = KeyId([4; 32]);
/// Signers an operation can pick.
pub const SIGNERS: [Option<KeyId>; 5] = [None, Some(K1), Some(K2), Some(KU), Some(KH)];
/// Keys `Authorize` and `Revoke` can pick.
pub const KEYS: [KeyId; 4] = [K1, K2, KU, KH];

/// A pattern as text, with its parts spelled out for the naive matcher.
#[derive(Clone, Copy, Debug)]
pub struct PatSpec {
    /// As sent on the wire.
    pub text: &'static str,
    /// Whether `Pattern::parse` accepts it.
    pub valid: bool,
    /// Role filter.
    pub role: Option<&'static str>,
    /// Version range.
    pub range: Option<&'static str>,
    /// Host filter.
    pub host: Option<&'static str>,
    /// A string metadata equality filter.
    pub meta: Option<(&'static str, &'static str)>,
}

const fn pat(text: &'static str, role: Option<&'static str>, range: Option<&'static str>) -> PatSpec {
    PatSpec { text, valid: true, role, range, host: None, meta: None }
}

/// Patterns used by subscriptions and by the query check.
pub const PATTERNS: [PatSpec; 11] = [
    pat("*", None, None),
    pat("web", Some("web"), None),
    pat("db", Some("db"), None),
    pat("cache", Some("cache"), None),
    pat("web@1.x", Some("web"), Some("1.x")),
    pat("*@>=1.2.0", None, Some(">=1.2.0")),
    PatSpec { host: Some("10.0.0.1"), ..pat("*?host=10.0.0.1", None, None) },
    PatSpec { meta: Some(("env", "prod")), ..pat("web?meta.env=prod", Some("web"), None) },
    pat("", None, None),
    PatSpec { valid: false, ..pat("bad role!", None, None) },
    PatSpec { valid: false, ..pat("web?zone=a", None, None) },
];

impl PatSpec {
    /// The naive matcher: every filter is checked directly on the record.
    pub fn matches(&self, r: &Record) -> bool {
        self.valid
            && self.role.is_none_or(|role| r.role.as_str() == role)
            && self.range.is_none_or(|range| {
                let range = VersionRange::parse(range).expect("test ranges parse");
                r.version.as_ref().is_some_and(|v| range.matches(v))
            })
            && self.host.is_none_or(|h| r.host == h)
            && self.meta.is_none_or(|(k, v)| r.meta.get(k) == Some(&Value::String(v.to_string())))
    }
}

// ---------------------------------------------------------------------------------------
// Steps
// ---------------------------------------------------------------------------------------

/// Which record an operation targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The n-th live record (by id, modulo their number); an unknown id when there is none.
    Known(usize),
    /// An entry of [`UNKNOWN_IDS`].
    Unknown(u8),
}

/// One input to the hub. Indexes refer to the tables above (taken modulo their length).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Open (or reopen: close, then open) a session on `HOSTS[host]`.
    Open { session: u8, host: u8 },
    /// The driver reports the session's connection closed.
    Close { session: u8 },
    /// A registration.
    Register {
        session: u8,
        signer: u8,
        role: u8,
        version: u8,
        id: u8,
        /// 0: the session's host; 1..=3: `HOSTS[host - 1]`; 4: [`BAD_HOST`].
        host: u8,
        port: u8,
        meta: u8,
    },
    /// A client frees a record.
    Free { session: u8, signer: u8, target: Target },
    /// A client replaces a record's metadata.
    Update { session: u8, signer: u8, target: Target, meta: u8 },
    /// A client subscribes (or replaces subscription `sub`) to `PATTERNS[pattern]`.
    Subscribe { session: u8, sub: u8, pattern: u8 },
    /// A client drops a subscription.
    Unsubscribe { session: u8, sub: u8 },
    /// A client heartbeat.
    Heartbeat { session: u8 },
    /// The driver reports an undecodable frame.
    BadInput { session: u8 },
    /// Virtual time moves on (no input to the hub).
    Advance { ms: u64 },
    /// `handle_timeout(now)`.
    Timeout,
    /// Move to one millisecond before the earliest lease deadline, `handle_timeout`,
    /// then to the deadline itself, `handle_timeout` again.
    ExpiryProbe,
    /// The embedder frees a record on the hub's authority.
    HubFree { target: Target },
    /// The embedder authorizes `KEYS[key]`.
    Authorize { key: u8 },
    /// The embedder revokes `KEYS[key]`.
    Revoke { key: u8 },
}

/// The hub variant a run uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setup {
    /// Keyed: K1 and K2 authorized. Open: no authorized keys. The hub key is KH either way.
    pub keyed: bool,
    /// How many recently freed ports per host the registry avoids (0: none).
    pub remember_freed: usize,
    /// The hub's seed.
    pub seed: u64,
}

impl Setup {
    /// The hub configuration for this setup.
    // `..Limits::default()` keeps compiling when `Limits` grows a field.
    #[allow(clippy::needless_update)]
    pub fn config(&self) -> HubConfig {
        HubConfig {
            id: HUB_ID,
            seed: self.seed,
            heartbeat: Duration::from_millis(HEARTBEAT_MS),
            timeout: Duration::from_millis(TIMEOUT_MS),
            port_range: DEFAULT_RANGE.0..=DEFAULT_RANGE.1,
            authorized: if self.keyed { [K1, K2].into_iter().collect() } else { BTreeSet::new() },
            hub_key: Some(KH),
            limits: Limits {
                max_registrations_per_session: MAX_REGS,
                max_subscriptions_per_session: MAX_SUBS,
                meta: MetaLimits { max_bytes: 200, max_depth: 2 },
                recently_freed_ports: self.remember_freed,
                snapshot_chunk: SNAPSHOT_CHUNK,
                ..Limits::default()
            },
            ..HubConfig::default()
        }
    }
}

// ---------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------

/// A live record in the model, with its bookkeeping.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The record as the hub should store it.
    pub record: Record,
    /// The range its port was assigned from, or `None` for an explicit port.
    pub assigned: Option<(u16, u16)>,
    /// The session that owns it (its lease keeps the record alive).
    pub owner: Option<u64>,
    /// The key that registered it.
    pub key: Option<KeyId>,
}

/// An open session in the model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSession {
    /// The address its records default to.
    pub host: String,
    /// When it last sent anything (or opened), in ms.
    pub last_seen: u64,
    /// Subscription id to index into [`PATTERNS`].
    pub subs: BTreeMap<u64, usize>,
}

/// The naive model: what the hub should hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Model {
    /// Live records by id.
    pub records: BTreeMap<String, Entry>,
    /// Open sessions.
    pub sessions: BTreeMap<u64, ModelSession>,
    /// Authorized keys.
    pub authorized: BTreeSet<KeyId>,
    /// Given an authorized key at some point: stays keyed when every key is revoked.
    pub keyed: bool,
    /// The hub's key.
    pub hub_key: Option<KeyId>,
    /// How many recently freed ports per host are remembered.
    pub remember_freed: usize,
    /// Per host, recently freed ports and the sequence number of their release.
    pub recent: BTreeMap<String, BTreeMap<u16, u64>>,
    /// Releases so far.
    pub released: u64,
}

/// What a change message is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    /// `Change::Register`.
    Register,
    /// `Change::Update`.
    Update,
    /// `Change::Free`.
    Free,
}

/// One change message and its recipients.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpChange {
    /// Which change.
    pub kind: ChangeKind,
    /// The record it carries.
    pub record: Record,
    /// Who gets it.
    pub to: BTreeSet<u64>,
}

/// A reply (anything but a change) sent to one session, normalized for comparison.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// `Welcome` with this hub's id, heartbeat and timeout, and this host.
    Welcome { host: String },
    /// `Registered`.
    Registered { request: u64, record: Record },
    /// `Updated`.
    Updated { request: u64, record: Record },
    /// `Done`.
    Done { request: u64 },
    /// `Rejected` (the message text is only checked to be non-empty).
    Rejected { request: Option<u64>, code: ErrorCode },
    /// All `Snapshot`s of one subscription in a row, merged.
    Snapshot { sub: u64, ids: BTreeSet<String> },
    /// `Synced`.
    Synced { sub: u64 },
    /// Anything the normalizer did not expect.
    Other(String),
}

/// The events of one step, summarized.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventSummary {
    /// Sessions opened.
    pub opened: Vec<u64>,
    /// Sessions closed, in order.
    pub closed: Vec<(u64, CloseReason)>,
    /// Records registered.
    pub registered: Vec<String>,
    /// Records updated.
    pub updated: Vec<String>,
    /// Records freed (sorted before comparing).
    pub freed: Vec<(String, FreeReason)>,
    /// Requests rejected.
    pub rejected: usize,
    /// `DuplicatePort`: the record registered and the port it shares.
    pub duplicate_port: Vec<(String, u16)>,
}

/// What a step should produce.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expect {
    /// Replies, in order, with their recipient.
    pub replies: Vec<(u64, Reply)>,
    /// Change messages (sorted by record id before comparing).
    pub changes: Vec<ExpChange>,
    /// Events.
    pub events: EventSummary,
}

/// What a registration should do when it succeeds.
struct RegisterPlan {
    host: String,
    /// `Ok(port)` for an explicit port, `Err(range)` for an assigned one.
    port: Result<u16, (u16, u16)>,
    incarnation: u64,
}

impl Model {
    /// The model of a fresh hub for `setup`.
    pub fn new(setup: &Setup) -> Model {
        let config = setup.config();
        Model {
            keyed: !config.authorized.is_empty(),
            authorized: config.authorized,
            hub_key: config.hub_key,
            remember_freed: setup.remember_freed,
            ..Model::default()
        }
    }

    fn is_open(&self) -> bool {
        !self.keyed
    }

    fn may_register(&self, signer: Option<KeyId>) -> bool {
        self.is_open() || signer.is_some_and(|k| self.authorized.contains(&k) || Some(k) == self.hub_key)
    }

    fn may_modify(&self, signer: Option<KeyId>, id: &str) -> bool {
        if self.is_open() {
            return true;
        }
        let Some(k) = signer else { return false };
        let owner_key = self.records.get(id).and_then(|e| e.key);
        Some(k) == self.hub_key || owner_key == Some(k) || (owner_key.is_none() && self.authorized.contains(&k))
    }

    /// Ports used by live records on `host`.
    pub fn used_ports(&self, host: &str) -> BTreeSet<u16> {
        self.records.values().filter(|e| e.record.host == host).map(|e| e.record.port).collect()
    }

    /// Open sessions with a subscription matching any of `records`.
    pub fn interested(&self, records: &[&Record]) -> BTreeSet<u64> {
        let mut to = BTreeSet::new();
        for (id, s) in &self.sessions {
            if s.subs.values().any(|&p| records.iter().any(|r| PATTERNS[p].matches(r))) {
                to.insert(*id);
            }
        }
        to
    }

    /// The earliest lease deadline among open sessions.
    pub fn earliest_deadline(&self) -> Option<u64> {
        self.sessions.values().map(|s| s.last_seen + TIMEOUT_MS).min()
    }

    /// A record let go of `port` on `host`: once no live record uses it, it is recently freed.
    fn release(&mut self, host: &str, port: u16) {
        if self.remember_freed == 0 || self.records.values().any(|e| e.record.host == host && e.record.port == port) {
            return;
        }
        self.released += 1;
        let recent = self.recent.entry(host.to_string()).or_default();
        recent.insert(port, self.released);
        // Over capacity, the port freed longest ago is forgotten.
        while recent.len() > self.remember_freed {
            let oldest = recent.iter().min_by_key(|(_, seq)| **seq).map(|(p, _)| *p);
            recent.remove(&oldest.expect("not empty"));
        }
    }

    fn take(&mut self, id: &str) -> Option<Entry> {
        let entry = self.records.remove(id)?;
        self.release(&entry.record.host, entry.record.port);
        Some(entry)
    }

    /// Stores `entry`, replacing the record with its id. The new record takes its port
    /// before the old one lets go of its own, so replacing a record by one on the same
    /// host and port releases nothing.
    fn put(&mut self, entry: Entry) -> Option<Entry> {
        let (host, port) = (entry.record.host.clone(), entry.record.port);
        let old = self.records.insert(entry.record.id.to_string(), entry);
        if let Some(recent) = self.recent.get_mut(host.as_str()) {
            recent.remove(&port);
        }
        if let Some(old) = &old {
            self.release(&old.record.host, old.record.port);
        }
        old
    }

    /// Frees `id` on behalf of session `by` (`None`: the hub itself). Besides the
    /// subscribers, the record's owner hears of it when someone else freed it.
    fn free(&mut self, id: &str, by: Option<u64>, reason: FreeReason, exp: &mut Expect) {
        let entry = self.take(id).expect("freeing a live record");
        let mut to = self.interested(&[&entry.record]);
        if let Some(owner) = entry.owner.filter(|o| Some(*o) != by && self.sessions.contains_key(o)) {
            to.insert(owner);
        }
        if !to.is_empty() {
            exp.changes.push(ExpChange { kind: ChangeKind::Free, record: entry.record.clone(), to });
        }
        exp.events.freed.push((id.to_string(), reason));
    }

    fn close(&mut self, session: u64, reason: CloseReason, exp: &mut Expect) {
        if self.sessions.remove(&session).is_none() {
            return;
        }
        let owned: Vec<String> =
            self.records.iter().filter(|(_, e)| e.owner == Some(session)).map(|(id, _)| id.clone()).collect();
        for id in owned {
            self.free(&id, Some(session), FreeReason::OwnerGone, exp);
        }
        exp.events.closed.push((session, reason));
    }

    fn expire(&mut self, now: u64, exp: &mut Expect) {
        let mut due: Vec<(u64, u64)> = self
            .sessions
            .iter()
            .map(|(id, s)| (s.last_seen + TIMEOUT_MS, *id))
            .filter(|(deadline, _)| *deadline <= now)
            .collect();
        // The hub expires in deadline order, then by session id.
        due.sort_unstable();
        for (_, session) in due {
            self.close(session, CloseReason::Expired, exp);
        }
    }

    /// Renews the lease of `session` if it is open; whether it is.
    fn renew(&mut self, session: u64, now: u64) -> bool {
        match self.sessions.get_mut(&session) {
            Some(s) => {
                s.last_seen = now;
                true
            }
            None => false,
        }
    }

    /// The outcome of a registration, following the hub's documented order of checks.
    fn plan_register(
        &self,
        session: u64,
        signer: Option<KeyId>,
        op: (usize, usize, usize, usize, usize, bool),
    ) -> Result<RegisterPlan, ErrorCode> {
        let (role, version, id, host, port, meta_ok) = op;
        if !ROLES[role].1 || !VERSIONS[version].1 {
            return Err(ErrorCode::Invalid);
        }
        if !meta_ok {
            return Err(ErrorCode::InvalidMeta);
        }
        let host = match host {
            0 => self.sessions[&session].host.clone(),
            1..=3 => HOSTS[host - 1].to_string(),
            _ => return Err(ErrorCode::Invalid),
        };
        if !IDS[id].1 {
            return Err(ErrorCode::Invalid);
        }
        if !self.may_register(signer) {
            return Err(ErrorCode::Unauthorized);
        }
        let id = IDS[id].0;
        let existing = id.and_then(|id| self.records.get(id));
        if existing.is_some() && !self.may_modify(signer, id.unwrap_or_default()) {
            return Err(ErrorCode::Unauthorized);
        }
        let already_owned = existing.is_some_and(|e| e.owner == Some(session));
        let held = self.records.values().filter(|e| e.owner == Some(session)).count();
        if !already_owned && held >= MAX_REGS {
            return Err(ErrorCode::TooManyRegistrations);
        }
        let port = match PORTS[port].0 {
            PortRequest::Exact(0) => return Err(ErrorCode::InvalidPort),
            PortRequest::Exact(p) => Ok(p),
            PortRequest::Range { low, high } if low == 0 || low > high => return Err(ErrorCode::InvalidPort),
            PortRequest::Range { low, high } => Err((low, high)),
            PortRequest::Any => Err(DEFAULT_RANGE),
        };
        if let Err((low, high)) = port {
            let used = self.used_ports(&host);
            if (low..=high).all(|p| used.contains(&p)) {
                return Err(ErrorCode::PortRangeExhausted);
            }
        }
        Ok(RegisterPlan { host, port, incarnation: existing.map_or(1, |e| e.record.incarnation + 1) })
    }

    /// Checks an assigned port against the free ports and the recently freed ones.
    fn check_assigned_port(&self, host: &str, (low, high): (u16, u16), port: u16) -> Result<(), String> {
        ensure((low..=high).contains(&port), || {
            format!("assigned port {port} outside the requested range {low}-{high}")
        })?;
        let used = self.used_ports(host);
        ensure(!used.contains(&port), || format!("assigned port {port} already in use on {host}: {used:?}"))?;
        let empty = BTreeMap::new();
        let recent = self.recent.get(host).unwrap_or(&empty);
        let free: Vec<u16> = (low..=high).filter(|p| !used.contains(p)).collect();
        let fresh: Vec<u16> = free.iter().copied().filter(|p| !recent.contains_key(p)).collect();
        if fresh.is_empty() {
            let oldest = free.iter().copied().min_by_key(|p| recent[p]);
            ensure(Some(port) == oldest, || {
                format!("only recently freed ports left in {low}-{high}; expected the oldest {oldest:?}, got {port}")
            })
        } else {
            ensure(!recent.contains_key(&port), || {
                format!("assigned recently freed port {port} while {fresh:?} were free and not recently freed")
            })
        }
    }
}

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

fn ensure_eq<T: PartialEq + std::fmt::Debug>(what: &str, actual: T, expected: T) -> Result<(), String> {
    ensure(actual == expected, || format!("{what}:\n  actual:   {actual:?}\n  expected: {expected:?}"))
}

// ---------------------------------------------------------------------------------------
// Draining and normalizing the hub's outputs
// ---------------------------------------------------------------------------------------

/// Everything the hub emitted after one input.
#[derive(Debug, Default)]
pub struct Outputs {
    /// Change messages as (kind, record, recipients).
    pub changes: Vec<ExpChange>,
    /// Other messages, normalized, with their single recipient.
    pub replies: Vec<(u64, Reply)>,
    /// Events, summarized.
    pub events: EventSummary,
    /// Shape errors found while normalizing (recipient lists, snapshot chunks).
    pub problems: Vec<String>,
}

/// Drains every output of `hub`.
pub fn drain(hub: &mut Hub) -> Outputs {
    let mut out = Outputs::default();
    let point = hub.resume_point();
    let mut last_revision = None;
    while let Some(t) = hub.poll_outgoing() {
        let to: Vec<u64> = t.to.iter().map(|s| s.0).collect();
        if to.is_empty() || to.windows(2).any(|w| w[0] >= w[1]) {
            out.problems.push(format!("recipients not strictly ascending or empty: {to:?} for {:?}", t.message));
        }
        if let HubMessage::Change { revision, change } = t.message {
            if last_revision.is_some_and(|last| revision <= last) || revision > point.revision {
                out.problems.push(format!("change revision {revision} after {last_revision:?}, hub at {point:?}"));
            }
            last_revision = Some(revision);
            let kind = match &change {
                Change::Register(_) => ChangeKind::Register,
                Change::Update(_) => ChangeKind::Update,
                Change::Free(_) => ChangeKind::Free,
            };
            let record = Record::clone(change.record());
            out.changes.push(ExpChange { kind, record, to: to.into_iter().collect() });
            continue;
        }
        let &[session] = to.as_slice() else {
            out.problems.push(format!("reply to {to:?}, not to one session: {:?}", t.message));
            continue;
        };
        let reply = match t.message {
            HubMessage::Welcome { hub, host, heartbeat_ms, timeout_ms } => {
                if (hub, heartbeat_ms, timeout_ms) == (HUB_ID, HEARTBEAT_MS, TIMEOUT_MS) {
                    Reply::Welcome { host }
                } else {
                    Reply::Other(format!("welcome with hub {hub} heartbeat {heartbeat_ms} timeout {timeout_ms}"))
                }
            }
            HubMessage::Registered { request, record } => Reply::Registered { request, record: Record::clone(&record) },
            HubMessage::Updated { request, record } => Reply::Updated { request, record: Record::clone(&record) },
            HubMessage::Done { request } => Reply::Done { request },
            HubMessage::Rejected { request, code, message } => {
                if message.is_empty() {
                    out.problems.push(format!("rejection {code:?} without a message"));
                }
                Reply::Rejected { request, code }
            }
            HubMessage::Snapshot { subscription, records } => {
                if records.is_empty() || records.len() > SNAPSHOT_CHUNK {
                    out.problems.push(format!("snapshot chunk of {} records", records.len()));
                }
                let ids: Vec<String> = records.iter().map(|r| r.id.to_string()).collect();
                if let Some((s, Reply::Snapshot { sub, ids: all })) = out.replies.last_mut() {
                    if *s == session && *sub == subscription.0 {
                        for id in ids {
                            if !all.insert(id.clone()) {
                                out.problems.push(format!("record {id} twice in one snapshot"));
                            }
                        }
                        continue;
                    }
                }
                let set: BTreeSet<String> = ids.iter().cloned().collect();
                if set.len() != ids.len() {
                    out.problems.push(format!("duplicate records in snapshot chunk {ids:?}"));
                }
                Reply::Snapshot { sub: subscription.0, ids: set }
            }
            HubMessage::Synced { subscription, at, resumed } => {
                if at != point || resumed {
                    out.problems.push(format!("synced at {at:?} (resumed: {resumed}), the hub is at {point:?}"));
                }
                Reply::Synced { sub: subscription.0 }
            }
            other => Reply::Other(format!("{other:?}")),
        };
        out.replies.push((session, reply));
    }
    while let Some(event) = hub.poll_event() {
        let e = &mut out.events;
        match event {
            Event::SessionOpened { session, .. } => e.opened.push(session.0),
            Event::SessionClosed { session, reason } => e.closed.push((session.0, reason)),
            Event::Registered { record, .. } => e.registered.push(record.id.to_string()),
            Event::Updated { record, .. } => e.updated.push(record.id.to_string()),
            Event::Freed { record, reason, .. } => e.freed.push((record.id.to_string(), reason)),
            Event::Rejected { .. } => e.rejected += 1,
            Event::DuplicatePort { id, other } => {
                if other.id == id {
                    out.problems.push(format!("record {id} reported as sharing a port with itself"));
                }
                e.duplicate_port.push((id.to_string(), other.port));
            }
            other => out.problems.push(format!("unexpected event {other:?}")),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------------------

/// A hub, its model and a virtual clock.
#[derive(Debug)]
pub struct Harness {
    /// The hub under test.
    pub hub: Hub,
    /// What it should hold.
    pub model: Model,
    /// Virtual time in ms; never goes back.
    pub now: u64,
    /// How often each kind of outcome happened, to see what a run exercised.
    pub stats: BTreeMap<String, u64>,
    next_request: u64,
}

impl Harness {
    /// A fresh hub for `setup`, with sessions `0..SESSIONS - 1` opened at time 0 on
    /// hosts 0, 1, 2, 0, 1 (session `SESSIONS - 1` starts closed).
    pub fn new(setup: &Setup) -> Result<Harness, String> {
        let mut h = Harness {
            hub: Hub::new(setup.config()),
            model: Model::new(setup),
            now: 0,
            stats: BTreeMap::new(),
            next_request: 0,
        };
        for session in 0..SESSIONS - 1 {
            h.step(&Op::Open { session, host: session % 3 })?;
        }
        Ok(h)
    }

    /// Runs `ops` one by one, checking after each; the error names the failing step.
    pub fn run(setup: &Setup, ops: &[Op]) -> Result<Harness, String> {
        let mut h = Harness::new(setup)?;
        for (i, op) in ops.iter().enumerate() {
            h.step(op).map_err(|e| format!("step {i} {op:?} at t={}: {e}", h.now))?;
        }
        Ok(h)
    }

    fn request(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }

    fn target(&self, target: Target) -> String {
        match target {
            Target::Known(n) if !self.model.records.is_empty() => {
                self.model.records.keys().nth(n % self.model.records.len()).cloned().unwrap_or_default()
            }
            Target::Known(_) => UNKNOWN_IDS[0].to_string(),
            Target::Unknown(i) => UNKNOWN_IDS[usize::from(i) % UNKNOWN_IDS.len()].to_string(),
        }
    }

    /// Applies one operation to the hub and the model, then checks everything.
    ///
    /// # Errors
    /// What disagreed, when anything did.
    pub fn step(&mut self, op: &Op) -> Result<(), String> {
        let now = self.now;
        let at = Timestamp::from_millis(now);
        let mut exp = Expect::default();
        let out = match *op {
            Op::Open { session, host } => {
                let (sid, host) = (u64::from(session), HOSTS[usize::from(host) % HOSTS.len()].to_string());
                self.hub.handle_session_opened(at, SessionId(sid), SessionKind::Client, host.clone());
                self.model.close(sid, CloseReason::Disconnected, &mut exp);
                self.model
                    .sessions
                    .insert(sid, ModelSession { host: host.clone(), last_seen: now, subs: BTreeMap::new() });
                exp.replies.push((sid, Reply::Welcome { host }));
                exp.events.opened.push(sid);
                drain(&mut self.hub)
            }
            Op::Close { session } => {
                let sid = u64::from(session);
                self.hub.handle_session_closed(at, SessionId(sid));
                self.model.close(sid, CloseReason::Disconnected, &mut exp);
                drain(&mut self.hub)
            }
            Op::Register { session, signer, role, version, id, host, port, meta } => {
                let sid = u64::from(session);
                let signer = SIGNERS[usize::from(signer) % SIGNERS.len()];
                let (role, version, id) = (
                    usize::from(role) % ROLES.len(),
                    usize::from(version) % VERSIONS.len(),
                    usize::from(id) % IDS.len(),
                );
                let (host, port) = (usize::from(host) % 5, usize::from(port) % PORTS.len());
                let (meta, meta_ok) = meta_choice(meta);
                let registration = Registration {
                    id: IDS[id].0.map(String::from),
                    role: ROLES[role].0.to_string(),
                    version: VERSIONS[version].0.map(String::from),
                    host: match host {
                        0 => None,
                        1..=3 => Some(HOSTS[host - 1].to_string()),
                        _ => Some(BAD_HOST.to_string()),
                    },
                    port: PORTS[port].0,
                    meta: meta.clone(),
                    ..Registration::default()
                };
                let request = self.request();
                let before = self.hub.registry().len();
                self.hub.handle_message(at, SessionId(sid), signer, ClientMessage::Register { request, registration });
                let out = drain(&mut self.hub);
                if self.model.renew(sid, now) {
                    let plan = self.model.plan_register(sid, signer, (role, version, id, host, port, meta_ok));
                    // Property 5, stated on its own: no authorized key, no record.
                    if !self.model.may_register(signer) {
                        ensure_eq("records after an unauthorized registration", self.hub.registry().len(), before)?;
                        let all_valid = ROLES[role].1 && VERSIONS[version].1 && IDS[id].1 && meta_ok && host < 4;
                        if all_valid {
                            ensure_eq(
                                "outcome of an unauthorized registration",
                                plan.as_ref().err(),
                                Some(&ErrorCode::Unauthorized),
                            )?;
                        }
                    }
                    match plan {
                        Err(code) => {
                            exp.replies.push((sid, Reply::Rejected { request: Some(request), code }));
                            exp.events.rejected += 1;
                        }
                        Ok(plan) => {
                            let record = out
                                .replies
                                .iter()
                                .find_map(|(_, r)| match r {
                                    Reply::Registered { request: q, record } if *q == request => Some(record.clone()),
                                    _ => None,
                                })
                                .ok_or_else(|| format!("expected Registered, got {:?}", out.replies))?;
                            match IDS[id].0 {
                                Some(given) => ensure_eq("record id", record.id.as_str(), given)?,
                                None => ensure(!self.model.records.contains_key(record.id.as_str()), || {
                                    format!("fresh id {} is already taken", record.id)
                                })?,
                            }
                            let port = match plan.port {
                                Ok(p) => p,
                                Err(range) => {
                                    self.model.check_assigned_port(&plan.host, range, record.port)?;
                                    record.port
                                }
                            };
                            let expected = Record {
                                id: record.id.clone(),
                                role: Role::new(ROLES[role].0).unwrap(),
                                version: VERSIONS[version].0.map(|v| parse_version(v).unwrap().into()),
                                host: plan.host.into(),
                                port,
                                meta,
                                origin: HUB_ID,
                                incarnation: plan.incarnation,
                            };
                            ensure_eq("registered record", &record, &expected)?;
                            let shared = self.model.records.values().any(|e| {
                                e.record.host == record.host && e.record.port == record.port && e.record.id != record.id
                            });
                            if shared {
                                exp.events.duplicate_port.push((record.id.to_string(), record.port));
                            }
                            let entry = Entry {
                                record: record.clone(),
                                assigned: plan.port.err(),
                                owner: Some(sid),
                                key: signer,
                            };
                            let old = self.model.put(entry);
                            let mut about = vec![&record];
                            if let Some(old) = &old {
                                about.push(&old.record);
                            }
                            let to = self.model.interested(&about);
                            if !to.is_empty() {
                                exp.changes.push(ExpChange { kind: ChangeKind::Register, record: record.clone(), to });
                            }
                            exp.events.registered.push(record.id.to_string());
                            exp.replies.push((sid, Reply::Registered { request, record }));
                        }
                    }
                }
                out
            }
            Op::Free { session, signer, target } => {
                let sid = u64::from(session);
                let signer = SIGNERS[usize::from(signer) % SIGNERS.len()];
                let id = self.target(target);
                let request = self.request();
                self.hub.handle_message(at, SessionId(sid), signer, ClientMessage::Free { request, id: id.clone() });
                if self.model.renew(sid, now) {
                    let reply = if !self.model.records.contains_key(&id) {
                        Reply::Rejected { request: Some(request), code: ErrorCode::UnknownId }
                    } else if !self.model.may_modify(signer, &id) {
                        Reply::Rejected { request: Some(request), code: ErrorCode::Unauthorized }
                    } else {
                        self.model.free(&id, Some(sid), FreeReason::Requested, &mut exp);
                        Reply::Done { request }
                    };
                    exp.events.rejected += usize::from(matches!(reply, Reply::Rejected { .. }));
                    exp.replies.push((sid, reply));
                }
                drain(&mut self.hub)
            }
            Op::Update { session, signer, target, meta } => {
                let sid = u64::from(session);
                let signer = SIGNERS[usize::from(signer) % SIGNERS.len()];
                let id = self.target(target);
                let (meta, meta_ok) = meta_choice(meta);
                let request = self.request();
                let message = ClientMessage::Update { request, id: id.clone(), meta: meta.clone() };
                self.hub.handle_message(at, SessionId(sid), signer, message);
                if self.model.renew(sid, now) {
                    let reply = if !self.model.records.contains_key(&id) {
                        Reply::Rejected { request: Some(request), code: ErrorCode::UnknownId }
                    } else if !meta_ok {
                        Reply::Rejected { request: Some(request), code: ErrorCode::InvalidMeta }
                    } else if !self.model.may_modify(signer, &id) {
                        Reply::Rejected { request: Some(request), code: ErrorCode::Unauthorized }
                    } else {
                        let entry = self.model.records.get_mut(&id).unwrap();
                        let old = std::mem::replace(&mut entry.record.meta, meta);
                        let new = entry.record.clone();
                        // Setting the same metadata changes nothing: no change message, no event.
                        if old != new.meta {
                            let old = Record { meta: old, ..new.clone() };
                            let to = self.model.interested(&[&new, &old]);
                            if !to.is_empty() {
                                exp.changes.push(ExpChange { kind: ChangeKind::Update, record: new.clone(), to });
                            }
                            exp.events.updated.push(id.clone());
                        }
                        Reply::Updated { request, record: new }
                    };
                    exp.events.rejected += usize::from(matches!(reply, Reply::Rejected { .. }));
                    exp.replies.push((sid, reply));
                }
                drain(&mut self.hub)
            }
            Op::Subscribe { session, sub, pattern } => {
                let (sid, sub) = (u64::from(session), u64::from(sub % SUBS));
                let p = usize::from(pattern) % PATTERNS.len();
                let request = self.request();
                let message = ClientMessage::Subscribe {
                    request,
                    subscription: SubscriptionId(sub),
                    pattern: PATTERNS[p].text.into(),
                    resume: None,
                };
                self.hub.handle_message(at, SessionId(sid), None, message);
                if self.model.renew(sid, now) {
                    let subs = &self.model.sessions[&sid].subs;
                    let code = if !PATTERNS[p].valid {
                        Some(ErrorCode::Invalid)
                    } else if !subs.contains_key(&sub) && subs.len() >= MAX_SUBS {
                        Some(ErrorCode::TooManySubscriptions)
                    } else {
                        None
                    };
                    match code {
                        Some(code) => {
                            exp.replies.push((sid, Reply::Rejected { request: Some(request), code }));
                            exp.events.rejected += 1;
                        }
                        None => {
                            self.model.sessions.get_mut(&sid).unwrap().subs.insert(sub, p);
                            let ids: BTreeSet<String> = self
                                .model
                                .records
                                .values()
                                .filter(|e| PATTERNS[p].matches(&e.record))
                                .map(|e| e.record.id.to_string())
                                .collect();
                            if !ids.is_empty() {
                                exp.replies.push((sid, Reply::Snapshot { sub, ids }));
                            }
                            exp.replies.push((sid, Reply::Synced { sub }));
                        }
                    }
                }
                drain(&mut self.hub)
            }
            Op::Unsubscribe { session, sub } => {
                let (sid, sub) = (u64::from(session), u64::from(sub % SUBS));
                let request = self.request();
                self.hub.handle_message(
                    at,
                    SessionId(sid),
                    None,
                    ClientMessage::Unsubscribe { request, subscription: SubscriptionId(sub) },
                );
                if self.model.renew(sid, now) {
                    if self.model.sessions.get_mut(&sid).unwrap().subs.remove(&sub).is_some() {
                        exp.replies.push((sid, Reply::Done { request }));
                    } else {
                        let code = ErrorCode::UnknownSubscription;
                        exp.replies.push((sid, Reply::Rejected { request: Some(request), code }));
                        exp.events.rejected += 1;
                    }
                }
                drain(&mut self.hub)
            }
            Op::Heartbeat { session } => {
                let sid = u64::from(session);
                self.hub.handle_message(at, SessionId(sid), None, ClientMessage::Heartbeat);
                self.model.renew(sid, now);
                drain(&mut self.hub)
            }
            Op::BadInput { session } => {
                let sid = u64::from(session);
                self.hub.handle_bad_input(at, SessionId(sid), ErrorCode::Malformed, "garbage frame".into());
                if self.model.renew(sid, now) {
                    exp.replies.push((sid, Reply::Rejected { request: None, code: ErrorCode::Malformed }));
                    exp.events.rejected += 1;
                }
                drain(&mut self.hub)
            }
            Op::Advance { ms } => {
                self.now += ms;
                drain(&mut self.hub)
            }
            Op::Timeout => {
                self.hub.handle_timeout(at);
                self.model.expire(now, &mut exp);
                drain(&mut self.hub)
            }
            Op::ExpiryProbe => return self.expiry_probe(),
            Op::HubFree { target } => {
                let id = self.target(target);
                let result = self.hub.free(at, &id);
                match self.model.records.get(&id).map(|e| e.record.clone()) {
                    Some(record) => {
                        ensure_eq("Hub::free result", result.as_deref().ok(), Some(&record))?;
                        self.model.free(&id, None, FreeReason::Requested, &mut exp);
                    }
                    None => {
                        let code = result.as_ref().err().map(|e| e.code());
                        ensure_eq("Hub::free of an unknown id", code, Some(ErrorCode::UnknownId))?;
                    }
                }
                drain(&mut self.hub)
            }
            Op::Authorize { key } => {
                let key = KEYS[usize::from(key) % KEYS.len()];
                self.hub.authorize(key);
                self.model.authorized.insert(key);
                self.model.keyed = true;
                drain(&mut self.hub)
            }
            Op::Revoke { key } => {
                let key = KEYS[usize::from(key) % KEYS.len()];
                self.hub.revoke(&key);
                self.model.authorized.remove(&key);
                drain(&mut self.hub)
            }
        };
        self.count(&exp);
        compare(out, exp)?;
        self.check()
    }

    fn count(&mut self, exp: &Expect) {
        let mut bump = |k: String, n: u64| *self.stats.entry(k).or_default() += n;
        for (_, reply) in &exp.replies {
            let name = match reply {
                Reply::Rejected { code, .. } => format!("rejected {code:?}"),
                other => format!("{other:?}").split([' ', '{', '(']).next().unwrap_or_default().to_string(),
            };
            bump(name, 1);
        }
        for c in &exp.changes {
            bump(format!("change {:?}", c.kind), 1);
            bump("change recipients".into(), c.to.len() as u64);
        }
        for (_, reason) in &exp.events.closed {
            bump(format!("closed {reason:?}"), 1);
        }
        for (_, reason) in &exp.events.freed {
            bump(format!("freed {reason:?}"), 1);
        }
    }

    fn expiry_probe(&mut self) -> Result<(), String> {
        let Some(deadline) = self.model.earliest_deadline() else { return self.step(&Op::Timeout) };
        let due: Vec<u64> = self
            .model
            .sessions
            .iter()
            .filter(|(_, s)| s.last_seen + TIMEOUT_MS == deadline)
            .map(|(id, _)| *id)
            .collect();
        if deadline > self.now {
            self.step(&Op::Advance { ms: deadline - 1 - self.now })?;
            self.step(&Op::Timeout)?;
            ensure_eq(
                "poll_timeout one ms before the deadline",
                self.hub.poll_timeout(),
                Some(Timestamp::from_millis(deadline)),
            )?;
            for s in &due {
                ensure(self.model.sessions.contains_key(s), || format!("session {s} closed before its deadline"))?;
            }
            self.step(&Op::Advance { ms: 1 })?;
        }
        self.step(&Op::Timeout)?;
        for s in &due {
            ensure(!self.model.sessions.contains_key(s), || format!("session {s} still open at its deadline"))?;
        }
        ensure(self.hub.poll_timeout().is_none_or(|t| t.as_millis() > self.now), || {
            format!("poll_timeout {:?} not after now {} after handle_timeout", self.hub.poll_timeout(), self.now)
        })
    }

    /// Checks the hub against the model (everything but the outputs).
    ///
    /// # Errors
    /// The first disagreement.
    pub fn check(&self) -> Result<(), String> {
        let hub = &self.hub;
        let registry = hub.registry();
        hub.check_invariants().map_err(|e| format!("check_invariants: {e}"))?;

        // 1. Contents, then queries against a full scan.
        let actual: BTreeMap<String, Record> = registry.iter().map(|r| (r.id.to_string(), Record::clone(r))).collect();
        ensure_eq("registry length (duplicates in iter?)", registry.len(), actual.len())?;
        let expected: BTreeMap<String, Record> =
            self.model.records.iter().map(|(id, e)| (id.clone(), e.record.clone())).collect();
        ensure_eq("registry contents", &actual, &expected)?;
        for spec in PATTERNS.iter().filter(|p| p.valid) {
            let pattern = Pattern::parse(spec.text).map_err(|e| format!("{}: {e}", spec.text))?;
            let mut queried: Vec<String> = registry.query(&pattern).map(|r| r.id.to_string()).collect();
            queried.sort();
            let mut each = Vec::new();
            registry.for_each_match(&pattern, |r| each.push(r.id.to_string()));
            each.sort();
            let scan: Vec<String> = registry
                .iter()
                .filter(|r| spec.matches(r))
                .map(|r| r.id.to_string())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            ensure_eq(&format!("query({:?}) vs full scan", spec.text), &queried, &scan)?;
            ensure_eq(&format!("for_each_match({:?}) vs full scan", spec.text), &each, &scan)?;
        }
        for host in HOSTS {
            let used: Vec<u16> = self.model.used_ports(host).into_iter().collect();
            ensure_eq(&format!("ports in use on {host}"), registry.ports_in_use(host), used)?;
        }

        // 2. Assigned ports: inside their range and never shared on one host.
        let mut taken: BTreeMap<(&str, u16), &str> = BTreeMap::new();
        for e in self.model.records.values() {
            let Some((low, high)) = e.assigned else { continue };
            let r = &e.record;
            ensure((low..=high).contains(&r.port), || format!("{r}: assigned port outside {low}-{high}"))?;
            if let Some(other) = taken.insert((r.host.as_str(), r.port), r.id.as_str()) {
                return Err(format!("records {other} and {} both hold assigned port {} on {}", r.id, r.port, r.host));
            }
        }

        // Sessions and leases.
        ensure_eq("session count", hub.session_count(), self.model.sessions.len())?;
        for s in 0..u64::from(SESSIONS) {
            let actual: BTreeSet<String> = hub.session_records(SessionId(s)).map(|id| id.to_string()).collect();
            let expected: BTreeSet<String> =
                self.model.records.iter().filter(|(_, e)| e.owner == Some(s)).map(|(id, _)| id.clone()).collect();
            ensure_eq(&format!("records of session {s}"), actual, expected)?;
        }
        // 4. poll_timeout is the earliest lease.
        let earliest = self.model.earliest_deadline().map(Timestamp::from_millis);
        ensure_eq("poll_timeout", hub.poll_timeout(), earliest)?;
        ensure_eq("is_open", hub.is_open(), self.model.is_open())?;
        Ok(())
    }
}

/// Compares what a step emitted with what the model expected.
fn compare(mut out: Outputs, mut exp: Expect) -> Result<(), String> {
    if !out.problems.is_empty() {
        return Err(format!("malformed outputs: {:?}", out.problems));
    }
    ensure_eq("replies", &out.replies, &exp.replies)?;
    // 3. One change per record and step, to exactly the interested sessions.
    let key = |c: &ExpChange| (c.record.id.to_string(), c.kind);
    out.changes.sort_by_key(key);
    exp.changes.sort_by_key(key);
    ensure_eq("change messages", &out.changes, &exp.changes)?;
    // A record is freed at most once per step: sorting by id is enough.
    out.events.freed.sort_by(|a, b| a.0.cmp(&b.0));
    exp.events.freed.sort_by(|a, b| a.0.cmp(&b.0));
    ensure_eq("events", &out.events, &exp.events)
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

/// Proptest strategies for [`Op`] and [`Setup`].
pub mod strategies {
    use super::*;

    /// Mostly `0..valid`, sometimes one of the `invalid` entries after them.
    fn mostly(valid: u8, invalid: u8) -> BoxedStrategy<u8> {
        if invalid == 0 {
            return (0..valid).boxed();
        }
        prop_oneof![30 => 0..valid, 1 => valid..valid + invalid].boxed()
    }

    fn signer() -> BoxedStrategy<u8> {
        // None, K1, K2, KU, KH: mostly authorized keys.
        prop_oneof![1 => Just(0u8), 4 => 1u8..3, 1 => Just(3u8), 1 => Just(4u8)].boxed()
    }

    fn target() -> BoxedStrategy<Target> {
        prop_oneof![6 => (0usize..64).prop_map(Target::Known), 1 => (0u8..2).prop_map(Target::Unknown)].boxed()
    }

    fn session() -> std::ops::Range<u8> {
        0..SESSIONS
    }

    /// A registration.
    pub fn register() -> BoxedStrategy<Op> {
        (
            session(),
            signer(),
            mostly(3, 1),
            mostly(4, 1),
            mostly(4, 1),
            mostly(4, 1),
            mostly(8, 3),
            mostly(METAS.0, METAS.1),
        )
            .prop_map(|(session, signer, role, version, id, host, port, meta)| Op::Register {
                session,
                signer,
                role,
                version,
                id,
                host,
                port,
                meta,
            })
            .boxed()
    }

    /// Any operation, weighted towards registrations, frees and subscriptions. With `admin`,
    /// the embedder also authorizes and revokes keys (turning a keyed hub open and back).
    pub fn op(admin: bool) -> BoxedStrategy<Op> {
        let ops = prop_oneof![
            2 => (session(), 0u8..3).prop_map(|(session, host)| Op::Open { session, host }),
            1 => session().prop_map(|session| Op::Close { session }),
            20 => register(),
            6 => (session(), signer(), target()).prop_map(|(session, signer, target)| Op::Free { session, signer, target }),
            4 => (session(), signer(), target(), mostly(METAS.0, METAS.1))
                .prop_map(|(session, signer, target, meta)| Op::Update { session, signer, target, meta }),
            6 => (session(), 0..SUBS, mostly(9, 2)).prop_map(|(session, sub, pattern)| Op::Subscribe { session, sub, pattern }),
            2 => (session(), 0..SUBS).prop_map(|(session, sub)| Op::Unsubscribe { session, sub }),
            6 => session().prop_map(|session| Op::Heartbeat { session }),
            1 => session().prop_map(|session| Op::BadInput { session }),
            8 => prop_oneof![12 => 0u64..40, 1 => 40u64..1_500].prop_map(|ms| Op::Advance { ms }),
            3 => Just(Op::Timeout),
            1 => Just(Op::ExpiryProbe),
            1 => target().prop_map(|target| Op::HubFree { target }),
        ];
        if !admin {
            return ops.boxed();
        }
        prop_oneof![
            60 => ops,
            1 => (0u8..4).prop_map(|key| Op::Authorize { key }),
            1 => (0u8..4).prop_map(|key| Op::Revoke { key }),
        ]
        .boxed()
    }

    /// A hub variant.
    pub fn setup(keyed: bool) -> BoxedStrategy<Setup> {
        (prop_oneof![Just(0usize), Just(2), Just(4096)], any::<u64>())
            .prop_map(move |(remember_freed, seed)| Setup { keyed, remember_freed, seed })
            .boxed()
    }
}

/// `cases` by default; `PROPTEST_CASES=N` overrides it for a longer hunt.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(cases);
    ProptestConfig { cases, max_shrink_iters: 4096, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config(160))]

    #[test]
    fn open_hub_agrees_with_model(setup in strategies::setup(false), ops in prop::collection::vec(strategies::op(false), 1..150)) {
        Harness::run(&setup, &ops).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn keyed_hub_agrees_with_model(setup in strategies::setup(true), ops in prop::collection::vec(strategies::op(true), 1..150)) {
        Harness::run(&setup, &ops).map_err(TestCaseError::fail)?;
    }
}

// ---------------------------------------------------------------------------------------
// Arbitrary input never panics
// ---------------------------------------------------------------------------------------

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => any::<String>(),
        3 => "[a-z0-9@.^~*xX|<>= ?&:_/+\"-]{0,24}",
        1 => "[a-c]{1,2}(@[0-9.x^~<>=| -]{0,12})?(\\?(host|meta\\.k|zone)=[a-z0-9\"]{0,4}(&meta\\.k=[a-z0-9]{0,3})?)?",
        1 => Just("web".to_string()),
        1 => Just("1.2.3".to_string()),
    ]
    .boxed()
}

fn value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<f64>().prop_map(Value::Float),
        "[a-z]{0,8}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
            prop::collection::btree_map("[a-z]{0,3}", inner, 0..4).prop_map(Value::Map),
        ]
    })
    .boxed()
}

fn meta() -> BoxedStrategy<Meta> {
    prop_oneof![
        1 => Just(Meta::new()),
        3 => prop::collection::btree_map(text(), value(), 0..4).prop_map(Meta::from),
        1 => "[a-z]{0,400}".prop_map(|s| [("big".to_string(), Value::String(s))].into_iter().collect()),
    ]
    .boxed()
}

fn port_request() -> BoxedStrategy<PortRequest> {
    prop_oneof![
        Just(PortRequest::Any),
        any::<u16>().prop_map(PortRequest::Exact),
        (any::<u16>(), any::<u16>()).prop_map(|(low, high)| PortRequest::Range { low, high }),
        (0u16..4, 0u16..4).prop_map(|(low, high)| PortRequest::Range { low: 1000 + low, high: 1000 + high }),
        Just(PortRequest::Range { low: 1, high: u16::MAX }),
    ]
    .boxed()
}

fn client_message() -> BoxedStrategy<ClientMessage> {
    // Arbitrary text mixed with valid values, so that some registrations succeed and the
    // hub gets into deeper states (replacements, ownership moves, overflows).
    let id = || prop_oneof![text(), "[a-c]".prop_map(String::from)];
    let registration = (
        prop::option::of(id()),
        prop_oneof![text(), "[a-c]".prop_map(String::from)],
        prop::option::of(prop_oneof![text(), "[0-2]\\.[0-2]\\.[0-2](-beta)?"]),
        prop::option::of(prop_oneof![text(), Just(HOSTS[1].to_string())]),
        port_request(),
        meta(),
        prop::option::of(prop_oneof![0u64..4, Just(u64::MAX - 1), Just(u64::MAX)]),
    )
        .prop_map(|(id, role, version, host, port, meta, incarnation)| Registration {
            id,
            role,
            version,
            host,
            port,
            meta,
            incarnation,
        })
        .boxed();
    let request = any::<u64>();
    prop_oneof![
        4 => (request, registration.clone()).prop_map(|(request, registration)| ClientMessage::Register { request, registration }),
        2 => (request, registration, any::<bool>()).prop_map(|(request, registration, reannounced)| {
            ClientMessage::Announce { request, registration, reannounced }
        }),
        2 => (request, id()).prop_map(|(request, id)| ClientMessage::Free { request, id }),
        1 => (request, id(), meta()).prop_map(|(request, id, meta)| ClientMessage::Update { request, id, meta }),
        2 => (request, 0u64..3, text(), resume_point()).prop_map(|(request, s, pattern, resume)| ClientMessage::Subscribe {
            request,
            subscription: SubscriptionId(s),
            pattern,
            resume,
        }),
        1 => (request, 0u64..3).prop_map(|(request, s)| ClientMessage::Unsubscribe { request, subscription: SubscriptionId(s) }),
        1 => Just(ClientMessage::Heartbeat),
    ]
    .boxed()
}

/// Resume points a client might send: none, plausible ones of this hub, and garbage.
fn resume_point() -> BoxedStrategy<Option<ResumePoint>> {
    let hub = prop_oneof![Just(HUB_ID), any::<u64>().prop_map(HubId)];
    let epoch = prop_oneof![Just(0u64), any::<u64>()];
    let revision = prop_oneof![0u64..40, any::<u64>()];
    prop::option::of((hub, epoch, revision).prop_map(|(hub, epoch, revision)| ResumePoint { hub, epoch, revision }))
        .boxed()
}

#[derive(Clone, Debug)]
enum RawOp {
    Message { session: u8, signer: u8, message: ClientMessage },
    Reopen { session: u8, host: String, json_lines: bool },
    Close { session: u8 },
    Advance { ms: u64 },
}

fn raw_op() -> BoxedStrategy<RawOp> {
    prop_oneof![
        12 => (0u8..4, 0u8..5, client_message()).prop_map(|(session, signer, message)| RawOp::Message { session, signer, message }),
        1 => (0u8..4, prop_oneof![text(), Just(HOSTS[0].to_string())], any::<bool>())
            .prop_map(|(session, host, json_lines)| RawOp::Reopen { session, host, json_lines }),
        1 => (0u8..4).prop_map(|session| RawOp::Close { session }),
        2 => (0u64..2_000).prop_map(|ms| RawOp::Advance { ms }),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn parsers_never_panic(input in text()) {
        let _ = Pattern::parse(&input);
        let _ = Role::new(input.as_str());
        let _ = RecordId::new(input.as_str());
        let _ = parse_version(&input);
        let _ = Value::parse_loose(&input);
        let _ = VersionRange::parse(&input);
        let _ = Registration::from_name(&input);
        if let Ok(p) = Pattern::parse(&input) {
            // Display, then parse again, gives the same pattern (ranges compared as text,
            // since a range may display normalized).
            let text = p.to_string();
            let q = Pattern::parse(&text).map_err(|e| TestCaseError::fail(format!("{text:?} from {input:?}: {e}")))?;
            prop_assert_eq!(q.role(), p.role());
            prop_assert_eq!(q.host(), p.host());
            prop_assert_eq!(q.meta_filters(), p.meta_filters());
            prop_assert_eq!(q.range().map(|r| r.to_string()), p.range().map(|r| r.to_string()));
        }
        if let Ok(range) = VersionRange::parse(&input) {
            let _ = range.matches(&"1.2.3".parse().unwrap());
            let _ = range.matches(&"1.2.3-beta.1".parse().unwrap());
            let _ = range.to_string();
        }
    }

    #[test]
    fn arbitrary_messages_keep_invariants(keyed in any::<bool>(), seed in any::<u64>(), ops in prop::collection::vec(raw_op(), 1..60)) {
        let setup = Setup { keyed, remember_freed: 4096, seed };
        let mut hub = Hub::new(setup.config());
        let mut now = 0;
        for s in 0..3u64 {
            hub.handle_session_opened(Timestamp::from_millis(0), SessionId(s), SessionKind::Client, HOSTS[s as usize].into());
        }
        for op in ops {
            let at = Timestamp::from_millis(now);
            match op {
                RawOp::Message { session, signer, message } => {
                    let port = match &message {
                        ClientMessage::Register { registration, .. } | ClientMessage::Announce { registration, .. } => {
                            Some(registration.port)
                        }
                        _ => None,
                    };
                    hub.handle_message(at, SessionId(session.into()), SIGNERS[usize::from(signer)], message);
                    while let Some(t) = hub.poll_outgoing() {
                        if let HubMessage::Registered { record, .. } = &t.message {
                            prop_assert!(hub.registry().get(record.id.as_str()).is_some());
                            match port {
                                Some(PortRequest::Exact(p)) => prop_assert_eq!(record.port, p),
                                Some(PortRequest::Range { low, high }) => prop_assert!((low..=high).contains(&record.port)),
                                Some(PortRequest::Any) => prop_assert!((DEFAULT_RANGE.0..=DEFAULT_RANGE.1).contains(&record.port)),
                                None => prop_assert!(false, "Registered reply to a non-register message"),
                            }
                        }
                    }
                }
                RawOp::Reopen { session, host, json_lines } => {
                    let kind = if json_lines { SessionKind::JsonLines } else { SessionKind::Client };
                    hub.handle_session_opened(at, SessionId(session.into()), kind, host);
                }
                RawOp::Close { session } => hub.handle_session_closed(at, SessionId(session.into())),
                RawOp::Advance { ms } => {
                    now += ms;
                    hub.handle_timeout(Timestamp::from_millis(now));
                }
            }
            while hub.poll_outgoing().is_some() {}
            while hub.poll_event().is_some() {}
            hub.check_invariants().map_err(TestCaseError::fail)?;
        }
    }
}

/// Prints what the generated sequences exercise: `cargo test --test it -- --ignored --nocapture`.
#[test]
#[ignore]
fn print_coverage_stats() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut total: BTreeMap<String, u64> = BTreeMap::new();
    for keyed in [false, true] {
        for _ in 0..100 {
            let setup = strategies::setup(keyed).new_tree(&mut runner).unwrap().current();
            let ops = prop::collection::vec(strategies::op(keyed), 1..150).new_tree(&mut runner).unwrap().current();
            let h = Harness::run(&setup, &ops).unwrap();
            for (k, v) in h.stats {
                *total.entry(format!("{} {k}", if keyed { "keyed" } else { "open" })).or_default() += v;
            }
        }
    }
    for (k, v) in total {
        println!("{k:40} {v}");
    }
}

// ---------------------------------------------------------------------------------------
// Fixed scenarios the properties above cover at random, kept as plain regression tests
// ---------------------------------------------------------------------------------------

#[test]
fn exhaustion_and_collisions_in_a_tiny_range() {
    let setup = Setup { keyed: false, remember_freed: 4096, seed: 1 };
    let reg = |session, id, port| Op::Register { session, signer: 0, role: 0, version: 1, id, host: 1, port, meta: 0 };
    let ops = [
        // Three sessions fill 30000-30002, the fourth register finds it exhausted.
        reg(0, 1, 1),
        reg(1, 2, 1),
        reg(2, 3, 1),
        reg(3, 0, 1),
        // An explicit port inside the range is honoured even though it is taken.
        reg(3, 0, 5),
        Op::Subscribe { session: 4, sub: 0, pattern: 0 },
        Op::Free { session: 4, signer: 0, target: Target::Known(0) },
        reg(0, 0, 2),
        Op::ExpiryProbe,
        Op::ExpiryProbe,
    ];
    Harness::run(&setup, &ops).unwrap();
}

#[test]
fn keyed_hub_refuses_unauthorized_and_foreign_keys() {
    let setup = Setup { keyed: true, remember_freed: 0, seed: 2 };
    let reg = |signer| Op::Register { session: 0, signer, role: 1, version: 0, id: 1, host: 0, port: 0, meta: 0 };
    let ops = [
        reg(0),                                                                  // unsigned
        reg(3),                                                                  // unauthorized key
        reg(1),                                                                  // K1
        Op::Update { session: 1, signer: 2, target: Target::Known(0), meta: 1 }, // K2: not the owner
        Op::Free { session: 1, signer: 0, target: Target::Known(0) },            // unsigned
        Op::Update { session: 1, signer: 4, target: Target::Known(0), meta: 1 }, // hub key
        Op::Revoke { key: 0 },
        Op::Free { session: 2, signer: 1, target: Target::Known(0) }, // the revoked owner key still frees
        reg(4),                                                       // the hub key registers
        Op::Revoke { key: 1 },                                        // no key left: still keyed
        reg(0),                                                       // so unsigned is refused
        reg(4),                                                       // and the hub key registers
    ];
    let h = Harness::run(&setup, &ops).unwrap();
    assert!(!h.hub.is_open());
}

// ---------------------------------------------------------------------------------------
// Regressions: minimal cases of bugs the properties above found
// ---------------------------------------------------------------------------------------

/// Displaying a pattern and parsing the text again gives the same pattern, for metadata
/// strings that need quoting or JSON escapes too (`Pattern` serializes through `Display`).
/// (Found while writing the round-trip property: `Display` wrote such strings as JSON,
/// which `Value::parse_loose` did not unescape.)
#[test]
fn pattern_display_round_trips_quoted_meta_strings() {
    for text in [
        r#"web?meta.k="""""#,
        r#"web?meta.k=""x"""#,
        r#"web?meta.k="a\"b""#,
        r#"*?meta.k="3""#,
        "*?meta.k=a&meta.j=\"&\"",
    ] {
        let p = Pattern::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let again = Pattern::parse(&p.to_string()).unwrap_or_else(|e| panic!("{text:?} displayed as {p}: {e}"));
        assert_eq!(again, p, "{text:?} displayed as {:?}", p.to_string());
    }
}

/// The registry remembers as many recently freed ports as its capacity, however often
/// other ports churn. (Found by this suite: `HostPorts::release` used to trim its queue
/// to `2 * capacity` entries, stale ones included, and so forgot live ones early.)
#[test]
fn recently_freed_port_remembered_below_capacity() {
    use seaport_core::Registry;
    let record = |id: &str, port| Record {
        id: RecordId::new(id).unwrap(),
        role: Role::new("x").unwrap(),
        version: None,
        host: "h".into(),
        port,
        meta: Meta::new(),
        origin: HubId(0),
        incarnation: 1,
    };
    let mut registry = Registry::new(1);
    registry.set_recently_freed_capacity(2);
    // 100 is freed once, then 101 is taken and freed four times: two ports recently freed,
    // within the capacity of two.
    registry.insert(record("a", 100));
    registry.remove("a");
    for _ in 0..4 {
        registry.insert(record("b", 101));
        registry.remove("b");
    }
    // 102 was never used: it is the only port in the range not freed recently.
    for _ in 0..50 {
        assert_eq!(registry.assign_port("h", 100..=102).unwrap(), 102);
    }
}

/// BUG (open): replacing a record by one on the same host and port (a metadata update, or
/// registering the same id with the same explicit port) makes the registry forget a
/// recently freed port. `Registry::insert` releases the old record's port before it
/// acquires the new one; the port's use count drops to zero, so it enters the recently
/// freed set, which at capacity evicts the oldest genuinely freed port; then the acquire
/// takes it out again. Acquiring the new port before unindexing the old record fixes it.
#[test]
fn bug_replacing_a_record_in_place_forgets_a_recently_freed_port() {
    use seaport_core::Registry;
    let record = |id: &str, port, env: &str| Record {
        id: RecordId::new(id).unwrap(),
        role: Role::new("x").unwrap(),
        version: None,
        host: "h".into(),
        port,
        meta: [("env".to_string(), Value::from(env))].into_iter().collect(),
        origin: HubId(0),
        incarnation: 1,
    };
    let mut registry = Registry::new(1);
    registry.set_recently_freed_capacity(2);
    registry.insert(record("a", 100, "x"));
    registry.remove("a");
    registry.insert(record("b", 101, "x"));
    registry.remove("b");
    // 100 and 101 are the two recently freed ports. Replace c in place (same port 102).
    registry.insert(record("c", 102, "x"));
    registry.insert(record("c", 102, "y"));
    // 103 is the only free port in 100-103 not freed recently.
    for _ in 0..50 {
        assert_eq!(registry.assign_port("h", 100..=103).unwrap(), 103, "recently freed port 100 was forgotten");
    }
}

/// The same bug through the hub: a metadata update forgets a recently freed port.
#[test]
fn bug_hub_update_forgets_a_recently_freed_port() {
    // Port picks are random: try several seeds, each on a fresh hub.
    for seed in 0..20 {
        let mut hub = Hub::new(HubConfig {
            seed,
            limits: Limits { recently_freed_ports: 2, ..Limits::default() },
            ..HubConfig::default()
        });
        let (now, s) = (Timestamp::from_millis(0), SessionId(1));
        hub.handle_session_opened(now, s, SessionKind::Client, "h".into());
        let register = |hub: &mut Hub, request, id: &str, port| {
            let registration = Registration { id: Some(id.into()), port, ..Registration::new("x") };
            hub.handle_message(now, s, None, ClientMessage::Register { request, registration });
        };
        register(&mut hub, 1, "a", PortRequest::Exact(100));
        register(&mut hub, 2, "b", PortRequest::Exact(101));
        register(&mut hub, 3, "c", PortRequest::Exact(102));
        hub.handle_message(now, s, None, ClientMessage::Free { request: 4, id: "a".into() });
        hub.handle_message(now, s, None, ClientMessage::Free { request: 5, id: "b".into() });
        // 100 and 101 were just freed; updating c must not make the hub forget either.
        let meta: Meta = [("env".to_string(), Value::from("prod"))].into_iter().collect();
        hub.handle_message(now, s, None, ClientMessage::Update { request: 6, id: "c".into(), meta });
        register(&mut hub, 7, "d", PortRequest::Range { low: 100, high: 103 });
        let port = hub.registry().get("d").expect("registered").port;
        assert_eq!(port, 103, "seed {seed}: the hub assigned recently freed port {port}");
    }
}

/// A client-chosen incarnation of `u64::MAX` must not make the next registration of the
/// same id overflow. (Found by `arbitrary_messages_keep_invariants`: `Hub::register`
/// added 1 to the known incarnation, a panic in debug builds.)
#[test]
fn registering_again_after_incarnation_max_does_not_overflow() {
    let mut hub = Hub::new(HubConfig::default());
    let (now, s) = (Timestamp::from_millis(0), SessionId(1));
    hub.handle_session_opened(now, s, SessionKind::Client, "h".into());
    for (request, incarnation) in [(1, Some(u64::MAX)), (2, None)] {
        let registration = Registration { id: Some("a".into()), incarnation, ..Registration::new("x") };
        hub.handle_message(now, s, None, ClientMessage::Register { request, registration });
    }
    while hub.poll_outgoing().is_some() {}
    hub.check_invariants().unwrap();
}
