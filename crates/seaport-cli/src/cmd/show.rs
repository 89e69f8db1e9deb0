//! `seaport show HOST:PORT`: every record.

use anyhow::Result;

use crate::args::{QueryArgs, ShowArgs};

pub async fn run(args: ShowArgs) -> Result<()> {
    let query = QueryArgs {
        hub: args.hub,
        pattern: "*".into(),
        fields: Vec::new(),
        compact: args.compact,
        timeout: args.timeout,
    };
    super::query::run(query).await
}
