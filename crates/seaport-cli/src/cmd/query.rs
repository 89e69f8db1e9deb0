//! `seaport query HOST:PORT [PATTERN] [FIELD...]`: the records matching a pattern, once
//! the hub has sent its snapshot.

use anyhow::{Context, Result};

use crate::args::QueryArgs;
use crate::output;

pub async fn run(args: QueryArgs) -> Result<()> {
    super::check_pattern(&args.pattern)?;
    let client = super::connect(&args.hub, None)?;
    let found = super::within(args.timeout, &args.hub, async {
        client.query(&args.pattern).await.with_context(|| format!("querying {}", args.pattern))
    })
    .await;
    client.close().await;
    let found = found?;
    output::records(&mut std::io::stdout().lock(), &found, &args.fields, args.compact).context("writing to stdout")
}
