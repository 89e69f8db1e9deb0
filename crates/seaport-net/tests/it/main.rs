//! Integration tests of seaport-net over loopback: hubs and clients on
//! 127.0.0.1, plus raw sockets driven frame by frame. The scenarios of node
//! seaport's own test suite come first, then what seaport-rs adds
//! (signed frames, hostile input, slow readers, limits).
//!
//! Every test binds port 0, ends within [`util::TEST_DEADLINE`], and waits for
//! events or polled conditions, never for a fixed time.

mod allocate;
mod auth;
mod events;
mod free;
mod get;
mod herd;
mod hostile;
mod limits;
mod liveness;
mod mesh;
mod meta;
mod restart;
mod resume;
mod robustness;
mod util;
mod versions;
mod watch;
