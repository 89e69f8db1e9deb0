//! The real npm `seaport` package, installed once, and node processes driven from tests.

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_std::io::BufReader as AsyncBufReader;
use async_std::net::TcpStream;
use futures::channel::mpsc;
use futures::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, StreamExt};
use seaport_net::core::{Change, Event};
use seaport_net::{Client, ClientConfig, Hub, HubConfig};
use serde_json::{json, Value as Json};

/// The version of the npm package the tests run against.
pub const SEAPORT_VERSION: &str = "2.0.9";

/// The most any one test may take (installing the package aside).
pub const TEST_DEADLINE: Duration = Duration::from_secs(40);

/// The most any one wait inside a test may take.
pub const WAIT: Duration = Duration::from_secs(15);

/// How long `npm install` may take.
const INSTALL_DEADLINE: Duration = Duration::from_secs(300);

const DRIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node/js/driver.js");
const HUB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node/js/hub.js");

/// The directory of the installed `seaport` package, or `None` when the node tests are
/// switched off with `SEAPORT_SKIP_NODE_TESTS=1`.
///
/// The package is installed with npm into `$CARGO_TARGET_TMPDIR/node-seaport/VERSION`
/// once and reused; concurrent installs (parallel test binaries) each install into their
/// own staging directory and rename it into place, so one wins and none sees a half-done
/// install. `SEAPORT_NODE_MODULE=/path/to/node_modules/seaport` uses an existing install.
pub fn node_seaport() -> Option<&'static Path> {
    if std::env::var_os("SEAPORT_SKIP_NODE_TESTS").is_some_and(|v| v == "1") {
        eprintln!("SEAPORT_SKIP_NODE_TESTS=1: skipping a node seaport interop test");
        return None;
    }
    static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match INSTALLED.get_or_init(install) {
        Ok(dir) => Some(dir),
        Err(e) => panic!(
            "the node seaport interop tests need node and npm (and the npm registry, once): {e}\n\
             set SEAPORT_SKIP_NODE_TESTS=1 to skip them, or SEAPORT_NODE_MODULE to an installed seaport@{SEAPORT_VERSION}"
        ),
    }
}

fn install() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("SEAPORT_NODE_MODULE") {
        let dir = PathBuf::from(dir);
        return match dir.join("package.json").exists() {
            true => Ok(dir),
            false => Err(format!("SEAPORT_NODE_MODULE={} holds no package.json", dir.display())),
        };
    }
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("node-seaport");
    let root = base.join(SEAPORT_VERSION);
    let module = root.join("node_modules").join("seaport");
    if module.join("package.json").exists() {
        return Ok(module);
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let staging = base.join(format!("{SEAPORT_VERSION}.staging-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&staging).map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
    let result = npm_install(&staging);
    if result.is_ok() && std::fs::rename(&staging, &root).is_ok() {
        return Ok(module);
    }
    let _ = std::fs::remove_dir_all(&staging);
    result?;
    // Another process renamed its install into place first.
    match module.join("package.json").exists() {
        true => Ok(module),
        false => Err(format!("cannot move the npm install into {}", root.display())),
    }
}

fn npm_install(prefix: &Path) -> Result<(), String> {
    let spec = format!("seaport@{SEAPORT_VERSION}");
    let child = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--no-package-lock", "--prefix"])
        .arg(prefix)
        .arg(&spec)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    let output = wait_output(child, INSTALL_DEADLINE).map_err(|e| format!("npm install {spec}: {e}"))?;
    if !output.status.success() {
        return Err(format!("npm install {spec} failed ({}):\n{}", output.status, output.stderr));
    }
    match prefix.join("node_modules/seaport/package.json").exists() {
        true => Ok(()),
        false => Err(format!("npm install {spec} left no node_modules/seaport")),
    }
}

/// What a finished process printed.
pub struct Output {
    /// Its exit status.
    pub status: std::process::ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

/// Waits for a child with piped output, killing it after `limit`. Blocking: for set-up
/// only (the test's own waits are asynchronous).
fn wait_output(mut child: Child, limit: Duration) -> Result<Output, String> {
    let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let start = Instant::now();
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status,
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("still running after {limit:?}; killed"));
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    Ok(Output { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default() })
}

/// Runs the real `seaport` command line of the npm package (`bin/cmd.js`) to completion.
pub async fn node_cli(module: &Path, args: &[&str]) -> Output {
    let child = Command::new("node")
        .arg(module.join("bin").join("cmd.js"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    let what = format!("`seaport {}` (node)", args.join(" "));
    let output = async_std::task::spawn_blocking(move || wait_output(child, WAIT)).await;
    output.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// `seaport query HUB PATTERN` with the node command line: the records it prints.
pub async fn node_query(module: &Path, hub: &str, pattern: &str) -> Vec<Json> {
    let output = node_cli(module, &["query", hub, pattern]).await;
    assert!(output.status.success(), "node `seaport query {hub} {pattern}` failed: {}", output.stderr);
    match serde_json::from_str(&output.stdout) {
        Ok(Json::Array(rows)) => rows,
        _ => panic!("node `seaport query` printed {:?} (stderr {:?})", output.stdout, output.stderr),
    }
}

/// A node process running `js/driver.js`: a client of the npm package, driven by
/// commands and watched through the events it prints. Killed when dropped.
pub struct Node {
    child: Child,
    stdin: ChildStdin,
    events: mpsc::UnboundedReceiver<Json>,
    /// Every event received so far, in order.
    pub seen: Vec<Json>,
    stderr: Arc<Mutex<String>>,
}

impl Node {
    /// A node seaport client of the hub on 127.0.0.1:`port`, with `seaport.connect` options.
    pub fn connect(module: &Path, port: u16, options: Json) -> Node {
        Node::run(DRIVER, module, &[port.to_string(), options.to_string()])
    }

    /// A node seaport hub (`seaport.createServer()`) on a free port of every address,
    /// as node listens by default; returns it and its port.
    pub async fn hub(module: &Path) -> (Node, u16) {
        let mut node = Node::run(HUB, module, &[]);
        let event = node.expect("the node hub to listen", |e| e["event"] == "listening").await;
        let port = u16::try_from(event["port"].as_u64().expect("a port")).expect("a port number");
        (node, port)
    }

    /// Runs `script` with the package directory and `args` as its arguments.
    fn run(script: &str, module: &Path, args: &[String]) -> Node {
        let mut child = Command::new("node")
            .arg(script)
            .arg(module)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run node");
        let stdin = child.stdin.take().expect("the driver's stdin");
        let (tx, events) = mpsc::unbounded();
        let stdout = child.stdout.take().expect("the driver's stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let event = serde_json::from_str(&line).unwrap_or(Json::String(line));
                if tx.unbounded_send(event).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("the driver's stderr");
        let collected = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                collected.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Node { child, stdin, events, seen: Vec::new(), stderr }
    }

    /// Sends one command to the driver.
    pub fn send(&mut self, command: Json) {
        writeln!(self.stdin, "{command}").expect("write to the node driver");
        self.stdin.flush().expect("flush the node driver's stdin");
    }

    /// Registers `role` (`name@version`) with metadata; with `listen`, the node process
    /// also listens on the port seaport picked. Returns the record id and port.
    pub async fn register(&mut self, role: &str, meta: Json, listen: bool) -> (String, u16) {
        let tag = format!("register {role} {}", self.seen.len());
        self.send(json!({"cmd": "register", "role": role, "meta": meta, "listen": listen, "tag": tag}));
        let event =
            self.expect(&format!("node to register {role}"), |e| e["event"] == "registered" && e["tag"] == tag).await;
        let id = event["id"].as_str().expect("an id").to_string();
        let port = u16::try_from(event["port"].as_u64().expect("a port")).expect("a port number");
        (id, port)
    }

    /// `ports.query(pattern)` in the node process: the rows it returns.
    pub async fn query(&mut self, pattern: &str) -> Vec<Json> {
        let tag = format!("query {pattern} {}", self.seen.len());
        self.send(json!({"cmd": "query", "pattern": pattern, "tag": tag}));
        let event = self.expect(&format!("node's query {pattern}"), |e| e["event"] == "query" && e["tag"] == tag).await;
        event["rows"].as_array().cloned().unwrap_or_default()
    }

    /// The next event for which `pick` holds (earlier ones are kept in [`Node::seen`]).
    pub async fn expect(&mut self, what: &str, mut pick: impl FnMut(&Json) -> bool) -> Json {
        let found = async_std::future::timeout(WAIT, async {
            while let Some(event) = self.events.next().await {
                self.seen.push(event.clone());
                if pick(&event) {
                    return Some(event);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(event)) => event,
            Ok(None) => panic!("waiting for {what}: the node process ended\n{}", self.diagnostics()),
            Err(_) => panic!("timed out after {WAIT:?} waiting for {what}\n{}", self.diagnostics()),
        }
    }

    /// Kills the process with SIGKILL: its sockets just go away.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn diagnostics(&self) -> String {
        let seen: Vec<String> = self.seen.iter().map(Json::to_string).collect();
        format!("node events so far:\n  {}\nnode stderr:\n{}", seen.join("\n  "), self.stderr.lock().unwrap())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs a test body, panicking if it has not finished within [`TEST_DEADLINE`].
pub async fn with_deadline<T>(body: impl Future<Output = T>) -> T {
    match async_std::future::timeout(TEST_DEADLINE, body).await {
        Ok(value) => value,
        Err(_) => panic!("the test did not finish within {TEST_DEADLINE:?}"),
    }
}

/// Awaits `f`, panicking with `what` if it takes longer than [`WAIT`].
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match async_std::future::timeout(WAIT, f).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// Polls the condition every 10 ms until it holds, panicking after [`WAIT`].
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "timed out after {WAIT:?} waiting until {what}");
        async_std::task::sleep(Duration::from_millis(10)).await;
    }
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

/// Client settings for tests: quick reconnects.
pub fn client_config() -> ClientConfig {
    ClientConfig {
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        ..ClientConfig::default()
    }
}

/// A Rust client of the hub at `addr`.
pub fn client(addr: &str) -> Client {
    Client::connect(&[addr], client_config()).expect("a client")
}

/// The next change on a watch stream, within [`WAIT`].
pub async fn next_change(rx: &mut mpsc::UnboundedReceiver<Change>) -> Change {
    within("the next change on a watch stream", rx.next()).await.expect("the watch stream ended")
}

/// Waits until the hub of `client` holds the record `id` of `role`. A node driver's
/// `registered` event can reach the test before its register reaches the hub, and so
/// before the free of a port the driver gave up (see driver.js), which goes first.
pub async fn until_registered(client: &Client, role: &str, id: &str) {
    // A watch's stream holds what changes after it; the query, what was there before.
    let mut changes = within("a watch", client.watch(role)).await.expect("a watch");
    let held = within("a query", client.query(role)).await.expect("a query");
    if held.iter().any(|record| record.id.as_str() == id) {
        return;
    }
    loop {
        if let Change::Register(record) = next_change(&mut changes).await {
            if record.id.as_str() == id {
                return;
            }
        }
    }
}

/// A short summary of a change: `+id`, `~id` or `-id`.
pub fn summary(change: &Change) -> String {
    match change {
        Change::Register(r) => format!("+{}", r.id),
        Change::Update(r) => format!("~{}", r.id),
        Change::Free(r) => format!("-{}", r.id),
    }
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

/// The ids of every record a hub holds, sorted.
pub fn hub_ids(hub: &Hub) -> Vec<String> {
    let mut ids: Vec<String> = hub.records().iter().map(|r| r.id.to_string()).collect();
    ids.sort();
    ids
}

/// A connection speaking node seaport's JSON lines by hand.
pub struct Lines {
    writer: TcpStream,
    reader: AsyncBufReader<TcpStream>,
}

impl Lines {
    /// Connects to the hub at `addr`.
    pub async fn connect(addr: &str) -> Lines {
        let stream = TcpStream::connect(addr).await.expect("connect to the hub");
        Lines { writer: stream.clone(), reader: AsyncBufReader::new(stream) }
    }

    /// Sends raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("write to the hub");
    }

    /// Sends raw bytes, ignoring a failure (the hub may close the connection mid-way).
    pub async fn send_lossy(&mut self, bytes: &[u8]) {
        let _ = self.writer.write_all(bytes).await;
    }

    /// The next line from the hub, parsed; `None` when the hub closed the connection.
    pub async fn next(&mut self) -> Option<Json> {
        within("a line from the hub", async {
            let mut line = String::new();
            match self.reader.read_line(&mut line).await {
                Ok(0) | Err(_) => None,
                Ok(_) => Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("the hub sent {line:?}: {e}"))),
            }
        })
        .await
    }

    /// The next line whose command is `command`, skipping others.
    pub async fn next_command(&mut self, command: &str) -> Json {
        loop {
            match self.next().await {
                Some(line) if line[0] == command => return line,
                Some(_) => {}
                None => panic!("the hub closed the connection while we waited for {command:?}"),
            }
        }
    }

    /// Reads until the hub closes the connection (end of stream or reset).
    pub async fn closed_by_hub(mut self) {
        within("the hub to close the connection", async {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match self.reader.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }
}
