//! An HTTP reverse proxy that routes on the `Host` header to services found through a
//! hub: the Rust version of node seaport's `example/router`.
//!
//! `stable.example.com` goes to `http@0.0.x`, `unstable.example.com` to `http@0.1.x`
//! (the first label of the host picks the route). Each request goes to a random live
//! instance, read from the client's local replica ([`Client::query`]), so routing costs
//! no round trip to the hub and follows registrations and frees as they happen. With no
//! live instance the answer is `503 service not available`.
//!
//! Routing happens once per connection: the request head is parsed with `httparse`,
//! then bytes are copied both ways until the backend closes, so a keep-alive connection
//! stays with the backend chosen for its first request.

use std::collections::BTreeMap;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use async_std::net::{TcpListener, TcpStream};
use async_std::task;
use futures::future::{self, Either};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use rand::seq::SliceRandom;
use seaport_net::Client;

use crate::http::{self, read_request_head, write_response, TextService};

/// Which pattern serves which host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Routes {
    by_label: BTreeMap<String, String>,
    fallback: Option<String>,
}

impl Routes {
    /// No routes: every request is answered `404`.
    pub fn new() -> Routes {
        Routes::default()
    }

    /// Requests whose host starts with the label `label` (`label` or `label.anything`)
    /// go to an instance matching `pattern`.
    pub fn route(mut self, label: &str, pattern: &str) -> Routes {
        self.by_label.insert(label.to_ascii_lowercase(), pattern.to_string());
        self
    }

    /// Requests matching no route (or with no `Host`) go to `pattern`, as node seaport's
    /// router sends them to `0.0.x`.
    pub fn fallback(mut self, pattern: &str) -> Routes {
        self.fallback = Some(pattern.to_string());
        self
    }

    /// The routes of node seaport's example: `stable` to `http@0.0.x`, `unstable` to
    /// `http@0.1.x`, anything else to `http@0.0.x`.
    pub fn stable_unstable() -> Routes {
        Routes::new().route("stable", "http@0.0.x").route("unstable", "http@0.1.x").fallback("http@0.0.x")
    }

    /// The pattern for a `Host` header value.
    pub fn pattern_for(&self, host: Option<&str>) -> Option<&str> {
        let label = host.map(|h| {
            let without_port = h.rsplit_once(':').map_or(h, |(name, _)| name);
            without_port.split('.').next().unwrap_or_default().to_ascii_lowercase()
        });
        label.and_then(|l| self.by_label.get(&l)).or(self.fallback.as_ref()).map(String::as_str)
    }
}

/// Accepts connections on `listener` and proxies each to a live instance chosen by
/// `routes`, until the task is cancelled.
pub async fn serve_router(listener: TcpListener, client: Client, routes: Routes) {
    let routes = Arc::new(routes);
    let mut incoming = listener.incoming();
    while let Some(stream) = incoming.next().await {
        let stream = match stream {
            Ok(stream) => stream,
            // Out of file descriptors and the like: back off instead of spinning, and
            // keep serving the connections already open.
            Err(_) => {
                task::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (client, routes) = (client.clone(), Arc::clone(&routes));
        task::spawn(async move {
            let _ = proxy(stream, &client, &routes).await;
        });
    }
}

async fn proxy(mut downstream: TcpStream, client: &Client, routes: &Routes) -> io::Result<()> {
    let _ = downstream.set_nodelay(true);
    let head = match read_request_head(&mut downstream).await {
        Ok(Some(head)) => head,
        Ok(None) => return Ok(()),
        Err(e) => return write_response(&mut downstream, 400, &format!("{e}\n")).await,
    };
    let Some(pattern) = routes.pattern_for(head.host.as_deref()) else {
        return write_response(&mut downstream, 404, "no route for this host\n").await;
    };
    // The first query of a pattern subscribes and waits for the hub's snapshot; every
    // later one is answered from the local replica.
    let live = match client.query(pattern).await {
        Ok(live) => live,
        Err(e) => return write_response(&mut downstream, 502, &format!("cannot ask the hub: {e}\n")).await,
    };
    let Some(backend) = live.choose(&mut rand::thread_rng()) else {
        return write_response(&mut downstream, 503, "service not available\n").await;
    };
    let mut upstream = match TcpStream::connect(backend.address()).await {
        Ok(upstream) => upstream,
        // Freed a moment ago, or registered a moment before it listens.
        Err(e) => {
            let message = format!("{} did not answer: {e}\n", backend.address());
            return write_response(&mut downstream, 502, &message).await;
        }
    };
    let _ = upstream.set_nodelay(true);
    upstream.write_all(&head.bytes).await?;

    let (from_client, mut to_client) = downstream.split();
    let (from_backend, mut to_backend) = upstream.split();
    let requests = pin!(async move {
        let copied = futures::io::copy(from_client, &mut to_backend).await;
        let _ = to_backend.close().await;
        copied
    });
    let responses = pin!(async move {
        let copied = futures::io::copy(from_backend, &mut to_client).await;
        let _ = to_client.close().await;
        copied
    });
    // The exchange is over when the backend has finished answering; a client that is
    // done sending (and half-closes) still waits for its answer.
    match future::select(requests, responses).await {
        Either::Left((_, responses)) => responses.await.map(drop),
        Either::Right((answered, _)) => answered.map(drop),
    }
}

/// What [`run`] saw: for each request, the `Host` it sent and the answer.
pub type Exchanges = Vec<(String, http::Response)>;

/// The example: a hub (in-process, or the one at `hub`), two backends (`http@0.0.1`
/// answering `stable backend`, `http@0.1.0` answering `unstable backend`) and the router
/// on `router_addr`; sends a request for each host, then stops the stable backend and
/// asks again. With `serve`, starts the stable backend again and keeps serving (until
/// killed) instead of returning.
///
/// # Errors
/// The hub cannot be started or reached, or an address cannot be bound.
pub async fn run(hub: Option<String>, router_addr: &str, serve: bool) -> anyhow::Result<Exchanges> {
    let (hub_addr, local_hub) = crate::hub_or_local(hub).await?;
    let connect = || Client::connect(&[&hub_addr], crate::client_config());
    let stable = TextService::start(connect()?, "http@0.0.1", "stable backend\n").await?;
    let unstable = TextService::start(connect()?, "http@0.1.0", "unstable backend\n").await?;
    println!("backends: {} and {}", stable.record, unstable.record);

    let router_client = connect()?;
    let listener = TcpListener::bind(router_addr).await?;
    let addr = listener.local_addr()?.to_string();
    let router = task::spawn(serve_router(listener, router_client.clone(), Routes::stable_unstable()));
    println!("router listening on {addr}");

    let mut seen = Exchanges::new();
    for host in ["stable.example.com", "unstable.example.com", "other.example.com"] {
        let response = http::get(&addr, host, "/").await?;
        println!("Host: {host:<22} -> {} {}", response.status, response.body.trim_end());
        seen.push((host.to_string(), response));
    }

    // Watch the stable pattern so we know when the router's replica has seen the free:
    // the watch shares the replica the router queries.
    let mut changes = router_client.watch("http@0.0.x").await?;
    println!("stopping the stable backend");
    stable.stop().await;
    async_std::future::timeout(crate::DEADLINE, changes.next()).await?;
    drop(changes);
    for host in ["stable.example.com", "unstable.example.com"] {
        let response = http::get(&addr, host, "/").await?;
        println!("Host: {host:<22} -> {} {}", response.status, response.body.trim_end());
        seen.push((host.to_string(), response));
    }

    if serve {
        let stable = TextService::start(connect()?, "http@0.0.1", "stable backend\n").await?;
        println!("registered the stable backend again: {}", stable.record);
        println!("serving; try: curl -H 'Host: unstable' http://{addr}/   (Ctrl-C to stop)");
        // The router never returns; the process ends with Ctrl-C.
        router.await;
        return Ok(seen);
    }
    router.cancel().await;
    unstable.stop().await;
    router_client.close().await;
    crate::shutdown(local_hub).await;
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_pick_routes_by_their_first_label() {
        let routes = Routes::stable_unstable();
        assert_eq!(routes.pattern_for(Some("stable")), Some("http@0.0.x"));
        assert_eq!(routes.pattern_for(Some("Unstable.example.com:8080")), Some("http@0.1.x"));
        assert_eq!(routes.pattern_for(Some("unstable:80")), Some("http@0.1.x"));
        assert_eq!(routes.pattern_for(Some("www.unstable.example.com")), Some("http@0.0.x"));
        assert_eq!(routes.pattern_for(None), Some("http@0.0.x"));
        assert_eq!(Routes::new().route("a", "x").pattern_for(Some("b")), None);
    }
}
