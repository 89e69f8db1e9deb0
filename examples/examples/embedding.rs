//! `seaport-core` embedded in a program with no network at all: a `Registry` assigning
//! ports and answering `VersionRange` queries, then the sans-I/O `Hub` fed messages on a
//! virtual clock until a silent service's lease expires and its watcher is told.
//!
//! ```sh
//! cargo run -p seaport-examples --example embedding
//! ```
//!
//! The code is in `examples/src/embedding.rs`.

fn main() -> anyhow::Result<()> {
    seaport_examples::embedding::run()?;
    Ok(())
}
