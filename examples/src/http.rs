//! Just enough HTTP/1.1 for the examples, on plain async-std TCP: read a request head,
//! answer with a text body, fetch a URL, and run a text server registered with a hub.
//!
//! Every exchange is one request per connection (`Connection: close`), which keeps the
//! code short and lets a reader see the whole protocol on one screen.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_std::net::{TcpListener, TcpStream};
use async_std::task::{self, JoinHandle};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use seaport_core::Record;
use seaport_net::{Client, RegisterOptions};

/// The largest request or response head accepted, in bytes.
pub const MAX_HEAD: usize = 64 * 1024;

/// How long [`get`] waits for a whole response.
pub const GET_TIMEOUT: Duration = Duration::from_secs(5);

/// A request head as read from a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target, such as `/index.html`.
    pub path: String,
    /// The `Host` header, if the request had one.
    pub host: Option<String>,
    /// Every byte read from the connection: the head, and whatever part of the body
    /// arrived with it. A proxy forwards these first.
    pub bytes: Vec<u8>,
}

/// Reads a request head with `httparse`.
///
/// Returns `Ok(None)` when the connection closes before sending anything.
///
/// # Errors
/// `InvalidData` for a malformed head or one over [`MAX_HEAD`]; `UnexpectedEof` when the
/// connection closes in the middle of the head; any I/O error of the stream.
pub async fn read_request_head<R: futures::AsyncRead + Unpin>(stream: &mut R) -> io::Result<Option<RequestHead>> {
    let mut bytes = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            if bytes.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed inside the request head"));
        }
        bytes.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&bytes) {
            Ok(httparse::Status::Complete(_)) => {
                let host = request
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("host"))
                    .map(|h| String::from_utf8_lossy(h.value).trim().to_string());
                return Ok(Some(RequestHead {
                    method: request.method.unwrap_or_default().to_string(),
                    path: request.path.unwrap_or_default().to_string(),
                    host,
                    bytes,
                }));
            }
            Ok(httparse::Status::Partial) if bytes.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "request head too large"));
            }
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("bad request head: {e}"))),
        }
    }
}

/// Writes a complete `text/plain` response and closes the connection's write side.
///
/// # Errors
/// Any I/O error of the stream.
pub async fn write_response<W: futures::AsyncWrite + Unpin>(stream: &mut W, status: u16, body: &str) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.close().await
}

/// A response as [`get`] returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body, as text.
    pub body: String,
}

/// `GET http://{addr}{path}` with the `Host` header `host`, reading the response to the
/// end of the connection, all within [`GET_TIMEOUT`].
///
/// # Errors
/// `TimedOut` after [`GET_TIMEOUT`]; `InvalidData` for a malformed response; any I/O
/// error (a refused connection, for one).
pub async fn get(addr: &str, host: &str, path: &str) -> io::Result<Response> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).await?;
        parse_response(&bytes)
    };
    async_std::future::timeout(GET_TIMEOUT, exchange).await.map_err(|_| {
        io::Error::new(io::ErrorKind::TimedOut, format!("no complete answer from {addr} in {GET_TIMEOUT:?}"))
    })?
}

fn parse_response(bytes: &[u8]) -> io::Result<Response> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    match response.parse(bytes) {
        Ok(httparse::Status::Complete(head)) => Ok(Response {
            status: response.code.unwrap_or_default(),
            body: String::from_utf8_lossy(&bytes[head..]).into_owned(),
        }),
        Ok(httparse::Status::Partial) => Err(bad("the response ended inside its head".into())),
        Err(e) => Err(bad(format!("bad response head: {e}"))),
    }
}

/// Answers every request on `listener` with `200 OK` and `body`, until the task is
/// cancelled.
pub async fn serve_text(listener: TcpListener, body: Arc<str>) {
    let mut incoming = listener.incoming();
    while let Some(stream) = incoming.next().await {
        let Ok(mut stream) = stream else { continue };
        let body = Arc::clone(&body);
        task::spawn(async move {
            // A client that sends no complete head gets no answer.
            if let Ok(Some(_)) = read_request_head(&mut stream).await {
                let _ = write_response(&mut stream, 200, &body).await;
            }
        });
    }
}

/// An HTTP server that got its port from a hub and is registered there.
#[derive(Debug)]
pub struct TextService {
    /// The record the hub holds for it.
    pub record: Arc<Record>,
    client: Client,
    server: JoinHandle<()>,
}

impl TextService {
    /// Registers `name` (`role@version`) through `client`, listens on the port the hub
    /// assigned, on the address the hub saw this machine connect from (the host it
    /// advertises), and answers every request with `body`.
    ///
    /// The record is visible to others from the moment the hub accepts it, a moment
    /// before the server listens: a client that finds it in that moment has its
    /// connection refused, and should retry.
    ///
    /// # Errors
    /// The hub's refusal, or the address cannot be bound.
    pub async fn start(client: Client, name: &str, body: &str) -> anyhow::Result<TextService> {
        let record = client.register(name, RegisterOptions::default()).await?;
        let listener = TcpListener::bind((record.host.as_str(), record.port)).await?;
        let server = task::spawn(serve_text(listener, body.into()));
        Ok(TextService { record, client, server })
    }

    /// Unregisters (by closing the client: the hub frees the record at once and tells
    /// every watcher), then stops the server.
    pub async fn stop(self) {
        self.client.close().await;
        self.server.cancel().await;
    }
}
