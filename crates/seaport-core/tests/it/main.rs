//! Integration tests of seaport-core (one binary, one module per area).

mod fuzz_regressions;
mod hub_props;
mod mesh_sim;
mod resume_props;
mod semver_cases;
