//! Fuzz checks for seaport-rs.
//!
//! Each module holds the checks of one or two cargo-fuzz targets (`fuzz_targets/`), as
//! plain functions that panic on a violation, so that the regression tests in
//! `crates/seaport-core/tests/it/fuzz_regressions.rs` and
//! `crates/seaport-net/tests/fuzz_regressions.rs` include the same files (with
//! `#[path]`) and replay the saved inputs through the very same checks.
//!
//! Modules only refer to each other as `crate::...`, and the tests mount them at their
//! crate root, so those paths resolve there too.

pub mod hub;
pub mod pattern;
pub mod wire;
