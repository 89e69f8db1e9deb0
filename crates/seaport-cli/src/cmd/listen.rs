//! `seaport listen PORT [KEYFILE...]`: run a hub until SIGINT or SIGTERM.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use seaport_net::{Hub, HubConfig, KeyFile};

use crate::args::ListenArgs;
use crate::output;
use crate::signals::Shutdown;

/// Turns the arguments into a hub configuration, reading the key files.
fn config(args: &ListenArgs) -> Result<HubConfig> {
    let mut config = HubConfig::default();
    if args.heartbeat == 0 {
        bail!("--heartbeat must be at least 1 ms");
    }
    config.core.heartbeat = Duration::from_millis(args.heartbeat);
    config.core.timeout = Duration::from_millis(args.timeout.unwrap_or(args.heartbeat.saturating_mul(3)));
    if config.core.timeout <= config.core.heartbeat {
        bail!(
            "--timeout ({} ms) must be longer than --heartbeat ({} ms), or live clients get dropped",
            config.core.timeout.as_millis(),
            args.heartbeat
        );
    }
    config.core.advertise = args.advertise.clone();
    config.core.port_partition = args.port_partition;
    config.core.port_range = args.port_range.clone();
    limits(args, &mut config)?;
    for path in &args.keyfiles {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read key file {}", path.display()))?;
        let file = if text.trim_start().starts_with("-----BEGIN") {
            KeyFile::Pair(crate::keys::load_pair(path)?)
        } else {
            KeyFile::load(path)?
        };
        match file {
            KeyFile::Pair(pair) => {
                if config.key.is_some() {
                    bail!(
                        "{} is a second key pair; the hub has one key pair (pass public keys as a list)",
                        path.display()
                    );
                }
                config.key = Some(pair);
            }
            KeyFile::Authorized(keys) => config.authorized.extend(keys),
        }
    }
    Ok(config)
}

/// The resource limits: each must let a well-behaved client do something.
fn limits(args: &ListenArgs, config: &mut HubConfig) -> Result<()> {
    let at_least_one = [
        ("--max-connections", args.max_connections),
        ("--max-registrations", args.max_registrations),
        ("--max-subscriptions", args.max_subscriptions),
        ("--max-request-rate", args.max_request_rate as usize),
        ("--max-request-burst", args.max_request_burst as usize),
        ("--outgoing-queue", args.outgoing_queue),
        ("--outgoing-bytes", args.outgoing_bytes),
        ("--handshake-timeout", args.handshake_timeout as usize),
    ];
    if let Some((flag, _)) = at_least_one.iter().find(|(_, n)| *n == 0) {
        bail!("{flag} must be at least 1");
    }
    // The frame must hold a registration of the largest metadata allowed, plus its
    // role, version, host and signature.
    let smallest_frame = args.max_meta_bytes.saturating_add(4096);
    if (args.max_frame as usize) < smallest_frame {
        bail!(
            "--max-frame ({} bytes) must be at least --max-meta-bytes + 4096 ({smallest_frame} bytes), \
             or records within the metadata limit could not be sent",
            args.max_frame
        );
    }
    config.max_connections = args.max_connections;
    config.max_frame = args.max_frame;
    config.handshake_timeout = Duration::from_millis(args.handshake_timeout);
    config.outgoing_queue = args.outgoing_queue;
    config.outgoing_bytes = args.outgoing_bytes;
    let limits = &mut config.core.limits;
    limits.max_registrations_per_session = args.max_registrations;
    limits.max_subscriptions_per_session = args.max_subscriptions;
    limits.max_requests_per_second = args.max_request_rate;
    limits.max_request_burst = args.max_request_burst;
    limits.meta.max_bytes = args.max_meta_bytes;
    Ok(())
}

pub async fn run(args: ListenArgs) -> Result<()> {
    let config = config(&args)?;
    seaport_net::raise_open_files_limit();
    if config.authorized.is_empty() {
        tracing::info!("no authorized keys given: the hub is open, anyone may register and free");
    }
    let mut shutdown = Shutdown::catch()?;
    let addr = if args.bind.contains(':') && !args.bind.starts_with('[') {
        format!("[{}]:{}", args.bind, args.port)
    } else {
        format!("{}:{}", args.bind, args.port)
    };
    let hub = Hub::bind(addr.as_str(), config).await?;
    for peer in &args.peers {
        tracing::info!(%peer, "peering");
        hub.peer(peer.as_str());
    }
    let ready = format!("seaport listening on {}", hub.local_addr());
    // A closed stdout must not take the hub down with it.
    if let Err(e) = output::line(&mut std::io::stdout().lock(), &ready) {
        tracing::warn!(error = %e, "cannot write the ready line to stdout");
    }
    let signal = shutdown.next().await;
    tracing::info!(?signal, "shutting down");
    hub.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use structopt::StructOpt;

    use super::*;
    use crate::args::{Args, Command};

    fn listen(extra: &[&str]) -> ListenArgs {
        let args = ["seaport", "listen", "0"].iter().chain(extra);
        match Args::from_iter_safe(args).map(|a| a.command) {
            Ok(Command::Listen(args)) => args,
            other => panic!("not listen: {other:?}"),
        }
    }

    #[test]
    fn the_flags_defaults_are_the_libraries_defaults() {
        let config = config(&listen(&[])).unwrap();
        let default = HubConfig::default();
        assert_eq!(config.core, default.core);
        assert_eq!(
            (config.max_frame, config.max_connections, config.handshake_timeout),
            (default.max_frame, default.max_connections, default.handshake_timeout)
        );
        assert_eq!(
            (config.outgoing_queue, config.outgoing_bytes, config.listen_backlog),
            (default.outgoing_queue, default.outgoing_bytes, default.listen_backlog)
        );
    }

    #[test]
    fn every_limit_reaches_the_hub() {
        let config = config(&listen(&[
            "--max-connections=7",
            "--max-registrations=3",
            "--max-subscriptions=2",
            "--max-request-rate=50",
            "--max-request-burst=60",
            "--max-frame=70000",
            "--max-meta-bytes=1000",
            "--handshake-timeout=250",
            "--outgoing-queue=9",
            "--outgoing-bytes=4096",
            "--port-range=20000-20099",
        ]))
        .unwrap();
        let limits = &config.core.limits;
        assert_eq!((config.max_connections, config.max_frame, config.outgoing_queue), (7, 70000, 9));
        assert_eq!(config.outgoing_bytes, 4096);
        assert_eq!(config.handshake_timeout, Duration::from_millis(250));
        assert_eq!((limits.max_registrations_per_session, limits.max_subscriptions_per_session), (3, 2));
        assert_eq!((limits.max_requests_per_second, limits.max_request_burst, limits.meta.max_bytes), (50, 60, 1000));
        assert_eq!(config.core.port_range, 20000..=20099);
    }

    #[test]
    fn limits_that_would_lock_out_every_client_are_refused() {
        for flag in ["--max-registrations=0", "--max-request-rate=0", "--outgoing-queue=0", "--handshake-timeout=0"] {
            let error = config(&listen(&[flag])).unwrap_err().to_string();
            assert!(error.contains(flag.trim_end_matches("=0")) && error.contains("at least 1"), "{flag}: {error}");
        }
        let error = config(&listen(&["--max-frame=1000"])).unwrap_err().to_string();
        assert!(error.contains("--max-frame") && error.contains("--max-meta-bytes"), "{error}");
    }
}
