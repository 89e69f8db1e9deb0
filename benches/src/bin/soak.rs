//! Soak: N clients registering, freeing, updating and querying against a hub for a
//! given time, stopping at checkpoints where every client's view, and the hub's, must
//! converge to the truth (what the clients were told they hold). Optionally, hostile
//! connections run alongside the whole time. Loopback only; bounded in time.
//!
//! ```sh
//! cargo build --release -p seaport-cli -p seaport-benches
//! target/release/soak --clients 1000 --duration 600            # the figures in docs/reliability.md
//! target/release/soak --clients 200 --duration 120 --hostile
//! ```
//!
//! Options:
//! - `--clients N`: honest clients, each its own connection (default 100).
//! - `--duration SECS`: how long the clients work, checkpoints excluded (default 60).
//! - `--interval SECS`: work between checkpoints (default 10).
//! - `--rate R`: operations per second per client, on average (default 1).
//! - `--hub spawn|inprocess|HOST:PORT`: `spawn` (default) runs the `seaport` binary of
//!   the same build as a separate process, so its memory is the hub's alone;
//!   `inprocess` runs a hub inside this process (memory figures then include the
//!   clients); `HOST:PORT` targets a running hub (give `--hub-pid` to read its memory).
//! - `--hub-pid PID`: the process whose memory and CPU to report with `--hub HOST:PORT`.
//! - `--hub-log FILE`: where a spawned hub's log goes (default: this tool's stderr).
//! - `--hostile`: also run garbage, oversized, cut-off, idle, never-reading, flooding,
//!   silent and replaying connections against the same hub.
//! - `--converge SECS`: how long a checkpoint may wait for the views to agree (default 60).
//! - `--seed N`: seed of the clients' choices (default 1).
//!
//! The process exits with status 1 if any checkpoint did not converge or an honest
//! operation failed.

use std::collections::BTreeMap;
use std::net::Shutdown;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_std::net::TcpStream;
use async_std::task;
use futures::{AsyncReadExt, AsyncWriteExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use seaport_benches::{handshake, seaport_binary, HubProcess, ProcStats, Summary};
use seaport_net::auth::Signer;
use seaport_net::core::{ClientMessage, Meta, Record, Registration, Value};
use seaport_net::frame::{encode_signed, encode_unsigned, write_preamble, PROTOCOL_VERSION};
use seaport_net::{Client, ClientConfig, ClientError, KeyPair, RegisterOptions};

/// Roles the honest records spread over; each client watches one of them.
const ROLES: usize = 100;
/// Most records one honest client holds at once.
const HOLD: usize = 5;

#[derive(Clone, Debug)]
struct Options {
    clients: usize,
    duration: Duration,
    interval: Duration,
    rate: f64,
    hub: String,
    hub_pid: Option<u32>,
    hub_log: Option<String>,
    hostile: bool,
    converge: Duration,
    seed: u64,
}

/// Locks `m`, going on with the data if a client task panicked while holding it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn usage(error: &str) -> ! {
    eprintln!("soak: {error}");
    eprintln!(
        "usage: soak [--clients N] [--duration SECS] [--interval SECS] [--rate OPS_PER_SEC] \
         [--hub spawn|inprocess|HOST:PORT] [--hub-pid PID] [--hub-log FILE] [--hostile] [--converge SECS] [--seed N]"
    );
    std::process::exit(2)
}

fn parse_options() -> Options {
    let mut o = Options {
        clients: 100,
        duration: Duration::from_secs(60),
        interval: Duration::from_secs(10),
        rate: 1.0,
        hub: "spawn".into(),
        hub_pid: None,
        hub_log: None,
        hostile: false,
        converge: Duration::from_secs(60),
        seed: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--hostile" {
            o.hostile = true;
            continue;
        }
        let Some(value) = args.next() else { usage(&format!("{flag} needs a value")) };
        let number = |what: &str| -> f64 {
            match value.parse::<f64>() {
                Ok(n) if n.is_finite() && n >= 0.0 => n,
                _ => usage(&format!("{what} takes a number, got {value:?}")),
            }
        };
        match flag.as_str() {
            "--clients" => o.clients = number("--clients") as usize,
            "--duration" => o.duration = Duration::from_secs_f64(number("--duration")),
            "--interval" => o.interval = Duration::from_secs_f64(number("--interval").max(0.1)),
            "--rate" => o.rate = number("--rate").max(0.01),
            "--converge" => o.converge = Duration::from_secs_f64(number("--converge")),
            "--seed" => o.seed = number("--seed") as u64,
            "--hub-pid" => o.hub_pid = Some(number("--hub-pid") as u32),
            "--hub" => o.hub = value,
            "--hub-log" => o.hub_log = Some(value),
            other => usage(&format!("unknown option {other:?}")),
        }
    }
    o
}

/// What a client was told it holds: the truth the views must converge to.
#[derive(Clone, Debug, PartialEq)]
struct Held {
    role: String,
    version: String,
    port: u16,
    meta: Meta,
}

impl Held {
    fn of(record: &Record) -> Held {
        Held {
            role: record.role.to_string(),
            version: record.version.as_ref().map(ToString::to_string).unwrap_or_default(),
            port: record.port,
            meta: record.meta.clone(),
        }
    }
}

type View = BTreeMap<String, Held>;

fn view_of(records: &[Arc<Record>]) -> View {
    records.iter().filter(|r| r.role.as_str().starts_with("soak")).map(|r| (r.id.to_string(), Held::of(r))).collect()
}

#[derive(Default)]
struct Latencies {
    register: Vec<Duration>,
    free: Vec<Duration>,
    update: Vec<Duration>,
    query: Vec<Duration>,
}

/// State shared by the workers and the controller.
struct Shared {
    truth: Mutex<View>,
    latencies: Mutex<Latencies>,
    errors: Mutex<BTreeMap<String, usize>>,
    /// Workers start no operation while set.
    paused: AtomicBool,
    /// Operations started and not yet finished.
    in_flight: AtomicUsize,
    stop: AtomicBool,
    ops: AtomicU64,
}

impl Shared {
    fn error(&self, what: &str, e: &ClientError) {
        let kind = match e {
            ClientError::Rejected { code, .. } => format!("{what}: rejected {code:?}"),
            other => format!("{what}: {other}"),
        };
        *lock(&self.errors).entry(kind).or_default() += 1;
    }
}

fn role(i: usize) -> String {
    format!("soak{}", i % ROLES)
}

fn meta(n: u64) -> Meta {
    [("n".to_string(), Value::from(n as i64))].into_iter().collect()
}

/// One honest client: random operations at about `rate` per second until stopped.
async fn worker(index: usize, client: Client, shared: Arc<Shared>, rate: f64, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut held: Vec<String> = Vec::new();
    let mine = role(index);
    let mut counter = 0u64;
    while !shared.stop.load(Ordering::SeqCst) {
        // Think time: exponential, mean 1/rate.
        let think = -(1.0 - rng.gen::<f64>()).ln() / rate;
        task::sleep(Duration::from_secs_f64(think.min(30.0))).await;
        if shared.paused.load(Ordering::SeqCst) || shared.stop.load(Ordering::SeqCst) {
            continue;
        }
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        // Checked again after counting ourselves in, so a checkpoint that saw zero in
        // flight cannot be raced.
        if shared.paused.load(Ordering::SeqCst) {
            shared.in_flight.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        counter += 1;
        let roll = rng.gen_range(0..100);
        let start = Instant::now();
        if roll < 30 && held.len() < HOLD {
            let name = format!("{}@1.{}.0", role(rng.gen_range(0..ROLES)), rng.gen_range(0..5));
            let options = RegisterOptions { meta: meta(counter), ..RegisterOptions::default() };
            match client.register(&name, options).await {
                Ok(record) => {
                    let took = start.elapsed();
                    lock(&shared.truth).insert(record.id.to_string(), Held::of(&record));
                    held.push(record.id.to_string());
                    lock(&shared.latencies).register.push(took);
                }
                Err(e) => shared.error("register", &e),
            }
        } else if roll < 50 && !held.is_empty() {
            let id = held.swap_remove(rng.gen_range(0..held.len()));
            match client.free(&id).await {
                Ok(()) => {
                    let took = start.elapsed();
                    lock(&shared.truth).remove(&id);
                    lock(&shared.latencies).free.push(took);
                }
                Err(e) => {
                    held.push(id);
                    shared.error("free", &e);
                }
            }
        } else if roll < 70 && !held.is_empty() {
            let id = held[rng.gen_range(0..held.len())].clone();
            match client.update(&id, meta(counter)).await {
                Ok(record) => {
                    let took = start.elapsed();
                    lock(&shared.truth).insert(id, Held::of(&record));
                    lock(&shared.latencies).update.push(took);
                }
                Err(e) => shared.error("update", &e),
            }
        } else {
            match client.query(&mine).await {
                Ok(_) => lock(&shared.latencies).query.push(start.elapsed()),
                Err(e) => shared.error("query", &e),
            }
        }
        shared.ops.fetch_add(1, Ordering::Relaxed);
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
    client.close().await;
}

/// Whether every view agrees with the truth: the hub's (through a client watching
/// everything) and each client's replica of its own role.
async fn converged(truth: &View, checker: &Client, clients: &[Client]) -> Result<bool, ClientError> {
    if view_of(&checker.query("*").await?) != *truth {
        return Ok(false);
    }
    for (i, client) in clients.iter().enumerate() {
        let mine = role(i);
        let expected: View =
            truth.iter().filter(|(_, h)| h.role == mine).map(|(k, v)| (k.clone(), v.clone())).collect();
        if view_of(&client.query(&mine).await?) != expected {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Pauses the workers, waits for the views to agree, resumes. Returns how long they
/// took to agree, or `None` when they did not within `limit`.
async fn checkpoint(shared: &Shared, checker: &Client, clients: &[Client], limit: Duration) -> Option<Duration> {
    shared.paused.store(true, Ordering::SeqCst);
    while shared.in_flight.load(Ordering::SeqCst) > 0 {
        task::sleep(Duration::from_millis(5)).await;
    }
    let truth = lock(&shared.truth).clone();
    let start = Instant::now();
    let result = loop {
        match converged(&truth, checker, clients).await {
            Ok(true) => break Some(start.elapsed()),
            Ok(false) | Err(_) if start.elapsed() < limit => task::sleep(Duration::from_millis(20)).await,
            Ok(false) => break None,
            Err(e) => {
                eprintln!("soak: a checkpoint query failed: {e}");
                break None;
            }
        }
    };
    if result.is_none() {
        let seen = checker.query("*").await.map(|r| view_of(&r)).unwrap_or_default();
        let missing = truth.keys().filter(|k| !seen.contains_key(*k)).count();
        let extra = seen.keys().filter(|k| !truth.contains_key(*k)).count();
        let differ = truth.iter().filter(|(k, v)| seen.get(*k).is_some_and(|s| s != *v)).count();
        eprintln!("soak: views did not converge within {limit:?}: hub view misses {missing}, has {extra} extra, {differ} differ");
    }
    shared.paused.store(false, Ordering::SeqCst);
    result
}

// ---- hostile connections ----

#[derive(Default)]
struct Attacks {
    garbage: AtomicU64,
    oversized: AtomicU64,
    cut: AtomicU64,
    idle: AtomicU64,
    slow_readers: AtomicU64,
    flood_requests: AtomicU64,
    silent: AtomicU64,
    replays: AtomicU64,
}

impl Attacks {
    fn line(&self) -> String {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "garbage {} | 4 GiB length {} | cut frames {} | idle {} | never-reading {} | flood requests {} | register-then-silent {} | replays {}",
            n(&self.garbage),
            n(&self.oversized),
            n(&self.cut),
            n(&self.idle),
            n(&self.slow_readers),
            n(&self.flood_requests),
            n(&self.silent),
            n(&self.replays)
        )
    }
}

fn frame(message: &ClientMessage) -> Vec<u8> {
    let mut bytes = Vec::new();
    // Encoding a small message of our own cannot fail.
    let _ = encode_unsigned(message, &mut bytes);
    bytes
}

fn register_message(request: u64, role: &str) -> ClientMessage {
    ClientMessage::Register { request, registration: Registration::new(role) }
}

/// Reads and drops until the hub closes the socket.
async fn drain(mut stream: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// What every attack loop gets: the hub's address and the counters.
#[derive(Clone)]
struct Target {
    addr: Arc<str>,
    attacks: Arc<Attacks>,
}

/// Connections an attack keeps open without touching them again, the oldest closed
/// past `HELD`.
#[derive(Clone, Default)]
struct HeldOpen(Arc<Mutex<std::collections::VecDeque<TcpStream>>>);

/// Most connections one kind of attack holds open at once.
const HELD: usize = 500;

impl HeldOpen {
    fn keep(&self, stream: TcpStream) {
        let mut held = lock(&self.0);
        held.push_back(stream);
        if held.len() > HELD {
            held.pop_front();
        }
    }
}

/// Runs one kind of attack in a loop until `stop`: a round, then a pause of `every`.
fn attack<F, Fut>(target: &Target, stop: &Arc<AtomicBool>, every: Duration, round: F)
where
    F: Fn(Target) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send,
{
    let (target, stop) = (target.clone(), stop.clone());
    task::spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            // A refused or reset connection is what an attack expects.
            let _ = round(target.clone()).await;
            task::sleep(every).await;
        }
    });
}

fn start_hostile(addr: String, stop: Arc<AtomicBool>, attacks: Arc<Attacks>) {
    let target = Target { addr: addr.into(), attacks };
    let ms = Duration::from_millis;
    attack(&target, &stop, ms(50), |t| async move {
        let (mut stream, _) = handshake(&t.addr).await?;
        let garbage: Vec<u8> = (0..4096).map(|_| rand::random::<u8>()).collect();
        t.attacks.garbage.fetch_add(1, Ordering::Relaxed);
        let _ = stream.write_all(&garbage).await;
        drain(stream).await;
        Ok(())
    });
    attack(&target, &stop, ms(50), |t| async move {
        let (mut stream, _) = handshake(&t.addr).await?;
        t.attacks.oversized.fetch_add(1, Ordering::Relaxed);
        stream.write_all(&[0xff; 4]).await?;
        drain(stream).await;
        Ok(())
    });
    // Half a frame, then silence: held open until the hub expires them.
    let cut = HeldOpen::default();
    attack(&target, &stop, ms(100), move |t| {
        let cut = cut.clone();
        async move {
            let (mut stream, _) = handshake(&t.addr).await?;
            let whole = frame(&register_message(1, "cut"));
            stream.write_all(&whole[..whole.len() / 2]).await?;
            t.attacks.cut.fetch_add(1, Ordering::Relaxed);
            cut.keep(stream);
            Ok(())
        }
    });
    // 500 idle connections at all times (half never send the preamble): each waits
    // for the hub to close it (handshake deadline or lease), then comes back.
    for i in 0..HELD {
        attack(&target, &stop, ms(10), move |t| async move {
            let mut stream = TcpStream::connect(&*t.addr).await?;
            if i % 2 == 0 {
                let mut preamble = Vec::new();
                write_preamble(PROTOCOL_VERSION, &mut preamble);
                stream.write_all(&preamble).await?;
            }
            t.attacks.idle.fetch_add(1, Ordering::Relaxed);
            drain(stream).await;
            Ok(())
        });
    }
    // Subscribes to everything and never reads: dropped once its queue fills.
    attack(&target, &stop, ms(500), |t| async move {
        let (mut stream, _) = handshake(&t.addr).await?;
        let subscription = seaport_net::core::SubscriptionId(1);
        let subscribe = ClientMessage::Subscribe { request: 1, subscription, pattern: "*".into(), resume: None };
        stream.write_all(&frame(&subscribe)).await?;
        t.attacks.slow_readers.fetch_add(1, Ordering::Relaxed);
        // Heartbeats keep it alive; it never reads until the hub gives up on it.
        let heartbeat = frame(&ClientMessage::Heartbeat);
        for _ in 0..120 {
            task::sleep(Duration::from_millis(250)).await;
            if stream.write_all(&heartbeat).await.is_err() {
                break;
            }
        }
        let _ = stream.shutdown(Shutdown::Both);
        Ok(())
    });
    // Registrations as fast as the socket takes them, replies read and dropped; the
    // connection is replaced every 10 s so its records go.
    attack(&target, &stop, ms(100), |t| async move {
        let (mut stream, _) = handshake(&t.addr).await?;
        task::spawn(drain(stream.clone()));
        let start = Instant::now();
        let mut request = 0;
        while start.elapsed() < Duration::from_secs(10) {
            let mut batch = Vec::new();
            for _ in 0..100 {
                request += 1;
                batch.extend(frame(&register_message(request, "flood")));
            }
            stream.write_all(&batch).await?;
            t.attacks.flood_requests.fetch_add(100, Ordering::Relaxed);
            task::yield_now().await;
        }
        let _ = stream.shutdown(Shutdown::Both);
        Ok(())
    });
    // Registers, then neither reads nor writes: freed when its lease ends.
    let silent = HeldOpen::default();
    attack(&target, &stop, ms(200), move |t| {
        let silent = silent.clone();
        async move {
            let (mut stream, _) = handshake(&t.addr).await?;
            stream.write_all(&frame(&register_message(1, "silent"))).await?;
            t.attacks.silent.fetch_add(1, Ordering::Relaxed);
            silent.keep(stream);
            Ok(())
        }
    });
    // A validly signed register, sent twice on its connection and once on another.
    let key = KeyPair::generate();
    attack(&target, &stop, ms(100), move |t| {
        let key = key.clone();
        async move {
            let (mut stream, nonce) = handshake(&t.addr).await?;
            let mut signer = Signer::new(key, nonce);
            let mut signed = Vec::new();
            let _ = encode_signed(&register_message(1, "replay"), &mut signer, &mut signed);
            stream.write_all(&signed).await?;
            stream.write_all(&signed).await?;
            let (mut other, _) = handshake(&t.addr).await?;
            other.write_all(&signed).await?;
            t.attacks.replays.fetch_add(2, Ordering::Relaxed);
            let _ = stream.shutdown(Shutdown::Both);
            let _ = other.shutdown(Shutdown::Both);
            Ok(())
        }
    });
}

// ---- the run ----

enum HubHandle {
    Process(HubProcess),
    InProcess(seaport_net::Hub),
    Remote,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

async fn run(o: Options) -> bool {
    let (handle, addr, pid) = match o.hub.as_str() {
        "spawn" => {
            let Some(binary) = seaport_binary() else {
                usage("no seaport binary beside this one: build it with `cargo build --release -p seaport-cli`")
            };
            let log = match &o.hub_log {
                Some(path) => std::fs::File::create(path)
                    .map(Stdio::from)
                    .unwrap_or_else(|e| usage(&format!("cannot create {path}: {e}"))),
                None => Stdio::inherit(),
            };
            let hub = HubProcess::spawn(&binary, 0, &[], log).unwrap_or_else(|e| usage(&e.to_string()));
            let (addr, pid) = (hub.addr().to_string(), hub.pid());
            (HubHandle::Process(hub), addr, Some(pid))
        }
        "inprocess" => {
            let hub = seaport_net::Hub::bind("127.0.0.1:0", seaport_net::HubConfig::default())
                .await
                .unwrap_or_else(|e| usage(&e.to_string()));
            let addr = hub.local_addr().to_string();
            (HubHandle::InProcess(hub), addr, Some(std::process::id()))
        }
        other => (HubHandle::Remote, other.to_string(), o.hub_pid),
    };
    let stats = move || pid.and_then(|p| ProcStats::of(p).ok());
    let idle = stats();
    println!(
        "soak: {} clients x {:.1} ops/s for {:?} (checkpoint every {:?}), hub at {addr}{}{}",
        o.clients,
        o.rate,
        o.duration,
        o.interval,
        match &handle {
            HubHandle::Process(_) => " (separate process)",
            HubHandle::InProcess(_) => " (in this process: memory includes the clients)",
            HubHandle::Remote => "",
        },
        if o.hostile { ", with hostile connections" } else { "" }
    );

    let shared = Arc::new(Shared {
        truth: Mutex::new(View::new()),
        latencies: Mutex::new(Latencies::default()),
        errors: Mutex::new(BTreeMap::new()),
        paused: AtomicBool::new(false),
        in_flight: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        ops: AtomicU64::new(0),
    });
    let config = ClientConfig { check_local_ports: false, ..ClientConfig::default() };
    let connect = || Client::connect(&[&addr], config.clone()).unwrap_or_else(|e| usage(&e.to_string()));
    let clients: Vec<Client> = (0..o.clients).map(|_| connect()).collect();
    // Every client subscribes to its role before the clock starts.
    for (i, client) in clients.iter().enumerate() {
        if let Err(e) = client.query(&role(i)).await {
            usage(&format!("client {i} cannot reach the hub: {e}"));
        }
    }
    let checker = connect();
    let _ = checker.query("*").await;

    let hostile_stop = Arc::new(AtomicBool::new(false));
    let attacks = Arc::new(Attacks::default());
    if o.hostile {
        start_hostile(addr.clone(), hostile_stop.clone(), attacks.clone());
    }
    let workers: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| task::spawn(worker(i, c.clone(), shared.clone(), o.rate, o.seed)))
        .collect();

    let peak_sampled = Arc::new(AtomicU64::new(0));
    let sampler_stop = Arc::new(AtomicBool::new(false));
    {
        let (peak, stop) = (peak_sampled.clone(), sampler_stop.clone());
        task::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                if let Some(s) = stats() {
                    peak.fetch_max(s.rss_kib, Ordering::Relaxed);
                }
                task::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    let start = Instant::now();
    let mut worked = Duration::ZERO;
    let mut convergence = Vec::new();
    let mut diverged = 0;
    let mut sizes = Vec::new();
    while worked < o.duration {
        let slice = o.interval.min(o.duration - worked);
        task::sleep(slice).await;
        worked += slice;
        match checkpoint(&shared, &checker, &clients, o.converge).await {
            Some(took) => convergence.push(took),
            None => diverged += 1,
        }
        let held = lock(&shared.truth).len();
        sizes.push(held);
        let rss = stats().map_or(String::new(), |s| format!(", hub RSS {:.1} MiB", mib(s.rss_kib)));
        println!(
            "  t={:>5.0}s  ops {:>9}  records {held:>6}  checkpoint {}{rss}",
            worked.as_secs_f64(),
            shared.ops.load(Ordering::Relaxed),
            convergence
                .last()
                .filter(|_| diverged == 0)
                .map_or("DIVERGED".to_string(), |d| format!("converged in {d:.1?}"))
        );
    }
    shared.stop.store(true, Ordering::SeqCst);
    hostile_stop.store(true, Ordering::SeqCst);
    let end = stats();
    sampler_stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await;
    }
    let elapsed = start.elapsed();

    let ops = shared.ops.load(Ordering::Relaxed);
    let latencies = std::mem::take(&mut *lock(&shared.latencies));
    let errors = lock(&shared.errors).clone();
    let error_count: usize = errors.values().sum();
    println!("\nresult over {elapsed:.0?} ({ops} operations, {:.0} per second)", ops as f64 / o.duration.as_secs_f64());
    for (name, mut samples) in [
        ("register", latencies.register),
        ("free", latencies.free),
        ("update", latencies.update),
        ("query", latencies.query),
    ] {
        println!("  {name:<9} {}", Summary::of(&mut samples));
    }
    println!("  errors    {error_count} {errors:?}");
    println!(
        "  checkpoints {} converged, {diverged} did not; time to converge {}",
        convergence.len(),
        Summary::of(&mut convergence)
    );
    println!("  records held: at most {}, at the end {}", sizes.iter().max().unwrap_or(&0), sizes.last().unwrap_or(&0));
    if let (Some(idle), Some(end)) = (idle, end) {
        println!(
            "  hub memory: RSS {:.1} MiB before the clients, {:.1} MiB at the end, peak {:.1} MiB (sampled {:.1} MiB); hub CPU {:.1} s",
            mib(idle.rss_kib),
            mib(end.rss_kib),
            mib(end.peak_rss_kib),
            mib(peak_sampled.load(Ordering::Relaxed)),
            end.cpu_seconds - idle.cpu_seconds
        );
    }
    if o.hostile {
        println!("  hostile: {}", attacks.line());
    }
    checker.close().await;
    match handle {
        HubHandle::Process(mut hub) => hub.kill(),
        HubHandle::InProcess(hub) => hub.shutdown().await,
        HubHandle::Remote => {}
    }
    diverged == 0 && error_count == 0
}

fn main() {
    let options = parse_options();
    let ok = task::block_on(run(options));
    std::process::exit(if ok { 0 } else { 1 });
}
