//! Shared helpers: deadlines, polling, hubs and clients on loopback, and a raw
//! client driven frame by frame.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_std::net::TcpStream;
use futures::channel::mpsc;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use seaport_net::auth::{Signer, NONCE_LEN};
use seaport_net::connection::{self, FrameReader};
use seaport_net::core::{Change, ClientMessage, ErrorCode, Event, HubMessage, Record, Registration, SubscriptionId};
use seaport_net::frame::{self, encode_signed, encode_unsigned, PREAMBLE_LEN};
use seaport_net::{Client, ClientConfig, ClientEvent, Hub, HubConfig};

/// The most any one test may take.
pub const TEST_DEADLINE: Duration = Duration::from_secs(20);

/// The most any one wait inside a test may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// Runs a test body, panicking if it has not finished within `limit`.
pub async fn with_deadline<T>(limit: Duration, body: impl Future<Output = T>) -> T {
    match async_std::future::timeout(limit, body).await {
        Ok(value) => value,
        Err(_) => panic!("the test did not finish within {limit:?}"),
    }
}

/// Awaits `f`, panicking with `what` if it takes longer than [`WAIT`].
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match async_std::future::timeout(WAIT, f).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// Polls the async condition every 10 ms until it holds, panicking after [`WAIT`].
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if cond().await {
            return;
        }
        assert!(start.elapsed() < WAIT, "timed out after {WAIT:?} waiting until {what}");
        async_std::task::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls the condition every 10 ms until it holds, panicking after [`WAIT`].
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    eventually(what, || {
        let holds = cond();
        async move { holds }
    })
    .await;
}

/// A hub on 127.0.0.1 with an OS-assigned port, and its address.
pub async fn start_hub(config: HubConfig) -> (Hub, String) {
    let hub = Hub::bind("127.0.0.1:0", config).await.expect("bind a hub on 127.0.0.1:0");
    let addr = hub.local_addr().to_string();
    (hub, addr)
}

/// Binds a hub on exactly `addr`, retrying while the port is briefly unavailable.
pub async fn rebind_hub(addr: &str, config: HubConfig) -> Hub {
    let start = Instant::now();
    loop {
        match Hub::bind(addr.to_string(), config.clone()).await {
            Ok(hub) => return hub,
            Err(e) => {
                assert!(start.elapsed() < WAIT, "cannot bind {addr} again within {WAIT:?}: {e}");
                async_std::task::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// A hub configuration with short leases: heartbeat 100 ms, timeout 300 ms.
pub fn short_leases() -> HubConfig {
    HubConfig {
        core: seaport_net::core::HubConfig {
            heartbeat: Duration::from_millis(100),
            timeout: Duration::from_millis(300),
            ..Default::default()
        },
        ..HubConfig::default()
    }
}

/// Client settings for tests: quick reconnects.
pub fn client_config() -> ClientConfig {
    ClientConfig {
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        ..ClientConfig::default()
    }
}

/// A client of the hub at `addr` with [`client_config`].
pub fn client(addr: &str) -> Client {
    Client::connect(&[addr], client_config()).expect("a client")
}

/// A client of the hub at `addr` with `config`.
pub fn client_with(addr: &str, config: ClientConfig) -> Client {
    Client::connect(&[addr], config).expect("a client")
}

/// The next change on a watch stream, within [`WAIT`].
pub async fn next_change(rx: &mut mpsc::UnboundedReceiver<Change>) -> Change {
    within("the next change on a watch stream", rx.next()).await.expect("the watch stream ended")
}

/// The next client event, within [`WAIT`].
pub async fn next_client_event(rx: &mut mpsc::UnboundedReceiver<ClientEvent>) -> ClientEvent {
    within("the next client event", rx.next()).await.expect("the client event stream ended")
}

/// Waits for the first hub event for which `pick` returns something.
pub async fn hub_event<T>(rx: &mut mpsc::Receiver<Event>, what: &str, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    within(what, async {
        loop {
            let event = rx.next().await.expect("the hub event stream ended");
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    })
    .await
}

/// The ids of some records, sorted.
pub fn ids(records: &[Arc<Record>]) -> Vec<String> {
    let mut ids: Vec<String> = records.iter().map(|r| r.id.to_string()).collect();
    ids.sort();
    ids
}

/// The honest client's records (role `honest`) are all there, on the hub and in the
/// client's own view, and no others of that role.
pub async fn assert_intact(hub: &Hub, honest: &Client, expected: &[String]) {
    let mut on_hub: Vec<String> =
        hub.records().iter().filter(|r| r.role.as_str() == "honest").map(|r| r.id.to_string()).collect();
    on_hub.sort();
    assert_eq!(on_hub, expected, "the honest records on the hub");
    assert_eq!(ids(&honest.query("honest").await.unwrap()), expected, "the honest client's view");
}

/// The ids of every record a hub holds, sorted.
pub fn hub_ids(hub: &Hub) -> Vec<String> {
    ids(&hub.records())
}

/// A short summary of a change: `+id`, `~id` or `-id`.
pub fn summary(change: &Change) -> String {
    match change {
        Change::Register(r) => format!("+{}", r.id),
        Change::Update(r) => format!("~{}", r.id),
        Change::Free(r) => format!("-{}", r.id),
    }
}

/// A TCP connection to `addr` with TCP_NODELAY.
pub async fn tcp(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).await.expect("connect to the hub");
    stream.set_nodelay(true).expect("set TCP_NODELAY");
    stream
}

/// Reads and discards until the hub closes the socket (end of stream or a reset),
/// within [`WAIT`]; returns how many bytes arrived meanwhile.
pub async fn drain_until_closed(stream: &mut TcpStream) -> usize {
    within("the hub to close the socket", async {
        // On the heap: a large buffer inside the future overflows a debug build's stack.
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0;
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
        }
    })
    .await
}

/// Reads the hub's hello (its preamble and the 32-byte connection nonce) and
/// wraps the stream in a frame reader.
pub async fn read_hello(mut stream: TcpStream) -> ([u8; NONCE_LEN], FrameReader<TcpStream>) {
    let version =
        within("the hub's preamble", connection::read_preamble(&mut stream)).await.expect("the hub's preamble");
    assert_eq!(version, frame::PROTOCOL_VERSION);
    let mut nonce = [0u8; NONCE_LEN];
    within("the hub's nonce", stream.read_exact(&mut nonce)).await.expect("the hub's nonce");
    (nonce, FrameReader::new(stream))
}

/// Reads frames until the hub closes the connection (end of stream or a
/// reset), within [`WAIT`]; returns the messages it sent before closing.
pub async fn read_until_closed(reader: &mut FrameReader<TcpStream>) -> Vec<HubMessage> {
    within("the hub to close the connection", async {
        let mut seen = Vec::new();
        loop {
            match reader.read_frame().await {
                Ok(Some(frame)) => seen.push(frame.decode::<HubMessage>().expect("a hub message")),
                Ok(None) | Err(_) => return seen,
            }
        }
    })
    .await
}

/// Connects, sends `before_preamble` bytes (or the real preamble when
/// `None`), and returns what the hub sends back before closing: its
/// preamble, its nonce, then its messages.
pub async fn refused(addr: &str, first_bytes: Option<&[u8]>) -> ([u8; PREAMBLE_LEN], [u8; NONCE_LEN], Vec<HubMessage>) {
    let mut stream = tcp(addr).await;
    match first_bytes {
        Some(bytes) => stream.write_all(bytes).await.expect("send the first bytes"),
        None => connection::send_preamble(&mut stream).await.expect("send the preamble"),
    }
    let mut preamble = [0u8; PREAMBLE_LEN];
    within("the hub's preamble", stream.read_exact(&mut preamble)).await.expect("the hub's preamble");
    let mut nonce = [0u8; NONCE_LEN];
    within("the hub's nonce", stream.read_exact(&mut nonce)).await.expect("the hub's nonce");
    let mut reader = FrameReader::new(stream);
    let seen = read_until_closed(&mut reader).await;
    (preamble, nonce, seen)
}

/// The `Rejected` messages among `messages`, as (request, code, message).
pub fn rejections(messages: &[HubMessage]) -> Vec<(Option<u64>, ErrorCode, String)> {
    messages
        .iter()
        .filter_map(|m| match m {
            HubMessage::Rejected { request, code, message } => Some((*request, *code, message.clone())),
            _ => None,
        })
        .collect()
}

/// A client driven by hand, frame by frame, over its own socket.
pub struct Raw {
    /// The socket (a clone of the one inside `reader`).
    pub stream: TcpStream,
    /// Frames from the hub.
    pub reader: FrameReader<TcpStream>,
    /// The connection nonce from the hub's hello.
    pub nonce: [u8; NONCE_LEN],
    /// The host the hub sees, from its welcome.
    pub host: String,
    next_request: u64,
}

impl Raw {
    /// Connects, sends the preamble, reads the hub's hello and its welcome.
    pub async fn connect(addr: &str) -> Raw {
        let mut stream = tcp(addr).await;
        connection::send_preamble(&mut stream).await.expect("send the preamble");
        let (nonce, reader) = read_hello(stream.clone()).await;
        let mut raw = Raw { stream, reader, nonce, host: String::new(), next_request: 1 };
        match raw.recv().await {
            HubMessage::Welcome { host, .. } => raw.host = host,
            other => panic!("expected a welcome, got {other:?}"),
        }
        raw
    }

    /// A fresh request id.
    pub fn request_id(&mut self) -> u64 {
        let id = self.next_request;
        self.next_request += 1;
        id
    }

    /// Sends raw bytes.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write to the hub");
    }

    /// Sends an unsigned frame.
    pub async fn send(&mut self, message: &ClientMessage) {
        let mut bytes = Vec::new();
        encode_unsigned(message, &mut bytes).expect("encode");
        self.send_bytes(&bytes).await;
    }

    /// Sends a signed frame and returns its bytes (to replay them).
    pub async fn send_signed(&mut self, message: &ClientMessage, signer: &mut Signer) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode_signed(message, signer, &mut bytes).expect("encode");
        self.send_bytes(&bytes).await;
        bytes
    }

    /// The next message from the hub other than a heartbeat, within [`WAIT`].
    pub async fn recv(&mut self) -> HubMessage {
        within("a message from the hub", async {
            loop {
                let frame =
                    self.reader.read_frame().await.expect("read a frame").expect("the hub closed the connection");
                match frame.decode::<HubMessage>().expect("a hub message") {
                    HubMessage::Heartbeat => continue,
                    message => return message,
                }
            }
        })
        .await
    }

    /// Registers `name` unsigned and returns the record.
    pub async fn register(&mut self, name: &str) -> Arc<Record> {
        let request = self.request_id();
        self.send(&ClientMessage::Register { request, registration: Registration::from_name(name) }).await;
        self.expect_registered(request).await
    }

    /// Waits for the reply to `request`, which must be `Registered`.
    pub async fn expect_registered(&mut self, request: u64) -> Arc<Record> {
        match self.reply(request).await {
            HubMessage::Registered { record, .. } => record,
            other => panic!("expected Registered for request {request}, got {other:?}"),
        }
    }

    /// The reply to `request` (skipping changes and other traffic).
    pub async fn reply(&mut self, request: u64) -> HubMessage {
        loop {
            let message = self.recv().await;
            let is_reply = match &message {
                HubMessage::Registered { request: r, .. }
                | HubMessage::Updated { request: r, .. }
                | HubMessage::Done { request: r } => *r == request,
                HubMessage::Rejected { request: r, .. } => *r == Some(request),
                _ => false,
            };
            if is_reply {
                return message;
            }
        }
    }

    /// The next `Rejected` message, skipping everything else.
    pub async fn next_rejection(&mut self) -> (Option<u64>, ErrorCode, String) {
        loop {
            if let HubMessage::Rejected { request, code, message } = self.recv().await {
                return (request, code, message);
            }
        }
    }

    /// Subscribes to `pattern` and waits for the end of its snapshot; returns the snapshot.
    pub async fn subscribe(&mut self, subscription: u64, pattern: &str) -> Vec<Arc<Record>> {
        let request = self.request_id();
        let subscription = SubscriptionId(subscription);
        self.send(&ClientMessage::Subscribe { request, subscription, pattern: pattern.to_string(), resume: None })
            .await;
        let mut records = Vec::new();
        loop {
            match self.recv().await {
                HubMessage::Snapshot { subscription: s, records: batch } if s == subscription => records.extend(batch),
                HubMessage::Synced { subscription: s, .. } if s == subscription => return records,
                HubMessage::Rejected { request: Some(r), message, .. } if r == request => {
                    panic!("subscription to {pattern:?} refused: {message}")
                }
                _ => {}
            }
        }
    }

    /// Reads until the hub closes the connection; returns what it sent meanwhile.
    pub async fn closed_by_hub(&mut self) -> Vec<HubMessage> {
        read_until_closed(&mut self.reader).await
    }
}
