//! Runnable examples for seaport-rs; see `examples/`.
