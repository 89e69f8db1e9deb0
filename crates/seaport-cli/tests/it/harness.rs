//! Running the real `seaport` binary: processes that are always killed, output read in
//! the background, and polling with deadlines instead of sleeps.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

pub const BIN: &str = env!("CARGO_BIN_EXE_seaport");

/// How long anything in these tests may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// Calls `f` until it returns `Some`, every 20 ms; panics after `limit` naming `what`.
pub fn poll<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(Instant::now() < end, "timed out after {limit:?} waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[derive(Default)]
struct Captured {
    text: Mutex<String>,
    done: AtomicBool,
}

fn capture(stream: impl Read + Send + 'static) -> Arc<Captured> {
    let captured = Arc::new(Captured::default());
    let sink = Arc::clone(&captured);
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
            sink.text.lock().unwrap().push_str(&line);
            line.clear();
        }
        sink.done.store(true, Ordering::SeqCst);
    });
    captured
}

/// A running `seaport` process. Dropping it SIGKILLs and reaps it.
pub struct Proc {
    child: Child,
    stdout: Arc<Captured>,
    stderr: Arc<Captured>,
    status: Option<ExitStatus>,
}

impl Proc {
    pub fn spawn(args: &[&str]) -> Proc {
        Proc::spawn_in(args, None)
    }

    pub fn spawn_in(args: &[&str], dir: Option<&Path>) -> Proc {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        Proc::from_command(cmd)
    }

    /// Runs `cmd` (which should end up running the seaport binary) with piped output.
    pub fn from_command(mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).env_remove("RUST_LOG");
        let mut child = cmd.spawn().expect("start the seaport binary");
        let stdout = capture(child.stdout.take().unwrap());
        let stderr = capture(child.stderr.take().unwrap());
        Proc { child, stdout, stderr, status: None }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    pub fn stdout(&self) -> String {
        self.stdout.text.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.text.lock().unwrap().clone()
    }

    /// The stdout lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.stdout().lines().map(str::to_string).collect()
    }

    /// Waits for a stdout line satisfying `pred`, and returns it.
    pub fn wait_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        poll(DEADLINE, what, || self.lines().into_iter().find(|l| pred(l)))
    }

    /// Waits until stderr contains `text`.
    pub fn wait_stderr(&self, text: &str) {
        poll(DEADLINE, &format!("{text:?} on stderr"), || self.stderr().contains(text).then_some(()));
    }

    pub fn signal(&self, signal: Signal) {
        rustix::process::kill_process(Pid::from_raw(self.pid()).unwrap(), signal).expect("send a signal");
    }

    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status
    }

    /// Waits for the process to exit (failing the test after the deadline), then for
    /// its output to be read.
    pub fn wait(&mut self) -> ExitStatus {
        let status = poll(DEADLINE, "the seaport process to exit", || self.try_status());
        // A grandchild could hold the pipes open: wait for EOF, but not forever.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            poll(Duration::from_secs(2), "end of output", || {
                (self.stdout.done.load(Ordering::SeqCst) && self.stderr.done.load(Ordering::SeqCst)).then_some(())
            })
        }));
        status
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a finished `seaport` run printed.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics with the output unless the run succeeded.
    pub fn ok(self) -> Output {
        assert!(self.status.success(), "seaport failed: {}\nstderr: {}", self.status, self.stderr);
        self
    }

    /// Panics with the output unless the run failed.
    pub fn failed(self) -> Output {
        assert!(!self.status.success(), "seaport should have failed; stdout: {}", self.stdout);
        self
    }

    /// The one `seaport: ...` error line on stderr (logs may surround it).
    pub fn error(&self) -> &str {
        let lines: Vec<&str> = self.stderr.lines().filter(|l| l.starts_with("seaport: ")).collect();
        assert_eq!(lines.len(), 1, "one error line expected: {}", self.stderr);
        lines[0]
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `seaport ARGS` to completion (within the deadline).
pub fn run(args: &[&str]) -> Output {
    let mut proc = Proc::spawn(args);
    let status = proc.wait();
    Output { status, stdout: proc.stdout(), stderr: proc.stderr() }
}

/// A hub run by `seaport listen 0 --bind 127.0.0.1`.
pub struct Hub {
    pub proc: Proc,
    pub addr: String,
}

impl Hub {
    pub fn start(extra: &[&str]) -> Hub {
        let mut args = vec!["listen", "0", "--bind", "127.0.0.1"];
        args.extend_from_slice(extra);
        let proc = Proc::spawn(&args);
        let line = proc.wait_line("the hub's ready line", |l| l.starts_with("seaport listening on "));
        let addr = line.trim_start_matches("seaport listening on ").to_string();
        assert!(addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"), "{line}");
        Hub { proc, addr }
    }

    /// `seaport query ADDR PATTERN --compact`, parsed.
    pub fn query(&self, pattern: &str) -> Vec<serde_json::Value> {
        let out = run(&["query", &self.addr, pattern, "--compact"]).ok();
        match out.json() {
            serde_json::Value::Array(records) => records,
            other => panic!("query printed {other}"),
        }
    }

    /// Polls `query` until it returns `n` records.
    pub fn wait_count(&self, pattern: &str, n: usize) -> Vec<serde_json::Value> {
        poll(DEADLINE, &format!("{n} records matching {pattern}"), || {
            let records = self.query(pattern);
            (records.len() == n).then_some(records)
        })
    }
}

/// Whether a process is alive (a zombie is not: nobody may reap it in a container).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
    }
}
