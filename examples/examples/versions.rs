//! Three versions of a service (`beep@1.2.3`, `beep@1.3.5`, `beep@0.9.2`) and queries by
//! node-semver range: `beep` finds 3, `beep@1.2.x` 1, `beep@>1.2.0` 2.
//!
//! ```sh
//! cargo run -p seaport-examples --example versions              # hub in this process
//! cargo run -p seaport-examples --example versions -- HOST:PORT # a running `seaport listen`
//! ```
//!
//! The code is in `examples/src/versions.rs`.

#[async_std::main]
async fn main() -> anyhow::Result<()> {
    seaport_examples::versions::run(std::env::args().nth(1)).await?;
    Ok(())
}
