//! `mes dns records DOMAIN`: prints what `config::dns` renders for a hosted domain.

use anyhow::Context;

use crate::config::Config;
use crate::store::Store;

/// Prints the records of `domain`, which must be hosted here.
pub(super) async fn records(config: &Config, domain: &str) -> anyhow::Result<()> {
    let domain =
        crate::address::normalize_domain(domain).map_err(|e| anyhow::anyhow!("`{domain}`: {e}"))?;
    let store = Store::open(&config.database_url, 1)
        .await
        .context("opening the store")?;
    super::init::seed_domains(config, &store).await?;
    let hosted = store.domain_kind(&domain).await;
    store.close().await;
    if hosted?.is_none() {
        anyhow::bail!("{domain} is not a hosted domain (mes domain list)");
    }
    print!("{}", crate::config::dns::records(config, &domain));
    Ok(())
}
