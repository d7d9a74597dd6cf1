//! `ponte keys generate`: makes an API key and prints what goes where.

use crate::auth::{ApiKeyConfig, KeyRing, hash_secret, new_secret};

/// Makes a key named `name` with `scopes`: prints the secret (for the client,
/// shown only now) on stderr and the lines for the configuration file on stdout.
pub(super) fn generate(name: &str, scopes: &[String]) -> anyhow::Result<()> {
    let secret = new_secret();
    let key = ApiKeyConfig {
        name: name.to_owned(),
        hash: hash_secret(&secret),
        scopes: scopes.to_vec(),
        client_certificate_sha256: None,
    };
    KeyRing::new(std::slice::from_ref(&key)).map_err(anyhow::Error::msg)?;

    // The secret goes to the terminal (stderr), the configuration lines to stdout,
    // so that `ponte keys generate ... >> ponte.toml` never writes the secret down.
    let entry = toml::to_string(&key)?;
    eprintln!("Secret for the client of key {name:?} (shown only now; ponte keeps its hash):");
    eprintln!("{secret}");
    eprintln!("Send it as Authorization: Bearer, X-API-Key, or the Basic password.");
    out!();
    out!("[[api_keys]]");
    out!("{}", entry.trim_end_matches('\n'));
    Ok(())
}
