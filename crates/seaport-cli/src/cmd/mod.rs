//! One module per subcommand, each with an `async fn run(args) -> Result<()>`.

mod free;
mod get;
mod keygen;
mod listen;
mod pubkey;
mod query;
mod register;
mod show;
mod watch;

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::FutureExt;
use seaport_net::{Client, ClientConfig, KeyPair};

use crate::args::Command;

/// Runs one subcommand.
pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Listen(args) => listen::run(args).await,
        Command::Show(args) => show::run(args).await,
        Command::Query(args) => query::run(args).await,
        Command::Get(args) => get::run(args).await,
        Command::Watch(args) => watch::run(args).await,
        Command::Register(args) => register::run(args).await,
        Command::Free(args) => free::run(args).await,
        Command::Keygen(args) => keygen::run(args),
        Command::Pubkey(args) => pubkey::run(args),
    }
}

/// A client for one hub, signing with `key` if given.
fn connect(hub: &str, key: Option<KeyPair>) -> Result<Client> {
    let config = ClientConfig { key, ..ClientConfig::default() };
    Client::connect(&[hub], config).with_context(|| format!("cannot use hub address {hub}"))
}

/// Checks a pattern before talking to any hub, so a typo fails at once and says where.
fn check_pattern(pattern: &str) -> Result<()> {
    seaport_core::Pattern::parse(pattern).map(drop).map_err(anyhow::Error::new)
}

/// Runs `work`, giving up after `seconds` with a message naming the hub.
async fn within<T>(seconds: f64, hub: &str, work: impl Future<Output = Result<T>>) -> Result<T> {
    let limit = Duration::from_secs_f64(seconds);
    async_std::future::timeout(limit, work)
        .await
        .map_err(|_| anyhow::anyhow!("no answer from the hub at {hub} within {seconds}s; is it running?"))?
}

/// Runs `work`; if it is not done within a second, tells the user on stderr that we are
/// waiting for the hub (it may not be up yet), and keeps waiting.
async fn waiting_notice<T>(hub: &str, work: impl Future<Output = T>) -> T {
    let work = work.fuse();
    futures::pin_mut!(work);
    let mut notice = Box::pin(async_std::task::sleep(Duration::from_secs(1)).fuse());
    futures::select! {
        done = work => return done,
        _ = notice => {}
    }
    eprintln!("seaport: waiting for hub at {hub} ...");
    work.await
}
