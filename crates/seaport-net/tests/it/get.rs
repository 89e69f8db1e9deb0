//! node seaport's get-before-register behaviour: `get` waits for a match.

use std::time::Duration;

use async_std::task;
use seaport_net::{ClientError, HubConfig, RegisterOptions};

use crate::util::*;

#[async_std::test]
async fn get_before_the_service_exists_resolves_once_it_registers() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let user = client(&addr);
        let service = client(&addr);
        // Nothing there yet (this also subscribes, so the get below is surely waiting).
        assert!(user.query("web@1.2.x").await.unwrap().is_empty());
        let getter = user.clone();
        let pending = task::spawn(async move { getter.get("web@1.2.x").await });

        let r = service.register("web@1.2.3", RegisterOptions::default()).await.unwrap();
        let found = within("the pending get", pending).await.unwrap();
        assert_eq!(ids(&found), vec![r.id.to_string()]);
        assert_eq!(found[0].port, r.port);
        assert_eq!(found[0].host, "127.0.0.1");

        user.close().await;
        service.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn get_first_on_a_fresh_client() {
    // The get is the very first call: it has to wait for the connection and the snapshot.
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let user = client(&addr);
        let pending = task::spawn(async move {
            let found = user.get("api").await;
            user.close().await;
            found
        });
        let service = client(&addr);
        let r = service.register("api@2.0.0", RegisterOptions::default()).await.unwrap();
        let found = within("the pending get", pending).await.unwrap();
        assert_eq!(ids(&found), vec![r.id.to_string()]);
        service.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn get_ignores_services_outside_the_range() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let user = client(&addr);
        let service = client(&addr);
        assert!(user.query("web@1.2.x").await.unwrap().is_empty());
        let getter = user.clone();
        let pending = task::spawn(async move { getter.get("web@1.2.x").await });

        service.register("web@1.3.0", RegisterOptions::default()).await.unwrap();
        service.register("api@1.2.3", RegisterOptions::default()).await.unwrap();
        service.register("web", RegisterOptions::default()).await.unwrap();
        let right = service.register("web@1.2.9", RegisterOptions::default()).await.unwrap();
        let found = within("the pending get", pending).await.unwrap();
        assert_eq!(ids(&found), vec![right.id.to_string()], "get(web@1.2.x) returned {found:?}");

        user.close().await;
        service.close().await;
        hub.shutdown().await;
    })
    .await;
}

#[async_std::test]
async fn get_timeout_gives_up() {
    with_deadline(TEST_DEADLINE, async {
        let (hub, addr) = start_hub(HubConfig::default()).await;
        let user = client(&addr);
        let limit = Duration::from_millis(200);
        assert_eq!(user.get_timeout("nothing", limit).await, Err(ClientError::Timeout(limit)));
        user.close().await;
        hub.shutdown().await;
    })
    .await;
}
