//! Node seaport's protocol: newline-delimited JSON arrays, on the hub's own port.
//!
//! A connection whose first byte is `[` (or whitespace) is a client of the Node.js
//! `seaport` package (2.x) rather than a seaport-rs client (which opens with `SEAPORT\0`);
//! the server hands it to [`serve`]. Each line is one JSON array:
//!
//! | line | direction | meaning here |
//! |---|---|---|
//! | `["helo", host]` | hub → client | the [`HubMessage::Welcome`]: the client's address as the hub sees it |
//! | `["register", id, meta]` | both | client → hub: [`ClientMessage::Announce`]; hub → client: a record (snapshot, register or update) |
//! | `["free", id]` | both | client → hub: [`ClientMessage::Free`]; hub → client: a record was freed |
//! | `["synced"]` | both | the end of the sender's initial records |
//! | `["heartbeat"]` | both | liveness |
//!
//! The session is a [`JsonLines`](seaport_core::SessionKind::JsonLines) session of the core
//! hub, driven through the same [`Shared::with_core`] path as binary sessions. On connect it
//! subscribes to `*`, so the client gets `helo`, every record as a `register` line,
//! `synced`, then every register, update (as `register`: node has no update message) and
//! free. Its own registrations are not echoed back to it (a node hub does not echo them
//! either), and the frees it echoes back are dropped ([`NodeSession`]). Lines the client
//! sends before its own `synced` are re-announcements after a reconnect
//! (`reannounced = true`); a re-announced record the hub does not hold afterwards is
//! answered with `["free", id]`, so the client drops it from its own view too.
//!
//! Node metadata is one flat object (`role`, `version`, `host`, `port`, `id` and any other
//! keys); [`registration_from_node`] and [`push_register`] map it to and from records without
//! losing a key. Node has no error channel: a refused line is logged (warn) with the reason.
//! A line that is not JSON, not an array, a `register` or `free` whose arguments have the
//! wrong types, or a line longer than the limit closes the connection (logged).
//! The hub sends `["heartbeat"]` at its heartbeat interval whatever else it sends, because a
//! node client counts only heartbeat lines when it decides the hub is gone.

use std::future::Future;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::sync::{Arc, Mutex};

use async_std::net::TcpStream;
use futures::{AsyncRead, AsyncWriteExt};
use seaport_core::{
    Change, ClientMessage, HubMessage, Meta, PortRequest, Record, RecordId, Registration, SessionId, SubscriptionId,
    Value,
};
use serde_json::{Map, Value as Json};

mod echo;

use echo::Echoes;
pub(crate) use echo::FreeLog;

use crate::scratch::{Unread, READ_LEN};
use crate::server::{self, Shared};

/// The keys of a node record that are record fields rather than metadata.
fn is_field(key: &str) -> bool {
    matches!(key, "role" | "version" | "host" | "port" | "id")
}

/// Room for everything on a `register` line besides the metadata itself.
const LINE_OVERHEAD: usize = 64 * 1024;

const HEARTBEAT_LINE: &[u8] = b"[\"heartbeat\"]\n";

/// Node's heartbeat line as a frame, which the hub keeps one copy of for all node
/// connections.
pub(crate) fn heartbeat_line() -> server::Frame {
    Arc::from(HEARTBEAT_LINE)
}

/// One line from a node client.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Line {
    /// `["register", id, meta]`.
    Register {
        /// The record id.
        id: String,
        /// The whole flat node record.
        meta: Map<String, Json>,
    },
    /// `["free", id]`.
    Free {
        /// The record id.
        id: String,
    },
    /// `["heartbeat"]`.
    Heartbeat,
    /// `["synced"]`: the client has sent every record it had when it connected.
    Synced,
    /// Any other array (node ignores those): only renews the lease.
    Other(String),
}

/// Why a line closes the connection.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LineError {
    /// Not JSON.
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON, but not an array.
    #[error("not a JSON array")]
    NotArray,
    /// A known command with arguments of the wrong types.
    #[error("{0}")]
    Shape(String),
    /// Longer than the limit.
    #[error("a line longer than {max} bytes")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// The socket failed.
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Parses one line (without its newline). `Ok(None)` for a blank line.
pub(crate) fn parse_line(line: &[u8]) -> Result<Option<Line>, LineError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let Json::Array(mut row) = serde_json::from_slice::<Json>(line)? else {
        return Err(LineError::NotArray);
    };
    let command = match row.first() {
        Some(Json::String(c)) => c.clone(),
        Some(other) => return Ok(Some(Line::Other(other.to_string()))),
        None => return Ok(Some(Line::Other(String::new()))),
    };
    let string_arg = |row: &mut Vec<Json>, at: usize, what: &str| match row.get_mut(at).map(Json::take) {
        Some(Json::String(s)) => Ok(s),
        other => Err(LineError::Shape(format!(
            "{command:?}: the {what} must be a string, not {}",
            other.map_or_else(|| "nothing".to_string(), |v| v.to_string())
        ))),
    };
    Ok(Some(match command.as_str() {
        "register" => {
            let id = string_arg(&mut row, 1, "record id")?;
            match row.get_mut(2).map(Json::take) {
                Some(Json::Object(meta)) => Line::Register { id, meta },
                _ => return Err(LineError::Shape(format!("\"register\" {id:?}: the record must be a JSON object"))),
            }
        }
        "free" => Line::Free { id: string_arg(&mut row, 1, "record id")? },
        "heartbeat" => Line::Heartbeat,
        "synced" => Line::Synced,
        _ => Line::Other(command),
    }))
}

/// A node record as a registration: `role`, `version`, `host` and `port` become fields
/// (the port is the client's own choice: [`PortRequest::Exact`]), the id is the line's, and
/// every other key is metadata.
///
/// # Errors
/// A reason when a field has the wrong type (`role` not a string, `port` not an integer
/// in 1-65535, ...). Values are validated by the hub afterwards.
pub(crate) fn registration_from_node(id: String, mut meta: Map<String, Json>) -> Result<Registration, String> {
    let role = match meta.remove("role") {
        Some(Json::String(role)) => role,
        Some(other) => return Err(format!("role must be a string, not {other}")),
        None => return Err("the record has no role".into()),
    };
    let version = match meta.remove("version") {
        Some(Json::String(v)) => Some(v),
        None | Some(Json::Null) => None,
        Some(other) => return Err(format!("version must be a string, not {other}")),
    };
    let host = match meta.remove("host") {
        // Node treats an empty host as none: the client's address fills it in.
        Some(Json::String(h)) if !h.is_empty() => Some(canonical_host(h)),
        None | Some(Json::Null) | Some(Json::String(_)) => None,
        Some(other) => return Err(format!("host must be a string, not {other}")),
    };
    let port = match meta.remove("port") {
        Some(Json::Number(n)) => match n.as_u64().and_then(|p| u16::try_from(p).ok()).filter(|&p| p > 0) {
            Some(p) => p,
            None => return Err(format!("port {n} is not a port number (1-65535)")),
        },
        Some(other) => return Err(format!("port must be a number, not {other}")),
        None => return Err("the record has no port".into()),
    };
    // The line's id is the one node uses everywhere; the copy in the record is redundant.
    meta.remove("id");
    let meta = meta
        .into_iter()
        .map(|(k, v)| serde_json::from_value::<Value>(v).map(|v| (k, v)))
        .collect::<Result<Meta, _>>()
        .map_err(|e| format!("metadata: {e}"))?;
    Ok(Registration { id: Some(id), role, version, host, port: PortRequest::Exact(port), meta, incarnation: None })
}

/// A host as text, with an IPv4-mapped IPv6 address (`::ffff:10.0.0.5`) in its IPv4 form.
///
/// A node hub listens on a dual-stack socket and tells its IPv4 clients their address in
/// the mapped form; a node client keeps the first address it is told for all its
/// services. This hub tells them the plain form, so a client that moves over from a node
/// hub announces its records with a host that must compare equal to it.
fn canonical_host(host: String) -> String {
    match host.parse::<IpAddr>() {
        Ok(ip @ IpAddr::V6(_)) if ip.to_canonical().is_ipv4() => ip.to_canonical().to_string(),
        _ => host,
    }
}

/// A record as node sees one: a flat object of `role`, `version` (absent when the record
/// has none), `host`, `port`, `id` and the metadata. A metadata key named like one of these
/// fields is shadowed by the field. [`push_register`] writes it without building it; this
/// is the model its tests compare with.
#[cfg(test)]
pub(crate) fn node_meta(record: &Record) -> Map<String, Json> {
    let mut out = Map::new();
    for (k, v) in &record.meta {
        if !is_field(k) {
            out.insert(k.to_string(), serde_json::to_value(v).unwrap_or(Json::Null));
        }
    }
    out.insert("role".into(), Json::String(record.role.to_string()));
    if let Some(v) = &record.version {
        out.insert("version".into(), Json::String(v.to_string()));
    }
    out.insert("host".into(), Json::String(record.host.to_string()));
    out.insert("port".into(), Json::from(record.port));
    out.insert("id".into(), Json::String(record.id.to_string()));
    out
}

fn push_line(out: &mut Vec<u8>, row: &impl serde::Serialize) {
    if serde_json::to_writer(&mut *out, row).is_ok() {
        out.push(b'\n');
    }
}

/// Appends `record` as node's `["register", id, {...}]` line: the bytes serde_json writes
/// for [`node_meta`] (keys in byte order, fields shadowing metadata of the same name),
/// written straight from the record. Building the map took a `String` for every key and
/// value, and a line is encoded for every node connection it goes to.
fn push_register(out: &mut Vec<u8>, record: &Record) {
    let start = out.len();
    if write_register(out, record).is_err() {
        out.truncate(start);
    }
}

fn write_register(out: &mut Vec<u8>, record: &Record) -> serde_json::Result<()> {
    enum Field<'a> {
        Text(&'a str),
        Port(u16),
        Version(&'a seaport_core::semver::Version),
    }
    // The fields, in byte order, each with its key as written.
    let fields = [
        (&b"\"host\":"[..], Some(Field::Text(record.host.as_str()))),
        (b"\"id\":", Some(Field::Text(record.id.as_str()))),
        (b"\"port\":", Some(Field::Port(record.port))),
        (b"\"role\":", Some(Field::Text(record.role.as_str()))),
        (b"\"version\":", record.version.as_deref().map(Field::Version)),
    ];
    let mut fields = fields.iter().filter_map(|(key, value)| value.as_ref().map(|v| (*key, v))).peekable();
    let mut first = true;
    let mut comma = |out: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
    };
    let write_field = |out: &mut Vec<u8>, key: &[u8], value: &Field<'_>| -> serde_json::Result<()> {
        out.extend_from_slice(key);
        match value {
            Field::Text(text) => push_json_str(out, text)?,
            Field::Port(port) => out.extend_from_slice(itoa::Buffer::new().format(*port).as_bytes()),
            // A version is digits, letters, `.`, `-` and `+`: nothing to escape.
            Field::Version(v) => {
                let mut number = itoa::Buffer::new();
                out.push(b'"');
                out.extend_from_slice(number.format(v.major).as_bytes());
                out.push(b'.');
                out.extend_from_slice(number.format(v.minor).as_bytes());
                out.push(b'.');
                out.extend_from_slice(number.format(v.patch).as_bytes());
                if !v.pre.is_empty() {
                    out.push(b'-');
                    out.extend_from_slice(v.pre.as_str().as_bytes());
                }
                if !v.build.is_empty() {
                    out.push(b'+');
                    out.extend_from_slice(v.build.as_str().as_bytes());
                }
                out.push(b'"');
            }
        }
        Ok(())
    };
    out.extend_from_slice(b"[\"register\",");
    push_json_str(out, record.id.as_str())?;
    out.extend_from_slice(b",{");
    for (key, value) in &record.meta {
        if is_field(key) {
            continue;
        }
        // The fields whose names sort before this key (compared a byte at a time: these are
        // a few bytes long, shorter than a call to `memcmp`).
        let before = |name: &[u8]| name.get(1..name.len() - 2).unwrap_or_default().iter().lt(key.as_bytes());
        while let Some((name, field)) = fields.next_if(|(name, _)| before(name)) {
            comma(out);
            write_field(out, name, field)?;
        }
        comma(out);
        push_json_str(out, key)?;
        out.push(b':');
        match value {
            Value::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
            Value::String(text) => push_json_str(out, text)?,
            value => serde_json::to_writer(&mut *out, value)?,
        }
    }
    for (name, field) in fields {
        comma(out);
        write_field(out, name, field)?;
    }
    out.extend_from_slice(b"}]\n");
    Ok(())
}

/// Appends `text` as a JSON string: as it is between quotes when nothing in it needs an
/// escape (ids, roles and most hosts and keys), else as serde_json escapes it.
fn push_json_str(out: &mut Vec<u8>, text: &str) -> serde_json::Result<()> {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(&mut *out, text)
    }
}

/// The state of one node session shared between its reader and the hub's output routing:
/// which of the client's frees are echoes of the hub's ([`echo`]).
#[derive(Debug, Default)]
pub(crate) struct NodeSession {
    echoes: Mutex<Echoes>,
}

/// The session owning the record of `message` when it is a `Register` change: node
/// sessions are not sent the echo of their own registrations.
pub(crate) fn register_owner(message: &HubMessage, hub: &seaport_core::Hub) -> Option<SessionId> {
    match message {
        HubMessage::Change { change: Change::Register(record), .. } => hub.record_owner(record.id.as_str()),
        _ => None,
    }
}

impl NodeSession {
    /// Whether `message`, addressed to this session, goes on the wire. Answers to requests
    /// do not (node has none; refusals are logged here instead), nor does the echo of the
    /// session's own registrations (a node hub does not echo them either). `owner` is the
    /// session owning the record of a `Register` change, looked up once per change by
    /// [`register_owner`] rather than once per recipient.
    pub(crate) fn should_send(&self, message: &HubMessage, session: SessionId, owner: Option<SessionId>) -> bool {
        match message {
            HubMessage::Rejected { code, message, .. } => {
                tracing::warn!(%session, ?code, %message, "refused a line from a node seaport client");
                false
            }
            HubMessage::Registered { .. } | HubMessage::Updated { .. } | HubMessage::Done { .. } => false,
            // Only this session can register a record it owns: the change is its own echo.
            HubMessage::Change { change: Change::Register(_), .. } => owner != Some(session),
            _ => true,
        }
    }

    /// Starts the session's count of echoes where `log` ends now.
    pub(crate) fn start(&self, log: &FreeLog) {
        server::lock(&self.echoes).start(log);
    }

    /// The first place of the log of frees this client may still echo.
    pub(crate) fn oldest_echo(&self) -> u64 {
        server::lock(&self.echoes).oldest()
    }

    /// The free at `place` of the log of frees went out to this client.
    pub(crate) fn sent_free(&self, place: u64, id: &RecordId) {
        server::lock(&self.echoes).sent(place, id);
    }
}

/// The most bytes of lines a snapshot's writer encodes at a time.
const LAZY_PART: usize = 16 * 1024;

/// The `register` lines of a snapshot's `records`, encoded by the connection's writer a
/// part at a time ([`server::queue::Outbox::push_lazy`]).
pub(crate) fn lazy_lines(records: Arc<[Arc<Record>]>) -> server::queue::Encode {
    let mut next = 0;
    Box::new(move |out: &mut Vec<u8>| {
        while let Some(record) = records.get(next) {
            if out.len() >= LAZY_PART {
                return true;
            }
            push_register(out, record);
            next += 1;
        }
        false
    })
}

/// Appends the lines for `message` to `out` (none for messages node has no equivalent
/// for).
pub(crate) fn encode_into(message: &HubMessage, out: &mut Vec<u8>) {
    match message {
        HubMessage::Welcome { host, .. } => push_line(out, &("helo", host)),
        HubMessage::Snapshot { records, .. } => records.iter().for_each(|r| push_register(out, r)),
        HubMessage::Synced { .. } => push_line(out, &["synced"]),
        HubMessage::Change { change, .. } => change_line(change, out),
        // Node clients never resume, but the lines would be the same.
        HubMessage::Resumed { changes, .. } => changes.iter().for_each(|c| change_line(c, out)),
        HubMessage::Heartbeat => out.extend_from_slice(HEARTBEAT_LINE),
        _ => {}
    }
}

/// Appends the line of `change`: a register line for a registration or an update (node
/// has no update message), `["free", id]` for a free.
fn change_line(change: &Change, out: &mut Vec<u8>) {
    record_line(change.record(), matches!(change, Change::Free(_)), out);
}

/// Appends the line of a change to `record`: `["free", id]` if it was `freed`, else a
/// register line. The hub's writers encode one for each node connection they send it to
/// ([`SharedLog`](server::queue::SharedLog)).
pub(crate) fn record_line(record: &Record, freed: bool, out: &mut Vec<u8>) {
    if !freed {
        return push_register(out, record);
    }
    let start = out.len();
    out.extend_from_slice(b"[\"free\",");
    if push_json_str(out, record.id.as_str()).is_ok() {
        out.extend_from_slice(b"]\n");
    } else {
        out.truncate(start);
    }
}

/// Splits a byte stream into lines of at most `max` bytes.
///
/// Each read goes into a buffer of the thread's; the connection keeps only the bytes not
/// yet handed out as lines (a partial line, or the rest of a burst), and nothing once
/// they are all taken: an idle node connection holds no read buffer (8 KiB each, kept for
/// good, was most of a thousand connections' memory).
struct LineReader<R> {
    reader: R,
    buf: Unread,
    /// Unread bytes already known to hold no newline.
    scanned: usize,
    max: usize,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    fn new(reader: R, already_read: &[u8], max: usize) -> Self {
        LineReader { reader, buf: Unread::new(already_read), scanned: 0, max }
    }

    /// The next line without its `\n` (or `\r\n`); `None` at the end of the stream.
    async fn next_line(&mut self) -> Result<Option<Vec<u8>>, LineError> {
        loop {
            let unread = self.buf.bytes();
            if let Some(at) = unread[self.scanned..].iter().position(|&b| b == b'\n') {
                let end = self.scanned + at;
                let mut line = unread[..end].to_vec();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.buf.consume(end + 1);
                self.scanned = 0;
                return Ok(Some(line));
            }
            self.scanned = unread.len();
            if self.scanned > self.max {
                return Err(LineError::TooLong { max: self.max });
            }
            if self.buf.read_from(&mut self.reader, READ_LEN).await? == 0 {
                // Node ends every line with a newline: a partial last line is dropped.
                return Ok(None);
            }
        }
    }
}

/// Serves one node seaport connection whose first bytes, already read, are `first`.
#[allow(clippy::manual_async_fn)] // see the comment inside
pub(crate) fn serve(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr, first: u8) -> impl Future<Output = ()> {
    // A plain fn around an `async move` block: an `async fn` keeps its arguments twice
    // in its future, as arguments and as locals.
    async move {
        let config = shared.config();
        let max_line = LINE_OVERHEAD + config.core.limits.meta.max_bytes;
        let subscribe = |hub: &mut seaport_core::Hub, now, session| {
            let pattern = "*".to_string();
            hub.handle_message(
                now,
                session,
                None,
                ClientMessage::Subscribe { request: 0, subscription: SubscriptionId(0), pattern, resume: None },
            );
        };
        let node = Arc::new(NodeSession::default());
        let opened = server::open_json_lines_session(&shared, &stream, peer, Arc::clone(&node), subscribe);
        let Some((session, tx, rx)) = opened else {
            tracing::warn!(%peer, "the hub is stopping or at its connection limit; closing a node seaport connection");
            let _ = stream.shutdown(Shutdown::Both);
            return;
        };
        tracing::debug!(%session, %peer, "node seaport client (JSON lines)");
        // The writer is a task of its own: joined with the reader in one task, every wake
        // of either polled both (a read attempt per write), and the hub's CPU at 1 000 node
        // clients x 10 went up by a fifth.
        async_std::task::spawn(write_loop(rx, stream.clone()));
        let reader = LineReader::new(stream.clone(), &[first], max_line);
        read_lines(&shared, reader, peer, session, node, tx).await;
    }
}

/// Feeds the core what a node client sends until it closes or sends what cannot be read;
/// then closes its session (the writer ends once the session's queue has gone).
#[allow(clippy::manual_async_fn)] // see the comment inside
fn read_lines(
    shared: &Shared,
    mut reader: LineReader<TcpStream>,
    peer: SocketAddr,
    session: SessionId,
    node: Arc<NodeSession>,
    mut tx: server::queue::Outbox,
) -> impl Future<Output = ()> + '_ {
    // A plain fn around an `async move` block: an `async fn` keeps its arguments twice
    // in its future, as arguments and as locals.
    async move {
        let mut synced = false;
        let mut request = 0u64;
        loop {
            let parsed = match reader.next_line().await {
                Ok(Some(line)) => parse_line(&line),
                Ok(None) => break,
                Err(e) => Err(e),
            };
            let line = match parsed {
                Ok(Some(line)) => line,
                Ok(None) => continue,
                Err(LineError::Io(e)) => {
                    tracing::debug!(%session, %peer, error = %e, "node seaport connection failed");
                    break;
                }
                Err(e) => {
                    tracing::warn!(%session, %peer, error = %e, "bad line from a node seaport client; closing the connection");
                    break;
                }
            };
            request += 1;
            // The id of a record sent again before the client's `synced` (after a reconnect).
            let mut remembered = None;
            let message = match line {
                Line::Register { id, meta } => {
                    if !synced {
                        remembered = Some(id.clone());
                    }
                    match registration_from_node(id.clone(), meta) {
                        Ok(registration) => ClientMessage::Announce { request, registration, reannounced: !synced },
                        Err(reason) => {
                            tracing::warn!(%session, %peer, %id, %reason, "refused a record from a node seaport client");
                            ClientMessage::Heartbeat
                        }
                    }
                }
                Line::Free { id } => {
                    shared.with_json_lines_core(|hub, frees, now| {
                        let mut echoes = server::lock(&node.echoes);
                        let message = if echoes.take(frees, &id) {
                            tracing::trace!(%session, %id, "a node client's echo of a free");
                            ClientMessage::Heartbeat
                        } else if hub.registry().get(&id).is_none() {
                            // Node ignores frees of records it does not know; so does this hub, quietly.
                            tracing::debug!(%session, %id, "a node client freed an unknown record");
                            ClientMessage::Heartbeat
                        } else {
                            // The client dropped the record itself: it will not echo the hub's free.
                            echoes.freeing(RecordId::new(&id).ok());
                            ClientMessage::Free { request, id: id.clone() }
                        };
                        drop(echoes);
                        hub.handle_message(now, session, None, message);
                    });
                    server::lock(&node.echoes).freeing(None);
                    continue;
                }
                Line::Heartbeat => ClientMessage::Heartbeat,
                Line::Synced => {
                    synced = true;
                    ClientMessage::Heartbeat
                }
                Line::Other(command) => {
                    tracing::debug!(%session, %command, "ignored a line from a node seaport client");
                    ClientMessage::Heartbeat
                }
            };
            shared.with_core(|hub, now| {
                hub.handle_message(now, session, None, message);
                // A remembered record the hub did not take (a dead service's, or a refused
                // one): the client drops it too. Sent under the lock, so in order with
                // everything else the session gets.
                if let Some(id) = remembered.filter(|id| hub.registry().get(id).is_none()) {
                    let mut line = Vec::new();
                    push_line(&mut line, &("free", id.as_str()));
                    // An id that is not a valid one cannot be registered again, so its
                    // echo cannot free anything: nothing to wait for.
                    if let Ok(id) = RecordId::new(&id) {
                        server::lock(&node.echoes).sent_alone(&id);
                    }
                    let _ = tx.push(line.into());
                }
            });
        }
        drop(tx);
        server::end_session(shared, session);
    }
}

/// Sends what the hub queued for the connection (its heartbeats among it, queued by the
/// hub's timer: [`Shared::node_heartbeats`]).
#[allow(clippy::manual_async_fn)] // see the comment inside
fn write_loop(rx: server::queue::Inbox, mut stream: TcpStream) -> impl Future<Output = ()> {
    // A plain fn around an `async move` block: an `async fn` keeps its arguments twice
    // in its future, as arguments and as locals.
    async move {
        let mut writer = server::queue::Writer::new(rx);
        while writer.take().await {
            if writer.write(&mut stream).await.is_err() {
                break;
            }
        }
        let _ = stream.flush().await;
        let _ = stream.shutdown(Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use seaport_core::{HubId, RecordId, ResumePoint, Role};
    use serde_json::json;

    use super::*;

    fn object(v: Json) -> Map<String, Json> {
        match v {
            Json::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    fn record_of(reg: Registration) -> Record {
        Record {
            id: RecordId::new(reg.id.unwrap()).unwrap(),
            role: Role::new(reg.role).unwrap(),
            version: reg.version.map(|v| v.parse().unwrap()),
            host: reg.host.unwrap_or_else(|| "10.0.0.1".into()).into(),
            port: match reg.port {
                PortRequest::Exact(p) => p,
                other => panic!("{other:?}"),
            },
            meta: reg.meta,
            origin: HubId(1),
            incarnation: 1,
        }
    }

    #[test]
    fn register_lines_are_the_bytes_serde_json_writes_for_the_node_record() {
        let meta = |pairs: Json| -> Meta { serde_json::from_value(pairs).unwrap() };
        let metas = [
            meta(json!({})),
            meta(json!({"t": 1765158712345u64})),
            // Keys before, between and after the fields, and keys the fields shadow.
            meta(json!({"a": 1, "hosts": "x", "i": null, "idx": [1, "two", {"3": 4.5}], "pear": -2,
                "rolex": true, "v": {"b": {}, "a": []}, "zz": "\u{e9}\"\\\n", "role": "shadowed",
                "port": 1, "id": "other", "host": "h", "version": "9.9.9"})),
            meta(json!({"": "empty key", "~": 0.1, "ключ": "значение", "big": 1e300, "tiny": -1e-300})),
        ];
        let versions = [None, Some("1.2.3"), Some("10.20.30-beta.1+sha.5114f85")];
        let hosts = ["10.0.0.5", "::1", "host-with-\u{1F600}-and-\\"];
        for (i, meta) in metas.iter().enumerate() {
            for version in versions {
                for host in hosts {
                    let record = Record {
                        id: RecordId::new(format!("ID{i}:a.b-c_d")).unwrap(),
                        role: Role::new("web/api").unwrap(),
                        version: version.map(|v| v.parse().unwrap()),
                        host: host.into(),
                        port: 10080,
                        meta: meta.clone(),
                        origin: HubId(1),
                        incarnation: 1,
                    };
                    let mut ours = b"before".to_vec();
                    push_register(&mut ours, &record);
                    let mut theirs = b"before".to_vec();
                    push_line(&mut theirs, &("register", record.id.as_str(), node_meta(&record)));
                    assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
                    let record = Arc::new(record);
                    let mut update = Vec::new();
                    change_line(&Change::Update(Arc::clone(&record)), &mut update);
                    assert_eq!(update, ours[6..], "an update is a register line");
                    let mut free = Vec::new();
                    change_line(&Change::Free(Arc::clone(&record)), &mut free);
                    let mut theirs = Vec::new();
                    push_line(&mut theirs, &("free", record.id.as_str()));
                    assert_eq!(String::from_utf8_lossy(&free), String::from_utf8_lossy(&theirs));
                }
            }
        }
    }

    #[test]
    fn node_records_round_trip_with_every_key() {
        let node = json!({
            "role": "web", "version": "1.2.3", "host": "10.0.0.5", "port": 10080, "id": "ABC",
            "color": "blue", "weight": 3, "ratio": 0.25, "big": 18446744073709551615u64, "neg": -7,
            "on": true, "none": null, "tags": ["a", 1, [2, {"b": null}]],
            "nested": {"x": {"y": [1.5, "z"]}, "empty": {}}
        });
        let reg = registration_from_node("ABC".into(), object(node.clone())).unwrap();
        assert_eq!(reg.role, "web");
        assert_eq!(reg.version.as_deref(), Some("1.2.3"));
        assert_eq!(reg.host.as_deref(), Some("10.0.0.5"));
        assert_eq!(reg.port, PortRequest::Exact(10080));
        assert_eq!(reg.id.as_deref(), Some("ABC"));
        assert_eq!(reg.meta.len(), 9, "{:?}", reg.meta);
        assert_eq!(reg.meta["weight"], Value::Int(3));
        assert_eq!(reg.meta["ratio"], Value::Float(0.25));
        assert!(!reg.meta.contains_key("role") && !reg.meta.contains_key("port"));
        let mut back = node_meta(&record_of(reg));
        // Beyond i64 a number is a float, as it is to node (every JS number is a double).
        assert_eq!(back.remove("big"), Some(json!(18446744073709551615.0f64)));
        let mut node = object(node);
        node.remove("big");
        assert_eq!(back, node);
    }

    #[test]
    fn records_without_version_or_host() {
        let reg = registration_from_node("x".into(), object(json!({"role": "db", "port": 5432, "host": ""}))).unwrap();
        assert_eq!((reg.version, reg.host), (None, None));
        let record = record_of(registration_from_node("x".into(), object(json!({"role": "db", "port": 1}))).unwrap());
        let node = node_meta(&record);
        assert!(!node.contains_key("version"), "{node:?}");
        assert_eq!(Json::Object(node), json!({"role": "db", "host": "10.0.0.1", "port": 1, "id": "x"}));
    }

    #[test]
    fn record_fields_shadow_metadata_keys() {
        let mut record =
            record_of(registration_from_node("x".into(), object(json!({"role": "r", "port": 9}))).unwrap());
        record.meta.insert("port".into(), Value::from("not this"));
        record.meta.insert("env".into(), Value::from("prod"));
        let node = node_meta(&record);
        assert_eq!(node["port"], json!(9));
        assert_eq!(node["env"], json!("prod"));
    }

    #[test]
    fn fields_of_the_wrong_type_are_refused() {
        let refused = |v: Json| registration_from_node("x".into(), object(v)).unwrap_err();
        assert!(refused(json!({"port": 1})).contains("no role"));
        assert!(refused(json!({"role": 5, "port": 1})).contains("role"));
        assert!(refused(json!({"role": "r"})).contains("no port"));
        assert!(refused(json!({"role": "r", "port": "80"})).contains("port"));
        assert!(refused(json!({"role": "r", "port": 0})).contains("port"));
        assert!(refused(json!({"role": "r", "port": 70000})).contains("port"));
        assert!(refused(json!({"role": "r", "port": 80.5})).contains("port"));
        assert!(refused(json!({"role": "r", "port": 80, "version": 1})).contains("version"));
        assert!(refused(json!({"role": "r", "port": 80, "host": ["h"]})).contains("host"));
    }

    #[test]
    fn lines_parse() {
        let reg = parse_line(br#"["register","ID",{"role":"web","port":1}]"#).unwrap().unwrap();
        assert_eq!(reg, Line::Register { id: "ID".into(), meta: object(json!({"role":"web","port":1})) });
        assert_eq!(parse_line(br#"["free","ID"]"#).unwrap(), Some(Line::Free { id: "ID".into() }));
        assert_eq!(parse_line(br#" ["synced"] "#).unwrap(), Some(Line::Synced));
        assert_eq!(parse_line(br#"["heartbeat"]"#).unwrap(), Some(Line::Heartbeat));
        assert_eq!(parse_line(br#"["helo","1.2.3.4"]"#).unwrap(), Some(Line::Other("helo".into())));
        assert_eq!(parse_line(b"[]").unwrap(), Some(Line::Other(String::new())));
        assert_eq!(parse_line(b"[1]").unwrap(), Some(Line::Other("1".into())));
        assert_eq!(parse_line(b"  ").unwrap(), None);
        assert!(matches!(parse_line(b"[\"synced\""), Err(LineError::Json(_))));
        assert!(matches!(parse_line(b"{\"a\":1}"), Err(LineError::NotArray)));
        assert!(matches!(parse_line(b"\"register\""), Err(LineError::NotArray)));
        assert!(matches!(parse_line(br#"["register",{}]"#), Err(LineError::Shape(_))));
        assert!(matches!(parse_line(br#"["register","id"]"#), Err(LineError::Shape(_))));
        assert!(matches!(parse_line(br#"["register","id",[]]"#), Err(LineError::Shape(_))));
        assert!(matches!(parse_line(br#"["free",7]"#), Err(LineError::Shape(_))));
    }

    #[test]
    fn hub_messages_become_node_lines() {
        let record = Arc::new(record_of(
            registration_from_node("ID".into(), object(json!({"role": "web", "version": "1.0.0", "port": 80})))
                .unwrap(),
        ));
        let text = |m: HubMessage| {
            let mut out = Vec::new();
            encode_into(&m, &mut out);
            (!out.is_empty()).then(|| String::from_utf8(out).unwrap())
        };
        let welcome = HubMessage::Welcome { hub: HubId(1), host: "1.2.3.4".into(), heartbeat_ms: 1, timeout_ms: 3 };
        assert_eq!(text(welcome).unwrap(), "[\"helo\",\"1.2.3.4\"]\n");
        let snapshot =
            HubMessage::Snapshot { subscription: SubscriptionId(0), records: vec![record.clone(), record.clone()] };
        let lines = text(snapshot).unwrap();
        assert_eq!(lines.lines().count(), 2);
        let first: Json = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
        assert_eq!(
            first,
            json!(["register", "ID", {"role": "web", "version": "1.0.0", "host": "10.0.0.1", "port": 80, "id": "ID"}])
        );
        let at = ResumePoint { hub: HubId(1), epoch: 2, revision: 3 };
        let synced = HubMessage::Synced { subscription: SubscriptionId(0), at, resumed: false };
        assert_eq!(text(synced).unwrap(), "[\"synced\"]\n");
        let update = HubMessage::Change { revision: 4, change: Change::Update(record.clone()) };
        assert!(text(update).unwrap().starts_with("[\"register\",\"ID\","));
        let free = HubMessage::Change { revision: 5, change: Change::Free(record.clone()) };
        assert_eq!(text(free).unwrap(), "[\"free\",\"ID\"]\n");
        let resumed = HubMessage::Resumed { subscription: SubscriptionId(0), changes: vec![Change::Free(record)] };
        assert_eq!(text(resumed).unwrap(), "[\"free\",\"ID\"]\n");
        assert_eq!(text(HubMessage::Heartbeat).unwrap(), "[\"heartbeat\"]\n");
        assert_eq!(text(HubMessage::Done { request: 1 }), None);
        assert_eq!(text(HubMessage::Snapshot { subscription: SubscriptionId(0), records: vec![] }), None);
    }

    #[async_std::test]
    async fn lines_are_split_and_bounded() {
        let input: &[u8] = b"[\"a\"]\r\n\n[\"b\"]\n[\"partial";
        let mut reader = LineReader::new(input, b"", 100);
        assert_eq!(reader.next_line().await.unwrap().unwrap(), b"[\"a\"]");
        assert_eq!(reader.next_line().await.unwrap().unwrap(), b"");
        assert_eq!(reader.next_line().await.unwrap().unwrap(), b"[\"b\"]");
        assert!(reader.next_line().await.unwrap().is_none());

        let mut reader = LineReader::new(&b"23]\n[4]\n"[..], b"[1", 100);
        assert_eq!(reader.next_line().await.unwrap().unwrap(), b"[123]");
        assert_eq!(reader.next_line().await.unwrap().unwrap(), b"[4]");
        assert_eq!(reader.buf.kept().capacity(), 0, "every byte read was handed out: nothing is kept");

        let long = vec![b'x'; 100_000];
        let mut reader = LineReader::new(&long[..], b"[", 1000);
        assert!(matches!(reader.next_line().await, Err(LineError::TooLong { max: 1000 })));
    }
}
