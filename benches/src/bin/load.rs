//! End-to-end load on loopback: many connections registering services with a hub, a
//! few watchers seeing every registration, then every connection cut; or a hub killed
//! and restarted under its clients. Prints a report; used for docs/benchmarks.md.
//!
//! ```text
//! load [OPTIONS]
//!
//! Hub (default: start `seaport listen 0 --bind 127.0.0.1` as a separate process):
//!   --seaport PATH     the `seaport` binary [default: next to this binary]
//!   --hub ADDR         use the running hub at ADDR instead (loopback only)
//!   --hub-pid PID      its process id, for its memory and CPU figures
//!   --in-process       run the hub inside this process (for tests; the memory and CPU
//!                      figures then include the clients)
//!
//! Workload:
//!   -c, --clients N    registering connections [default: 1000]
//!   -s, --services N   registrations per connection [default: 10]
//!   -w, --watchers N   watcher clients subscribed to every registration [default: 1]
//!   --client           register with seaport_net::Client handles instead of raw frame
//!                      connections (each pipelines its registrations)
//!   --signed           sign every frame: the hub gets an authorized-keys file with a fresh
//!                      key (with --hub, pass that hub's authorized key pair with --key)
//!   --key FILE         the key pair to sign with (JSON {public, private})
//!   --restart          instead: C clients (seaport_net::Client) with one registration
//!                      each; SIGKILL the hub, start a new one on the same port, and time
//!                      until every registration is back with the same id and port
//!   --timeout SECS     bound on each phase [default: 120]
//!   --samples N        connections cut one at a time for the free latency [default: 100]
//!   --join N           once every watcher has everything, N more raw connections
//!                      subscribe at once (each is sent every registration); time until
//!                      each has had its snapshot, and the hub's peak memory
//! ```
//!
//! Registrations are `load@1.0.0` with ids `c<client>s<service>`, spread over hosts
//! `10.0.x.y` with at most 10 000 per host: a hub assigns ports unique per host out of
//! 22 768, so a single host could not hold 100 000 registrations.
//!
//! The rate is registrations per second from the first registration sent until every
//! watcher has seen every registration. The latency of a registration is from the moment
//! its connection wrote it to the moment a watcher received it, so under full load it
//! includes the queueing behind every earlier registration. Bytes per registration are
//! the hub's resident memory after registering minus before, over the registrations (so
//! they include each connection's share).
//!
//! Exit status: 0 when everything converged, 2 when a phase hit its bound (the report
//! says what was reached), 1 on a usage or setup error. Every wait is bounded: the tool
//! always ends by itself.

use std::net::Shutdown;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_std::net::TcpStream;
use async_std::task;
use futures::{AsyncWriteExt, StreamExt};
use seaport_benches::{handshake, seaport_binary, HubProcess, ProcStats, Summary};
use seaport_net::auth::{authorized_to_json, KeyPair, Signer};
use seaport_net::core::{Change, ClientMessage, HubMessage, PortRequest, Registration, SubscriptionId};
use seaport_net::frame::{encode_signed, encode_unsigned};
use seaport_net::{Client, ClientConfig, FrameReader, Hub, HubConfig, RegisterOptions};

const ROLE: &str = "load";
const VERSION: &str = "1.0.0";
/// Most registrations per advertised host (a host has 22 768 assignable ports).
const PER_HOST: usize = 10_000;
/// Connections opened at once while setting up (the listen backlog is finite).
const CONNECT_BATCH: usize = 200;

/// The parsed command line.
#[derive(Clone, Debug)]
struct Args {
    seaport: Option<PathBuf>,
    hub: Option<String>,
    hub_pid: Option<u32>,
    in_process: bool,
    clients: usize,
    services: usize,
    watchers: usize,
    use_client: bool,
    signed: bool,
    key: Option<PathBuf>,
    restart: bool,
    timeout: Duration,
    samples: usize,
    join: usize,
}

impl Args {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut a = Args {
            seaport: None,
            hub: None,
            hub_pid: None,
            in_process: false,
            clients: 1000,
            services: 10,
            watchers: 1,
            use_client: false,
            signed: false,
            key: None,
            restart: false,
            timeout: Duration::from_secs(120),
            samples: 100,
            join: 0,
        };
        fn value<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, String> {
            let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
            v.parse().map_err(|_| format!("{flag}: cannot parse {v:?}"))
        }
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--seaport" => a.seaport = Some(value::<PathBuf>(&arg, args.next())?),
                "--hub" => a.hub = Some(value(&arg, args.next())?),
                "--hub-pid" => a.hub_pid = Some(value(&arg, args.next())?),
                "--in-process" => a.in_process = true,
                "-c" | "--clients" => a.clients = value(&arg, args.next())?,
                "-s" | "--services" => a.services = value(&arg, args.next())?,
                "-w" | "--watchers" => a.watchers = value(&arg, args.next())?,
                "--client" => a.use_client = true,
                "--signed" => a.signed = true,
                "--key" => a.key = Some(value::<PathBuf>(&arg, args.next())?),
                "--restart" => a.restart = true,
                "--timeout" => a.timeout = Duration::from_secs_f64(value(&arg, args.next())?),
                "--samples" => a.samples = value(&arg, args.next())?,
                "--join" => a.join = value(&arg, args.next())?,
                "-h" | "--help" => return Err(String::new()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if a.clients == 0 || a.services == 0 {
            return Err("--clients and --services must be at least 1".into());
        }
        if a.hub.as_deref().is_some_and(|h| !h.starts_with("127.") && !h.starts_with("localhost:")) {
            return Err("--hub must be a loopback address (127.x.x.x:PORT)".into());
        }
        if a.restart && a.hub.is_some() {
            return Err("--restart needs a hub this tool starts (no --hub)".into());
        }
        Ok(a)
    }
}

/// The hub under load.
enum HubHandle {
    /// A `seaport listen` process this tool started (and kills at the end).
    Process { hub: HubProcess, binary: PathBuf, keyfile: Option<PathBuf> },
    /// A hub inside this process.
    InProcess { hub: Option<Hub>, config: Box<HubConfig>, addr: String },
    /// A hub someone else runs.
    External { addr: String, pid: Option<u32> },
}

impl HubHandle {
    fn addr(&self) -> &str {
        match self {
            HubHandle::Process { hub, .. } => hub.addr(),
            HubHandle::InProcess { addr, .. } | HubHandle::External { addr, .. } => addr,
        }
    }

    fn pid(&self) -> Option<u32> {
        match self {
            HubHandle::Process { hub, .. } => Some(hub.pid()),
            HubHandle::InProcess { .. } => Some(std::process::id()),
            HubHandle::External { pid, .. } => *pid,
        }
    }

    fn stats(&self) -> Option<ProcStats> {
        self.pid().and_then(|pid| ProcStats::of(pid).ok())
    }

    /// Kills the hub (SIGKILL for a process) and starts a new one on the same port.
    async fn kill_and_restart(&mut self, deadline: Instant) -> Result<(), String> {
        match self {
            HubHandle::Process { hub, binary, keyfile } => {
                hub.kill();
                let port = hub.addr().rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or(0);
                loop {
                    match spawn_hub(binary, port, keyfile.as_deref()) {
                        Ok(new) => {
                            *hub = new;
                            return Ok(());
                        }
                        // The port may be briefly unavailable; try again.
                        Err(e) if Instant::now() < deadline => {
                            tracing_note(&format!("restart attempt failed: {e}"));
                            task::sleep(Duration::from_millis(10)).await;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            HubHandle::InProcess { hub, config, addr } => {
                // Dropping the hub closes every connection at once, as a kill does.
                drop(hub.take());
                loop {
                    match Hub::bind(addr.as_str(), HubConfig::clone(config)).await {
                        Ok(new) => {
                            *hub = Some(new);
                            return Ok(());
                        }
                        Err(e) if Instant::now() < deadline => {
                            tracing_note(&format!("restart attempt failed: {e}"));
                            task::sleep(Duration::from_millis(10)).await;
                        }
                        Err(e) => return Err(e.to_string()),
                    }
                }
            }
            HubHandle::External { .. } => Err("cannot restart a hub this tool did not start".into()),
        }
    }

    async fn stop(self) {
        match self {
            HubHandle::Process { mut hub, keyfile, .. } => {
                hub.kill();
                if let Some(dir) = keyfile.as_deref().and_then(Path::parent) {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
            HubHandle::InProcess { hub: Some(hub), .. } => hub.shutdown().await,
            HubHandle::InProcess { hub: None, .. } | HubHandle::External { .. } => {}
        }
    }
}

fn tracing_note(message: &str) {
    eprintln!("load: {message}");
}

/// Starts `seaport listen PORT --bind 127.0.0.1 [KEYFILE]` and waits for its ready line.
fn spawn_hub(binary: &Path, port: u16, keyfile: Option<&Path>) -> Result<HubProcess, String> {
    let extra: Vec<String> = keyfile.map(|k| k.display().to_string()).into_iter().collect();
    HubProcess::spawn(binary, port, &extra, Stdio::inherit()).map_err(|e| e.to_string())
}

/// The `seaport` binary: `--seaport`, or next to this binary (same target directory).
fn find_seaport(args: &Args) -> Result<PathBuf, String> {
    if let Some(path) = &args.seaport {
        return Ok(path.clone());
    }
    seaport_binary().ok_or_else(|| {
        "no `seaport` binary next to this one; build it (cargo build --release -p seaport-cli) or pass --seaport PATH"
            .to_string()
    })
}

async fn start_hub(args: &Args, key: Option<&KeyPair>) -> Result<HubHandle, String> {
    if let Some(addr) = &args.hub {
        return Ok(HubHandle::External { addr: addr.clone(), pid: args.hub_pid });
    }
    if args.in_process {
        let mut config = HubConfig::default();
        config.authorized.extend(key.map(KeyPair::public));
        let hub = Hub::bind("127.0.0.1:0", config.clone()).await.map_err(|e| e.to_string())?;
        let addr = hub.local_addr().to_string();
        return Ok(HubHandle::InProcess { hub: Some(hub), config: Box::new(config), addr });
    }
    let binary = find_seaport(args)?;
    let keyfile = match key {
        None => None,
        Some(key) => {
            let dir = std::env::temp_dir().join(format!("seaport-load-{}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let path = dir.join("authorized.json");
            std::fs::write(&path, authorized_to_json(&[key.public()]))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Some(path)
        }
    };
    let hub = spawn_hub(&binary, 0, keyfile.as_deref())?;
    Ok(HubHandle::Process { hub, binary, keyfile })
}

/// The host a registration is advertised on: at most [`PER_HOST`] per host.
fn host_of(client: usize, service: usize, services: usize) -> String {
    let group = (client * services + service) / PER_HOST;
    format!("10.0.{}.{}", group / 256 % 256, group % 256)
}

fn id_of(client: usize, service: usize) -> String {
    format!("c{client}s{service}")
}

/// The client index in an id made by [`id_of`].
fn client_of(id: &str) -> Option<usize> {
    id.strip_prefix('c')?.split_once('s')?.0.parse().ok()
}

fn registration(client: usize, service: usize, services: usize) -> Registration {
    Registration {
        id: Some(id_of(client, service)),
        version: Some(VERSION.into()),
        host: Some(host_of(client, service, services)),
        port: PortRequest::Any,
        ..Registration::new(ROLE)
    }
}

/// One instant per connection, set once.
type Instants = Arc<Vec<OnceLock<Instant>>>;

fn instants(n: usize) -> Instants {
    Arc::new((0..n).map(|_| OnceLock::new()).collect())
}

/// A connection speaking seaport-rs frames by hand: no background task, no replica.
struct Raw {
    stream: TcpStream,
    reader: FrameReader<TcpStream>,
    signer: Option<Signer>,
}

impl Raw {
    async fn connect(addr: &str, key: Option<&KeyPair>) -> Result<Raw, String> {
        let (stream, nonce) = handshake(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
        let mut raw = Raw {
            reader: FrameReader::new(stream.clone()),
            stream,
            signer: key.map(|k| Signer::new(k.clone(), nonce)),
        };
        match raw.next().await? {
            HubMessage::Welcome { .. } => Ok(raw),
            other => Err(format!("expected a welcome, got {other:?}")),
        }
    }

    fn encode(&mut self, message: &ClientMessage, out: &mut Vec<u8>) -> Result<(), String> {
        match &mut self.signer {
            Some(signer) => encode_signed(message, signer, out),
            None => encode_unsigned(message, out),
        }
        .map_err(|e| e.to_string())
    }

    /// Subscribes to every registration of the workload.
    async fn subscribe(&mut self) -> Result<(), String> {
        let subscribe = ClientMessage::Subscribe {
            request: 1,
            subscription: SubscriptionId(1),
            pattern: ROLE.into(),
            resume: None,
        };
        let mut bytes = Vec::new();
        self.encode(&subscribe, &mut bytes)?;
        (&self.stream).write_all(&bytes).await.map_err(|e| format!("write: {e}"))
    }

    async fn next(&mut self) -> Result<HubMessage, String> {
        match self.reader.read_frame().await {
            Ok(Some(frame)) => frame.decode().map_err(|e| e.to_string()),
            Ok(None) => Err("the hub closed the connection".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Opens `n` raw connections that subscribe to every registration together, and waits
/// until each has had its snapshot of `total` records and its `Synced`; the time that
/// took from the first connection on.
async fn join_herd(
    addr: &str,
    key: Option<&KeyPair>,
    n: usize,
    total: usize,
    deadline: Instant,
) -> Result<Duration, String> {
    let start = Instant::now();
    let raws = open_all(n, deadline, |_| {
        let (addr, key) = (addr.to_string(), key.cloned());
        async move { Raw::connect(&addr, key.as_ref()).await }
    })
    .await?;
    let mut tasks = Vec::with_capacity(n);
    for mut raw in raws {
        tasks.push(task::spawn(async move {
            raw.subscribe().await?;
            let mut records = 0;
            loop {
                match raw.next().await? {
                    HubMessage::Snapshot { records: some, .. } => records += some.len(),
                    HubMessage::Synced { .. } => return Ok::<_, String>((raw, records)),
                    _ => {}
                }
            }
        }));
    }
    let mut held = Vec::with_capacity(n);
    for handle in tasks {
        let left = deadline.saturating_duration_since(Instant::now());
        let (raw, records) = async_std::future::timeout(left, handle)
            .await
            .map_err(|_| format!("only {} of {n} connections had their snapshot in time", held.len()))??;
        if records != total {
            return Err(format!("a snapshot of {records} records, not {total}"));
        }
        held.push(raw);
    }
    Ok(start.elapsed())
}

/// Opens `n` connections with `open`, [`CONNECT_BATCH`] at a time.
async fn open_all<T, F, Fut>(n: usize, deadline: Instant, open: F) -> Result<Vec<T>, String>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T, String>> + Send + 'static,
    T: Send + 'static,
{
    let mut all = Vec::with_capacity(n);
    for start in (0..n).step_by(CONNECT_BATCH) {
        let batch: Vec<_> = (start..n.min(start + CONNECT_BATCH)).map(|i| task::spawn(open(i))).collect();
        for handle in batch {
            let left = deadline.saturating_duration_since(Instant::now());
            match async_std::future::timeout(left, handle).await {
                Ok(result) => all.push(result?),
                Err(_) => return Err(format!("opened only {} of {n} connections in time", all.len())),
            }
        }
    }
    Ok(all)
}

/// What the watchers saw.
#[derive(Default)]
struct Seen {
    registered: AtomicUsize,
    freed: AtomicUsize,
    register_latency: Mutex<Vec<Duration>>,
    free_latency: Mutex<Vec<Duration>>,
}

fn spawn_watcher(
    mut changes: futures::channel::mpsc::UnboundedReceiver<Change>,
    seen: Arc<Seen>,
    sent: Instants,
    cut: Instants,
) {
    task::spawn(async move {
        while let Some(change) = changes.next().await {
            let now = Instant::now();
            let (latencies, since, count) = match &change {
                Change::Register(_) => (&seen.register_latency, &sent, &seen.registered),
                Change::Free(_) => (&seen.free_latency, &cut, &seen.freed),
                Change::Update(_) => continue,
            };
            let start = client_of(change.record().id.as_str()).and_then(|i| since.get(i)).and_then(OnceLock::get);
            if let (Some(start), Ok(mut latencies)) = (start, latencies.lock()) {
                latencies.push(now.saturating_duration_since(*start));
            }
            count.fetch_add(1, Ordering::Relaxed);
        }
    });
}

/// Polls `cond` every millisecond until it holds (`true`) or `deadline` passes (`false`).
async fn wait_until(deadline: Instant, mut cond: impl FnMut() -> bool) -> bool {
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        task::sleep(Duration::from_millis(1)).await;
    }
    true
}

/// A registering connection.
enum Conn {
    Raw(Box<Raw>),
    Client(Client),
}

impl Conn {
    /// Cuts the connection: the hub sees it end, as when a process dies.
    async fn cut(self) {
        match self {
            Conn::Raw(raw) => {
                let _ = raw.stream.shutdown(Shutdown::Both);
            }
            Conn::Client(client) => client.close().await,
        }
    }
}

fn client_config(key: Option<&KeyPair>) -> ClientConfig {
    // The registrations name hosts that are not this machine: nothing to check locally.
    ClientConfig { key: key.cloned(), check_local_ports: false, ..ClientConfig::default() }
}

async fn open_conn(addr: String, key: Option<KeyPair>, use_client: bool) -> Result<Conn, String> {
    if !use_client {
        return Raw::connect(&addr, key.as_ref()).await.map(|raw| Conn::Raw(Box::new(raw)));
    }
    let client = Client::connect(&[addr], client_config(key.as_ref())).map_err(|e| e.to_string())?;
    // Any query waits for the connection (and a hub snapshot of an empty role).
    client.query("load-none").await.map_err(|e| e.to_string())?;
    Ok(Conn::Client(client))
}

/// Sends every registration of connection `i` and waits for the answers; returns the
/// connection and how many registrations the hub refused.
async fn register_all(conn: Conn, i: usize, services: usize, sent: Instants) -> Result<(Conn, usize), String> {
    match conn {
        Conn::Raw(mut raw) => {
            let mut bytes = Vec::with_capacity(services * 80);
            for j in 0..services {
                let message =
                    ClientMessage::Register { request: j as u64 + 1, registration: registration(i, j, services) };
                raw.encode(&message, &mut bytes)?;
            }
            let _ = sent[i].set(Instant::now());
            (&raw.stream).write_all(&bytes).await.map_err(|e| format!("write: {e}"))?;
            let (mut answered, mut refused) = (0, 0);
            while answered < services {
                match raw.next().await? {
                    HubMessage::Registered { .. } => answered += 1,
                    HubMessage::Rejected { message, .. } => {
                        answered += 1;
                        refused += 1;
                        if refused == 1 {
                            tracing_note(&format!("connection {i}: refused: {message}"));
                        }
                    }
                    _ => {}
                }
            }
            Ok((Conn::Raw(raw), refused))
        }
        Conn::Client(client) => {
            let name = format!("{ROLE}@{VERSION}");
            let _ = sent[i].set(Instant::now());
            // The client pipelines: every register is on the wire before the first answer.
            let results = futures::future::join_all((0..services).map(|j| {
                let options = RegisterOptions {
                    id: Some(id_of(i, j)),
                    host: Some(host_of(i, j, services)),
                    ..RegisterOptions::default()
                };
                client.register(&name, options)
            }))
            .await;
            let refused = results.iter().filter(|r| r.is_err()).count();
            if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
                tracing_note(&format!("connection {i}: refused: {e}"));
            }
            Ok((Conn::Client(client), refused))
        }
    }
}

/// Writes a heartbeat on every raw connection every 10 s, so a long run outlives no
/// lease (the hub's timeout is 45 s by default); stops when `stop` is set.
fn keep_alive(streams: Vec<TcpStream>, stop: Arc<std::sync::atomic::AtomicBool>) {
    if streams.is_empty() {
        return;
    }
    task::spawn(async move {
        let mut heartbeat = Vec::new();
        if encode_unsigned(&ClientMessage::Heartbeat, &mut heartbeat).is_err() {
            return;
        }
        loop {
            for _ in 0..100 {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                task::sleep(Duration::from_millis(100)).await;
            }
            for stream in &streams {
                let _ = (&*stream).write_all(&heartbeat).await;
            }
        }
    });
}

fn kib_delta(after: Option<ProcStats>, before: Option<ProcStats>) -> Option<i64> {
    Some(after?.rss_kib as i64 - before?.rss_kib as i64)
}

fn per_registration(kib: Option<i64>, registrations: usize) -> String {
    match kib {
        Some(kib) => format!("{:.0} B", kib as f64 * 1024.0 / registrations.max(1) as f64),
        None => "n/a (no hub pid)".into(),
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn take(latencies: &Mutex<Vec<Duration>>) -> Vec<Duration> {
    latencies.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default()
}

async fn run_load(args: &Args, hub: &HubHandle, key: Option<&KeyPair>) -> Result<bool, String> {
    let addr = hub.addr().to_string();
    let (clients, services) = (args.clients, args.services);
    let total = clients * services;
    let setup_deadline = Instant::now() + args.timeout;
    let idle = hub.stats();

    let sent = instants(clients);
    let cut = instants(clients);
    let mut watchers = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..args.watchers {
        let client = Client::connect(&[addr.as_str()], client_config(key)).map_err(|e| e.to_string())?;
        let changes = async_std::future::timeout(args.timeout, client.watch(ROLE))
            .await
            .map_err(|_| "a watcher could not subscribe in time".to_string())?
            .map_err(|e| e.to_string())?;
        let s = Arc::new(Seen::default());
        spawn_watcher(changes, Arc::clone(&s), Arc::clone(&sent), Arc::clone(&cut));
        watchers.push(client);
        seen.push(s);
    }

    let connect_start = Instant::now();
    let use_client = args.use_client;
    let conns = open_all(clients, setup_deadline, |_| open_conn(addr.clone(), key.cloned(), use_client)).await?;
    let connect_time = connect_start.elapsed();
    let connected = hub.stats();
    let tool_before = ProcStats::current().ok();
    let stop_keepalive = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let raw_streams =
        conns.iter().filter_map(|c| if let Conn::Raw(r) = c { Some(r.stream.clone()) } else { None }).collect();
    keep_alive(raw_streams, Arc::clone(&stop_keepalive));

    // Registration: every connection at once.
    let deadline = Instant::now() + args.timeout;
    let start = Instant::now();
    let handles: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, conn)| task::spawn(register_all(conn, i, services, Arc::clone(&sent))))
        .collect();
    let mut conns = Vec::with_capacity(clients);
    let mut refused = 0;
    let mut failed = None;
    for handle in handles {
        let left = deadline.saturating_duration_since(Instant::now());
        match async_std::future::timeout(left, handle).await {
            Ok(Ok((conn, r))) => {
                refused += r;
                conns.push(conn);
            }
            Ok(Err(e)) => failed = failed.or(Some(e)),
            Err(_) => {
                failed = failed.or(Some("the hub did not answer every registration in time".into()));
                break;
            }
        }
    }
    let answered = start.elapsed();
    let everyone = |n: usize| seen.iter().all(|s| s.registered.load(Ordering::Relaxed) >= n);
    let converged = failed.is_none() && refused == 0 && wait_until(deadline, || everyone(total)).await;
    let elapsed = start.elapsed();
    let registered = hub.stats();
    let tool_after = ProcStats::current().ok();
    let reached = seen.iter().map(|s| s.registered.load(Ordering::Relaxed)).min().unwrap_or(0);
    let mut latencies = Vec::new();
    for s in &seen {
        latencies.extend(take(&s.register_latency));
    }
    let latency = Summary::of(&mut latencies);
    let rate = reached as f64 / elapsed.as_secs_f64();

    println!(
        "workload: {clients} connections x {services} registrations = {total}, {} watcher(s), {}, signing {}",
        args.watchers,
        if use_client { "seaport_net::Client" } else { "raw frame connections" },
        if key.is_some() { "on" } else { "off" }
    );
    println!(
        "hub: {addr} ({})",
        match hub {
            HubHandle::Process { .. } => "seaport listen, separate process",
            HubHandle::InProcess { .. } => "in this process",
            HubHandle::External { .. } => "external",
        }
    );
    println!("connect {clients} connections: {connect_time:.1?}");
    println!("all registrations answered: {answered:.1?}");
    println!("registrations seen by every watcher: {reached} of {total} in {elapsed:.1?}");
    println!("rate: {rate:.0} registrations/s");
    println!("register -> watcher: {latency}");
    if let (Some(idle), Some(connected), Some(registered)) = (idle, connected, registered) {
        println!(
            "hub rss: idle {}, connected {}, registered {}, peak {}",
            mib(idle.rss_kib),
            mib(connected.rss_kib),
            mib(registered.rss_kib),
            mib(registered.peak_rss_kib)
        );
        println!(
            "hub cpu: {:.2} s registering ({:.2} us per registration), {:.2} s since idle",
            registered.cpu_seconds - connected.cpu_seconds,
            (registered.cpu_seconds - connected.cpu_seconds) * 1e6 / total as f64,
            registered.cpu_seconds - idle.cpu_seconds
        );
    }
    println!(
        "hub bytes per registration: {} with connections, {} registrations alone",
        per_registration(kib_delta(registered, idle), total),
        per_registration(kib_delta(registered, connected), total)
    );
    if let (Some(before), Some(after)) = (tool_before, tool_after) {
        println!(
            "load tool: rss {}, cpu {:.2} s registering",
            mib(after.rss_kib),
            after.cpu_seconds - before.cpu_seconds
        );
    }
    if refused > 0 {
        println!("refused registrations: {refused}");
    }
    if let Some(e) = &failed {
        println!("failure: {e}");
    }

    let mut joined = true;
    if converged && args.join > 0 {
        let before = hub.stats();
        let took = join_herd(&addr, key, args.join, total, Instant::now() + args.timeout).await;
        let after = hub.stats();
        match (took, before, after) {
            (Ok(took), Some(before), Some(after)) => println!(
                "{} connections subscribed at once -> each had all {total} registrations in {took:.1?}; \
                 hub rss {} before, {} after, peak {}",
                args.join,
                mib(before.rss_kib),
                mib(after.rss_kib),
                mib(after.peak_rss_kib)
            ),
            (Ok(took), ..) => println!("{} connections subscribed at once -> each had all in {took:.1?}", args.join),
            (Err(e), ..) => {
                println!("failure: joining: {e}");
                joined = false;
            }
        }
    }

    // Free on disconnect: a few connections cut one at a time, then all the rest at once.
    let mut free_ok = converged;
    let samples = args.samples.min(conns.len());
    let mut rest = conns.split_off(samples);
    let deadline = Instant::now() + args.timeout;
    for (i, conn) in conns.into_iter().enumerate() {
        if !free_ok {
            break;
        }
        let _ = cut[i].set(Instant::now());
        conn.cut().await;
        free_ok =
            wait_until(deadline, || seen.iter().all(|s| s.freed.load(Ordering::Relaxed) >= (i + 1) * services)).await;
    }
    let mut sampled = Vec::new();
    for s in &seen {
        sampled.extend(take(&s.free_latency));
    }
    if free_ok {
        println!("connection cut -> watcher sees the free: {}", Summary::of(&mut sampled));
    }
    let bulk_start = Instant::now();
    let closing: Vec<_> = rest
        .drain(..)
        .enumerate()
        .map(|(k, conn)| {
            let _ = cut[samples + k].set(Instant::now());
            task::spawn(conn.cut())
        })
        .collect();
    for close in closing {
        close.await;
    }
    stop_keepalive.store(true, Ordering::Relaxed);
    if free_ok && samples < clients {
        let all_freed = wait_until(deadline, || seen.iter().all(|s| s.freed.load(Ordering::Relaxed) >= total)).await;
        let mut bulk = Vec::new();
        for s in &seen {
            bulk.extend(take(&s.free_latency));
        }
        println!(
            "{} other connections cut at once -> watchers saw every free in {:.1?} ({})",
            clients - samples,
            bulk_start.elapsed(),
            Summary::of(&mut bulk)
        );
        free_ok = all_freed;
    }
    for w in watchers {
        w.close().await;
    }
    let converged = converged && joined && free_ok;
    // One line for scripts (benches/compare-node/run.sh).
    let cpu = registered.zip(connected).map_or(0.0, |(r, c)| r.cpu_seconds - c.cpu_seconds);
    let bytes = kib_delta(registered, idle).map_or(0.0, |kib| kib as f64 * 1024.0 / total as f64);
    println!(
        "result {{\"mode\":\"load\",\"clients\":{clients},\"services\":{services},\"signed\":{},\"client\":{use_client},\
         \"converged\":{converged},\"reached\":{reached},\"seconds\":{:.4},\"rate\":{rate:.0},\"p50_ms\":{:.3},\
         \"p99_ms\":{:.3},\"max_ms\":{:.3},\"hub_cpu_s\":{cpu:.2},\"bytes_per_registration\":{bytes:.0},\"hub_peak_kib\":{}}}",
        key.is_some(),
        elapsed.as_secs_f64(),
        latency.p50.as_secs_f64() * 1e3,
        latency.p99.as_secs_f64() * 1e3,
        latency.max.as_secs_f64() * 1e3,
        registered.map_or(0, |r| r.peak_rss_kib),
    );
    println!("converged: {}", if converged { "yes" } else { "no" });
    Ok(converged)
}

/// Subscribes to the registrations on a fresh connection and waits until every client's
/// registration is there with its original port; returns when that held, or `None`.
async fn wait_healed(addr: &str, ports: &[u16], deadline: Instant) -> Option<Instant> {
    let mut raw = loop {
        match Raw::connect(addr, None).await {
            Ok(raw) => break raw,
            Err(_) if Instant::now() < deadline => task::sleep(Duration::from_millis(5)).await,
            Err(_) => return None,
        }
    };
    raw.subscribe().await.ok()?;
    let mut present = vec![false; ports.len()];
    let mut matched = 0usize;
    let mut apply = |matched: &mut usize, id: &str, port: Option<u16>| {
        let Some(i) = client_of(id).filter(|&i| i < ports.len()) else { return };
        let now = port == Some(ports[i]);
        match (present[i], now) {
            (false, true) => *matched += 1,
            (true, false) => *matched -= 1,
            _ => {}
        }
        present[i] = now;
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = async_std::future::timeout(left, raw.next()).await.ok()?.ok()?;
        match message {
            HubMessage::Snapshot { records, .. } => {
                records.iter().for_each(|r| apply(&mut matched, r.id.as_str(), Some(r.port)))
            }
            HubMessage::Change { change: Change::Register(r) | Change::Update(r), .. } => {
                apply(&mut matched, r.id.as_str(), Some(r.port))
            }
            HubMessage::Change { change: Change::Free(r), .. } => apply(&mut matched, r.id.as_str(), None),
            _ => {}
        }
        if matched == ports.len() {
            return Some(Instant::now());
        }
    }
}

async fn run_restart(args: &Args, hub: &mut HubHandle, key: Option<&KeyPair>) -> Result<bool, String> {
    let addr = hub.addr().to_string();
    let clients = args.clients;
    let deadline = Instant::now() + args.timeout;
    let start = Instant::now();
    let registered = open_all(clients, deadline, |i| {
        let (addr, config) = (addr.clone(), client_config(key));
        async move {
            let client = Client::connect(&[addr], config).map_err(|e| e.to_string())?;
            let options =
                RegisterOptions { id: Some(id_of(i, 0)), host: Some(host_of(i, 0, 1)), ..RegisterOptions::default() };
            let record = client.register(&format!("{ROLE}@{VERSION}"), options).await.map_err(|e| e.to_string())?;
            Ok((client, record.port))
        }
    })
    .await?;
    println!(
        "workload: restart, {clients} seaport_net::Client connections x 1 registration, signing {}",
        if key.is_some() { "on" } else { "off" }
    );
    println!("connect and register: {:.1?}", start.elapsed());
    if let Some(s) = hub.stats() {
        println!("hub before the kill: rss {}, cpu {:.2} s", mib(s.rss_kib), s.cpu_seconds);
    }
    let ports: Vec<u16> = registered.iter().map(|(_, port)| *port).collect();
    let deadline = Instant::now() + args.timeout;
    let killed = Instant::now();
    hub.kill_and_restart(deadline).await?;
    let ready = killed.elapsed();
    let healed = wait_healed(hub.addr(), &ports, deadline).await;
    println!("hub killed -> new hub ready: {ready:.1?}");
    let converged = match healed {
        Some(at) => {
            println!(
                "hub killed -> all {clients} registrations back with the same ids and ports: {:.1?}",
                at.duration_since(killed)
            );
            true
        }
        None => {
            println!("hub killed -> not every registration came back within {:?}", args.timeout);
            false
        }
    };
    if let Some(s) = hub.stats() {
        println!("new hub: rss {}, cpu {:.2} s", mib(s.rss_kib), s.cpu_seconds);
    }
    println!(
        "result {{\"mode\":\"restart\",\"clients\":{clients},\"signed\":{},\"converged\":{converged},\"ready_ms\":{:.1},\"healed_s\":{:.3}}}",
        key.is_some(),
        ready.as_secs_f64() * 1e3,
        healed.map_or(0.0, |at| at.duration_since(killed).as_secs_f64()),
    );
    let closing: Vec<_> = registered.into_iter().map(|(c, _)| task::spawn(async move { c.close().await })).collect();
    for close in closing {
        close.await;
    }
    println!("converged: {}", if converged { "yes" } else { "no" });
    Ok(converged)
}

/// The usage text, as in the doc comment above.
const USAGE: &str = r#"usage: load [OPTIONS]

Hub (default: start `seaport listen 0 --bind 127.0.0.1` as a separate process):
  --seaport PATH     the `seaport` binary [default: next to this binary]
  --hub ADDR         use the running hub at ADDR instead (loopback only)
  --hub-pid PID      its process id, for its memory and CPU figures
  --in-process       run the hub inside this process (for tests; the memory and CPU
                     figures then include the clients)

Workload:
  -c, --clients N    registering connections [default: 1000]
  -s, --services N   registrations per connection [default: 10]
  -w, --watchers N   watcher clients subscribed to every registration [default: 1]
  --client           register with seaport_net::Client handles instead of raw frame
                     connections (each pipelines its registrations)
  --signed           sign every frame: the hub gets an authorized-keys file with a fresh
                     key (with --hub, pass that hub's authorized key pair with --key)
  --key FILE         the key pair to sign with (JSON {public, private})
  --restart          instead: C clients (seaport_net::Client) with one registration
                     each; SIGKILL the hub, start a new one on the same port, and time
                     until every registration is back with the same id and port
  --timeout SECS     bound on each phase [default: 120]
  --samples N        connections cut one at a time for the free latency [default: 100]
  --join N           once every watcher has everything, N more raw connections
                     subscribe at once (each is sent every registration); time until
                     each has had its snapshot, and the hub's peak memory
"#;

async fn run(args: Args) -> Result<bool, String> {
    let key = match (&args.key, args.signed) {
        (Some(path), _) => Some(KeyPair::load(path).map_err(|e| format!("cannot load {}: {e}", path.display()))?),
        (None, true) if args.hub.is_some() => {
            return Err("--signed with --hub needs --key FILE (a key that hub authorizes)".into())
        }
        (None, true) => Some(KeyPair::generate()),
        (None, false) => None,
    };
    let mut hub = start_hub(&args, key.as_ref()).await?;
    let result = match args.restart {
        true => run_restart(&args, &mut hub, key.as_ref()).await,
        false => run_load(&args, &hub, key.as_ref()).await,
    };
    hub.stop().await;
    result
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("load: {e}");
            }
            eprint!("{USAGE}");
            return if e.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE };
        }
    };
    // Every connection is a descriptor, and 10 000 of them are far over the usual soft
    // limit of 1 024.
    let limit = seaport_net::raise_open_files_limit();
    // Each connection needs a descriptor here and one in the hub, plus a few spare.
    if (limit as usize) < args.clients + args.watchers + 64 {
        eprintln!("load: the open files limit is {limit}, too low for {} connections", args.clients);
        return ExitCode::FAILURE;
    }
    match task::block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("load: {e}");
            ExitCode::FAILURE
        }
    }
}
