//! seaport-net: seaport-rs over TCP.
//!
//! The hub server ([`Hub`]) drives the sans-I/O core hub of `seaport-core` from
//! async-std sockets; the [`Client`] registers services, finds and watches them, and
//! keeps its registrations alive across reconnects and hub restarts. Frames are
//! length-prefixed bincode, optionally signed with ed25519 ([`auth`]); the format is
//! specified in the [`frame`] module and in `docs/protocol.md`.
//!
//! # Example: a hub and a client in one program
//!
//! ```
//! # async_std::task::block_on(async {
//! use seaport_net::{Client, ClientConfig, Hub, HubConfig, RegisterOptions};
//!
//! let hub = Hub::bind("127.0.0.1:0", HubConfig::default()).await.unwrap();
//! let addr = hub.local_addr().to_string();
//!
//! let service = Client::connect(&[&addr], ClientConfig::default()).unwrap();
//! let record = service.register("web@1.2.3", RegisterOptions::default()).await.unwrap();
//! println!("listen on port {}", record.port);
//!
//! let user = Client::connect(&[&addr], ClientConfig::default()).unwrap();
//! let found = user.get("web@^1.2.0").await.unwrap();
//! assert_eq!(found[0].port, record.port);
//!
//! service.close().await;
//! user.close().await;
//! hub.shutdown().await;
//! # });
//! ```
#![deny(missing_docs)]

pub mod auth;
mod client;
pub mod connection;
mod error;
pub mod frame;
mod jsonl;
mod scratch;
mod server;

pub use auth::{KeyFile, KeyPair, PublicKey, Signer, Verifier};
pub use client::{Backoff, Client, ClientConfig, ClientError, ClientEvent, RegisterOptions, HUB_ROLE};
pub use connection::{FrameReader, FrameWriter};
pub use error::{AuthError, FrameError, KeyError};
pub use frame::{Frame, OwnedFrame, SignedHeader, DEFAULT_MAX_FRAME, PROTOCOL_VERSION};
pub use seaport_core as core;
pub use server::{raise_open_files_limit, Hub, HubConfig, ServerError};
