//! `seaport-core` inside another program, with no network, no clock and no threads: a
//! [`Registry`] with port assignment and version-range queries, then the sans-I/O
//! [`Hub`] driven by hand on a virtual clock until a silent session's lease expires.
//!
//! This is what a program embedding the core does: it owns the sockets (or a simulated
//! network) and the clock, feeds the hub its inputs with `now`, and after every input
//! drains `poll_outgoing` and `poll_event`, arming one timer from `poll_timeout`.

use std::time::Duration;

use seaport_core::{
    Change, ClientMessage, Event, Hub, HubConfig, HubId, HubMessage, Meta, Pattern, Record, RecordId, Registration,
    Registry, Role, SessionId, SessionKind, SubscriptionId, Timestamp, VersionRange,
};

/// What [`run`] saw.
#[derive(Debug)]
pub struct Outcome {
    /// The ports the registry assigned to the three `web` records on one host.
    pub ports: Vec<u16>,
    /// The versions in the registry matching `^1.2.0`.
    pub caret: Vec<String>,
    /// The versions the pattern `web@~1.2` finds.
    pub tilde: Vec<String>,
    /// What the watching session was sent, one line per change: `register web@1.2.3`.
    pub watcher_saw: Vec<String>,
    /// When the silent service's lease expired, on the virtual clock.
    pub expired_at: Timestamp,
    /// Records left in the hub at the end.
    pub records_left: usize,
}

fn record(id: &str, version: &str, host: &str, port: u16) -> anyhow::Result<Record> {
    Ok(Record {
        id: RecordId::new(id)?,
        role: Role::new("web")?,
        version: Some(version.parse()?),
        host: host.into(),
        port,
        meta: Meta::new(),
        origin: HubId(0),
        incarnation: 1,
    })
}

/// Drains the hub's outputs after an input, as a driver must: messages for `watcher`
/// become lines in `saw`, events are printed.
fn drain(hub: &mut Hub, watcher: SessionId, saw: &mut Vec<String>) {
    while let Some(transmit) = hub.poll_outgoing() {
        if let (true, HubMessage::Change { change, .. }) = (transmit.to.contains(&watcher), &transmit.message) {
            let what = match change {
                Change::Register(_) => "register",
                Change::Update(_) => "update",
                Change::Free(_) => "free",
            };
            saw.push(format!("{what} {}", change.record().name()));
        }
    }
    while let Some(event) = hub.poll_event() {
        match event {
            Event::Registered { record, .. } => println!("  event: registered {record}"),
            Event::Freed { record, reason, .. } => println!("  event: freed {record} ({reason:?})"),
            Event::SessionClosed { session, reason } => println!("  event: session {session} closed ({reason:?})"),
            _ => {}
        }
    }
}

/// The example. Deterministic: the same seed gives the same ports every run.
///
/// # Errors
/// Only if the core refuses one of the example's own names or ranges (it does not).
pub fn run() -> anyhow::Result<Outcome> {
    // ---- a registry on its own ----
    let mut registry = Registry::new(7);
    let host = "10.0.0.5";
    let mut ports = Vec::new();
    for (id, version) in [("w1", "1.2.3"), ("w2", "1.4.0"), ("w3", "2.0.0")] {
        // Unique among the live records on the host, picked at random in the range.
        let port = registry.assign_port(host, 20_000..=20_009)?;
        registry.insert(record(id, version, host, port)?);
        ports.push(port);
    }
    println!("registry: ports {ports:?} assigned on {host}");

    let caret_text = "^1.2.0";
    let caret = VersionRange::parse(caret_text)?;
    let mut matching: Vec<_> = registry.iter().filter_map(|r| r.version.clone()).filter(|v| caret.matches(v)).collect();
    matching.sort();
    let caret_matches: Vec<String> = matching.iter().map(ToString::to_string).collect();
    println!("registry: versions in {caret_text} (that is, {caret}): {}", caret_matches.join(", "));

    let tilde: Pattern = "web@~1.2".parse()?;
    let tilde_matches: Vec<String> =
        registry.query(&tilde).filter_map(|r| r.version.as_ref().map(ToString::to_string)).collect();
    println!("registry: query {tilde}: {}", tilde_matches.join(", "));

    // ---- the hub state machine on a virtual clock ----
    let config = HubConfig {
        seed: 1,
        heartbeat: Duration::from_secs(1),
        timeout: Duration::from_secs(3),
        ..HubConfig::default()
    };
    let mut hub = Hub::new(config);
    let (service, watcher) = (SessionId(1), SessionId(2));
    let mut saw = Vec::new();
    let at = Timestamp::from_millis;

    println!("t=0s: two sessions open; the watcher subscribes to web@1.x, the service registers web@1.2.3");
    hub.handle_session_opened(at(0), service, SessionKind::Client, "10.0.0.5".into());
    hub.handle_session_opened(at(0), watcher, SessionKind::Client, "10.0.0.6".into());
    drain(&mut hub, watcher, &mut saw);
    let subscribe = ClientMessage::Subscribe {
        request: 1,
        subscription: SubscriptionId(1),
        pattern: "web@1.x".into(),
        resume: None,
    };
    hub.handle_message(at(0), watcher, None, subscribe);
    drain(&mut hub, watcher, &mut saw);
    let register = ClientMessage::Register { request: 1, registration: Registration::from_name("web@1.2.3") };
    hub.handle_message(at(0), service, None, register);
    drain(&mut hub, watcher, &mut saw);

    println!("t=2s: both send a heartbeat (any message renews a lease)");
    hub.handle_message(at(2_000), service, None, ClientMessage::Heartbeat);
    hub.handle_message(at(2_000), watcher, None, ClientMessage::Heartbeat);
    drain(&mut hub, watcher, &mut saw);
    println!("t=4s: only the watcher does; the service has gone quiet");
    hub.handle_message(at(4_000), watcher, None, ClientMessage::Heartbeat);
    drain(&mut hub, watcher, &mut saw);

    // A driver sleeps until poll_timeout, then calls handle_timeout; here time just jumps.
    let expired_at = hub.poll_timeout().ok_or_else(|| anyhow::anyhow!("the hub has no lease to expire"))?;
    println!("t={}s: the service's lease ends (last message + timeout)", expired_at.as_millis() / 1000);
    hub.handle_timeout(expired_at);
    drain(&mut hub, watcher, &mut saw);
    println!("the watcher was sent: {}", saw.join(", "));

    Ok(Outcome {
        ports,
        caret: caret_matches,
        tilde: tilde_matches,
        watcher_saw: saw,
        expired_at,
        records_left: hub.registry().len(),
    })
}
