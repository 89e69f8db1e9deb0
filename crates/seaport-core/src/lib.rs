//! seaport-core: the sans-I/O heart of seaport-rs.
//!
//! # Contract
//!
//! This crate does no I/O, reads no clock, starts no threads and has no hidden
//! randomness: every time-dependent call takes `now` (a [`Timestamp`]), every random
//! choice comes from a PRNG seeded from the configuration, and iteration order depends
//! only on the sequence of inputs. The same inputs give the same outputs, so a failing
//! simulation seed or fuzz input replays exactly. Network code (seaport-net) or a test
//! drives it.
//!
//! # The main types
//!
//! - [`VersionRange`]: node-semver ranges (`^1.2.3`, `1.x || >=2.5.0`, `1.2 - 2.3.4`).
//! - [`Pattern`]: `role`, `role@range`, plus host and metadata filters.
//! - [`Record`]: one service instance, `role@version` at `host:port` with metadata.
//! - [`Registry`]: records with indexes, queries and port assignment.
//! - [`Hub`]: the hub state machine: sessions, leases, subscriptions, authorization.
//! - [`message`]: the wire messages between clients and hubs.
//!
//! # Example
//!
//! ```
//! use seaport_core::{Hub, HubConfig, SessionId, SessionKind, Timestamp, Registration};
//! use seaport_core::message::{ClientMessage, HubMessage, SubscriptionId, Change};
//!
//! let mut hub = Hub::new(HubConfig::default());
//! let t0 = Timestamp::from_millis(0);
//! let (service, watcher) = (SessionId(1), SessionId(2));
//! hub.handle_session_opened(t0, service, SessionKind::Client, "10.0.0.5".into());
//! hub.handle_session_opened(t0, watcher, SessionKind::Client, "10.0.0.6".into());
//! hub.handle_message(t0, watcher, None, ClientMessage::Subscribe {
//!     request: 1,
//!     subscription: SubscriptionId(1),
//!     pattern: "web@1.x".into(),
//!     resume: None,
//! });
//! hub.handle_message(t0, service, None, ClientMessage::Register {
//!     request: 1,
//!     registration: Registration::from_name("web@1.2.3"),
//! });
//! let mut seen = Vec::new();
//! while let Some(t) = hub.poll_outgoing() {
//!     if let HubMessage::Change { change: Change::Register(record), .. } = &t.message {
//!         assert_eq!(t.to, vec![watcher]);
//!         seen.push(record.address());
//!     }
//! }
//! assert_eq!(seen.len(), 1);
//! assert!(seen[0].starts_with("10.0.0.5:"));
//!
//! // The service's connection drops: its record is freed and the watcher told.
//! hub.handle_session_closed(t0, service);
//! assert!(hub.registry().is_empty());
//! ```
#![deny(missing_docs)]

pub mod error;
pub mod hub;
pub mod message;
pub mod meta;
pub mod pattern;
pub mod ports;
pub mod record;
pub mod registry;
pub mod time;
pub mod value;
pub mod version;

pub use error::{ParseError, ParseErrorKind, RegistryError};
pub use hub::{
    CloseReason, Event, FreeReason, Hub, HubConfig, KeyId, Limits, SessionId, SessionKind, Transmit, HUB_ROLE,
};
pub use message::{Change, ClientMessage, ErrorCode, HubMessage, PeerMessage, RequestId, ResumePoint, SubscriptionId};
pub use meta::Meta;
pub use pattern::Pattern;
pub use ports::DEFAULT_PORT_RANGE;
pub use record::{
    Host, HubId, MetaLimits, PortRequest, Record, RecordId, Registration, Role, SharedVersion, VersionPool,
};
pub use registry::Registry;
pub use semver;
pub use time::Timestamp;
pub use value::Value;
pub use version::VersionRange;
