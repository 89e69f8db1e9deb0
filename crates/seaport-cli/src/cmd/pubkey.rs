//! `seaport pubkey KEYFILE`: the public half, as an authorized-keys list.

use anyhow::{Context, Result};

use crate::args::PubkeyArgs;
use crate::{keys, output};

pub fn run(args: PubkeyArgs) -> Result<()> {
    let pair = keys::load_pair(&args.keyfile)?;
    let list = seaport_net::auth::authorized_to_json(&[pair.public()]);
    output::line(&mut std::io::stdout().lock(), &list).context("writing to stdout")
}
