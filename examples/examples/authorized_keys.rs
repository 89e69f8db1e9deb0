//! A keyed hub. Generates key pairs into a temporary folder, starts a hub on 127.0.0.1
//! that accepts registrations signed by the `web` key only, registers `web@1.2.3` with
//! it, shows a service signed by an unknown key being refused, and an unsigned client
//! still finding `web` and fetching from it.
//!
//! ```sh
//! cargo run -p seaport-examples --example authorized_keys
//! ```
//!
//! The same with the command line: `seaport keygen --out web.json`, `seaport pubkey
//! web.json > authorized.json`, `seaport listen 9090 authorized.json`, `seaport register
//! localhost:9090 web@1.2.3 --key web.json -- ./server`. The code is in
//! `examples/src/authorized_keys.rs`.

#[async_std::main]
async fn main() -> anyhow::Result<()> {
    seaport_examples::authorized_keys::run().await?;
    Ok(())
}
