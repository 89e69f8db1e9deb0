//! `seaport watch HOST:PORT [PATTERN]`: one line per change, until killed.

use anyhow::{bail, Context, Result};
use futures::StreamExt;

use crate::args::WatchArgs;
use crate::output::{self, WatchFormat};

pub async fn run(args: WatchArgs) -> Result<()> {
    super::check_pattern(&args.pattern)?;
    let client = super::connect(&args.hub, None)?;
    let mut changes = client.watch(&args.pattern)?;
    // The watch stream starts after the hub's snapshot; a query of the same pattern
    // shares the subscription and returns once that snapshot is in, so from here on
    // every change is printed.
    super::waiting_notice(&args.hub, client.query(&args.pattern))
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
