//! Synthetic registries and hubs shared by the criterion benches.
//!
//! Everything here is deterministic: record `i` of a registry of `n` records is always
//! the same, so figures taken on different days compare.

use std::hint::black_box;

use seaport_core::message::{ClientMessage, HubMessage, SubscriptionId};
use seaport_core::semver::Version;
use seaport_core::{Hub, PortRequest, Registration, SessionId, SessionKind, Timestamp};
use seaport_core::{HubConfig, HubId, Limits, Meta, Record, RecordId, Registry, Role, Value};

/// Records per role in the query registries.
pub const PER_ROLE: usize = 100;
/// Hosts the records are spread over (per 400 000 records, so that no two records of a
/// registry share a host and port).
pub const HOSTS: usize = 8;
/// Records per block of [`HOSTS`] hosts: 50 000 ports on each.
const BLOCK: usize = HOSTS * 50_000;

/// The host of record `i`, as a dotted address.
pub fn host(i: usize) -> String {
    format!("10.{}.0.{}", i / BLOCK, i % HOSTS + 1)
}

/// Record `i` of a registry with `roles` roles.
///
/// Its role is `role-{i % roles}`; its version depends on its rank `k = i / roles`
/// within the role: `{1 + (k/10)%2}.{k%10}.{k%7}`, so half the records of a role are
/// 1.x and 40% match `^1.2.0`. Its metadata is `zone` = `a`, `b` or `c` (`i % 3`), so
/// about a third of any role's records are in zone `a`.
pub fn record(i: usize, roles: usize) -> Record {
    let k = i / roles;
    let mut meta = Meta::new();
    meta.insert("zone".into(), Value::from(["a", "b", "c"][i % 3]));
    Record {
        id: RecordId::new(format!("{i:016x}")).expect("hex ids are valid"),
        role: Role::new(format!("role-{}", i % roles)).expect("role-N is a valid role"),
        version: Some(Version::new(1 + (k / 10 % 2) as u64, (k % 10) as u64, (k % 7) as u64).into()),
        host: host(i).into(),
        port: 10_000 + (i % BLOCK / HOSTS) as u16,
        meta,
        origin: HubId(1),
        incarnation: 1,
    }
}

/// A registry of `n` records over `n / PER_ROLE` roles (see [`record`]).
pub fn registry(n: usize) -> Registry {
    let roles = (n / PER_ROLE).max(1);
    let mut registry = Registry::new(42);
    for i in 0..n {
        registry.insert(record(i, roles));
    }
    registry
}

/// Drains every output of `hub`; returns the number of deliveries (recipients summed
/// over messages).
pub fn drain(hub: &mut Hub) -> usize {
    let mut delivered = 0;
    while let Some(t) = hub.poll_outgoing() {
        delivered += t.to.len();
        black_box(&t);
    }
    while let Some(e) = hub.poll_event() {
        black_box(&e);
    }
    delivered
}

/// A hub configuration for benches: no request rate limit (a bench sends millions of
/// requests at one `now`, which the default limit of 2 000 a second would refuse after
/// the first burst) and room for `registrations` records per session.
pub fn bench_hub_config(registrations: usize) -> HubConfig {
    HubConfig {
        limits: Limits {
            max_registrations_per_session: registrations,
            max_requests_per_second: u32::MAX,
            max_request_burst: u32::MAX,
            ..Limits::default()
        },
        ..HubConfig::default()
    }
}

/// The session that registers in [`fanout_hub`].
pub const SERVICE: SessionId = SessionId(u64::MAX);

/// A hub with `subscribers` client sessions, the even ones subscribed to `web`, the odd
/// ones to `web@^1.2.0`, and a [`SERVICE`] session; outputs drained.
pub fn fanout_hub(subscribers: u64) -> Hub {
    let now = Timestamp::from_millis(0);
    let mut hub = Hub::new(bench_hub_config(16));
    for s in 0..subscribers {
        hub.handle_session_opened(now, SessionId(s), SessionKind::Client, host(s as usize));
        let pattern = if s % 2 == 0 { "web" } else { "web@^1.2.0" }.to_string();
        let subscribe = ClientMessage::Subscribe { request: 1, subscription: SubscriptionId(1), pattern, resume: None };
        hub.handle_message(now, SessionId(s), None, subscribe);
    }
    hub.handle_session_opened(now, SERVICE, SessionKind::Client, "10.0.2.1".into());
    drain(&mut hub);
    hub
}

/// [`SERVICE`] registers `web@1.2.3` as `web-1` on port 8080 (the same id each time, so
/// each call replaces the last record and fans out once); returns the deliveries.
pub fn fanout_register(hub: &mut Hub, request: u64) -> usize {
    let registration = Registration {
        id: Some("web-1".into()),
        port: PortRequest::Exact(8080),
        ..Registration::from_name("web@1.2.3")
    };
    hub.handle_message(Timestamp::from_millis(0), SERVICE, None, ClientMessage::Register { request, registration });
    drain(hub)
}

/// The session that subscribes in [`snapshot_hub`].
pub const WATCHER: SessionId = SessionId(u64::MAX);

/// A hub holding `n` records of role `web` and `n` of fifty other roles, registered by
/// sessions of 1 000 records each, and a [`WATCHER`] session; outputs drained.
pub fn snapshot_hub(n: usize) -> Hub {
    const PER_SESSION: usize = 1_000;
    let now = Timestamp::from_millis(0);
    let mut hub = Hub::new(bench_hub_config(PER_SESSION));
    for i in 0..2 * n {
        let session = SessionId((i / PER_SESSION) as u64);
        if i % PER_SESSION == 0 {
            hub.handle_session_opened(now, session, SessionKind::Client, host(i / PER_SESSION));
        }
        let name = if i % 2 == 0 { format!("web@1.{}.{}", i % 10, i % 7) } else { format!("api-{}@2.0.0", i % 50) };
        let registration =
            Registration { meta: [("zone".into(), "a".into())].into(), ..Registration::from_name(&name) };
        hub.handle_message(now, session, None, ClientMessage::Register { request: i as u64, registration });
    }
    hub.handle_session_opened(now, WATCHER, SessionKind::Client, "10.0.2.1".into());
    drain(&mut hub);
    assert_eq!(hub.registry().len(), 2 * n);
    hub
}

/// [`WATCHER`] subscribes to `web` (subscription 1 each time, so the new one replaces
/// the last); returns the number of records in the snapshot.
pub fn snapshot_subscribe(hub: &mut Hub, request: u64) -> usize {
    let subscribe =
        ClientMessage::Subscribe { request, subscription: SubscriptionId(1), pattern: "web".into(), resume: None };
    hub.handle_message(Timestamp::from_millis(0), WATCHER, None, subscribe);
    let mut records = 0;
    while let Some(t) = hub.poll_outgoing() {
        if let HubMessage::Snapshot { records: r, .. } = &t.message {
            records += r.len();
        }
        black_box(&t);
    }
    while hub.poll_event().is_some() {}
    records
}
