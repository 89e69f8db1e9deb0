//! `seaport get HOST:PORT PATTERN`: waits until a record matches.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use seaport_net::ClientError;

use crate::args::GetArgs;
use crate::output;

pub async fn run(args: GetArgs) -> Result<()> {
    super::check_pattern(&args.pattern)?;
    let client = super::connect(&args.hub, None)?;
    let found = match args.timeout {
        Some(seconds) => client.get_timeout(&args.pattern, Duration::from_secs_f64(seconds)).await,
        None => client.get(&args.pattern).await,
    };
    client.close().await;
    let found = match (found, args.timeout) {
        (Ok(found), _) => found,
        (Err(ClientError::Timeout(_)), Some(seconds)) => bail!("no record matching {} within {seconds}s", args.pattern),
        (Err(e), _) => return Err(e).with_context(|| format!("waiting for {} at {}", args.pattern, args.hub)),
    };
    output::records(&mut std::io::stdout().lock(), &found, &args.fields, args.compact).context("writing to stdout")
}
