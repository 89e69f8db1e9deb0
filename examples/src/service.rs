//! A hub, an HTTP server that gets its port from the hub, and a client that finds the
//! server by name and version: node seaport's `example/service` in one program.
//!
//! The client asks first, before the server exists: [`Client::get`] waits until a record
//! matches, so start order does not matter.

use std::sync::Arc;

use seaport_core::Record;
use seaport_net::Client;

use crate::http::{self, TextService};

/// What [`run`] saw.
#[derive(Debug)]
pub struct Outcome {
    /// The server's record, as the client found it.
    pub found: Arc<Record>,
    /// The body the server answered the client with.
    pub body: String,
}

/// The example, against the hub at `hub` or one started in this process.
///
/// # Errors
/// The hub cannot be started or reached, the server cannot listen, or the request fails.
pub async fn run(hub: Option<String>) -> anyhow::Result<Outcome> {
    let (hub_addr, local_hub) = crate::hub_or_local(hub).await?;

    // The client first: nothing is registered yet...
    let client = Client::connect(&[&hub_addr], crate::client_config())?;
    let before = client.query("web@1.2.x").await?;
    println!("client: {} instances of web@1.2.x so far; waiting for one", before.len());
    // ...so it waits (in its own task) until one appears.
    let waiting = {
        let client = client.clone();
        async_std::task::spawn(async move { client.get_timeout("web@1.2.x", crate::DEADLINE).await })
    };

    // The server: asks the hub for a port as it registers, then listens on it.
    let server =
        TextService::start(Client::connect(&[&hub_addr], crate::client_config())?, "web@1.2.3", "beep boop\r\n")
            .await?;
    println!("server: {} listening", server.record);

    let found = waiting.await?.swap_remove(0);
    println!("client: found {found}");
    let response = http::get(&found.address(), &found.host, "/").await?;
    print!("client: GET http://{}/ -> {}", found.address(), response.body);

    server.stop().await;
    client.close().await;
    crate::shutdown(local_hub).await;
    Ok(Outcome { found, body: response.body })
}
