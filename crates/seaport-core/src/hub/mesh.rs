//! Peering: routes to other hubs and the records that come through them.
//!
//! Every hub announces to each peer a route to every hub it can reach, as a path-vector
//! (the hubs on the way), and the records of its view whose origin it announces a route
//! for. A hub refuses a route whose path holds itself, so no announcement loops back;
//! for each remote origin it takes the records from the peer with the shortest route
//! (ties: the lowest session), and never announces an origin back to the peer it takes
//! that origin from (split horizon). When a link drops, its routes and records go with
//! it; whatever is still reachable another way comes back through the new best route.
//! For one id, the record with the highest incarnation wins, so a client that moved to
//! another hub and registered again there is not undone by a late free or expiry of
//! its old registration.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::{Cause, Hub, Local, Owner, SessionId, SessionKind, HUB_ROLE};
use crate::message::{HubMessage, PeerMessage};
use crate::record::{HubId, Record, RecordId, Role};
use crate::time::Timestamp;
use crate::value::Meta;
use crate::FreeReason;

/// The longest route accepted; longer paths are refused as malformed.
const MAX_PATH: usize = 64;

/// One connection to a peer hub.
#[derive(Debug, Default)]
pub(super) struct Link {
    /// The peer's hub id, once it said hello.
    hub: Option<HubId>,
    /// Routes the peer offers: origin to path (the peer first, the origin last).
    routes: BTreeMap<HubId, Vec<HubId>>,
    /// Records the peer offers, and their ids by origin.
    records: FxHashMap<RecordId, Arc<Record>>,
    by_origin: BTreeMap<HubId, BTreeSet<RecordId>>,
    /// What this hub has told the peer.
    sent_routes: BTreeMap<HubId, Vec<HubId>>,
    sent_records: FxHashMap<RecordId, Arc<Record>>,
    sent_by_origin: BTreeMap<HubId, BTreeSet<RecordId>>,
    started: bool,
}

/// The peering state of a hub.
#[derive(Debug, Default)]
pub(super) struct Mesh {
    links: BTreeMap<SessionId, Link>,
    /// For each reachable remote origin: the link records come through, and its path.
    best: BTreeMap<HubId, (SessionId, Vec<HubId>)>,
    /// For each id some peer offers: the links offering it.
    offered: FxHashMap<RecordId, BTreeSet<SessionId>>,
}

impl Mesh {
    /// The number of links to peers.
    pub(super) fn link_count(&self) -> usize {
        self.links.len()
    }

    /// The hubs this hub reaches, with the path to each.
    pub(super) fn routes(&self) -> impl Iterator<Item = (&HubId, &Vec<HubId>)> + '_ {
        self.best.iter().map(|(origin, (_, path))| (origin, path))
    }

    pub(super) fn check(&self) -> Result<(), String> {
        for (session, link) in &self.links {
            for (id, record) in &link.records {
                if !self.offered.get(id.as_str()).is_some_and(|s| s.contains(session)) {
                    return Err(format!("link {session} offers {id} but is not indexed"));
                }
                if !link.by_origin.get(&record.origin).is_some_and(|ids| ids.contains(id)) {
                    return Err(format!("link {session} record {id} missing from its origin index"));
                }
            }
        }
        Ok(())
    }
}

impl Hub {
    /// Registers the hub's own record (role `seaport`) when it has an advertised address.
    pub(super) fn register_self(&mut self) {
        let Some((host, port)) = self.config.advertise.clone() else { return };
        let (Ok(id), Ok(role)) = (RecordId::new(format!("seaport-{}", self.config.id)), Role::new(HUB_ROLE)) else {
            return;
        };
        let version = semver::Version::parse(env!("CARGO_PKG_VERSION")).ok().map(|v| self.registry.shared_version(v));
        let record = Record {
            id: id.clone(),
            role,
            version,
            host: host.into(),
            port,
            meta: Meta::new(),
            origin: self.config.id,
            incarnation: 1,
        };
        let owner = Arc::new(Owner { session: None, key: self.config.hub_key });
        self.local.replace(Local { record: Arc::new(record), owner });
        self.refresh(id.as_str(), Cause { session: None, reason: FreeReason::Requested, tell: None });
    }

    /// Sets (or changes) the address clients should use to reach this hub, and registers
    /// or updates the hub's own record. A driver that learns how peers see it (the host in
    /// a peer's welcome) can call this when no address was configured.
    pub fn set_advertise(&mut self, host: String, port: u16) {
        if self.config.advertise.as_ref() == Some(&(host.clone(), port)) {
            return;
        }
        self.config.advertise = Some((host, port));
        if let Ok(id) = RecordId::new(format!("seaport-{}", self.config.id)) {
            self.local.remove(id.as_str());
        }
        self.register_self();
    }

    /// Describes what the mesh knows of `id`: for debugging simulations.
    #[doc(hidden)]
    pub fn explain(&self, id: &str) -> String {
        let mut out = format!(
            "hub {} view={:?} local={:?} owner={:?} sessions={:?}\n",
            self.config.id,
            self.registry.get(id).map(|r| (r.origin, r.incarnation)),
            self.local.get(id).map(|l| l.record.incarnation),
            self.local.get(id).map(|l| &l.owner),
            self.sessions.keys().collect::<Vec<_>>()
        );
        for (session, link) in &self.mesh.links {
            out += &format!(
                "  link {session} to {:?}: offers {:?}; routes {:?}; sent {:?}\n",
                link.hub,
                link.records.get(id).map(|r| (r.origin, r.incarnation)),
                link.routes,
                link.sent_records.get(id).map(|r| (r.origin, r.incarnation)),
            );
        }
        out += &format!("  best {:?}\n", self.mesh.best);
        out
    }

    /// The number of peer links.
    pub fn peer_count(&self) -> usize {
        self.mesh.link_count()
    }

    /// The hubs this hub reaches through its peers, with the path to each (the peer
    /// first, the hub last).
    pub fn peer_routes(&self) -> impl Iterator<Item = (&HubId, &Vec<HubId>)> + '_ {
        self.mesh.routes()
    }

    /// Says hello to a new link and tells it everything it should know.
    pub(super) fn start_link(&mut self, session: SessionId) {
        let link = self.mesh.links.entry(session).or_default();
        if link.started {
            return;
        }
        link.started = true;
        self.send(session, HubMessage::Peer(PeerMessage::Hello { hub: self.config.id }));
        let mut origins: Vec<HubId> = vec![self.config.id];
        origins.extend(self.mesh.best.keys().copied());
        for origin in origins {
            self.sync_origin(session, origin);
        }
    }

    pub(super) fn handle_peer(&mut self, _now: Timestamp, session: SessionId, message: PeerMessage) {
        if let PeerMessage::Hello { hub } = message {
            return self.peer_hello(session, hub);
        }
        if self.mesh.links.get(&session).is_none_or(|l| l.hub.is_none()) {
            return self.handle_bad_peer(session, "peer message before hello");
        }
        match message {
            PeerMessage::Hello { .. } => {}
            PeerMessage::Route { origin, path } => {
                if path.is_empty() || path.len() > MAX_PATH || path.last() != Some(&origin) {
                    return self.handle_bad_peer(session, "malformed route");
                }
                if let Some(link) = self.mesh.links.get_mut(&session) {
                    link.routes.insert(origin, path);
                }
                self.recompute_route(origin);
            }
            PeerMessage::Unroute { origin } => {
                let ids: Vec<RecordId> = match self.mesh.links.get_mut(&session) {
                    Some(link) => {
                        link.routes.remove(&origin);
                        link.by_origin.get(&origin).map(|ids| ids.iter().cloned().collect()).unwrap_or_default()
                    }
                    None => Vec::new(),
                };
                for id in &ids {
                    self.take_offer(session, id.as_str());
                }
                self.recompute_route(origin);
                for id in ids {
                    self.refresh(id.as_str(), Cause { session: None, reason: FreeReason::OwnerGone, tell: None });
                }
            }
            PeerMessage::Record(record) => {
                if record.origin == self.config.id {
                    // Our own records come back only through a loop; ours are the truth.
                    return;
                }
                let id = record.id.clone();
                // A record decoded from the wire brings its own copy of its version.
                let record = self.registry.share_version(record);
                self.take_offer(session, id.as_str());
                if let Some(link) = self.mesh.links.get_mut(&session) {
                    link.by_origin.entry(record.origin).or_default().insert(id.clone());
                    link.records.insert(id.clone(), record);
                    self.mesh.offered.entry(id.clone()).or_default().insert(session);
                }
                self.refresh(id.as_str(), Cause { session: None, reason: FreeReason::OwnerGone, tell: None });
            }
            PeerMessage::Forget { id } => {
                self.take_offer(session, id.as_str());
                self.refresh(id.as_str(), Cause { session: None, reason: FreeReason::OwnerGone, tell: None });
            }
            PeerMessage::Free { id, incarnation, signer } => {
                let Some(current) = self.registry.get(id.as_str()).cloned() else { return };
                if current.incarnation != incarnation {
                    return;
                }
                if current.origin != self.config.id {
                    return self.forward_to_origin(&current, PeerMessage::Free { id, incarnation, signer });
                }
                if self.check_may_modify(signer, id.as_str()).is_ok() {
                    let _ = self.free_record(None, id.as_str(), FreeReason::Requested);
                }
            }
            PeerMessage::Update { id, incarnation, meta, signer } => {
                let Some(current) = self.registry.get(id.as_str()).cloned() else { return };
                if current.incarnation != incarnation {
                    return;
                }
                if current.origin != self.config.id {
                    return self.forward_to_origin(&current, PeerMessage::Update { id, incarnation, meta, signer });
                }
                let _ = self.update(None, signer, id.as_str(), meta);
            }
        }
    }

    fn peer_hello(&mut self, session: SessionId, hub: HubId) {
        let Some(s) = self.sessions.get_mut(&session) else { return };
        if s.kind != SessionKind::Peer {
            if !s.records.is_empty() || !s.subscriptions.is_empty() {
                return self.handle_bad_peer(session, "a client session cannot become a peer");
            }
            s.kind = SessionKind::Peer;
        }
        let link = self.mesh.links.entry(session).or_default();
        if link.hub.is_some_and(|h| h != hub) {
            return self.handle_bad_peer(session, "peer changed its hub id");
        }
        link.hub = Some(hub);
        self.start_link(session);
    }

    fn handle_bad_peer(&mut self, session: SessionId, why: &str) {
        self.events.push_back(super::Event::Rejected {
            session,
            code: crate::ErrorCode::Malformed,
            message: format!("peer protocol: {why}"),
        });
    }

    /// Removes the offer of `id` by `session`'s link (before a new one, or for good).
    fn take_offer(&mut self, session: SessionId, id: &str) {
        let Some(link) = self.mesh.links.get_mut(&session) else { return };
        if let Some(old) = link.records.remove(id) {
            if let Some(ids) = link.by_origin.get_mut(&old.origin) {
                ids.remove(id);
                if ids.is_empty() {
                    link.by_origin.remove(&old.origin);
                }
            }
        }
        if let Some(links) = self.mesh.offered.get_mut(id) {
            links.remove(&session);
            if links.is_empty() {
                self.mesh.offered.remove(id);
            }
        }
    }

    /// A peer link closed: its routes and records go.
    pub(super) fn drop_link(&mut self, session: SessionId) {
        let Some(link) = self.mesh.links.remove(&session) else { return };
        for id in link.records.keys() {
            if let Some(links) = self.mesh.offered.get_mut(id.as_str()) {
                links.remove(&session);
                if links.is_empty() {
                    self.mesh.offered.remove(id.as_str());
                }
            }
        }
        let mut origins: BTreeSet<HubId> = link.routes.keys().copied().collect();
        origins.extend(self.mesh.best.iter().filter(|(_, (via, _))| *via == session).map(|(o, _)| *o));
        for origin in origins {
            self.recompute_route(origin);
        }
        let mut ids: Vec<&RecordId> = link.records.keys().collect();
        ids.sort();
        for id in ids {
            self.refresh(id.as_str(), Cause { session: None, reason: FreeReason::OwnerGone, tell: None });
        }
    }

    /// Picks the best route to `origin` again; when it changes, tells the peers and
    /// refreshes the records of that origin.
    fn recompute_route(&mut self, origin: HubId) {
        if origin == self.config.id {
            return;
        }
        let me = self.config.id;
        let new = self
            .mesh
            .links
            .iter()
            .filter_map(|(session, link)| {
                let path = link.routes.get(&origin)?;
                (!path.contains(&me)).then_some((path.len(), *session, path))
            })
            .min_by_key(|(len, session, _)| (*len, *session))
            .map(|(_, session, path)| (session, path.clone()));
        let old = self.mesh.best.get(&origin).cloned();
        if new == old {
            return;
        }
        match &new {
            Some(best) => self.mesh.best.insert(origin, best.clone()),
            None => self.mesh.best.remove(&origin),
        };
        let peers: Vec<SessionId> = self.mesh.links.iter().filter(|(_, l)| l.started).map(|(s, _)| *s).collect();
        for peer in &peers {
            self.sync_origin(*peer, origin);
        }
        let mut ids = BTreeSet::new();
        for via in [old.map(|(s, _)| s), new.map(|(s, _)| s)].into_iter().flatten() {
            if let Some(link) = self.mesh.links.get(&via) {
                ids.extend(link.by_origin.get(&origin).into_iter().flatten().cloned());
            }
        }
        ids.extend(self.view_ids_of(origin));
        for id in ids {
            self.refresh(id.as_str(), Cause { session: None, reason: FreeReason::OwnerGone, tell: None });
        }
    }

    /// The record the view should show for `id`: the local one or an active offer from a
    /// peer, highest incarnation first (then highest origin, so every hub agrees).
    pub(super) fn winner(&self, id: &str) -> Option<Arc<Record>> {
        let mut best: Option<&Arc<Record>> = self.local.get(id).map(|l| &l.record);
        for session in self.mesh.offered.get(id).into_iter().flatten() {
            let Some(record) = self.mesh.links.get(session).and_then(|l| l.records.get(id)) else { continue };
            if self.mesh.best.get(&record.origin).map(|(via, _)| via) != Some(session) {
                continue;
            }
            if best.is_none_or(|b| (record.incarnation, record.origin) > (b.incarnation, b.origin)) {
                best = Some(record);
            }
        }
        best.cloned()
    }

    /// The route to announce to `peer` for `origin`, if any.
    fn desired_route(&self, peer: SessionId, origin: HubId) -> Option<Vec<HubId>> {
        if origin == self.config.id {
            return Some(vec![origin]);
        }
        let (via, path) = self.mesh.best.get(&origin)?;
        let peer_hub = self.mesh.links.get(&peer).and_then(|l| l.hub);
        if *via == peer || peer_hub.is_some_and(|h| path.contains(&h)) {
            return None;
        }
        let mut announced = Vec::with_capacity(path.len() + 1);
        announced.push(self.config.id);
        announced.extend_from_slice(path);
        Some(announced)
    }

    fn sync_route(&mut self, peer: SessionId, origin: HubId) {
        let want = self.desired_route(peer, origin);
        let Some(link) = self.mesh.links.get_mut(&peer) else { return };
        if link.sent_routes.get(&origin) == want.as_ref() {
            return;
        }
        let message = match want {
            Some(path) => {
                link.sent_routes.insert(origin, path.clone());
                PeerMessage::Route { origin, path }
            }
            None => {
                link.sent_routes.remove(&origin);
                PeerMessage::Unroute { origin }
            }
        };
        self.send(peer, HubMessage::Peer(message));
    }

    /// The ids of the view's records registered through `origin`, in id order.
    ///
    /// A scan of the view rather than an index kept for every record: it runs when a route
    /// to `origin` changes or a link starts, which also sends or refreshes each of those
    /// records, and an index by origin cost every record about 30 bytes.
    fn view_ids_of(&self, origin: HubId) -> Vec<RecordId> {
        let mut ids: Vec<RecordId> =
            self.registry.iter().filter(|r| r.origin == origin).map(|r| r.id.clone()).collect();
        ids.sort_unstable();
        ids
    }

    /// Brings what `peer` knows of `origin` (its route and records) up to date: a route
    /// goes before its records, records are forgotten before their route.
    fn sync_origin(&mut self, peer: SessionId, origin: HubId) {
        if self.desired_route(peer, origin).is_some() {
            self.sync_route(peer, origin);
            for id in self.view_ids_of(origin) {
                self.sync_record(peer, id.as_str());
            }
        } else {
            let ids: Vec<RecordId> = match self.mesh.links.get(&peer) {
                Some(link) => link.sent_by_origin.get(&origin).into_iter().flatten().cloned().collect(),
                None => Vec::new(),
            };
            for id in ids {
                self.sync_record(peer, id.as_str());
            }
            self.sync_route(peer, origin);
        }
    }

    pub(super) fn sync_record_to_peers(&mut self, id: &str) {
        let peers: Vec<SessionId> = self.mesh.links.iter().filter(|(_, l)| l.started).map(|(s, _)| *s).collect();
        for peer in peers {
            self.sync_record(peer, id);
        }
    }

    fn sync_record(&mut self, peer: SessionId, id: &str) {
        let want = self.registry.get(id).filter(|r| self.desired_route(peer, r.origin).is_some()).cloned();
        let Some(link) = self.mesh.links.get(&peer) else { return };
        let have = link.sent_records.get(id);
        let same = match (&want, have) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
            _ => false,
        };
        if same {
            return;
        }
        if let Some(record) = &want {
            if !link.sent_routes.contains_key(&record.origin) {
                self.sync_route(peer, record.origin);
            }
        }
        let Some(link) = self.mesh.links.get_mut(&peer) else { return };
        if let Some(old) = link.sent_records.remove(id) {
            if let Some(ids) = link.sent_by_origin.get_mut(&old.origin) {
                ids.remove(id);
                if ids.is_empty() {
                    link.sent_by_origin.remove(&old.origin);
                }
            }
        }
        let message = match want {
            Some(record) => {
                link.sent_by_origin.entry(record.origin).or_default().insert(record.id.clone());
                link.sent_records.insert(record.id.clone(), Arc::clone(&record));
                PeerMessage::Record(record)
            }
            None => match RecordId::new(id) {
                Ok(id) => PeerMessage::Forget { id },
                Err(_) => return,
            },
        };
        self.send(peer, HubMessage::Peer(message));
    }

    /// Sends a client's request about another hub's record toward that hub.
    pub(super) fn forward_to_origin(&mut self, record: &Record, message: PeerMessage) {
        if let Some((via, _)) = self.mesh.best.get(&record.origin) {
            let via = *via;
            self.send(via, HubMessage::Peer(message));
        }
    }
}
