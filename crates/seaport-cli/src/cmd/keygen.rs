//! `seaport keygen [--out FILE]`.

use anyhow::{Context, Result};
use seaport_net::KeyPair;

use crate::args::KeygenArgs;
use crate::output;

pub fn run(args: KeygenArgs) -> Result<()> {
    let pair = KeyPair::generate();
    match args.out {
        Some(path) => pair.save(&path).map_err(anyhow::Error::new),
        None => output::line(&mut std::io::stdout().lock(), &pair.to_json()).context("writing to stdout"),
    }
}
