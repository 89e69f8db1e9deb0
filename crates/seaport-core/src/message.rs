//! Wire messages between clients and hubs.
//!
//! These are plain serde enums; seaport-net frames, signs and moves them. Requests carry
//! raw text (roles, versions, patterns) that the hub validates, so a malformed field gets
//! an error reply tied to its request instead of a broken connection.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::RegistryError;
use crate::hub::KeyId;
use crate::record::{HubId, Record, RecordId, Registration};
use crate::value::Meta;

/// Identifies a request on one connection; the reply carries the same id.
pub type RequestId = u64;

/// Identifies a subscription on one connection, chosen by the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SubscriptionId(pub u64);

/// A message from a client to a hub.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ClientMessage {
    /// Register a service; answered by [`HubMessage::Registered`] or [`HubMessage::Rejected`].
    Register {
        /// Request id.
        request: RequestId,
        /// What to register.
        registration: Registration,
    },
    /// Free a record; answered by [`HubMessage::Done`] or [`HubMessage::Rejected`].
    Free {
        /// Request id.
        request: RequestId,
        /// The record's id.
        id: String,
    },
    /// Replace a record's metadata; answered by [`HubMessage::Updated`] or [`HubMessage::Rejected`].
    Update {
        /// Request id.
        request: RequestId,
        /// The record's id.
        id: String,
        /// The new metadata.
        meta: Meta,
    },
    /// Subscribe to the records matching a pattern: the hub answers with
    /// [`HubMessage::Snapshot`]s of the current matches, then [`HubMessage::Synced`], then
    /// sends a [`HubMessage::Change`] for every change to a matching record.
    ///
    /// With a `resume` point that names this hub incarnation and that the hub's change
    /// log still covers, the hub sends [`HubMessage::Resumed`] messages instead of
    /// snapshots: only what changed since then, so the client patches the replica it
    /// kept. Any other resume point (another incarnation, too old, from the future) gets
    /// a full snapshot; [`HubMessage::Synced`] says which of the two it was.
    Subscribe {
        /// Request id.
        request: RequestId,
        /// The client's id for this subscription; reusing one replaces its pattern.
        subscription: SubscriptionId,
        /// The pattern, in [`Pattern`](crate::Pattern) syntax.
        pattern: String,
        /// Where the client's replica of this same pattern stands, from an earlier
        /// [`HubMessage::Synced`] and the [`HubMessage::Change`]s after it.
        resume: Option<ResumePoint>,
    },
    /// Drop a subscription; answered by [`HubMessage::Done`].
    Unsubscribe {
        /// Request id.
        request: RequestId,
        /// Which subscription.
        subscription: SubscriptionId,
    },
    /// Keeps the lease alive when there is nothing else to send.
    Heartbeat,
    /// A record as node seaport clients announce it (see the JSON-lines protocol): the
    /// hub applies node's rules instead of a plain register. Answered by `Registered`
    /// (stored or updated), `Done` (ignored) or `Rejected` (held by another session).
    Announce {
        /// Request id.
        request: RequestId,
        /// The record, with the port the client chose.
        registration: Registration,
        /// Sent again after a reconnect, before the client's own `synced`.
        reannounced: bool,
    },
    /// Hub-to-hub traffic on a connection a peer opened (see [`PeerMessage`]).
    Peer(PeerMessage),
}

/// Traffic between peered hubs, both ways on one connection. The hub that connected
/// sends these inside [`ClientMessage::Peer`], the other inside [`HubMessage::Peer`].
///
/// Each hub announces to each peer the routes to the hubs it can reach (a path-vector:
/// the list of hubs on the way, so a route through oneself is refused and no loop forms)
/// and the records of its view whose origin it announces a route for. A hub takes the
/// records of each origin from the peer with the shortest route to it, and the
/// highest incarnation of an id wins. When a link drops, its routes and records go.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PeerMessage {
    /// First message each way: who the sender is.
    Hello {
        /// The sender's hub id.
        hub: HubId,
    },
    /// The sender reaches `origin` through `path` (the sender first, `origin` last).
    Route {
        /// The hub the route leads to.
        origin: HubId,
        /// The hubs on the way.
        path: Vec<HubId>,
    },
    /// The sender no longer offers a route to `origin`; its records from there are gone.
    Unroute {
        /// The hub.
        origin: HubId,
    },
    /// A record of the sender's view (new or changed).
    Record(Arc<Record>),
    /// The sender no longer offers this record.
    Forget {
        /// The record id.
        id: RecordId,
    },
    /// A client of the sender asked to free a record that `origin` holds; forwarded
    /// toward the origin.
    Free {
        /// The record id.
        id: RecordId,
        /// Which incarnation (a newer one is left alone).
        incarnation: u64,
        /// The key that signed the client's request.
        signer: Option<KeyId>,
    },
    /// A client of the sender asked to replace a record's metadata; forwarded toward the
    /// record's origin.
    Update {
        /// The record id.
        id: RecordId,
        /// Which incarnation (a newer one is left alone).
        incarnation: u64,
        /// The new metadata.
        meta: Meta,
        /// The key that signed the client's request.
        signer: Option<KeyId>,
    },
}

impl ClientMessage {
    /// The request id the answer will carry, if the message has one.
    pub fn request(&self) -> Option<RequestId> {
        match self {
            ClientMessage::Register { request, .. }
            | ClientMessage::Free { request, .. }
            | ClientMessage::Update { request, .. }
            | ClientMessage::Subscribe { request, .. }
            | ClientMessage::Unsubscribe { request, .. }
            | ClientMessage::Announce { request, .. } => Some(*request),
            ClientMessage::Heartbeat | ClientMessage::Peer(_) => None,
        }
    }
}

/// A point in the history of one hub incarnation's view: after the change numbered
/// `revision`. A client keeps one per subscription to resume it after a reconnect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResumePoint {
    /// The hub's id.
    pub hub: HubId,
    /// The hub's epoch: differs on every start of the hub, so a revision of an earlier
    /// run (which counted from zero again) is never taken for one of this run.
    pub epoch: u64,
    /// The number of changes to the hub's view so far (0 before the first).
    pub revision: u64,
}

/// A change to a record, sent to every session subscribed to a pattern it matches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Change {
    /// A record was registered, or registered again with the same id (replacing it).
    Register(Arc<Record>),
    /// A record's metadata was replaced.
    Update(Arc<Record>),
    /// A record was freed.
    Free(Arc<Record>),
}

impl Change {
    /// The record the change is about (for a free, the record as it was).
    pub fn record(&self) -> &Arc<Record> {
        match self {
            Change::Register(r) | Change::Update(r) | Change::Free(r) => r,
        }
    }
}

/// A message from a hub to a client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum HubMessage {
    /// First message on a session.
    Welcome {
        /// The hub's id.
        hub: HubId,
        /// The client's address as the hub sees it: the default host of its records.
        host: String,
        /// How often the client should send something, in milliseconds.
        heartbeat_ms: u64,
        /// After how long without a frame the hub drops the session, in milliseconds.
        timeout_ms: u64,
    },
    /// A registration succeeded.
    Registered {
        /// The request.
        request: RequestId,
        /// The record as stored, with its id and port.
        record: Arc<Record>,
    },
    /// A metadata update succeeded.
    Updated {
        /// The request.
        request: RequestId,
        /// The record as stored.
        record: Arc<Record>,
    },
    /// A free or unsubscribe succeeded.
    Done {
        /// The request.
        request: RequestId,
    },
    /// A request was refused.
    Rejected {
        /// The request, if the refusal is tied to one.
        request: Option<RequestId>,
        /// A stable code for programs.
        code: ErrorCode,
        /// A sentence for people.
        message: String,
    },
    /// Some of the records matching a subscription when it started (there may be several):
    /// a full snapshot, which replaces whatever replica the client had.
    Snapshot {
        /// The subscription.
        subscription: SubscriptionId,
        /// Matching records.
        records: Vec<Arc<Record>>,
    },
    /// Some of what changed for a resumed subscription since its resume point (there may
    /// be several): at most one change per record id, each giving the record's state now.
    /// A `Register` or `Update` is a record that matches the pattern now; a `Free` is a
    /// record that matched at some point since the resume point and is gone or no longer
    /// matches (it carries the record as it last matched).
    Resumed {
        /// The subscription.
        subscription: SubscriptionId,
        /// The changes, by record id.
        changes: Vec<Change>,
    },
    /// The snapshot (or the resumed changes) of a subscription is complete; changes follow.
    Synced {
        /// The subscription.
        subscription: SubscriptionId,
        /// Where the hub's view stands: the client's resume point for this subscription.
        at: ResumePoint,
        /// `true` when the subscription was resumed ([`HubMessage::Resumed`] messages
        /// came), `false` after a full snapshot.
        resumed: bool,
    },
    /// A record matching one of the session's subscriptions changed. The same message
    /// goes to every interested session, so it is encoded once; clients route it to their
    /// own subscriptions by matching their patterns.
    Change {
        /// The change's number in this hub incarnation: one more than the change before
        /// it in the hub's view, whichever sessions that one went to. Every change a
        /// session's subscriptions care about up to this one has reached the session, so
        /// a synced subscription's resume point moves up to it.
        revision: u64,
        /// The change.
        change: Change,
    },
    /// The hub is alive.
    Heartbeat,
    /// Hub-to-hub traffic on a connection this hub accepted (see [`PeerMessage`]).
    Peer(PeerMessage),
}

/// Stable error codes sent on the wire; new codes are only ever appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorCode {
    /// A field of the request is malformed (role, id, version, host, pattern).
    Invalid,
    /// The metadata is too large or too deep.
    InvalidMeta,
    /// Port 0 or an empty port range.
    InvalidPort,
    /// No free port in the range.
    PortRangeExhausted,
    /// No record with that id.
    UnknownId,
    /// The signer may not do this.
    Unauthorized,
    /// Too many registrations on this connection.
    TooManyRegistrations,
    /// Too many subscriptions on this connection.
    TooManySubscriptions,
    /// No subscription with that id.
    UnknownSubscription,
    /// A frame could not be decoded.
    Malformed,
    /// The connection sends faster than the hub allows.
    RateLimited,
    /// The hub is at its connection limit.
    TooManyConnections,
    /// The hub is closing this connection (reason in the message).
    Closing,
    /// Another connected session holds the record.
    OwnedElsewhere,
}

impl RegistryError {
    /// The wire code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            RegistryError::Invalid(_) => ErrorCode::Invalid,
            RegistryError::InvalidMeta(_) => ErrorCode::InvalidMeta,
            RegistryError::InvalidPort | RegistryError::InvalidPortRange { .. } => ErrorCode::InvalidPort,
            RegistryError::PortRangeExhausted { .. } => ErrorCode::PortRangeExhausted,
            RegistryError::UnknownId(_) => ErrorCode::UnknownId,
            RegistryError::Unauthorized(_) => ErrorCode::Unauthorized,
            RegistryError::TooManyRegistrations { .. } => ErrorCode::TooManyRegistrations,
            RegistryError::TooManySubscriptions { .. } => ErrorCode::TooManySubscriptions,
            RegistryError::UnknownSubscription(_) => ErrorCode::UnknownSubscription,
            RegistryError::OwnedElsewhere(_) => ErrorCode::OwnedElsewhere,
        }
    }
}
