//! The runnable examples of seaport-rs, as a library so that the tests run exactly the
//! code the examples run.
//!
//! Each example in `examples/examples/` is a thin `main` around a `run` function here:
//!
//! | example | module | shows |
//! |---|---|---|
//! | `service` | [`service`] | a hub, an HTTP server that gets its port from it, a client that finds it |
//! | `router` | [`router`] | an HTTP reverse proxy routing on `Host` to versioned backends |
//! | `versions` | [`versions`] | node-semver ranges in queries |
//! | `authorized_keys` | [`authorized_keys`] | a keyed hub: who may register, and who may still query |
//! | `multi_hub` | [`multi_hub`] | two peered hubs: a service survives losing the hub it registered on |
//! | `embedding` | [`embedding`] | `seaport-core` alone: registry, ranges, the sans-I/O hub on a virtual clock |
//!
//! Run one with `cargo run -p seaport-examples --example NAME`. The [`http`] module holds
//! the small HTTP client and server they share.
#![deny(missing_docs)]

use std::time::Duration;

use seaport_net::{ClientConfig, Hub, HubConfig};

pub mod authorized_keys;
pub mod embedding;
pub mod http;
pub mod multi_hub;
pub mod router;
pub mod service;
pub mod versions;

/// How long an example waits for anything (a record to appear, a change to arrive)
/// before it gives up with an error instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The client configuration of the examples: the defaults, except that a client that
/// cannot reach its hub gives up after a few attempts (a long-running service would
/// keep retrying: [`ClientConfig::connect_attempts`] is `None` by default).
pub fn client_config() -> ClientConfig {
    ClientConfig { connect_attempts: Some(8), ..ClientConfig::default() }
}

/// The hub an example talks to: the one at `addr`, or a hub started in this process on
/// a free port of 127.0.0.1. Returns the address and the in-process hub, if any (shut it
/// down at the end).
///
/// # Errors
/// The in-process hub cannot bind 127.0.0.1.
pub async fn hub_or_local(addr: Option<String>) -> anyhow::Result<(String, Option<Hub>)> {
    Ok(match addr {
        Some(addr) => (addr, None),
        None => {
            let hub = Hub::bind("127.0.0.1:0", HubConfig::default()).await?;
            println!("hub listening on {}", hub.local_addr());
            (hub.local_addr().to_string(), Some(hub))
        }
    })
}

/// Shuts down the in-process hub returned by [`hub_or_local`], if there is one.
pub async fn shutdown(hub: Option<Hub>) {
    if let Some(hub) = hub {
        hub.shutdown().await;
    }
}
