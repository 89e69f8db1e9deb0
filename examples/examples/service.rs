//! A hub, an HTTP server that gets its port from the hub and registers as `web@1.2.3`,
//! and a client that waits for `web@1.2.x` (it asks before the server exists), then
//! fetches `beep boop` from it.
//!
//! ```sh
//! cargo run -p seaport-examples --example service              # hub in this process
//! cargo run -p seaport-examples --example service -- HOST:PORT # a running `seaport listen`
//! ```
//!
//! The code is in `examples/src/service.rs`.

#[async_std::main]
async fn main() -> anyhow::Result<()> {
    seaport_examples::service::run(std::env::args().nth(1)).await?;
    Ok(())
}
