use super::*;
use crate::message::ClientMessage as C;

const T0: Timestamp = Timestamp::from_millis(1_000);
const A: SessionId = SessionId(1);
const B: SessionId = SessionId(2);
const W: SessionId = SessionId(3);

fn hub() -> Hub {
    Hub::new(HubConfig::default())
}

fn open(hub: &mut Hub, s: SessionId, host: &str) {
    hub.handle_session_opened(T0, s, SessionKind::Client, host.into());
}

fn drain(hub: &mut Hub) -> Vec<Transmit> {
    std::iter::from_fn(|| hub.poll_outgoing()).collect()
}

/// The messages addressed to `s` alone (not fan-out to others).
fn replies(hub: &mut Hub, s: SessionId) -> Vec<HubMessage> {
    drain(hub).into_iter().filter(|t| t.to == vec![s]).map(|t| t.message).collect()
}

fn events(hub: &mut Hub) -> Vec<Event> {
    std::iter::from_fn(|| hub.poll_event()).collect()
}

fn register(
    hub: &mut Hub,
    s: SessionId,
    signer: Option<KeyId>,
    reg: Registration,
) -> Result<Arc<Record>, (ErrorCode, String)> {
    hub.handle_message(T0, s, signer, C::Register { request: 7, registration: reg });
    let mut result = None;
    for t in drain(hub) {
        match t.message {
            HubMessage::Registered { request: 7, record } if t.to == vec![s] => result = Some(Ok(record)),
            HubMessage::Rejected { request: Some(7), code, message } if t.to == vec![s] => {
                result = Some(Err((code, message)))
            }
            _ => {}
        }
    }
    result.expect("a reply to the register")
}

fn subscribe(hub: &mut Hub, s: SessionId, sub: u64, pattern: &str) -> Vec<HubMessage> {
    hub.handle_message(
        T0,
        s,
        None,
        C::Subscribe { request: 1, subscription: SubscriptionId(sub), pattern: pattern.into(), resume: None },
    );
    drain(hub).into_iter().map(|t| t.message).collect()
}

#[test]
fn open_session_gets_a_welcome_with_its_host() {
    let mut hub = hub();
    open(&mut hub, A, "10.1.2.3");
    let out = drain(&mut hub);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].message,
        HubMessage::Welcome { hub: HubId(0), host: "10.1.2.3".into(), heartbeat_ms: 15_000, timeout_ms: 45_000 }
    );
}

#[test]
fn sessions_from_one_address_share_its_name() {
    let mut hub = hub();
    open(&mut hub, A, "10.1.2.3");
    open(&mut hub, B, "10.1.2.3");
    open(&mut hub, W, "10.9.9.9");
    let host = |hub: &Hub, s: SessionId| hub.sessions.get(&s).map(|s| s.host.clone()).unwrap();
    let (a, b, w) = (host(&hub, A), host(&hub, B), host(&hub, W));
    assert_eq!((a.as_str(), b.as_str(), w.as_str()), ("10.1.2.3", "10.1.2.3", "10.9.9.9"));
    assert_eq!(a.as_str().as_ptr(), b.as_str().as_ptr(), "one copy of the address");
    // A record on the address shares it too, and so does a later session through it.
    register(&mut hub, A, None, Registration::from_name("web@1.2.3")).unwrap();
    let c = SessionId(4);
    open(&mut hub, c, "10.1.2.3");
    assert_eq!(host(&hub, c).as_str().as_ptr(), a.as_str().as_ptr());
}

#[test]
fn register_uses_session_host_and_default_range() {
    let mut hub = hub();
    open(&mut hub, A, "10.1.2.3");
    let record = register(&mut hub, A, None, Registration::from_name("web@1.2.3")).unwrap();
    assert_eq!(record.host, "10.1.2.3");
    assert!(DEFAULT_PORT_RANGE.contains(&record.port));
    assert_eq!(record.id.as_str().len(), 16);
    assert_eq!(record.incarnation, 1);
}

#[test]
fn invalid_registrations_are_rejected_with_reasons() {
    let mut hub = hub();
    open(&mut hub, A, "h");
    let cases = [
        (Registration::from_name("bad role@1.0.0"), ErrorCode::Invalid, "invalid role"),
        (Registration::from_name("web@1.0"), ErrorCode::Invalid, "invalid version"),
        (Registration { port: PortRequest::Exact(0), ..Registration::new("web") }, ErrorCode::InvalidPort, "port 0"),
        (
            Registration { port: PortRequest::Range { low: 9, high: 3 }, ..Registration::new("web") },
            ErrorCode::InvalidPort,
            "9-3",
        ),
        (Registration { id: Some("no spaces".into()), ..Registration::new("web") }, ErrorCode::Invalid, "record id"),
        (Registration { host: Some("a b".into()), ..Registration::new("web") }, ErrorCode::Invalid, "host"),
    ];
    for (reg, code, text) in cases {
        let (got, message) = register(&mut hub, A, None, reg).unwrap_err();
        assert_eq!(got, code, "{message}");
        assert!(message.contains(text), "{message:?} should mention {text:?}");
    }
    assert!(hub.registry().is_empty());
    assert!(events(&mut hub).iter().any(|e| matches!(e, Event::Rejected { session: A, .. })));
}

#[test]
fn exhausted_range_is_an_error() {
    let mut hub = hub();
    open(&mut hub, A, "h");
    let reg = || Registration { port: PortRequest::Range { low: 5000, high: 5001 }, ..Registration::new("x") };
    register(&mut hub, A, None, reg()).unwrap();
    register(&mut hub, A, None, reg()).unwrap();
    let (code, message) = register(&mut hub, A, None, reg()).unwrap_err();
    assert_eq!(code, ErrorCode::PortRangeExhausted);
    assert!(message.contains("5000-5001"), "{message}");
}

#[test]
fn re_registering_an_id_moves_it_to_the_new_session() {
    let mut hub = hub();
    open(&mut hub, A, "h");
    open(&mut hub, B, "h");
    let reg = Registration { id: Some("svc1".into()), port: PortRequest::Exact(4000), ..Registration::new("web") };
    let first = register(&mut hub, A, None, reg.clone()).unwrap();
    let second = register(&mut hub, B, None, reg).unwrap();
    assert_eq!(second.incarnation, first.incarnation + 1);
    assert_eq!(hub.registry().len(), 1);
    // The old session closing late must not free the record now held by B.
    hub.handle_session_closed(T0, A);
    assert!(hub.registry().get("svc1").is_some());
    hub.handle_session_closed(T0, B);
    assert!(hub.registry().get("svc1").is_none());
    hub.check_invariants().unwrap();
}

#[test]
fn subscription_gets_snapshot_then_synced_then_changes() {
    let mut hub = hub();
    open(&mut hub, A, "h");
    open(&mut hub, W, "w");
    drain(&mut hub);
    let rec = register(&mut hub, A, None, Registration::from_name("web@1.0.0")).unwrap();
    register(&mut hub, A, None, Registration::from_name("db@1.0.0")).unwrap();
    let msgs = subscribe(&mut hub, W, 9, "web");
    assert_eq!(
        msgs,
        vec![
            HubMessage::Snapshot { subscription: SubscriptionId(9), records: vec![Arc::clone(&rec)] },
            HubMessage::Synced {
                subscription: SubscriptionId(9),
                at: ResumePoint { hub: HubId(0), epoch: 0, revision: 2 },
                resumed: false
            }
        ]
    );
    register(&mut hub, A, None, Registration::from_name("db@2.0.0")).unwrap();
    let other = register(&mut hub, A, None, Registration::from_name("web@2.0.0")).unwrap();
    // register() drained the outgoing queue; check the watcher through a fresh change.
    hub.handle_message(T0, A, None, C::Free { request: 2, id: other.id.to_string() });
    let out = drain(&mut hub);
    let to_watcher: Vec<_> = out.iter().filter(|t| t.to.contains(&W)).map(|t| &t.message).collect();
    assert_eq!(to_watcher, vec![&HubMessage::Change { revision: 5, change: Change::Free(other) }]);
}

#[test]
fn one_change_per_session_even_with_overlapping_subscriptions() {
    let mut hub = hub();
    open(&mut hub, A, "h");
    open(&mut hub, W, "w");
    subscribe(&mut hub, W, 1, "web");
    subscribe(&mut hub, W, 2, "*");
    hub.handle_message(T0, A, None, C::Register { request: 1, registration: Registration::new("web") });
    let out = drain(&mut hub);
    let changes: Vec<_> = out.iter().filter(|t| matches!(t.message, HubMessage::Change { .. })).collect();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].to, vec![W]);
}

#[test]
fn closing_a_session_frees_its_records_and_tells_watchers() {
    let mut hub = hub();
    open(&mut hub, A, "h");
    open(&mut hub, W, "w");
    subscribe(&mut hub, W, 1, "*");
    let rec = register(&mut hub, A, None, Registration::from_name("web@1.0.0")).unwrap();
    events(&mut hub);
    hub.handle_session_closed(T0, A);
    let out = drain(&mut hub);
    assert_eq!(
        out,
        vec![Transmit {
            to: vec![W],
            message: HubMessage::Change { revision: 2, change: Change::Free(Arc::clone(&rec)) }
        }]
    );
    let evs = events(&mut hub);
    assert!(evs.contains(&Event::Freed { session: Some(A), record: rec, reason: FreeReason::OwnerGone }));
    assert!(evs.contains(&Event::SessionClosed { session: A, reason: CloseReason::Disconnected }));
}

#[test]
fn lease_expires_exactly_at_the_deadline() {
    let mut hub = hub();
    open(&mut hub, A, "h");
    register(&mut hub, A, None, Registration::new("web")).unwrap();
    let t1 = T0 + Duration::from_secs(10);
    hub.handle_message(t1, A, None, C::Heartbeat);
    let deadline = t1 + Duration::from_secs(45);
    assert_eq!(hub.poll_timeout(), Some(deadline));
    hub.handle_timeout(Timestamp::from_millis(deadline.as_millis() - 1));
    assert_eq!(hub.session_count(), 1);
    hub.handle_timeout(deadline);
    assert_eq!(hub.session_count(), 0);
    assert!(hub.registry().is_empty());
    assert!(events(&mut hub).contains(&Event::SessionClosed { session: A, reason: CloseReason::Expired }));
    assert_eq!(hub.poll_timeout(), None);
}

#[test]
fn bad_input_renews_and_replies() {
    let mut hub = hub();
    open(&mut hub, A, "h");
    drain(&mut hub);
    hub.handle_bad_input(T0 + Duration::from_secs(1), A, ErrorCode::Malformed, "garbage".into());
    assert_eq!(
        drain(&mut hub)[0].message,
        HubMessage::Rejected { request: None, code: ErrorCode::Malformed, message: "garbage".into() }
    );
    assert_eq!(hub.poll_timeout(), Some(T0 + Duration::from_secs(46)));
}

fn keyed() -> (Hub, KeyId, KeyId, KeyId) {
    let (good, other, hub_key) = (KeyId([1; 32]), KeyId([2; 32]), KeyId([9; 32]));
    let mut config = HubConfig { hub_key: Some(hub_key), ..HubConfig::default() };
    config.authorized.insert(good);
    config.authorized.insert(other);
    (Hub::new(config), good, other, hub_key)
}

#[test]
fn keyed_hub_requires_an_authorized_signer() {
    let (mut hub, good, _, _) = keyed();
    open(&mut hub, A, "h");
    let (code, msg) = register(&mut hub, A, None, Registration::new("web")).unwrap_err();
    assert_eq!(code, ErrorCode::Unauthorized);
    assert!(msg.contains("authorized key"), "{msg}");
    let (code, _) = register(&mut hub, A, Some(KeyId([3; 32])), Registration::new("web")).unwrap_err();
    assert_eq!(code, ErrorCode::Unauthorized);
    assert!(hub.registry().is_empty());
    register(&mut hub, A, Some(good), Registration::new("web")).unwrap();
    // Queries need no key.
    let msgs = subscribe(&mut hub, A, 1, "web");
    assert!(matches!(&msgs[0], HubMessage::Snapshot { records, .. } if records.len() == 1));
}

#[test]
fn revoking_every_key_leaves_the_hub_keyed_not_open() {
    let (mut hub, good, other, hub_key) = keyed();
    open(&mut hub, A, "h");
    hub.revoke(&good);
    let (code, msg) = register(&mut hub, A, Some(good), Registration::new("web")).unwrap_err();
    assert_eq!(code, ErrorCode::Unauthorized, "{msg}");
    hub.revoke(&other);
    assert!(!hub.is_open());
    for signer in [None, Some(good), Some(other)] {
        let (code, _) = register(&mut hub, A, signer, Registration::new("web")).unwrap_err();
        assert_eq!(code, ErrorCode::Unauthorized, "signer {signer:?}");
    }
    assert!(hub.registry().is_empty());
    // The hub's own key still may, and authorizing again works.
    register(&mut hub, A, Some(hub_key), Registration::new("web")).unwrap();
    hub.authorize(good);
    register(&mut hub, A, Some(good), Registration::new("web")).unwrap();

    // An open hub becomes keyed with its first key.
    let mut open_hub = Hub::new(HubConfig::default());
    open(&mut open_hub, A, "h");
    assert!(open_hub.is_open());
    open_hub.authorize(good);
    assert!(!open_hub.is_open());
    assert_eq!(register(&mut open_hub, A, None, Registration::new("web")).unwrap_err().0, ErrorCode::Unauthorized);
}

#[test]
fn keyed_hub_lets_only_the_owner_or_hub_key_change_a_record() {
    let (mut hub, good, other, hub_key) = keyed();
    open(&mut hub, A, "h");
    open(&mut hub, B, "h");
    let rec = register(&mut hub, A, Some(good), Registration::new("web")).unwrap();
    let id = rec.id.to_string();
    for signer in [None, Some(other)] {
        hub.handle_message(T0, B, signer, C::Free { request: 1, id: id.clone() });
        let out = drain(&mut hub);
        assert!(matches!(out[0].message, HubMessage::Rejected { code: ErrorCode::Unauthorized, .. }));
        hub.handle_message(T0, B, signer, C::Update { request: 1, id: id.clone(), meta: Meta::new() });
        let out = drain(&mut hub);
        assert!(matches!(out[0].message, HubMessage::Rejected { code: ErrorCode::Unauthorized, .. }));
    }
    // Nor may another key take the id over by registering it again.
    let takeover = Registration { id: Some(id.clone()), ..Registration::new("web") };
    assert_eq!(register(&mut hub, B, Some(other), takeover).unwrap_err().0, ErrorCode::Unauthorized);
    hub.handle_message(T0, B, Some(good), C::Update { request: 2, id: id.clone(), meta: Meta::new() });
    assert!(matches!(drain(&mut hub)[0].message, HubMessage::Updated { .. }));
    hub.handle_message(T0, B, Some(hub_key), C::Free { request: 3, id: id.clone() });
    let out = drain(&mut hub);
    assert!(out.contains(&Transmit { to: vec![B], message: HubMessage::Done { request: 3 } }));
    // The owner hears that its record was freed, so it does not register it again.
    let change = HubMessage::Change { revision: hub.resume_point().revision, change: Change::Free(Arc::clone(&rec)) };
    assert!(out.contains(&Transmit { to: vec![A], message: change }));
    assert!(hub.registry().is_empty());
}

#[test]
fn open_hub_lets_anyone_free_and_update() {
    let mut hub = hub();
    open(&mut hub, A, "h");
    open(&mut hub, B, "h");
    let rec = register(&mut hub, A, None, Registration::new("web")).unwrap();
    let meta: Meta = [("k".to_string(), crate::Value::from("v"))].into_iter().collect();
    hub.handle_message(T0, B, None, C::Update { request: 1, id: rec.id.to_string(), meta: meta.clone() });
    assert!(matches!(&drain(&mut hub)[0].message, HubMessage::Updated { record, .. } if record.meta == meta));
    hub.handle_message(T0, B, None, C::Free { request: 2, id: rec.id.to_string() });
    assert_eq!(replies(&mut hub, B), vec![HubMessage::Done { request: 2 }]);
    hub.handle_message(T0, B, None, C::Free { request: 3, id: "nope".into() });
    assert!(matches!(&drain(&mut hub)[0].message, HubMessage::Rejected { code: ErrorCode::UnknownId, .. }));
    hub.check_invariants().unwrap();
}

#[test]
fn hub_side_free_and_limits() {
    let mut config = HubConfig::default();
    config.limits.max_registrations_per_session = 2;
    config.limits.max_subscriptions_per_session = 1;
    let mut hub = Hub::new(config);
    open(&mut hub, A, "h");
    let rec = register(&mut hub, A, None, Registration::new("a")).unwrap();
    register(&mut hub, A, None, Registration::new("b")).unwrap();
    let (code, msg) = register(&mut hub, A, None, Registration::new("c")).unwrap_err();
    assert_eq!(code, ErrorCode::TooManyRegistrations);
    assert!(msg.contains('2'), "{msg}");
    // Re-registering an id the session already holds is not a new registration.
    let again = Registration { id: Some(rec.id.to_string()), ..Registration::new("a") };
    register(&mut hub, A, None, again).unwrap();
    hub.free(T0, rec.id.as_str()).unwrap();
    assert_eq!(hub.free(T0, "missing"), Err(RegistryError::UnknownId("missing".into())));
    subscribe(&mut hub, A, 1, "a");
    let msgs = subscribe(&mut hub, A, 2, "b");
    assert!(matches!(msgs[0], HubMessage::Rejected { code: ErrorCode::TooManySubscriptions, .. }));
    // Replacing an existing subscription is allowed.
    assert!(matches!(subscribe(&mut hub, A, 1, "b").last(), Some(HubMessage::Synced { .. })));
    hub.check_invariants().unwrap();
}

#[test]
fn messages_for_unknown_sessions_are_ignored() {
    let mut hub = hub();
    hub.handle_message(T0, SessionId(99), None, C::Register { request: 1, registration: Registration::new("x") });
    hub.handle_session_closed(T0, SessionId(99));
    assert!(drain(&mut hub).is_empty());
    assert!(hub.registry().is_empty());
}

fn announce(hub: &mut Hub, s: SessionId, reg: Registration, reannounced: bool) -> HubMessage {
    hub.handle_message(T0, s, None, C::Announce { request: 5, registration: reg, reannounced });
    drain(hub)
        .into_iter()
        .filter(|t| t.to == vec![s])
        .map(|t| t.message)
        .find(|m| !matches!(m, HubMessage::Welcome { .. } | HubMessage::Change { .. }))
        .expect("a reply")
}

fn node_record(id: &str, host: Option<&str>, port: u16, env: &str) -> Registration {
    Registration {
        id: Some(id.into()),
        host: host.map(Into::into),
        port: PortRequest::Exact(port),
        meta: [("env".to_string(), crate::Value::from(env))].into_iter().collect(),
        ..Registration::from_name("web@1.0.0")
    }
}

#[test]
fn announcements_never_displace_a_connected_owner() {
    let mut hub = hub();
    open(&mut hub, A, "10.0.0.1");
    open(&mut hub, B, "10.0.0.2");
    let first = announce(&mut hub, A, node_record("x", None, 12000, "a"), false);
    assert!(matches!(first, HubMessage::Registered { .. }));
    // B claims the same id at another address: refused, A keeps it.
    let other = announce(&mut hub, B, node_record("x", Some("10.0.0.2"), 13000, "b"), false);
    assert!(matches!(other, HubMessage::Rejected { code: ErrorCode::OwnedElsewhere, .. }));
    assert_eq!(hub.registry().get("x").unwrap().port, 12000);
    // The same record with new metadata is node's `set`: an update, A still owns it.
    let set = announce(&mut hub, B, node_record("x", Some("10.0.0.1"), 12000, "b"), false);
    assert!(matches!(set, HubMessage::Registered { ref record, .. } if record.meta["env"] == "b".into()));
    assert_eq!(hub.record_owner("x"), Some(A));
    // A re-announces its own record: replaced in place.
    let again = announce(&mut hub, A, node_record("x", None, 12001, "c"), true);
    assert!(matches!(again, HubMessage::Registered { ref record, .. } if record.port == 12001));
    hub.check_invariants().unwrap();
}

#[test]
fn reannounced_records_of_other_hosts_are_not_resurrected() {
    let mut hub = hub();
    open(&mut hub, A, "10.0.0.1");
    // After a reconnect, A repeats a record of another host it remembers: ignored.
    let stale = announce(&mut hub, A, node_record("dead", Some("10.0.0.9"), 12000, "a"), true);
    assert_eq!(stale, HubMessage::Done { request: 5 });
    assert!(hub.registry().is_empty());
    // Its own records (its host) come back, and so does a live announcement for any host.
    assert!(matches!(
        announce(&mut hub, A, node_record("mine", None, 12001, "a"), true),
        HubMessage::Registered { .. }
    ));
    let explicit = announce(&mut hub, A, node_record("far", Some("10.0.0.9"), 12002, "a"), false);
    assert!(matches!(explicit, HubMessage::Registered { .. }));
    assert_eq!(hub.registry().len(), 2);
}

#[test]
fn duplicate_explicit_ports_are_reported() {
    let mut hub = hub();
    open(&mut hub, A, "h");
    open(&mut hub, B, "h");
    announce(&mut hub, A, node_record("a", None, 12000, "x"), false);
    events(&mut hub);
    announce(&mut hub, B, node_record("b", None, 12000, "x"), false);
    let evs = events(&mut hub);
    assert!(
        evs.iter()
            .any(|e| matches!(e, Event::DuplicatePort { id, other } if id.as_str() == "b" && other.id.as_str() == "a")),
        "{evs:?}"
    );
}

#[test]
fn requests_over_the_rate_are_refused_and_the_budget_refills() {
    let mut config = HubConfig::default();
    config.limits.max_requests_per_second = 10;
    config.limits.max_request_burst = 3;
    let mut hub = Hub::new(config);
    open(&mut hub, A, "h");
    open(&mut hub, B, "h");
    drain(&mut hub);
    let free = |request| C::Free { request, id: "none".into() };
    for request in 0..3 {
        hub.handle_message(T0, A, None, free(request));
        assert!(matches!(replies(&mut hub, A)[..], [HubMessage::Rejected { code: ErrorCode::UnknownId, .. }]));
    }
    // The burst is spent: refused as rate limited, naming the limit.
    hub.handle_message(T0, A, None, free(9));
    let reply = replies(&mut hub, A);
    assert!(
        matches!(&reply[..], [HubMessage::Rejected { request: Some(9), code: ErrorCode::RateLimited, message }] if message.contains("10 requests per second")),
        "{reply:?}"
    );
    // Heartbeats are free, and another session has its own budget.
    hub.handle_message(T0, A, None, C::Heartbeat);
    assert!(replies(&mut hub, A).is_empty());
    hub.handle_message(T0, B, None, free(1));
    assert!(matches!(replies(&mut hub, B)[..], [HubMessage::Rejected { code: ErrorCode::UnknownId, .. }]));
    // 100 ms later one request's worth (10/s) has come back.
    let later = T0 + Duration::from_millis(100);
    hub.handle_message(later, A, None, free(2));
    assert!(matches!(replies(&mut hub, A)[..], [HubMessage::Rejected { code: ErrorCode::UnknownId, .. }]));
    hub.handle_message(later, A, None, free(3));
    assert!(matches!(replies(&mut hub, A)[..], [HubMessage::Rejected { code: ErrorCode::RateLimited, .. }]));
}

#[test]
fn records_of_one_role_share_its_name_and_records_of_one_owner_share_it() {
    let (key, other) = (KeyId([4; 32]), KeyId([6; 32]));
    let mut hub = Hub::new(HubConfig { authorized: [key, other].into(), ..HubConfig::default() });
    open(&mut hub, A, "10.0.0.1");
    let a = register(&mut hub, A, Some(key), Registration::new("web")).unwrap();
    let b = register(&mut hub, A, Some(key), Registration::new("web")).unwrap();
    assert_ne!(a.id, b.id);
    assert!(std::ptr::eq(a.role.as_str(), b.role.as_str()), "one copy of the role's name");
    assert!(std::ptr::eq(a.host.as_str(), b.host.as_str()), "one copy of the session's host");
    let on = |host: &str| Registration { host: Some(host.into()), ..Registration::new("db") };
    let c = register(&mut hub, A, Some(key), on("10.9.9.9")).unwrap();
    let d = register(&mut hub, A, Some(key), on("10.9.9.9")).unwrap();
    assert!(c.host == "10.9.9.9" && std::ptr::eq(c.host.as_str(), d.host.as_str()), "one copy of a given host");
    let owners: Vec<&Arc<Owner>> =
        [&a.id, &b.id, &c.id].iter().filter_map(|id| hub.local.get(id.as_str())).map(|l| &l.owner).collect();
    assert!(owners.len() == 3 && owners.iter().all(|o| Arc::ptr_eq(o, owners[0])), "one copy of the owner");
    assert_eq!(owners[0].key, Some(key));
    // Another key, then the first again: each owner is right, whatever is shared.
    let e = register(&mut hub, A, Some(other), Registration::new("web")).unwrap();
    let f = register(&mut hub, A, Some(key), Registration::new("web")).unwrap();
    let owner_of = |id: &RecordId| hub.local.get(id.as_str()).map(|l| (l.owner.session, l.owner.key));
    assert_eq!(owner_of(&e.id), Some((Some(A), Some(other))));
    assert_eq!(owner_of(&f.id), Some((Some(A), Some(key))));
    assert_eq!(owner_of(&a.id), Some((Some(A), Some(key))));
    // Whoever signed, only the owner's key may free them.
    hub.handle_message(T0, A, Some(KeyId([5; 32])), C::Free { request: 8, id: a.id.as_str().into() });
    assert!(hub.registry().get(a.id.as_str()).is_some());
    hub.handle_message(T0, A, Some(key), C::Free { request: 9, id: a.id.as_str().into() });
    assert!(hub.registry().get(a.id.as_str()).is_none());
    hub.check_invariants().unwrap();
}
