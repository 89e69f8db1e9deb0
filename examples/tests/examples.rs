//! Every example runs here, on 127.0.0.1 with in-process hubs on port 0, so none can rot.
//! Each test has a deadline; nothing waits by sleeping.

use std::future::Future;
use std::time::Duration;

use async_std::net::TcpListener;
use async_std::task;
use futures::StreamExt;
use seaport_core::{Change, ErrorCode, Event};
use seaport_examples::http::{self, TextService};
use seaport_examples::router::{serve_router, Routes};
use seaport_examples::{authorized_keys, embedding, multi_hub, router, service, versions};
use seaport_net::{Client, ClientConfig, ClientError, Hub, HubConfig};

const TEST_DEADLINE: Duration = Duration::from_secs(20);

fn with_deadline<T>(test: impl Future<Output = T>) -> T {
    task::block_on(async {
        async_std::future::timeout(TEST_DEADLINE, test).await.expect("the test did not finish within its deadline")
    })
}

#[test]
fn service_is_found_by_a_client_that_asked_first() {
    let outcome = with_deadline(service::run(None)).unwrap();
    assert_eq!(outcome.found.name(), "web@1.2.3");
    assert_eq!(outcome.found.host, "127.0.0.1");
    assert!((10_000..=32_767).contains(&outcome.found.port), "port {}", outcome.found.port);
    assert_eq!(outcome.body, "beep boop\r\n");
}

#[test]
fn service_works_with_a_hub_of_its_own() {
    with_deadline(async {
        let hub = Hub::bind("127.0.0.1:0", HubConfig::default()).await.unwrap();
        let mut events = hub.events();
        let outcome = service::run(Some(hub.local_addr().to_string())).await.unwrap();
        assert_eq!(outcome.body, "beep boop\r\n");
        // The example closed its clients, so the hub frees what it registered.
        while let Some(event) = events.next().await {
            if let Event::Freed { record, .. } = event {
                assert_eq!(record.id, outcome.found.id);
                break;
            }
        }
        assert!(hub.records().iter().all(|r| r.role.as_str() != "web"));
        hub.shutdown().await;
    });
}

#[test]
fn versions_are_queried_by_range() {
    let outcome = with_deadline(versions::run(None)).unwrap();
    let expected = [
        ("beep", vec!["0.9.2", "1.2.3", "1.3.5"]),
        ("beep@1.2.x", vec!["1.2.3"]),
        ("beep@>1.2.0", vec!["1.2.3", "1.3.5"]),
    ];
    assert_eq!(outcome.len(), expected.len());
    for ((pattern, found), (want_pattern, want)) in outcome.iter().zip(expected) {
        assert_eq!(pattern, want_pattern);
        assert_eq!(found, &want, "{pattern}");
    }
}

#[test]
fn authorized_keys_let_only_the_listed_key_register() {
    let outcome = with_deadline(authorized_keys::run()).unwrap();
    assert_eq!(outcome.body, "beep boop\n");
    assert_eq!(outcome.found, 1);
    assert!(
        matches!(outcome.refused, ClientError::Rejected { code: ErrorCode::Unauthorized, .. }),
        "{:?}",
        outcome.refused
    );
}

#[test]
fn embedding_expires_the_silent_session_on_the_virtual_clock() {
    let outcome = embedding::run().unwrap();
    let mut ports = outcome.ports.clone();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3, "ports collide: {:?}", outcome.ports);
    assert!(outcome.ports.iter().all(|p| (20_000..=20_009).contains(p)));
    assert_eq!(outcome.caret, ["1.2.3", "1.4.0"]);
    assert_eq!(outcome.tilde, ["1.2.3"]);
    assert_eq!(outcome.watcher_saw, ["register web@1.2.3", "free web@1.2.3"]);
    // Last heard from at 2 s, timeout 3 s.
    assert_eq!(outcome.expired_at.as_millis(), 5_000);
    assert_eq!(outcome.records_left, 0);
    // Deterministic: the same seed gives the same ports.
    assert_eq!(embedding::run().unwrap().ports, outcome.ports);
}

#[test]
fn router_example_routes_then_answers_503() {
    let seen = with_deadline(router::run(None, "127.0.0.1:0", false)).unwrap();
    let summary: Vec<(&str, u16, &str)> =
        seen.iter().map(|(host, r)| (host.as_str(), r.status, r.body.as_str())).collect();
    assert_eq!(
        summary,
        [
            ("stable.example.com", 200, "stable backend\n"),
            ("unstable.example.com", 200, "unstable backend\n"),
            ("other.example.com", 200, "stable backend\n"),
            ("stable.example.com", 503, "service not available\n"),
            ("unstable.example.com", 200, "unstable backend\n"),
        ]
    );
}

/// The router on its own: hosts pick versions, instances are picked at random, a freed
/// backend stops getting requests, a new one starts getting them.
#[test]
fn router_follows_registrations_and_frees() {
    with_deadline(async {
        let hub = Hub::bind("127.0.0.1:0", HubConfig::default()).await.unwrap();
        let hub_addr = hub.local_addr().to_string();
        let connect = || Client::connect(&[&hub_addr], ClientConfig::default()).unwrap();

        let stable = TextService::start(connect(), "http@0.0.1", "stable backend\n").await.unwrap();
        let unstable_a = TextService::start(connect(), "http@0.1.0", "unstable a\n").await.unwrap();
        let unstable_b = TextService::start(connect(), "http@0.1.1", "unstable b\n").await.unwrap();

        let client = connect();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let routes = Routes::new().route("stable", "http@0.0.x").route("unstable", "http@0.1.x");
        let router = task::spawn(serve_router(listener, client.clone(), routes));
        let ask = |host: &'static str| {
            let addr = addr.clone();
            async move {
                let response = http::get(&addr, host, "/").await.unwrap();
                (response.status, response.body)
            }
        };

        assert_eq!(ask("stable.example.com").await, (200, "stable backend\n".to_string()));
        assert_eq!(ask("stable").await, (200, "stable backend\n".to_string()));
        assert_eq!(ask("elsewhere.example.com").await, (404, "no route for this host\n".to_string()));

        // Two live instances of 0.1.x: each request picks one at random. Missing one in
        // 64 tries has a chance of 2^-63.
        let mut bodies = Vec::new();
        for _ in 0..64 {
            let (status, body) = ask("unstable.example.com").await;
            assert_eq!(status, 200);
            bodies.push(body);
        }
        assert!(bodies.iter().any(|b| b == "unstable a\n"), "never routed to a");
        assert!(bodies.iter().any(|b| b == "unstable b\n"), "never routed to b");

        // The router's replica learns of a free by subscription; a watch on the same
        // pattern shares that replica, so once the watch has the free, so does the router.
        let mut stable_changes = client.watch("http@0.0.x").await.unwrap();
        let mut unstable_changes = client.watch("http@0.1.x").await.unwrap();
        stable.stop().await;
        assert!(matches!(stable_changes.next().await, Some(Change::Free(r)) if r.name() == "http@0.0.1"));
        assert_eq!(ask("stable.example.com").await, (503, "service not available\n".to_string()));

        unstable_a.stop().await;
        assert!(matches!(unstable_changes.next().await, Some(Change::Free(r)) if r.name() == "http@0.1.0"));
        for _ in 0..16 {
            assert_eq!(ask("unstable.example.com").await, (200, "unstable b\n".to_string()));
        }

        // A new stable instance is routed to as soon as it is registered.
        let stable2 = TextService::start(connect(), "http@0.0.2", "stable again\n").await.unwrap();
        assert!(matches!(stable_changes.next().await, Some(Change::Register(r)) if r.name() == "http@0.0.2"));
        assert_eq!(ask("stable.example.com").await, (200, "stable again\n".to_string()));

        router.cancel().await;
        stable2.stop().await;
        unstable_b.stop().await;
        client.close().await;
        hub.shutdown().await;
    });
}

#[test]
fn router_rejects_a_malformed_request() {
    with_deadline(async {
        use futures::{AsyncReadExt, AsyncWriteExt};
        let hub = Hub::bind("127.0.0.1:0", HubConfig::default()).await.unwrap();
        let client = Client::connect(&[hub.local_addr().to_string()], ClientConfig::default()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = task::spawn(serve_router(listener, client.clone(), Routes::stable_unstable()));

        let mut stream = async_std::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"NOT HTTP AT ALL\r\n\r\n").await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");

        router.cancel().await;
        client.close().await;
        hub.shutdown().await;
    });
}

#[test]
fn multi_hub_service_survives_losing_its_hub() {
    let outcome = with_deadline(multi_hub::run()).unwrap();
    let [hub1, hub2] = &outcome.hubs;
    let [id1, id2] = outcome.hub_ids;
    assert_ne!(hub1, hub2);
    assert_ne!(id1, id2);
    // Registered through hub 1, found by the client of hub 2 through the peering.
    assert_eq!(outcome.registered.origin, id1);
    assert_eq!(outcome.before.name(), "web@1.2.3");
    assert_eq!((&outcome.before.id, outcome.before.port), (&outcome.registered.id, outcome.registered.port));
    assert_eq!(outcome.before.origin, id1);
    // Hub 1 gone: the service moved to hub 2 and registered again, same id and port.
    assert_eq!(&outcome.moved_to, hub2);
    assert_eq!(outcome.after.name(), "web@1.2.3");
    assert_eq!((&outcome.after.id, outcome.after.port), (&outcome.registered.id, outcome.registered.port));
    assert_eq!(outcome.after.host, outcome.registered.host);
    assert_eq!(outcome.after.origin, id2);
    assert_eq!(outcome.bodies, ["beep boop\r\n", "beep boop\r\n"]);
}
