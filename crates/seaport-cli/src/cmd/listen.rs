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
    if let Some(n) = args.max_connections {
        config.max_connections = n;
    }
    config.core.advertise = args.advertise.clone();
    config.core.port_partition = args.port_partition;
    if let Some(bytes) = args.max_frame {
        config.max_frame = bytes;
    }
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

/// Raises this process's soft limit on open files to its hard limit.
///
/// Every connection holds a descriptor, and the usual soft limit (1 024) is far below the
/// thousands of clients a hub serves (the default `--max-connections` is 16 384); the
/// hard limit is what an administrator allows. Failing to raise it is not fatal: the hub
/// then refuses connections past the limit, as it would anyway.
fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    // No hard limit ("unlimited") still cannot exceed the kernel's nr_open, 1 048 576 by default.
    let target = limit.maximum.unwrap_or(1 << 20);
    if limit.current.is_some_and(|current| current >= target) {
        return;
    }
    match setrlimit(Resource::Nofile, Rlimit { current: Some(target), maximum: limit.maximum }) {
        Ok(()) => tracing::debug!(from = ?limit.current, to = target, "raised the open files limit"),
        Err(e) => tracing::warn!(error = %e, current = ?limit.current, "cannot raise the open files limit"),
    }
}

pub async fn run(args: ListenArgs) -> Result<()> {
    let config = config(&args)?;
    raise_open_files_limit();
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
