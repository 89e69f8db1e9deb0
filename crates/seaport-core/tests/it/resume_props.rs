//! Property tests for resuming subscriptions: a watcher keeps a replica of one pattern
//! as seaport-net's client does (snapshot, resumed changes, changes, and its resume
//! point), drops its connection and comes back with the resume point while other
//! sessions register, update and free records; the hub may also restart (same id, new
//! epoch). After every step:
//!
//! 1. a synced watcher's replica equals the hub's matches (what a fresh snapshot gives),
//!    and after every reconnect it also equals the snapshot a fresh subscription gets;
//! 2. the hub resumes exactly when the point names its incarnation, the log covers it and
//!    no more changes happened since than [`RESUME_SLACK`] plus the records in the view;
//!    in every other case (another hub id or epoch, older than the log, ahead of the hub)
//!    it sends a full snapshot;
//! 3. resumed changes hold at most one change per record id.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use seaport_core::hub::RESUME_SLACK;
use seaport_core::message::{Change, ClientMessage, HubMessage, ResumePoint, SubscriptionId};
use seaport_core::{
    Hub, HubConfig, HubId, Limits, Meta, Pattern, Record, Registration, SessionId, SessionKind, Timestamp, Value,
};

const HUB: HubId = HubId(7);
const WATCHER: SessionId = SessionId(100);
const FRESH: SessionId = SessionId(101);
const SUB: SubscriptionId = SubscriptionId(1);
const PATTERNS: [&str; 4] = ["*", "web", "web@1.x", "db?meta.env=prod"];
const ROLES: [&str; 3] = ["web@1.0.0", "web@2.0.0", "db@1.0.0"];
const IDS: u8 = 6;

/// How the watcher's resume point is tampered with before it reconnects.
#[derive(Clone, Copy, Debug)]
enum Tamper {
    None,
    OtherHub,
    OtherEpoch,
    Future,
    Zero,
}

#[derive(Clone, Debug)]
enum Op {
    Register { session: u8, id: u8, role: u8, prod: bool },
    Update { id: u8, prod: bool },
    Free { id: u8 },
    CloseSession { session: u8 },
    WatcherDrops,
    WatcherReturns { tamper: Tamper },
    HubRestarts,
}

fn op() -> impl Strategy<Value = Op> {
    let tamper = prop_oneof![
        6 => Just(Tamper::None),
        1 => Just(Tamper::OtherHub),
        1 => Just(Tamper::OtherEpoch),
        1 => Just(Tamper::Future),
        1 => Just(Tamper::Zero),
    ];
    prop_oneof![
        6 => (0u8..3, 0..IDS, 0u8..3, any::<bool>()).prop_map(|(session, id, role, prod)| Op::Register { session, id, role, prod }),
        3 => (0..IDS, any::<bool>()).prop_map(|(id, prod)| Op::Update { id, prod }),
        3 => (0..IDS).prop_map(|id| Op::Free { id }),
        1 => (0u8..3).prop_map(|session| Op::CloseSession { session }),
        2 => Just(Op::WatcherDrops),
        3 => tamper.prop_map(|tamper| Op::WatcherReturns { tamper }),
        1 => Just(Op::HubRestarts),
    ]
}

fn meta(prod: bool) -> Meta {
    let mut meta = Meta::new();
    meta.insert("env".into(), Value::from(if prod { "prod" } else { "dev" }));
    meta
}

/// The watcher's side, as the client keeps it.
#[derive(Debug, Default)]
struct Watcher {
    connected: bool,
    synced: bool,
    records: BTreeMap<String, Record>,
    incoming: Option<BTreeMap<String, Record>>,
    resumed_changes: Vec<Change>,
    point: Option<ResumePoint>,
    /// Whether the hub's answer to the last subscribe must be a resume.
    expect_resume: Option<bool>,
}

struct Run {
    hub: Hub,
    epoch: u64,
    log_cap: usize,
    pattern: Pattern,
    watcher: Watcher,
    now: u64,
    resumes: u64,
}

fn config(epoch: u64, log_cap: usize) -> HubConfig {
    HubConfig {
        id: HUB,
        epoch,
        limits: Limits { resume_log_changes: log_cap, snapshot_chunk: 2, ..Limits::default() },
        ..HubConfig::default()
    }
}

impl Run {
    fn new(pattern: usize, log_cap: usize) -> Run {
        let mut run = Run {
            hub: Hub::new(config(1, log_cap)),
            epoch: 1,
            log_cap,
            pattern: Pattern::parse(PATTERNS[pattern]).unwrap(),
            watcher: Watcher::default(),
            now: 0,
            resumes: 0,
        };
        run.open_sessions();
        run
    }

    fn at(&mut self) -> Timestamp {
        self.now += 1;
        Timestamp::from_millis(self.now)
    }

    fn open_sessions(&mut self) {
        for s in 0..3 {
            let at = self.at();
            self.hub.handle_session_opened(at, SessionId(s), SessionKind::Client, format!("10.0.0.{s}"));
        }
        self.pump().unwrap();
    }

    /// Delivers the hub's outputs to the watcher.
    fn pump(&mut self) -> Result<(), TestCaseError> {
        while self.hub.poll_event().is_some() {}
        while let Some(t) = self.hub.poll_outgoing() {
            if !t.to.contains(&WATCHER) || !self.watcher.connected {
                continue;
            }
            let w = &mut self.watcher;
            match t.message {
                HubMessage::Snapshot { records, .. } => {
                    prop_assert!(w.resumed_changes.is_empty(), "snapshot after resumed changes");
                    let incoming = w.incoming.get_or_insert_with(BTreeMap::new);
                    incoming.extend(records.iter().map(|r| (r.id.to_string(), Record::clone(r))));
                }
                HubMessage::Resumed { changes, .. } => {
                    prop_assert!(w.incoming.is_none(), "resumed changes after a snapshot");
                    w.resumed_changes.extend(changes);
                }
                HubMessage::Synced { at, resumed, .. } => {
                    prop_assert_eq!(Some(resumed), w.expect_resume.take(), "resumed or not, at {:?}", at);
                    if resumed {
                        let ids: BTreeSet<&str> = w.resumed_changes.iter().map(|c| c.record().id.as_str()).collect();
                        prop_assert_eq!(ids.len(), w.resumed_changes.len(), "one resumed change per id");
                        for change in std::mem::take(&mut w.resumed_changes) {
                            apply(&mut w.records, &self.pattern, &change);
                        }
                        self.resumes += 1;
                    } else {
                        w.records = w.incoming.take().unwrap_or_default();
                    }
                    w.point = Some(at);
                    w.synced = true;
                }
                // Before its own `Synced`, a subscription ignores changes.
                HubMessage::Change { revision, change } if w.synced => {
                    apply(&mut w.records, &self.pattern, &change);
                    let point = w.point.as_mut().unwrap();
                    prop_assert!(revision > point.revision);
                    point.revision = revision;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let at = self.at();
        match *op {
            Op::Register { session, id, role, prod } => {
                let registration = Registration {
                    id: Some(format!("r{id}")),
                    meta: meta(prod),
                    ..Registration::from_name(ROLES[usize::from(role)])
                };
                self.hub.handle_message(
                    at,
                    SessionId(session.into()),
                    None,
                    ClientMessage::Register { request: 1, registration },
                );
            }
            Op::Update { id, prod } => {
                let message = ClientMessage::Update { request: 1, id: format!("r{id}"), meta: meta(prod) };
                self.hub.handle_message(at, SessionId(0), None, message);
            }
            Op::Free { id } => self.hub.handle_message(
                at,
                SessionId(1),
                None,
                ClientMessage::Free { request: 1, id: format!("r{id}") },
            ),
            Op::CloseSession { session } => {
                self.hub.handle_session_closed(at, SessionId(session.into()));
                self.hub.handle_session_opened(at, SessionId(session.into()), SessionKind::Client, "10.0.0.9".into());
            }
            Op::WatcherDrops => {
                if self.watcher.connected {
                    self.hub.handle_session_closed(at, WATCHER);
                    let w = &mut self.watcher;
                    (w.connected, w.synced, w.incoming, w.expect_resume) = (false, false, None, None);
                    w.resumed_changes.clear();
                }
            }
            Op::WatcherReturns { tamper } => {
                if self.watcher.connected {
                    return Ok(());
                }
                let here = self.hub.resume_point();
                let point = self.watcher.point.map(|p| match tamper {
                    Tamper::None => p,
                    Tamper::OtherHub => ResumePoint { hub: HubId(p.hub.0 ^ 1), ..p },
                    // An epoch no run of the hub in this test uses (the driver draws them at random).
                    Tamper::OtherEpoch => ResumePoint { epoch: p.epoch ^ (1 << 63), ..p },
                    Tamper::Future => ResumePoint { revision: here.revision + 1, ..p },
                    Tamper::Zero => ResumePoint { revision: 0, ..p },
                });
                let records = self.hub.registry().len() as u64;
                let expect = point.is_some_and(|p| {
                    (p.hub, p.epoch) == (here.hub, here.epoch)
                        && (self.hub.resume_floor()..=here.revision).contains(&p.revision)
                        && here.revision - p.revision <= records + RESUME_SLACK
                });
                self.hub.handle_session_opened(at, WATCHER, SessionKind::Client, "10.0.0.100".into());
                self.watcher.connected = true;
                self.watcher.expect_resume = Some(expect);
                let message = ClientMessage::Subscribe {
                    request: 1,
                    subscription: SUB,
                    pattern: self.pattern.to_string(),
                    resume: point,
                };
                self.hub.handle_message(at, WATCHER, None, message);
                self.pump()?;
                prop_assert!(self.watcher.synced, "no Synced after a subscribe");
                self.check_against_fresh_subscription()?;
            }
            Op::HubRestarts => {
                self.epoch += 1;
                self.hub = Hub::new(config(self.epoch, self.log_cap));
                let w = &mut self.watcher;
                (w.connected, w.synced, w.incoming, w.expect_resume) = (false, false, None, None);
                w.resumed_changes.clear();
                self.open_sessions();
            }
        }
        self.pump()?;
        self.hub.check_invariants().map_err(TestCaseError::fail)?;
        if self.watcher.synced {
            let view: BTreeMap<String, Record> = self
                .hub
                .registry()
                .iter()
                .filter(|r| self.pattern.matches(r))
                .map(|r| (r.id.to_string(), Record::clone(r)))
                .collect();
            prop_assert_eq!(&self.watcher.records, &view, "replica vs the hub's matches");
        }
        Ok(())
    }

    /// A fresh subscription on another session gets the snapshot the watcher holds.
    fn check_against_fresh_subscription(&mut self) -> Result<(), TestCaseError> {
        let at = self.at();
        self.hub.handle_session_opened(at, FRESH, SessionKind::Client, "10.0.0.101".into());
        let message =
            ClientMessage::Subscribe { request: 1, subscription: SUB, pattern: self.pattern.to_string(), resume: None };
        self.hub.handle_message(at, FRESH, None, message);
        let mut fresh = BTreeMap::new();
        while let Some(t) = self.hub.poll_outgoing() {
            if let (true, HubMessage::Snapshot { records, .. }) = (t.to == [FRESH], &t.message) {
                fresh.extend(records.iter().map(|r| (r.id.to_string(), Record::clone(r))));
            }
        }
        self.hub.handle_session_closed(at, FRESH);
        prop_assert_eq!(&self.watcher.records, &fresh, "resumed replica vs a fresh snapshot");
        Ok(())
    }
}

/// Applies a change as the client's replica does: a record that stops matching leaves.
fn apply(records: &mut BTreeMap<String, Record>, pattern: &Pattern, change: &Change) {
    match change {
        Change::Register(r) | Change::Update(r) if pattern.matches(r) => {
            records.insert(r.id.to_string(), Record::clone(r));
        }
        Change::Register(r) | Change::Update(r) | Change::Free(r) => {
            records.remove(r.id.as_str());
        }
    }
}

/// Runs `ops`; returns how many subscriptions resumed.
fn run(pattern: usize, log_cap: usize, ops: &[Op]) -> Result<u64, TestCaseError> {
    let mut run = Run::new(pattern, log_cap);
    run.step(&Op::WatcherReturns { tamper: Tamper::None })?;
    for op in ops {
        run.step(op)?;
    }
    Ok(run.resumes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn resumed_replica_equals_a_fresh_snapshot(
        pattern in 0..PATTERNS.len(),
        log_cap in prop_oneof![0usize..12, Just(65_536)],
        ops in prop::collection::vec(op(), 1..80),
    ) {
        run(pattern, log_cap, &ops)?;
    }
}

#[test]
fn a_short_absence_resumes_and_a_long_one_falls_back() {
    let short = [
        Op::Register { session: 0, id: 0, role: 0, prod: true },
        Op::WatcherDrops,
        Op::Register { session: 1, id: 1, role: 0, prod: true },
        Op::Free { id: 0 },
        Op::WatcherReturns { tamper: Tamper::None },
    ];
    assert_eq!(run(0, 8, &short).unwrap(), 1);
    let mut long = vec![Op::WatcherDrops];
    long.extend((0..9).map(|i| Op::Update { id: 0, prod: i % 2 == 0 }));
    long.insert(1, Op::Register { session: 0, id: 0, role: 0, prod: true });
    long.push(Op::WatcherReturns { tamper: Tamper::None });
    assert_eq!(run(0, 8, &long).unwrap(), 0, "ten changes do not fit a log of eight");
    assert_eq!(run(0, 64, &long).unwrap(), 1);
}

#[test]
fn a_restarted_hub_sends_a_full_snapshot_even_when_its_revision_caught_up() {
    let mut ops = vec![Op::Register { session: 0, id: 0, role: 0, prod: true }, Op::WatcherDrops, Op::HubRestarts];
    // The new incarnation counts past the watcher's old revision.
    ops.extend((1..5).map(|id| Op::Register { session: 1, id, role: 0, prod: true }));
    ops.push(Op::WatcherReturns { tamper: Tamper::None });
    assert_eq!(run(0, 64, &ops).unwrap(), 0);
}
