//! Reading key files for the commands that sign requests.

use std::path::Path;

use anyhow::{Context, Result};
use seaport_net::KeyPair;

/// A key pair from a `seaport keygen` JSON file, or from a PKCS#8 PEM file as written by
/// `openssl genpkey -algorithm ed25519`.
pub fn load_pair(path: &Path) -> Result<KeyPair> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read key file {}", path.display()))?;
    if text.trim_start().starts_with("-----BEGIN") {
        return KeyPair::from_pkcs8_pem(&text).with_context(|| format!("cannot use key file {}", path.display()));
    }
    KeyPair::load(path).map_err(anyhow::Error::new)
}
