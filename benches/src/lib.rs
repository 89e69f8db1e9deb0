//! Criterion benchmarks and load tools for seaport-rs; see `benches/`.
