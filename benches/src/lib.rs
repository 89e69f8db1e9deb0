//! Criterion benchmarks and load tools for seaport-rs; see `benches/`.
//!
//! This library holds what the tools share: latency summaries ([`Summary`]), the
//! resource use of a process read from `/proc` ([`ProcStats`]), and a hub run as its own
//! process ([`HubProcess`]) so that its memory and CPU can be measured apart from the
//! clients'; and what the criterion benches share: synthetic registries and hubs
//! ([`fixtures`]).
#![deny(missing_docs)]

pub mod fixtures;

use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use seaport_net::auth::NONCE_LEN;
use seaport_net::frame::{parse_preamble, write_preamble, PREAMBLE_LEN, PROTOCOL_VERSION};

/// p50, p99 and max of a set of latency samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// How many samples.
    pub count: usize,
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The largest sample.
    pub max: Duration,
}

impl Summary {
    /// Summarizes `samples` (sorted in place).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let mut samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
    /// let s = seaport_benches::Summary::of(&mut samples);
    /// assert_eq!((s.p50, s.max), (Duration::from_millis(51), Duration::from_millis(100)));
    /// ```
    pub fn of(samples: &mut [Duration]) -> Summary {
        samples.sort_unstable();
        Summary {
            count: samples.len(),
            p50: percentile(samples, 0.50),
            p99: percentile(samples, 0.99),
            max: samples.last().copied().unwrap_or_default(),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n={:<7} p50={:>9.1?} p99={:>9.1?} max={:>9.1?}", self.count, self.p50, self.p99, self.max)
    }
}

/// The sample at quantile `p` (0.0 to 1.0) of sorted samples; zero for none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() - 1) as f64 * p.clamp(0.0, 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Memory and CPU use of a process, from `/proc/PID/status` and `/proc/PID/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcStats {
    /// Resident set size now, in KiB (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident set size, in KiB (`VmHWM`).
    pub peak_rss_kib: u64,
    /// User plus system CPU time used so far, in seconds.
    pub cpu_seconds: f64,
}

/// Clock ticks per second of `/proc/PID/stat`'s times (`USER_HZ`, 100 on Linux).
const CLOCK_TICKS: f64 = 100.0;

impl ProcStats {
    /// Reads the stats of process `pid`.
    ///
    /// # Errors
    /// When `/proc/PID` cannot be read (no such process, not Linux) or does not parse.
    pub fn of(pid: u32) -> std::io::Result<ProcStats> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        ProcStats::parse(&status, &stat)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("cannot parse /proc/{pid}")))
    }

    /// The stats of this process.
    ///
    /// # Errors
    /// As [`ProcStats::of`].
    pub fn current() -> std::io::Result<ProcStats> {
        ProcStats::of(std::process::id())
    }

    fn parse(status: &str, stat: &str) -> Option<ProcStats> {
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        };
        // The command name (field 2) may hold spaces; fields count from after its `)`.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat, so 12 and 13 after the name.
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
        let cpu = (ticks(11)? + ticks(12)?) as f64 / CLOCK_TICKS;
        Some(ProcStats { rss_kib: kib("VmRSS:")?, peak_rss_kib: kib("VmHWM:")?, cpu_seconds: cpu })
    }
}

/// How long a hub may take to print its ready line.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// A `seaport listen` hub running as a child process on 127.0.0.1. Dropping it kills it.
#[derive(Debug)]
pub struct HubProcess {
    child: Child,
    addr: String,
}

impl HubProcess {
    /// Starts `BINARY listen PORT --bind 127.0.0.1 EXTRA...` (`port` 0 picks a free one)
    /// with its log going to `log`, and waits (at most 10 s) for its ready line.
    ///
    /// # Errors
    /// When the binary cannot be started, or exits or prints something else before its
    /// ready line.
    pub fn spawn(binary: &Path, port: u16, extra: &[String], log: Stdio) -> std::io::Result<HubProcess> {
        let mut child = Command::new(binary)
            .args(["listen", &port.to_string(), "--bind", "127.0.0.1"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot start {}: {e}", binary.display())))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other("no stdout from the hub"));
        };
        // Reads the ready line, then keeps draining stdout so the hub never blocks on it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let line = rx.recv_timeout(READY_WITHIN).ok();
        match line.as_deref().and_then(|l| l.trim().strip_prefix("seaport listening on ")) {
            Some(addr) => Ok(HubProcess { child, addr: addr.to_string() }),
            None => {
                let _ = child.kill();
                let status = child.wait()?;
                Err(std::io::Error::other(format!(
                    "the hub printed no ready line within {READY_WITHIN:?} ({status}): {line:?}"
                )))
            }
        }
    }

    /// `HOST:PORT` of the hub.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The hub's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The hub's memory and CPU use now.
    ///
    /// # Errors
    /// As [`ProcStats::of`] (the hub exited).
    pub fn stats(&self) -> std::io::Result<ProcStats> {
        ProcStats::of(self.pid())
    }

    /// Kills the hub with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `seaport` binary of the same build as the running tool: beside it in the target
/// folder (`target/release/seaport` for `target/release/soak`), or one folder up from a
/// test binary in `deps/`. Build it with `cargo build --release -p seaport-cli`.
pub fn seaport_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join("seaport"), dir.parent()?.join("seaport")].into_iter().find(|p| p.is_file())
}

/// Connects to the hub at `addr` as a seaport-rs client does, by hand: sends the
/// preamble, checks the hub's, and returns the socket (TCP_NODELAY set) with the
/// connection's nonce. The hub's welcome is the next frame.
///
/// # Errors
/// When the connection or the handshake fails, or the hub's preamble is not one.
pub async fn handshake(addr: &str) -> std::io::Result<(async_std::net::TcpStream, [u8; NONCE_LEN])> {
    use futures::{AsyncReadExt, AsyncWriteExt};
    let mut stream = async_std::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut preamble = Vec::with_capacity(PREAMBLE_LEN);
    write_preamble(PROTOCOL_VERSION, &mut preamble);
    stream.write_all(&preamble).await?;
    let mut hello = [0u8; PREAMBLE_LEN + NONCE_LEN];
    stream.read_exact(&mut hello).await?;
    let mut theirs = [0u8; PREAMBLE_LEN];
    theirs.copy_from_slice(&hello[..PREAMBLE_LEN]);
    parse_preamble(&theirs).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&hello[PREAMBLE_LEN..]);
    Ok((stream, nonce))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let status = "Name:\tseaport\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        let stat = "42 (sea port) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 0 0";
        let s = ProcStats::parse(status, stat).unwrap();
        assert_eq!((s.rss_kib, s.peak_rss_kib), (10240, 20480));
        assert!((s.cpu_seconds - 3.0).abs() < 1e-9, "{}", s.cpu_seconds);
        assert_eq!(ProcStats::parse("VmRSS: 1 kB\n", stat), None);
    }

    #[test]
    fn reads_this_process() {
        let s = ProcStats::current().unwrap();
        assert!(s.peak_rss_kib >= s.rss_kib && s.rss_kib > 0, "{s:?}");
    }

    #[test]
    fn percentiles() {
        let mut samples: Vec<Duration> = (0..=100).rev().map(Duration::from_micros).collect();
        let s = Summary::of(&mut samples);
        assert_eq!(
            (s.count, s.p50, s.p99, s.max),
            (101, Duration::from_micros(50), Duration::from_micros(99), Duration::from_micros(100))
        );
        assert_eq!(Summary::of(&mut []), Summary::default());
    }
}
