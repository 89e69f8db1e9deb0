//! A keyed hub: only authorized keys may register, anyone may query. Node seaport's
//! `example/authorized_keys`, with keys made on the spot.
//!
//! The files are the ones an operator would handle: a key pair per service
//! (`seaport keygen`), and the hub's authorized list, a JSON array of public keys
//! (`seaport pubkey web.json > authorized.json`), passed to `seaport listen 9090
//! hub.json authorized.json`.

use std::path::Path;

use seaport_net::auth::{authorized_to_json, load_authorized};
use seaport_net::{Client, ClientConfig, ClientError, Hub, HubConfig, KeyPair};

use crate::http::{self, TextService};

/// What [`run`] saw.
#[derive(Debug)]
pub struct Outcome {
    /// The body the authorized service answered the unsigned client with.
    pub body: String,
    /// Why the hub refused the service whose key is not on the list.
    pub refused: ClientError,
    /// How many `web` records the unsigned client found.
    pub found: usize,
}

/// Generates `name`'s key pair into `dir` (as `seaport keygen --out dir/name.json` would).
fn keygen(dir: &Path, name: &str) -> anyhow::Result<KeyPair> {
    let path = dir.join(format!("{name}.json"));
    KeyPair::generate().save(&path)?;
    println!("wrote {}", path.display());
    // Read it back, as a service started later would.
    Ok(KeyPair::load(&path)?)
}

fn signed(hub: &str, key: KeyPair) -> Result<Client, ClientError> {
    Client::connect(&[hub], ClientConfig { key: Some(key), ..crate::client_config() })
}

/// The example: keys in a temporary folder, a hub on 127.0.0.1 that accepts only the
/// `web` key, the `web` service registering and serving HTTP, an `intruder` signed with
/// a key the hub does not know being refused, and an unsigned client finding `web` and
/// fetching from it.
///
/// # Errors
/// Keys cannot be written, the hub cannot start, or an expected step fails.
pub async fn run() -> anyhow::Result<Outcome> {
    let dir = tempfile::tempdir()?;
    let hub_key = keygen(dir.path(), "hub")?;
    let web_key = keygen(dir.path(), "web")?;
    let intruder_key = keygen(dir.path(), "intruder")?;
    let authorized = dir.path().join("authorized.json");
    std::fs::write(&authorized, authorized_to_json(&[web_key.public()]))?;
    println!("wrote {} (authorizes {})", authorized.display(), web_key.public());

    let config = HubConfig { key: Some(hub_key), authorized: load_authorized(&authorized)?, ..HubConfig::default() };
    let hub = Hub::bind("127.0.0.1:0", config).await?;
    let hub_addr = hub.local_addr().to_string();
    println!("hub listening on {hub_addr}, accepting registrations signed by {}", web_key.public());

    let web = TextService::start(signed(&hub_addr, web_key)?, "web@1.2.3", "beep boop\n").await?;
    println!("web: registered {}", web.record);

    let intruder = signed(&hub_addr, intruder_key)?;
    let refused = match intruder.register("web@6.6.6", Default::default()).await {
        Ok(record) => anyhow::bail!("the hub accepted {record} from a key it does not know"),
        Err(e) => e,
    };
    println!("intruder: {refused}");
    intruder.close().await;

    let reader = Client::connect(&[&hub_addr], crate::client_config())?;
    let found = reader.get_timeout("web@1.2.x", crate::DEADLINE).await?;
    let response = http::get(&found[0].address(), &found[0].host, "/").await?;
    print!("unsigned client: found {} web, GET -> {}", found.len(), response.body);

    reader.close().await;
    web.stop().await;
    hub.shutdown().await;
    Ok(Outcome { body: response.body, refused, found: found.len() })
}
