//! Two peered hubs and a service that outlives one of them: node seaport's
//! `example/multi_available` in one program.
//!
//! Hub 2 peers with hub 1, so each holds the other's records. A service registers on hub
//! 1 and a client connected only to hub 2 finds it. Then hub 1 stops: hub 2 drops what it
//! learned from it, the service's client (which learned hub 2 from its `seaport` record)
//! reconnects to hub 2 and registers again with the same id and port, and the client on
//! hub 2 finds the service again, now held by hub 2 itself. The service never stops
//! listening.

use std::sync::Arc;

use async_std::future::timeout;
use futures::StreamExt;
use seaport_core::{HubId, Record};
use seaport_net::{Client, ClientEvent, Hub, HubConfig, HUB_ROLE};

use crate::http::{self, TextService};

/// The name the service registers under, and the pattern the other client looks for.
pub const SERVICE: (&str, &str) = ("web@1.2.3", "web@1.2.x");

/// What [`run`] saw.
#[derive(Debug)]
pub struct Outcome {
    /// The two hubs' addresses.
    pub hubs: [String; 2],
    /// The two hubs' ids (the `origin` of the records registered through each).
    pub hub_ids: [HubId; 2],
    /// The service's record, as hub 1 registered it.
    pub registered: Arc<Record>,
    /// The service as the client on hub 2 found it while hub 1 was up.
    pub before: Arc<Record>,
    /// The hub the service's client moved to when hub 1 stopped.
    pub moved_to: String,
    /// The service as the client on hub 2 found it after hub 1 stopped.
    pub after: Arc<Record>,
    /// The service's answers to the client on hub 2, before and after.
    pub bodies: [String; 2],
}

/// A hub on a free port of 127.0.0.1 with port partition `index` of 2, so the two hubs
/// never assign the same port.
async fn start_hub(index: u16) -> anyhow::Result<(Hub, String, HubId)> {
    let mut config = HubConfig::default();
    config.core.port_partition = (index, 2);
    // Records carry the id of the hub they were registered through. `Hub::bind` picks a
    // random one when it is left at 0; picking it here lets the example tell which hub
    // holds a record.
    let id = HubId(rand::random::<u64>().max(1));
    config.core.id = id;
    let hub = Hub::bind("127.0.0.1:0", config).await?;
    let addr = hub.local_addr().to_string();
    println!("hub {} listening on {addr} (id {id})", index + 1);
    Ok((hub, addr, id))
}

/// The example: two hubs in this process, everything on 127.0.0.1, every wait bounded
/// by [`DEADLINE`](crate::DEADLINE).
///
/// # Errors
/// A hub cannot be started, something does not happen within the deadline, or a request
/// fails.
pub async fn run() -> anyhow::Result<Outcome> {
    let deadline = crate::DEADLINE;
    let (hub1, addr1, id1) = start_hub(0).await?;
    let (hub2, addr2, id2) = start_hub(1).await?;
    hub2.peer(addr1.clone());

    // The service, connected to hub 1 only.
    let service_client = Client::connect(&[&addr1], crate::client_config())?;
    let mut service_events = service_client.events()?;
    let service = TextService::start(service_client.clone(), SERVICE.0, "beep boop\r\n").await?;
    let registered = Arc::clone(&service.record);
    println!("service: {registered} registered on hub 1");

    // Once the hubs are peered, hub 1 holds hub 2's `seaport` record and the service's
    // client learns hub 2 from it: where to go if hub 1 fails.
    let mut hub_changes = service_client.watch(HUB_ROLE).await?;
    timeout(deadline, async {
        while !service_client.query(HUB_ROLE).await?.iter().any(|r| r.address() == addr2) {
            hub_changes.next().await.ok_or_else(|| anyhow::anyhow!("the service's client closed"))?;
        }
        anyhow::Ok(())
    })
    .await
    .map_err(|_| anyhow::anyhow!("the service's client did not learn hub 2 within {deadline:?}"))??;
    println!("service: learned hub 2 ({addr2}) through hub 1");

    // A client of hub 2 finds the service registered on hub 1.
    let finder = Client::connect(&[&addr2], crate::client_config())?;
    let mut changes = finder.watch(SERVICE.1).await?;
    let before = finder.get_timeout(SERVICE.1, deadline).await?.swap_remove(0);
    let body_before = fetch(&before).await?;
    print!("client on hub 2: found {before}, held by hub 1 ({}) -> {body_before}", before.origin);

    // Hub 1 stops.
    hub1.shutdown().await;
    println!("hub 1 stopped");

    // The service's client moves to hub 2...
    let moved_to = timeout(deadline, async {
        while let Some(event) = service_events.next().await {
            if let ClientEvent::Connected { hub } = event {
                if hub != addr1 {
                    return Some(hub);
                }
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(|| anyhow::anyhow!("the service's client did not reach another hub within {deadline:?}"))?;
    println!("service: reconnected to {moved_to}");

    // ...and registers again there: the client on hub 2 sees the record change hands,
    // from hub 1's copy to hub 2's own.
    let after = timeout(deadline, async {
        loop {
            let found = finder.query(SERVICE.1).await?;
            if let Some(record) = found.into_iter().find(|r| r.origin == id2) {
                return anyhow::Ok(record);
            }
            changes.next().await.ok_or_else(|| anyhow::anyhow!("the client on hub 2 closed"))?;
        }
    })
    .await
    .map_err(|_| anyhow::anyhow!("the service was not registered on hub 2 within {deadline:?}"))??;
    let body_after = fetch(&after).await?;
    print!("client on hub 2: found {after}, now held by hub 2 ({}) -> {body_after}", after.origin);

    service.stop().await;
    finder.close().await;
    hub2.shutdown().await;
    Ok(Outcome {
        hubs: [addr1, addr2],
        hub_ids: [id1, id2],
        registered,
        before,
        moved_to,
        after,
        bodies: [body_before, body_after],
    })
}

/// `GET /` from the service a record points at.
async fn fetch(record: &Record) -> anyhow::Result<String> {
    Ok(http::get(&record.address(), &record.host, "/").await?.body)
}
