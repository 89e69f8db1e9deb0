//! SIGINT and SIGTERM as a stream, for the long-running commands.

use anyhow::{Context, Result};
use async_signal::{Signal, Signals};
use futures::StreamExt;

/// Catches SIGINT and SIGTERM from now on (instead of dying of them).
///
/// Set it up before telling anyone the process is ready, so that a signal sent right
/// after the ready line is handled.
pub struct Shutdown(Signals);

impl Shutdown {
    pub fn catch() -> Result<Shutdown> {
        Signals::new([Signal::Int, Signal::Term]).map(Shutdown).context("cannot catch SIGINT and SIGTERM")
    }

    /// The next SIGINT or SIGTERM.
    pub async fn next(&mut self) -> Signal {
        loop {
            match self.0.next().await {
                Some(Ok(signal)) => return signal,
                Some(Err(e)) => tracing::debug!(error = %e, "reading signals failed; retrying"),
                // The stream never ends while it is alive; should it, wait forever.
                None => futures::future::pending::<()>().await,
            }
        }
    }
}
