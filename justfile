# seaport-rs tasks. `just --list` shows them.

# Format check and clippy with warnings denied.
check:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

lint: check

# Workspace tests, doc tests included.
test:
    cargo test --workspace

# API docs with warnings denied.
doc:
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

# Criterion benchmarks (see docs/benchmarks.md).
bench *ARGS:
    cargo bench -p seaport-benches {{ARGS}}

# seaport-rs beside node seaport 2.0.9 on this machine: query, node clients against both
# hubs, our clients against our hub; prints tables of ratios (see docs/benchmarks.md).
# Needs node and npm; takes about 15 minutes (every run is bounded).
compare-node:
    bash benches/compare-node/run.sh

# Run fuzz target TARGET (frame, message, pattern, hub) for SECS seconds (see fuzz/README.md).
# Needs `cargo install cargo-fuzz`; runs on the stable toolchain without sanitizers.
fuzz TARGET SECS="60":
    cd fuzz && cargo fuzz run -s none {{TARGET}} -- -max_total_time={{SECS}}

# Run the hub on PORT.
listen PORT="9090":
    cargo run --release -p seaport-cli -- listen {{PORT}}

# What CI runs.
ci:
    bash .ci/run
