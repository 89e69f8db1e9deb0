//! Two peered hubs; a service registered on hub 1 is found by a client of hub 2; hub 1
//! stops, the service's client fails over to hub 2 and registers again with the same id
//! and port, and the client of hub 2 still finds it.
//!
//! ```sh
//! cargo run -p seaport-examples --example multi_hub
//! ```
//!
//! Both hubs run in this process on free ports of 127.0.0.1. The code is in
//! `examples/src/multi_hub.rs`.

#[async_std::main]
async fn main() -> anyhow::Result<()> {
    seaport_examples::multi_hub::run().await?;
    Ok(())
}
