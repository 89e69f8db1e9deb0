//! Resuming subscriptions: a client that comes back to the same hub incarnation gets
//! only what it missed; after a hub restart it gets a full snapshot. Both end with the
//! replica a fresh client would have.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use async_std::net::{TcpListener, TcpStream};
use async_std::task::{self, JoinHandle};
use futures::channel::mpsc;
use futures::StreamExt;
use seaport_net::core::{ClientMessage, HubMessage, Meta, ResumePoint, SubscriptionId, Value};
use seaport_net::{Client, ClientEvent, HubConfig, RegisterOptions};

use crate::util::*;

/// A loopback TCP proxy the test can cut: while closed it drops every connection at once,
/// so a client behind it stays away until the test opens it again.
struct Proxy {
    addr: String,
    state: Arc<Mutex<ProxyState>>,
    accept: JoinHandle<()>,
}

struct ProxyState {
    open: bool,
    /// Both ends of every connection passed through, to cut them.
    streams: Vec<TcpStream>,
}

impl Proxy {
    async fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy on 127.0.0.1:0");
        let addr = listener.local_addr().expect("the proxy's address").to_string();
        let state = Arc::new(Mutex::new(ProxyState { open: true, streams: Vec::new() }));
        let (target, shared) = (target.to_string(), Arc::clone(&state));
        let accept = task::spawn(async move {
            let mut incoming = listener.incoming();
            while let Some(Ok(client)) = incoming.next().await {
                if !shared.lock().unwrap().open {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let Ok(hub) = TcpStream::connect(target.as_str()).await else { continue };
                shared.lock().unwrap().streams.extend([client.clone(), hub.clone()]);
                for (from, to) in [(client.clone(), hub.clone()), (hub, client)] {
                    task::spawn(async move {
                        let _ = futures::io::copy(from.clone(), &mut to.clone()).await;
                        let _ = from.shutdown(std::net::Shutdown::Both);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { addr, state, accept }
    }

    /// Cuts every connection and refuses new ones.
    fn close(&self) {
        let mut state = self.state.lock().unwrap();
        state.open = false;
        for stream in state.streams.drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    fn open(&self) {
        self.state.lock().unwrap().open = true;
    }

    async fn stop(self) {
        self.close();
        self.accept.cancel().await;
    }
}

/// The next `Synced` event of `pattern` (the client also follows `seaport`, for hubs).
async fn synced(events: &mut mpsc::UnboundedReceiver<ClientEvent>, pattern: &str) -> (bool, usize) {
    loop {
        if let ClientEvent::Synced { pattern: p, resumed, received } = next_client_event(events).await {
            if p == pattern {
                return (resumed, received);
            }
        }
    }
}

async fn disconnected(events: &mut mpsc::UnboundedReceiver<ClientEvent>) {
    while !matches!(next_client_event(events).await, ClientEvent::Disconnected { .. }) {}
}

fn with_id(id: &str) -> RegisterOptions {
    RegisterOptions { id: Some(id.into()), ..RegisterOptions::default() }
}

async fn query_ids(client: &Client, pattern: &str) -> BTreeSet<String> {
    client.query(pattern).await.unwrap().iter().map(|r| r.id.to_string()).collect()
}

fn hub_role_ids(hub: &seaport_net::Hub, role: &str) -> BTreeSet<String> {
    hub.records().iter().filter(|r| r.role.as_str() == role).map(|r| r.id.to_string()).collect()
}

#[async_std::test]
async fn a_client_back_on_the_same_hub_gets_only_what_it_missed() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let proxy = Proxy::start(&addr).await;
        let publisher = client(&addr);
        for i in 0..20 {
            publisher.register("web@1.0.0", with_id(&format!("w{i:02}"))).await.unwrap();
        }
        let watcher = client(&proxy.addr);
        let mut events = watcher.events().unwrap();
        let mut changes = watcher.watch("web").await.unwrap();
        assert_eq!(synced(&mut events, "web").await, (false, 20), "the first subscribe is a full snapshot");

        proxy.close();
        disconnected(&mut events).await;
        // While the watcher is away: two registers, an update and a free.
        publisher.register("web@1.0.0", with_id("w20")).await.unwrap();
        publisher.register("web@1.1.0", with_id("w21")).await.unwrap();
        publisher.register("db@1.0.0", with_id("other-role")).await.unwrap();
        let meta: Meta = [("env".to_string(), Value::from("prod"))].into_iter().collect();
        publisher.update("w00", meta).await.unwrap();
        publisher.free("w01").await.unwrap();
        proxy.open();

        // Four changes for `web` instead of a snapshot of 21 records.
        assert_eq!(synced(&mut events, "web").await, (true, 4));
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(summary(&next_change(&mut changes).await));
        }
        seen.sort();
        assert_eq!(seen, ["+w20", "+w21", "-w01", "~w00"].map(String::from).to_vec(), "watch events after the resume");
        assert_eq!(query_ids(&watcher, "web").await, hub_role_ids(&hub, "web"));
        assert_eq!(watcher.query("web").await.unwrap().iter().find(|r| r.id.as_str() == "w00").unwrap().meta.len(), 1);
        // Changes after the resume still arrive.
        publisher.free("w02").await.unwrap();
        assert_eq!(summary(&next_change(&mut changes).await), "-w02");

        for c in [publisher, watcher] {
            c.close().await;
        }
        proxy.stop().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn after_a_hub_restart_the_client_gets_a_full_snapshot() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let publisher = client(&addr);
        for i in 0..5 {
            publisher.register("web@1.0.0", with_id(&format!("p{i}"))).await.unwrap();
        }
        let leaving = client(&addr);
        leaving.register("web@1.0.0", with_id("gone")).await.unwrap();
        let watcher = client(&addr);
        let mut events = watcher.events().unwrap();
        let mut changes = watcher.watch("web").await.unwrap();
        assert_eq!(synced(&mut events, "web").await, (false, 6));

        hub.shutdown().await;
        disconnected(&mut events).await;
        // Closed while no hub is up: its record does not come back.
        leaving.close().await;
        let hub = rebind_hub(&addr, HubConfig::default()).await;

        let (resumed, _) = synced(&mut events, "web").await;
        assert!(!resumed, "a new incarnation never resumes an old revision");
        // The record that did not come back is freed for watchers.
        loop {
            if summary(&next_change(&mut changes).await) == "-gone" {
                break;
            }
        }
        let (w, expected) = (&watcher, &(0..5).map(|i| format!("p{i}")).collect::<BTreeSet<String>>());
        eventually(
            "the watcher's replica to match the new hub",
            || async move { query_ids(w, "web").await == *expected },
        )
        .await;
        assert_eq!(hub_role_ids(&hub, "web"), query_ids(&watcher, "web").await);

        for c in [publisher, watcher] {
            c.close().await;
        }
        hub.shutdown().await;
    })
    .await;
}

/// The wire exchange itself: a subscription resumed from its `Synced` point gets one
/// `Resumed` change per record that changed; a point of another incarnation, or from the
/// future, gets the full snapshot.
#[async_std::test]
async fn the_hub_answers_a_resume_point_with_only_the_changes() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let mut publisher = Raw::connect(&addr).await;
        let kept = publisher.register("web@1.0.0").await;
        let dropped = publisher.register("web@1.0.0").await;

        let mut watcher = Raw::connect(&addr).await;
        let (snapshot, at) = subscribe(&mut watcher, None).await;
        assert_eq!((snapshot.len(), at.resumed), (2, false));
        drop(watcher);

        let added = publisher.register("web@2.0.0").await;
        let request = publisher.request_id();
        publisher.send(&ClientMessage::Free { request, id: dropped.id.to_string() }).await;
        publisher.reply(request).await;

        let mut watcher = Raw::connect(&addr).await;
        let (resumed, again) = subscribe(&mut watcher, Some(at.point)).await;
        assert!(again.resumed);
        assert_eq!(resumed, vec![format!("+{}", added.id), format!("-{}", dropped.id)].into_iter().collect());
        assert_eq!(again.point.revision, at.point.revision + 2);

        for bad in [
            ResumePoint { epoch: at.point.epoch ^ 1, ..at.point },
            ResumePoint { hub: seaport_net::core::HubId(at.point.hub.0 ^ 1), ..at.point },
            ResumePoint { revision: u64::MAX, ..at.point },
        ] {
            let mut other = Raw::connect(&addr).await;
            let (full, synced) = subscribe(&mut other, Some(bad)).await;
            assert!(!synced.resumed, "{bad:?} resumed");
            assert_eq!(full, [format!("={}", kept.id), format!("={}", added.id)].into_iter().collect());
        }
        hub.shutdown().await;
    })
    .await;
}

struct SyncedAt {
    point: ResumePoint,
    resumed: bool,
}

/// Subscribes to `web` and collects the answer: `=id` per snapshot record, and
/// `+id`/`~id`/`-id` per resumed change.
async fn subscribe(raw: &mut Raw, resume: Option<ResumePoint>) -> (BTreeSet<String>, SyncedAt) {
    let request = raw.request_id();
    let subscription = SubscriptionId(1);
    raw.send(&ClientMessage::Subscribe { request, subscription, pattern: "web".into(), resume }).await;
    let mut got = BTreeSet::new();
    loop {
        match raw.recv().await {
            HubMessage::Snapshot { records, .. } => got.extend(records.iter().map(|r| format!("={}", r.id))),
            HubMessage::Resumed { changes, .. } => got.extend(changes.iter().map(summary)),
            HubMessage::Synced { at, resumed, .. } => return (got, SyncedAt { point: at, resumed }),
            other => panic!("unexpected answer to a subscribe: {other:?}"),
        }
    }
}
