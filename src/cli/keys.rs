//! `ponte keys generate`: makes an API key and prints what goes where.

use crate::auth::{ApiKeyConfig, KeyRing, hash_secret, new_secret};

/// Makes a key named `name` with `scopes`, and prints the secret (for the client,
/// shown only now) and the lines for the configuration file.
pub(super) fn generate(name: &str, scopes: &[String]) -> anyhow::Result<()> {
    let secret = new_secret();
    let key = ApiKeyConfig {
        name: name.to_owned(),
        hash: hash_secret(&secret),
        scopes: scopes.to_vec(),
    };
    KeyRing::new(std::slice::from_ref(&key)).map_err(anyhow::Error::msg)?;

    let entry = toml::to_string(&key)?;
    println!("# Secret for the client (Authorization: Bearer, X-API-Key or Basic password).");
    println!("# It is shown only now; ponte keeps only its hash.");
    println!("# {secret}");
    println!();
    println!("# Add to the configuration file:");
    println!("[[api_keys]]");
    print!("{entry}");
    Ok(())
}
