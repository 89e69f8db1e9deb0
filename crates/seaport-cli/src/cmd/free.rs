//! `seaport free HOST:PORT ID`.

use anyhow::{Context, Result};

use crate::args::FreeArgs;
use crate::keys;

pub async fn run(args: FreeArgs) -> Result<()> {
    let key = args.key.as_deref().map(keys::load_pair).transpose()?;
    let client = super::connect(&args.hub, key)?;
    let freed = super::within(args.timeout, &args.hub, async {
        client.free(&args.id).await.with_context(|| format!("freeing {}", args.id))
    })
    .await;
    client.close().await;
    freed
}
