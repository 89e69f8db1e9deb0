//! Interop with the real node `seaport` package (npm 2.0.9): node clients talk to a
//! seaport-rs hub over node's JSON-lines protocol, next to seaport-rs clients.
//!
//! The package is installed with npm once, into the target directory
//! ([`harness::node_seaport`]); node processes run `js/driver.js` (a client driven by
//! commands on stdin, printing events on stdout) or the package's own command line. Every
//! test binds port 0, ends within [`harness::TEST_DEADLINE`], kills its node processes
//! when it ends, and waits for events or polled conditions, never for a fixed time.
//!
//! `SEAPORT_SKIP_NODE_TESTS=1` skips these tests (no node, no network);
//! `SEAPORT_NODE_MODULE=/path/to/node_modules/seaport` uses an existing install.

mod harness;
mod interop;
mod keyed;
mod migration;
mod restart;
mod robustness;
