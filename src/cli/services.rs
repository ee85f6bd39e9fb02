//! `mes service`: the operator's catalogue of referenced services.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use crate::audit::{self, AuditEntry};
use crate::config::Config;
use crate::services::catalogue::{self, ClientAuth, Entry};
use crate::services::scope::Scopes;
use crate::store::Store;

/// `mes service …`
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Reference a service (an OAuth client). A confidential client gets a
    /// secret printed once (`--confidential`) or signs assertions with the
    /// keys of `--jwks` (private_key_jwt); otherwise it is public (PKCE).
    Add(AddArgs),
    /// List the catalogue.
    List,
    /// Show one service.
    Show {
        /// The service id (its client_id).
        id: String,
    },
    /// Suspend a service: no new connection, no token, no API call.
    Suspend {
        /// The service id.
        id: String,
    },
    /// Reference a suspended service again.
    Resume {
        /// The service id.
        id: String,
    },
    /// Change the scopes a service requests; patients approve new ones
    /// before its tokens carry them.
    Scopes {
        /// The service id.
        id: String,
        /// Space-separated scopes.
        scopes: String,
    },
    /// Remove a service with its grants and tokens.
    Remove {
        /// The service id.
        id: String,
    },
}

/// `mes service add …`
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The service id, used as its OAuth client_id (a-z, 0-9, '-', '.').
    id: String,
    /// Name shown to patients.
    #[arg(long)]
    name: String,
    /// Publisher.
    #[arg(long)]
    publisher: String,
    /// Catalogue category (e.g. "Suivi de maladie chronique").
    #[arg(long)]
    category: String,
    /// Description in French.
    #[arg(long)]
    description: String,
    /// Home page (https).
    #[arg(long)]
    home_url: String,
    /// Redirect URI (https, matched exactly); repeat for several.
    #[arg(long = "redirect-uri", required = true)]
    redirect_uris: Vec<String>,
    /// Requested scopes, space separated.
    #[arg(long)]
    scopes: String,
    /// Logo file (PNG or JPEG, at most 256 KiB).
    #[arg(long)]
    logo: Option<PathBuf>,
    /// A confidential client authenticating with a generated secret.
    #[arg(long, conflicts_with = "jwks")]
    confidential: bool,
    /// A confidential client authenticating with private_key_jwt (JWKS file).
    #[arg(long)]
    jwks: Option<PathBuf>,
}

fn show(r: &crate::store::services::ServiceRow) {
    println!("id: {}", r.id);
    println!("name: {}", r.name);
    println!("publisher: {}", r.publisher);
    println!("category: {}", r.category);
    println!("description: {}", r.description);
    println!("home: {}", r.home_url);
    println!("redirect URIs: {}", r.redirect_uris);
    println!("scopes: {}", r.scopes);
    println!("status: {}", r.status);
    println!("referenced at: {}", r.referenced_at);
    let auth = match (&r.secret_hash, &r.jwks) {
        (Some(_), _) => "client_secret_basic, client_secret_post",
        (_, Some(_)) => "private_key_jwt",
        _ => "none (public, PKCE)",
    };
    println!("client: {} ({auth})", r.client_type);
    println!("logo: {}", r.logo_type.as_deref().unwrap_or("none"));
}

async fn audited(store: &Store, action: &str, id: &str) -> anyhow::Result<()> {
    audit::append(store, &AuditEntry::new("operator", action, id, "")).await?;
    Ok(())
}

/// Runs `mes service …`.
pub(super) async fn run(config: &Config, cmd: ServiceCommand) -> anyhow::Result<()> {
    let store = Store::open(&config.database_url, 2).await?;
    match cmd {
        ServiceCommand::Add(a) => {
            let logo = match &a.logo {
                Some(p) => {
                    Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?)
                }
                None => None,
            };
            let mut secret = None;
            let auth = if let Some(p) = &a.jwks {
                ClientAuth::Jwks(
                    std::fs::read_to_string(p)
                        .with_context(|| format!("reading {}", p.display()))?,
                )
            } else if a.confidential {
                let s = crate::services::pkce::random();
                let hash = crate::identity::password::hash(&s)?;
                secret = Some(s);
                ClientAuth::SecretHash(hash)
            } else {
                ClientAuth::Public
            };
            let entry = catalogue::check(Entry {
                id: a.id,
                name: a.name,
                publisher: a.publisher,
                category: a.category,
                description: a.description,
                home_url: a.home_url,
                redirect_uris: a.redirect_uris,
                scopes: a.scopes,
                logo,
                auth,
            })?;
            store.add_service(&entry).await?;
            audited(&store, "service.add", &entry.row.id).await?;
            println!("service {} referenced", entry.row.id);
            if let Some(s) = secret {
                println!("client secret: {s} (shown once; only its hash is kept)");
            }
        }
        ServiceCommand::List => {
            for r in store.services().await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    r.id, r.status, r.category, r.name, r.scopes
                );
            }
        }
        ServiceCommand::Show { id } => {
            let Some(r) = store.service(&id).await? else {
                bail!("no service {id}");
            };
            show(&r);
        }
        ServiceCommand::Suspend { id } => {
            if !store.set_service_status(&id, "suspended").await? {
                bail!("no service {id}");
            }
            audited(&store, "service.suspend", &id).await?;
            println!("service {id} suspended");
        }
        ServiceCommand::Resume { id } => {
            if !store.set_service_status(&id, "referenced").await? {
                bail!("no service {id}");
            }
            audited(&store, "service.resume", &id).await?;
            println!("service {id} referenced again");
        }
        ServiceCommand::Scopes { id, scopes } => {
            let Some(parsed) = Scopes::parse(&scopes).filter(|s| !s.is_empty()) else {
                bail!("unknown scope in {scopes:?}");
            };
            if !store.set_service_scopes(&id, &parsed.to_list()).await? {
                bail!("no service {id}");
            }
            audited(&store, "service.scopes", &id).await?;
            println!("service {id} now requests: {}", parsed.to_list());
        }
        ServiceCommand::Remove { id } => {
            if !store.remove_service(&id).await? {
                bail!("no service {id}");
            }
            audited(&store, "service.remove", &id).await?;
            println!("service {id} removed");
        }
    }
    Ok(())
}
