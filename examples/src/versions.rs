//! Three versions of one service, and queries by node-semver range: node seaport's
//! `example/version`.

use seaport_net::{Client, RegisterOptions};

/// The ranges [`run`] queries, in order.
pub const QUERIES: [&str; 3] = ["beep", "beep@1.2.x", "beep@>1.2.0"];

/// What [`run`] saw: each query of [`QUERIES`] with the versions it found, ascending.
pub type Outcome = Vec<(String, Vec<String>)>;

/// The example, against the hub at `hub` or one started in this process: registers
/// `beep@1.2.3`, `beep@1.3.5` and `beep@0.9.2` (one client each, as three services
/// would), then queries [`QUERIES`] from a fourth client.
///
/// # Errors
/// The hub cannot be started or reached.
pub async fn run(hub: Option<String>) -> anyhow::Result<Outcome> {
    let (hub_addr, local_hub) = crate::hub_or_local(hub).await?;

    let mut services = Vec::new();
    for name in ["beep@1.2.3", "beep@1.3.5", "beep@0.9.2"] {
        let client = Client::connect(&[&hub_addr], crate::client_config())?;
        let record = client.register(name, RegisterOptions::default()).await?;
        println!("registered {record}");
        services.push(client);
    }

    let client = Client::connect(&[&hub_addr], crate::client_config())?;
    let mut outcome = Outcome::new();
    for pattern in QUERIES {
        let found = client.query(pattern).await?;
        let mut versions: Vec<_> = found.iter().filter_map(|r| r.version.clone()).collect();
        versions.sort();
        let versions: Vec<String> = versions.iter().map(ToString::to_string).collect();
        println!("{pattern:<12} -> {} found: {}", found.len(), versions.join(", "));
        outcome.push((pattern.to_string(), versions));
    }

    client.close().await;
    for service in services {
        service.close().await;
    }
    crate::shutdown(local_hub).await;
    Ok(outcome)
}
