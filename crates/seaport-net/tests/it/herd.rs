//! A herd of connections arriving at once (every client of a restarted hub comes back
//! together): the hub accepts and welcomes them all, none is dropped by a full listen
//! queue or starved in the handshake.

use futures::future::join_all;
use seaport_net::HubConfig;

use crate::util::*;

#[async_std::test]
async fn a_herd_of_connections_is_accepted_and_welcomed() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        // Well above std's default listen backlog of 128, all started before any is served.
        let herd = 1500;
        let connections = join_all((0..herd).map(|_| Raw::connect(&addr))).await;
        assert_eq!(connections.len(), herd);
        assert!(connections.iter().all(|raw| raw.host == "127.0.0.1"), "every connection got its welcome");
        wait_until("the hub to count every connection", || hub.connection_count() == herd).await;
        drop(connections);
        wait_until("the hub to see them all go", || hub.connection_count() == 0).await;
        hub.shutdown().await;
    })
    .await;
}
