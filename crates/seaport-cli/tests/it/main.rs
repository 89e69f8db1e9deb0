//! End-to-end tests of the `seaport` binary against real hubs on 127.0.0.1.

mod harness;

mod faults;
mod hub;
mod keys;
mod mesh;
mod query;
mod register;
mod watch;
