//! `seaport register HOST:PORT NAME@VERSION [-- COMMAND...]`: register, then run and
//! supervise COMMAND on the assigned port (or just hold the registration).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::{pin_mut, select, FutureExt};
use seaport_net::RegisterOptions;

use crate::args::RegisterArgs;
use crate::child::Child;
use crate::keys;
use crate::output;
use crate::signals::Shutdown;

/// A command that exits sooner than this after its start counts as crashing.
const QUICK_EXIT: Duration = Duration::from_secs(10);
/// Restart delay after an exit; doubles per quick exit in a row, up to `MAX_DELAY`.
const FIRST_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(30);
/// How long the command may take to exit after a forwarded signal before it is killed.
const GRACE: Duration = Duration::from_secs(10);

pub async fn run(args: RegisterArgs) -> Result<()> {
    let mut shutdown = Shutdown::catch()?;
    let key = args.key.as_deref().map(keys::load_pair).transpose()?;
    let client = super::connect(&args.hub, key)?;
    let options = RegisterOptions {
        port: args.port,
        range: args.range.clone(),
        host: args.host.clone(),
        id: args.id.clone(),
        meta: args.meta.iter().cloned().collect(),
    };
    let registered = {
        let register = super::waiting_notice(&args.hub, client.register(&args.name, options)).fuse();
        let signal = shutdown.next().fuse();
        pin_mut!(register, signal);
        select! {
            result = register => Some(result),
            _ = signal => None,
        }
    };
    let record = match registered {
        Some(Ok(record)) => record,
        Some(Err(e)) => {
            client.close().await;
            return Err(e).with_context(|| format!("cannot register {} at {}", args.name, args.hub));
        }
        None => {
            client.close().await;
            return Ok(());
        }
    };
    tracing::info!(%record, "registered");
    let result = if args.command.is_empty() {
        if let Err(e) = output::record(&mut std::io::stdout().lock(), &record) {
            tracing::warn!(error = %e, "cannot write the record to stdout");
        }
        let signal = shutdown.next().await;
        tracing::info!(?signal, "freeing the registration");
        Ok(())
    } else {
        supervise(&args.command, record.port, &mut shutdown).await
    };
    client.close().await;
    result
}

enum Outcome {
    Exited(std::io::Result<std::process::ExitStatus>),
    Signal(async_signal::Signal),
}

/// Runs `command` on `port` until SIGINT or SIGTERM, restarting it whenever it exits.
///
/// Runs on the main thread (inside `main`'s `block_on`, never in a spawned task), so the
/// children's parent-death signal is tied to a thread that lives as long as the process.
async fn supervise(command: &[String], port: u16, shutdown: &mut Shutdown) -> Result<()> {
    let shown = command.join(" ");
    let mut quick_exits = 0u32;
    let mut started_once = false;
    loop {
        let started = Instant::now();
        let why = match Child::spawn(command, port) {
            Ok(mut child) => {
                started_once = true;
                tracing::info!(pid = child.id(), command = %shown, port, "started");
                let outcome = {
                    let exited = child.wait().fuse();
                    let signal = shutdown.next().fuse();
                    pin_mut!(exited, signal);
                    select! {
                        status = exited => Outcome::Exited(status),
                        signal = signal => Outcome::Signal(signal),
                    }
                };
                match outcome {
                    Outcome::Exited(Ok(status)) => format!("exited ({status})"),
                    Outcome::Exited(Err(e)) => format!("could not be waited for ({e})"),
                    Outcome::Signal(signal) => return stop(child, signal, shutdown, &shown).await,
                }
            }
            Err(e) if !started_once => return Err(e).with_context(|| format!("cannot start {shown}")),
            Err(e) => format!("could not be started ({e})"),
        };
        quick_exits = if started.elapsed() < QUICK_EXIT { quick_exits.saturating_add(1) } else { 1 };
        let delay = FIRST_DELAY.saturating_mul(1 << quick_exits.saturating_sub(1).min(16)).min(MAX_DELAY);
        tracing::warn!("{shown} {why}; restarting in {}s", delay.as_secs());
        let waited = async_std::future::timeout(delay, shutdown.next()).await;
        if let Ok(signal) = waited {
            tracing::info!(?signal, "stopping while waiting to restart");
            return Ok(());
        }
    }
}

/// Forwards `signal` to the command and waits for it to exit: up to `GRACE`, or until a
/// second signal, then kills it.
async fn stop(mut child: Child, signal: async_signal::Signal, shutdown: &mut Shutdown, shown: &str) -> Result<()> {
    tracing::info!(?signal, pid = child.id(), "forwarding the signal to {shown}");
    child.forward(signal);
    let exited = {
        let exited = child.wait().fuse();
        let again = shutdown.next().fuse();
        let grace = async_std::task::sleep(GRACE).fuse();
        pin_mut!(exited, again, grace);
        select! {
            status = exited => Some(status),
            _ = again => None,
            _ = grace => None,
        }
    };
    let status = match exited {
        Some(status) => status,
        None => {
            tracing::warn!(pid = child.id(), "{shown} did not exit; killing it");
            child.kill();
            child.wait().await
        }
    };
    match status {
        Ok(status) => tracing::info!(%status, "{shown} exited"),
        Err(e) => tracing::warn!(error = %e, "cannot wait for {shown}"),
    }
    Ok(())
}
