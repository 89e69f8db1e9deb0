//! The command line, as plain data (structopt), plus the small value parsers it needs.
//!
//! Validation that needs more than one field (key files, hub configuration) happens in
//! the command that uses it.

use std::ffi::OsString;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use structopt::clap::AppSettings;
use structopt::StructOpt;

/// seaport: a service registry and port assigner.
///
/// Run a hub with `seaport listen`, register services with `seaport register`, find
/// them with `seaport query`, `get` and `watch`.
#[derive(Debug, StructOpt)]
#[structopt(name = "seaport", global_settings = &[AppSettings::VersionlessSubcommands, AppSettings::ColoredHelp])]
pub struct Args {
    /// More logging on stderr: -v info, -vv debug, -vvv trace (default: warnings only;
    /// RUST_LOG works too). Give it before the subcommand.
    #[structopt(short, long, parse(from_occurrences))]
    pub verbose: u8,

    #[structopt(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, StructOpt)]
pub enum Command {
    /// Run a hub on PORT (0 picks a free port) until SIGINT or SIGTERM.
    ///
    /// Each KEYFILE is either the hub's own key pair (a JSON object {public, private})
    /// or a list of public keys allowed to register (a JSON array of PEM strings).
    /// Without an authorized list the hub is open: anyone may register and free.
    /// When ready, prints `seaport listening on ADDR:PORT` on stdout.
    Listen(ListenArgs),
    /// Print every record the hub holds, as a JSON array.
    Show(ShowArgs),
    /// Print the records matching PATTERN, as a JSON array (or chosen fields).
    ///
    /// PATTERN is `role`, `role@range` (a node-semver range), or `*`, optionally
    /// followed by filters: `web@1.x?host=10.0.0.5&meta.env=prod`.
    Query(QueryArgs),
    /// Wait until at least one record matches PATTERN, then print the matches like `query`.
    Get(GetArgs),
    /// Print a line for each register, update and free of a record matching PATTERN.
    ///
    /// Lines look like `REGISTER web@1.2.3 10.0.0.5:10080 [id]`; with --json, one JSON
    /// object per line. Runs until killed.
    Watch(WatchArgs),
    /// Register NAME@VERSION and run COMMAND on the assigned port, restarting it when it exits.
    ///
    /// The port is appended to COMMAND as its last argument and set in the PORT
    /// environment variable. The registration lives as long as this process; SIGINT and
    /// SIGTERM are forwarded to COMMAND, and once it has exited the record is freed.
    /// COMMAND never outlives this process (on Linux, even when it is SIGKILLed).
    /// Without COMMAND, prints the record as JSON on one line and holds the
    /// registration until SIGINT or SIGTERM.
    ///
    /// Metadata values that parse as JSON are stored as that value (`--meta n=3` is a
    /// number), anything else as a string. `--meta.KEY=VALUE` (seaport's spelling)
    /// works too.
    Register(RegisterArgs),
    /// Free the record with id ID.
    Free(FreeArgs),
    /// Generate a key pair (JSON {public, private}); keep it secret.
    Keygen(KeygenArgs),
    /// Print the public half of a key pair as an authorized-keys list (a JSON array),
    /// ready to pass to `seaport listen`.
    Pubkey(PubkeyArgs),
}

/// `seaport listen`.
#[derive(Debug, StructOpt)]
pub struct ListenArgs {
    /// Port to listen on; 0 picks a free one (printed when ready).
    #[structopt(value_name = "PORT")]
    pub port: u16,
    /// Key files: the hub's own key pair and/or authorized-keys lists.
    #[structopt(value_name = "KEYFILE", parse(from_os_str))]
    pub keyfiles: Vec<PathBuf>,
    /// Address to bind.
    #[structopt(long, default_value = "0.0.0.0", value_name = "ADDR")]
    pub bind: String,
    /// Clients are asked to send something this often, in milliseconds.
    #[structopt(long, default_value = "15000", value_name = "MS")]
    pub heartbeat: u64,
    /// A client silent this long is dropped and its records freed, in milliseconds
    /// [default: 3 x heartbeat].
    #[structopt(long, value_name = "MS")]
    pub timeout: Option<u64>,
    /// Another hub to peer with (repeatable): records flow both ways, and the link is
    /// kept up, reconnecting to this address or any hub learned through the mesh.
    #[structopt(long = "peer", value_name = "HOST:PORT", number_of_values = 1, parse(try_from_str = parse_hub))]
    pub peers: Vec<String>,
    /// The address clients and peers should use to reach this hub (published as a record
    /// of role `seaport`) [default: learned from the first peer, if any].
    #[structopt(long, value_name = "HOST:PORT", parse(try_from_str = parse_advertise))]
    pub advertise: Option<(String, u16)>,
    /// Assign only the I-th of N shares of each port range (0 <= I < N). Give peered hubs
    /// distinct I with the same N so they never assign one port twice on a host.
    #[structopt(long, value_name = "I/N", default_value = "0/1", parse(try_from_str = parse_partition))]
    pub port_partition: (u16, u16),
    /// Ports the hub assigns when a registration names none.
    #[structopt(long, value_name = "LO-HI", default_value = "10000-32767", parse(try_from_str = parse_range))]
    pub port_range: RangeInclusive<u16>,
    /// Most connections open at once; further ones are refused with a reason.
    #[structopt(long, value_name = "N", default_value = "16384")]
    pub max_connections: usize,
    /// Live registrations one connection may hold.
    #[structopt(long, value_name = "N", default_value = "4096")]
    pub max_registrations: usize,
    /// Subscriptions (queries, gets and watches) one connection may hold.
    #[structopt(long, value_name = "N", default_value = "256")]
    pub max_subscriptions: usize,
    /// Requests one connection may make per second on average (heartbeats are free).
    #[structopt(long, value_name = "N", default_value = "2000")]
    pub max_request_rate: u32,
    /// Requests one connection may make in a burst above the rate (a reconnecting
    /// client registers all its services again at once).
    #[structopt(long, value_name = "N", default_value = "8192")]
    pub max_request_burst: u32,
    /// Largest frame accepted from a client, in bytes; longer ones are refused before
    /// they are read.
    #[structopt(long, value_name = "BYTES", default_value = "1048576")]
    pub max_frame: u32,
    /// Largest metadata of one record, in encoded bytes.
    #[structopt(long, value_name = "BYTES", default_value = "65536")]
    pub max_meta_bytes: usize,
    /// How long a new connection may take to say which protocol it speaks, in milliseconds.
    #[structopt(long, value_name = "MS", default_value = "5000")]
    pub handshake_timeout: u64,
    /// Messages queued for one connection before it counts as too slow to read and is
    /// dropped (its records are freed as for any disconnect).
    #[structopt(long, value_name = "N", default_value = "262144")]
    pub outgoing_queue: usize,
    /// Bytes queued for one connection before it counts as too slow to read and is
    /// dropped (whichever of this and --outgoing-queue comes first).
    #[structopt(long, value_name = "BYTES", default_value = "33554432")]
    pub outgoing_bytes: usize,
}

/// `seaport show`.
#[derive(Debug, StructOpt)]
pub struct ShowArgs {
    /// The hub.
    #[structopt(value_name = "HOST:PORT", parse(try_from_str = parse_hub))]
    pub hub: String,
    /// Print the array on one line.
    #[structopt(long)]
    pub compact: bool,
    /// Give up when the hub has not answered within this many seconds.
    #[structopt(long, default_value = "10", value_name = "SECONDS", parse(try_from_str = parse_seconds))]
    pub timeout: f64,
}

/// `seaport query`.
#[derive(Debug, StructOpt)]
pub struct QueryArgs {
    /// The hub.
    #[structopt(value_name = "HOST:PORT", parse(try_from_str = parse_hub))]
    pub hub: String,
    /// Which records.
    #[structopt(default_value = "*", value_name = "PATTERN")]
    pub pattern: String,
    /// A field path to print instead of whole records, one JSON value per line per
    /// record: `port`, `host`, `meta env`.
    #[structopt(value_name = "FIELD")]
    pub fields: Vec<String>,
    /// Print the array on one line.
    #[structopt(long)]
    pub compact: bool,
    /// Give up when the hub has not answered within this many seconds.
    #[structopt(long, default_value = "10", value_name = "SECONDS", parse(try_from_str = parse_seconds))]
    pub timeout: f64,
}

/// `seaport get`.
#[derive(Debug, StructOpt)]
pub struct GetArgs {
    /// The hub.
    #[structopt(value_name = "HOST:PORT", parse(try_from_str = parse_hub))]
    pub hub: String,
    /// Which records to wait for.
    #[structopt(value_name = "PATTERN")]
    pub pattern: String,
    /// A field path to print instead of whole records (as for `query`).
    #[structopt(value_name = "FIELD")]
    pub fields: Vec<String>,
    /// Print the array on one line.
    #[structopt(long)]
    pub compact: bool,
    /// Give up after this many seconds [default: wait forever].
    #[structopt(long, value_name = "SECONDS", parse(try_from_str = parse_seconds))]
    pub timeout: Option<f64>,
}

/// `seaport watch`.
#[derive(Debug, StructOpt)]
pub struct WatchArgs {
    /// The hub.
    #[structopt(value_name = "HOST:PORT", parse(try_from_str = parse_hub))]
    pub hub: String,
    /// Which records.
    #[structopt(default_value = "*", value_name = "PATTERN")]
    pub pattern: String,
    /// One JSON object per line: {"event":"register","record":{...}}.
    #[structopt(long)]
    pub json: bool,
    /// Add the metadata, as JSON, at the end of each line.
    #[structopt(short = "v", long = "meta")]
    pub meta: bool,
}

/// `seaport register`.
#[derive(Debug, StructOpt)]
pub struct RegisterArgs {
    /// The hub.
    #[structopt(value_name = "HOST:PORT", parse(try_from_str = parse_hub))]
    pub hub: String,
    /// The service: `role@version` (semver), or a bare `role`.
    #[structopt(value_name = "NAME@VERSION")]
    pub name: String,
    /// Metadata (repeatable).
    #[structopt(long = "meta", value_name = "KEY=VALUE", number_of_values = 1, parse(try_from_str = parse_meta))]
    pub meta: Vec<(String, seaport_core::Value)>,
    /// Use exactly this port instead of one the hub assigns.
    #[structopt(long, value_name = "N", parse(try_from_str = parse_port))]
    pub port: Option<u16>,
    /// Have the hub pick a port in this range.
    #[structopt(long, value_name = "LO-HI", parse(try_from_str = parse_range), conflicts_with = "port")]
    pub range: Option<RangeInclusive<u16>>,
    /// Advertise this host instead of the address the hub sees.
    #[structopt(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Use this record id instead of a random one.
    #[structopt(long, value_name = "ID")]
    pub id: Option<String>,
    /// Sign requests with this key pair (needed on a keyed hub).
    #[structopt(long, value_name = "FILE", parse(from_os_str))]
    pub key: Option<PathBuf>,
    /// The command to run, after `--`; it gets the port as its last argument.
    #[structopt(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `seaport free`.
#[derive(Debug, StructOpt)]
pub struct FreeArgs {
    /// The hub.
    #[structopt(value_name = "HOST:PORT", parse(try_from_str = parse_hub))]
    pub hub: String,
    /// The record's id.
    #[structopt(value_name = "ID")]
    pub id: String,
    /// Sign the request with this key pair (needed on a keyed hub).
    #[structopt(long, value_name = "FILE", parse(from_os_str))]
    pub key: Option<PathBuf>,
    /// Give up when the hub has not answered within this many seconds.
    #[structopt(long, default_value = "10", value_name = "SECONDS", parse(try_from_str = parse_seconds))]
    pub timeout: f64,
}

/// `seaport keygen`.
#[derive(Debug, StructOpt)]
pub struct KeygenArgs {
    /// Write the key pair to FILE (created with mode 0600; never overwritten) instead of stdout.
    #[structopt(long, short, value_name = "FILE", parse(from_os_str))]
    pub out: Option<PathBuf>,
}

/// `seaport pubkey`.
#[derive(Debug, StructOpt)]
pub struct PubkeyArgs {
    /// A key-pair file (from `seaport keygen`, or an `openssl genpkey -algorithm ed25519` PEM).
    #[structopt(value_name = "KEYFILE", parse(from_os_str))]
    pub keyfile: PathBuf,
}

/// Rewrites seaport's `--meta.KEY=VALUE` (and `--meta.KEY VALUE`) into `--meta KEY=VALUE`,
/// up to a bare `--`, after which everything belongs to the command.
pub fn preprocess(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut args = args.into_iter().peekable();
    while let Some(arg) = args.next() {
        if arg == "--" {
            out.push(arg);
            out.extend(args);
            break;
        }
        let Some(rest) = arg.to_str().and_then(|s| s.strip_prefix("--meta.")).filter(|r| !r.is_empty()) else {
            out.push(arg);
            continue;
        };
        let pair = if rest.contains('=') {
            rest.to_string()
        } else {
            // minimist's forms: `--meta.KEY VALUE`, or a bare flag meaning true.
            match args.peek().and_then(|next| next.to_str()) {
                Some(next) if !next.starts_with("--") => {
                    let value = next.to_string();
                    args.next();
                    format!("{rest}={value}")
                }
                _ => format!("{rest}=true"),
            }
        };
        out.push("--meta".into());
        out.push(pair.into());
    }
    out
}

/// `HOST:PORT`, with a numeric port.
fn parse_hub(text: &str) -> Result<String, String> {
    let (host, port) = text.rsplit_once(':').ok_or_else(|| format!("expected HOST:PORT, got {text:?}"))?;
    if host.is_empty() {
        return Err(format!("expected HOST:PORT, got {text:?} (no host)"));
    }
    port.parse::<u16>().map_err(|_| format!("expected HOST:PORT, got {text:?} (bad port {port:?})"))?;
    Ok(text.to_string())
}

/// `HOST:PORT` to advertise: a host and a port from 1 to 65535.
fn parse_advertise(text: &str) -> Result<(String, u16), String> {
    let (host, port) = text.rsplit_once(':').ok_or_else(|| format!("expected HOST:PORT, got {text:?}"))?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() {
        return Err(format!("expected HOST:PORT, got {text:?} (no host)"));
    }
    seaport_core::record::validate_host(host).map_err(|e| format!("cannot advertise {text:?}: {e}"))?;
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("expected HOST:PORT with a port from 1 to 65535, got {text:?}")),
        Ok(port) => Ok((host.to_string(), port)),
    }
}

/// `I/N`: the I-th of N port shares, 0 <= I < N.
fn parse_partition(text: &str) -> Result<(u16, u16), String> {
    let (index, count) =
        text.split_once('/').ok_or_else(|| format!("expected a port partition I/N such as 0/3, got {text:?}"))?;
    let index: u16 =
        index.trim().parse().map_err(|_| format!("port partition {text:?}: index {index:?} is not a number"))?;
    let count: u16 =
        count.trim().parse().map_err(|_| format!("port partition {text:?}: count {count:?} is not a number"))?;
    if count == 0 {
        return Err(format!("port partition {text:?}: the count N must be at least 1"));
    }
    if index >= count {
        return Err(format!("port partition {text:?}: the index I must be below the count N (0 <= I < {count})"));
    }
    Ok((index, count))
}

/// A port a service can listen on: 1-65535.
fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("expected a port from 1 to 65535, got {text:?}")),
        Ok(port) => Ok(port),
    }
}

/// A non-negative, finite number of seconds.
fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if (0.0..=1e9).contains(&s) => Ok(s),
        _ => Err(format!("expected a number of seconds, got {text:?}")),
    }
}

/// `KEY=VALUE`: a value that parses as JSON is that JSON value, anything else a string.
pub fn parse_meta(text: &str) -> Result<(String, seaport_core::Value), String> {
    let (key, raw) = text.split_once('=').ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))?;
    if key.is_empty() {
        return Err(format!("expected KEY=VALUE, got {text:?} (empty key)"));
    }
    let value = serde_json::from_str::<seaport_core::Value>(raw)
        .unwrap_or_else(|_| seaport_core::Value::String(raw.to_string()));
    Ok((key.to_string(), value))
}

/// `LO-HI`, both 1-65535, LO <= HI.
fn parse_range(text: &str) -> Result<RangeInclusive<u16>, String> {
    let bad = || format!("expected a port range LO-HI such as 20000-20999, got {text:?}");
    let (lo, hi) = text.split_once('-').ok_or_else(bad)?;
    let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
    let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
    if lo == 0 || lo > hi {
        return Err(format!("port range {text:?} is empty or starts at 0; give LO-HI with 1 <= LO <= HI"));
    }
    Ok(lo..=hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use seaport_core::Value;

    fn pre(args: &[&str]) -> Vec<String> {
        preprocess(args.iter().map(OsString::from)).into_iter().map(|s| s.into_string().unwrap()).collect()
    }

    #[test]
    fn dotted_meta_is_rewritten_until_the_separator() {
        assert_eq!(
            pre(&["register", "--meta.env=prod", "--meta.zone", "a", "--meta.flag", "--", "x", "--meta.k=v"]),
            ["register", "--meta", "env=prod", "--meta", "zone=a", "--meta", "flag=true", "--", "x", "--meta.k=v"]
        );
        assert_eq!(pre(&["--meta.", "--metax"]), ["--meta.", "--metax"]);
    }

    #[test]
    fn meta_values_are_json_or_strings() {
        assert_eq!(parse_meta("n=3").unwrap(), ("n".into(), Value::Int(3)));
        assert_eq!(parse_meta("env=prod").unwrap(), ("env".into(), Value::from("prod")));
        assert_eq!(parse_meta("s=\"3\"").unwrap(), ("s".into(), Value::from("3")));
        assert_eq!(parse_meta("e=").unwrap(), ("e".into(), Value::from("")));
        assert_eq!(parse_meta("u=a=b").unwrap(), ("u".into(), Value::from("a=b")));
        assert!(matches!(parse_meta("l=[1,{\"a\":true}]").unwrap().1, Value::List(_)));
        assert!(parse_meta("novalue").is_err());
        assert!(parse_meta("=x").is_err());
    }

    #[test]
    fn ranges_and_hubs_are_checked() {
        assert_eq!(parse_range("20000-20999").unwrap(), 20000..=20999);
        assert!(parse_range("5-4").is_err());
        assert!(parse_range("0-4").is_err());
        assert!(parse_range("7").is_err());
        assert_eq!(parse_port("80"), Ok(80));
        assert!(parse_port("0").is_err());
        assert!(parse_hub("localhost:9090").is_ok());
        assert!(parse_hub("[::1]:9090").is_ok());
        assert!(parse_hub("9090").is_err());
        assert!(parse_hub("h:x").is_err());
        assert_eq!(parse_partition("1/3"), Ok((1, 3)));
        assert_eq!(parse_partition("0/1"), Ok((0, 1)));
        assert!(parse_partition("3/3").unwrap_err().contains("below the count"));
        assert!(parse_partition("0/0").unwrap_err().contains("at least 1"));
        assert!(parse_partition("x/3").is_err());
        assert!(parse_partition("2").is_err());
        assert_eq!(parse_advertise("10.0.0.5:9090"), Ok(("10.0.0.5".to_string(), 9090)));
        assert_eq!(parse_advertise("[::1]:9090"), Ok(("::1".to_string(), 9090)));
        assert!(parse_advertise("h:0").is_err());
        assert!(parse_advertise(":9090").is_err());
        assert!(parse_advertise("9090").is_err());
    }

    #[test]
    fn the_command_line_parses() {
        let args = Args::from_iter_safe(preprocess(
            ["seaport", "register", "h:1", "web@1.0.0", "--meta.env=prod", "--port", "80", "--", "cmd", "-x"]
                .iter()
                .map(OsString::from),
        ))
        .unwrap();
        let Command::Register(r) = args.command else { panic!("not register") };
        assert_eq!(r.meta, vec![("env".to_string(), Value::from("prod"))]);
        assert_eq!(r.port, Some(80));
        assert_eq!(r.command, ["cmd", "-x"]);
    }
}
