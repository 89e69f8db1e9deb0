//! `seaport watch HOST:PORT [PATTERN]`: one line per change, until killed.

use anyhow::{bail, Context, Result};
use futures::StreamExt;

use crate::args::WatchArgs;
use crate::output::{self, WatchFormat};

pub async fn run(args: WatchArgs) -> Result<()> {
    super::check_pattern(&args.pattern)?;
    let client = super::connect(&args.hub, None)?;
    // `watch` returns once the hub's snapshot is in, so from here on every change is printed.
    let mut changes = super::waiting_notice(&args.hub, client.watch(&args.pattern))
        .await
        .with_context(|| format!("subscribing to {}", args.pattern))?;
    tracing::info!(hub = %args.hub, pattern = %args.pattern, "watching");
    let format = WatchFormat { json: args.json, meta: args.meta };
    let stdout = std::io::stdout();
    while let Some(change) = changes.next().await {
        output::line(&mut stdout.lock(), &output::change_line(&change, format)).context("writing to stdout")?;
    }
    bail!("the connection to the hub at {} was closed", args.hub)
}
