//! `mes user`, `mes domain` and `mes trust`: the operator's account and trust-space commands.

use anyhow::{Context, bail};

use super::{CareteamCommand, DomainCommand, TrustCommand, UserCommand, read_password_line};
use crate::address::{Address, normalize_domain};
use crate::audit::{self, AuditEntry};
use crate::config::Config;
use crate::delivery::quota::Quota;
use crate::identity::ins::Ins;
use crate::identity::{AccountKind, DomainKind, activation, password};
use crate::pki::dn::DistinguishedName;
use crate::store::Store;
use crate::store::accounts::NewAccount;
use crate::store::quota::Limit;
use crate::trust::{TrustSpace, whitelist};

async fn open(config: &Config) -> anyhow::Result<Store> {
    let store = Store::open(&config.database_url, 2)
        .await
        .context("opening the store")?;
    super::init::seed_domains(config, &store).await?;
    Ok(store)
}

fn password_for(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if from_stdin {
        Ok((read_password_line()?, false))
    } else {
        Ok((password::generate(), true))
    }
}

/// Issues an activation code, audits it and prints it once.
async fn print_activation(
    config: &Config,
    store: &Store,
    account: &crate::store::accounts::Account,
) -> anyhow::Result<()> {
    let days = config.patients.activation_valid_days;
    let code = activation::issue(store, account, days).await?;
    audit::append(
        store,
        &AuditEntry::new("operator", "account.activation_code", &account.address, ""),
    )
    .await?;
    println!("activation code: {code}  (shown once, valid {days} days)");
    Ok(())
}

/// Runs `mes user …`.
pub(super) async fn user(config: &Config, cmd: UserCommand) -> anyhow::Result<()> {
    let store = open(config).await?;
    match cmd {
        UserCommand::Add {
            address,
            kind,
            name,
            profession,
            rpps,
            certificate_subject,
            certificate,
            establishment,
            password_stdin,
        } => {
            let addr = Address::parse(&address)?;
            let cert_dn = certificate_dn(certificate_subject.as_deref(), certificate.as_deref())?;
            let Some(domain_kind) = store.domain_kind(addr.domain()).await? else {
                bail!(
                    "domain {} is not hosted here (mes domain add)",
                    addr.domain()
                );
            };
            let ins = match (kind, domain_kind) {
                (AccountKind::Patient, DomainKind::Patient) => Some(
                    Ins::parse(addr.local())
                        .with_context(|| format!("{} is not an INS matricule", addr.local()))?
                        .as_str()
                        .to_string(),
                ),
                (AccountKind::Patient, DomainKind::Professional) => {
                    bail!(
                        "patient accounts belong in a patient domain, not {}",
                        addr.domain()
                    )
                }
                (_, DomainKind::Patient) => {
                    bail!(
                        "{} is a patient domain: only patient accounts live there",
                        addr.domain()
                    )
                }
                _ => None,
            };
            // A patient chooses their own password with an activation code.
            let activation = kind == AccountKind::Patient && !password_stdin;
            let (pw, generated) = if activation {
                (String::new(), false)
            } else {
                password_for(password_stdin)?
            };
            let hash = if activation {
                None
            } else {
                Some(password::hash(&pw)?)
            };
            let account = store
                .create_account(&NewAccount {
                    address: addr.to_string(),
                    domain: addr.domain().to_string(),
                    kind,
                    display_name: name.unwrap_or_default(),
                    profession,
                    rpps,
                    ins,
                    password_hash: hash,
                    cert_subject: cert_dn.as_ref().map(|dn| dn.key().to_owned()),
                })
                .await?;
            audit::append(
                &store,
                &AuditEntry::new(
                    "operator",
                    "account.create",
                    &account.address,
                    kind.as_str(),
                ),
            )
            .await?;
            if let Some(e) = &establishment {
                store.set_establishment(&account.address, Some(e)).await?;
            }
            println!("created {} ({kind})", account.address);
            if let Some(dn) = &cert_dn {
                println!("certificate subject: {dn}");
            }
            if generated {
                println!("password: {pw}  (shown once)");
            }
            if activation {
                print_activation(config, &store, &account).await?;
            }
        }
        UserCommand::List => {
            for a in store.list_accounts().await? {
                println!(
                    "{}\t{}\t{}\t{}{}{}",
                    a.address,
                    a.kind,
                    a.display_name,
                    a.profession.as_deref().unwrap_or(""),
                    a.cert_subject
                        .as_deref()
                        .map(|key| format!("\tcertificate: {}", shown_dn(key)))
                        .unwrap_or_default(),
                    if a.disabled { "\tdisabled" } else { "" }
                );
            }
        }
        UserCommand::Passwd {
            address,
            password_stdin,
        } => {
            let addr = Address::parse(&address)?.to_string();
            let (pw, generated) = password_for(password_stdin)?;
            store
                .set_password(&addr, &password::hash(&pw)?, None)
                .await?;
            audit::append(
                &store,
                &AuditEntry::new("operator", "account.password", &addr, ""),
            )
            .await?;
            println!("password changed for {addr}");
            if generated {
                println!("password: {pw}  (shown once)");
            }
        }
        UserCommand::Regulator { address, off } => {
            let addr = Address::parse(&address)?.to_string();
            let account = store
                .account_by_address(&addr)
                .await?
                .with_context(|| format!("no account {addr}"))?;
            if account.kind != AccountKind::Professional {
                bail!("{addr} is not a professional");
            }
            store.set_emergency_regulator(&addr, !off).await?;
            audit::append(
                &store,
                &AuditEntry::new(
                    "operator",
                    if off {
                        "account.regulator_off"
                    } else {
                        "account.regulator"
                    },
                    &addr,
                    "",
                ),
            )
            .await?;
            println!(
                "{addr} is {}a regulating physician",
                if off { "no longer " } else { "" }
            );
        }
        UserCommand::Totp { address } => {
            let addr = Address::parse(&address)?.to_string();
            let account = store
                .account_by_address(&addr)
                .await?
                .with_context(|| format!("no account {addr}"))?;
            if account.kind == AccountKind::Patient {
                bail!("{addr} is a patient: the second factor is for professionals' API tokens");
            }
            let secret = crate::identity::totp::generate_secret();
            // Stored encrypted under the key outside the database.
            let sealed = crate::server::keys::secrets_key(&config.secrets.key_file, &store)
                .await?
                .seal(&addr, &secret)?;
            store.set_totp_secret(&addr, Some(&sealed)).await?;
            audit::append(
                &store,
                &AuditEntry::new("operator", "account.totp", &addr, ""),
            )
            .await?;
            println!("TOTP secret: {secret}  (shown once)");
            println!(
                "{}",
                crate::identity::totp::provisioning_uri(&secret, &addr, "MES")
            );
        }
        UserCommand::Activation { address } => {
            let addr = Address::parse(&address)?.to_string();
            let account = store
                .account_by_address(&addr)
                .await?
                .with_context(|| format!("no account {addr}"))?;
            print_activation(config, &store, &account).await?;
        }
        UserCommand::Quota {
            address,
            storage,
            messages,
        } => {
            let addr = Address::parse(&address)?.to_string();
            let storage = storage
                .as_deref()
                .map(|t| limit(t, crate::config::parse_storage))
                .transpose()
                .context("--storage")?;
            let messages = messages
                .as_deref()
                .map(|t| limit(t, crate::config::parse_count))
                .transpose()
                .context("--messages")?;
            let row = if storage.is_none() && messages.is_none() {
                let account = store
                    .account_by_address(&addr)
                    .await?
                    .with_context(|| format!("no account {addr}"))?;
                store
                    .quota_of(account.id)
                    .await?
                    .with_context(|| format!("no account {addr}"))?
            } else {
                let row = store.set_quota_limits(&addr, storage, messages).await?;
                audit::append(
                    &store,
                    &AuditEntry::new(
                        "operator",
                        "account.quota",
                        &addr,
                        &format!(
                            "storage={} messages={}",
                            shown_limit(row.storage_limit, " KiB"),
                            shown_limit(row.messages_limit, "")
                        ),
                    ),
                )
                .await?;
                row
            };
            let quota = Quota::of(&row, &config.quota);
            println!("{addr}");
            println!(
                "storage: {} KiB used, {}",
                quota.storage_used_kib(),
                in_force(quota.storage_limit_kib, row.storage_limit, " KiB")
            );
            println!(
                "messages: {} used, {}",
                quota.messages_used,
                in_force(quota.messages_limit, row.messages_limit, "")
            );
        }
        UserCommand::Disable { address } => {
            let addr = Address::parse(&address)?.to_string();
            store.disable_account(&addr).await?;
            audit::append(
                &store,
                &AuditEntry::new("operator", "account.disable", &addr, ""),
            )
            .await?;
            println!("disabled {addr}");
        }
        UserCommand::Certificate {
            address,
            file,
            subject,
            remove,
        } => {
            let addr = Address::parse(&address)?.to_string();
            let dn = if remove {
                None
            } else {
                certificate_dn(subject.as_deref(), file.as_deref())?
            };
            store
                .set_cert_subject(&addr, dn.as_ref().map(|d| d.key()))
                .await?;
            audit::append(
                &store,
                &AuditEntry::new(
                    "operator",
                    if dn.is_some() {
                        "account.certificate"
                    } else {
                        "account.certificate_removed"
                    },
                    &addr,
                    dn.as_ref().map(|d| d.key()).unwrap_or(""),
                ),
            )
            .await?;
            match &dn {
                Some(dn) => println!("{addr} is mapped to certificate subject {dn}"),
                None => println!("{addr} is mapped to no certificate"),
            }
        }
    }
    store.close().await;
    Ok(())
}

/// A limit given to `mes user quota`: `default`, or an amount read by `parse`
/// (None from it: no limit).
fn limit(text: &str, parse: fn(&str) -> Result<Option<u64>, String>) -> anyhow::Result<Limit> {
    if text.trim().eq_ignore_ascii_case("default") {
        return Ok(Limit::Default);
    }
    match parse(text).map_err(anyhow::Error::msg)? {
        Some(n) => Ok(Limit::Max(n)),
        None => Ok(Limit::Unlimited),
    }
}

/// A stored limit as the audit trail records it.
fn shown_limit(limit: Limit, unit: &str) -> String {
    match limit {
        Limit::Default => "default".into(),
        Limit::Unlimited => "none".into(),
        Limit::Max(n) => format!("{n}{unit}"),
    }
}

/// The limit in force and where it comes from, as `mes user quota` prints it.
fn in_force(limit: Option<u64>, own: Limit, unit: &str) -> String {
    let from = if own == Limit::Default {
        "[quota] default"
    } else {
        "set for this account"
    };
    match limit {
        Some(n) => format!("limit {n}{unit} ({from})"),
        None => format!("no limit ({from})"),
    }
}

/// The certificate subject to map, from `--certificate-subject DN` (any usual
/// form, checked) or a PEM certificate file.
fn certificate_dn(
    subject: Option<&str>,
    file: Option<&std::path::Path>,
) -> anyhow::Result<Option<DistinguishedName>> {
    match (subject, file) {
        (Some(_), Some(_)) => bail!("give either a certificate subject or a certificate file"),
        (Some(text), None) => DistinguishedName::parse(text)
            .map(Some)
            .with_context(|| format!("certificate subject {text:?} is not a distinguished name")),
        (None, Some(path)) => Ok(Some(crate::pki::subject_of_file(path)?)),
        (None, None) => Ok(None),
    }
}

/// A stored certificate subject key, as `mes user list` shows it.
fn shown_dn(key: &str) -> String {
    DistinguishedName::parse(key)
        .map(|dn| dn.to_string())
        .unwrap_or_else(|_| key.to_owned())
}

/// Runs `mes domain …`.
pub(super) async fn domain(config: &Config, cmd: DomainCommand) -> anyhow::Result<()> {
    let store = open(config).await?;
    match cmd {
        DomainCommand::Add { domain, kind } => {
            let name = normalize_domain(&domain)?;
            store.add_domain(&name, kind).await?;
            audit::append(
                &store,
                &AuditEntry::new("operator", "domain.create", &name, kind.as_str()),
            )
            .await?;
            println!("added {name} ({})", kind.as_str());
        }
        DomainCommand::List => {
            for d in store.list_domains().await? {
                println!("{}\t{}", d.name, d.kind.as_str());
            }
        }
    }
    store.close().await;
    Ok(())
}

/// Runs `mes trust …`.
pub(super) async fn trust(config: &Config, cmd: TrustCommand) -> anyhow::Result<()> {
    let store = open(config).await?;
    match cmd {
        TrustCommand::Import { file, signature } => {
            let xml =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            if let Err(e) = check_signature(config, &xml, signature.as_deref()) {
                audit::append(
                    &store,
                    &AuditEntry::new("operator", "whitelist.refused", "whitelist", &e.to_string()),
                )
                .await?;
                return Err(e).with_context(|| format!("{}: not imported", file.display()));
            }
            let list = whitelist::parse(&xml).with_context(|| format!("{}", file.display()))?;
            store.replace_whitelist(&list.rows()).await?;
            audit::append(
                &store,
                &AuditEntry::new(
                    "operator",
                    "whitelist.import",
                    "whitelist",
                    &format!("{} domains", list.domains.len()),
                ),
            )
            .await?;
            println!(
                "imported {} domains (generated {})",
                list.domains.len(),
                list.generated_at.as_deref().unwrap_or("at an unknown date")
            );
        }
        TrustCommand::List => {
            let imported = store.whitelist().await?;
            let space = TrustSpace::load(config, &store).await?;
            for (domain, dns) in imported {
                println!("{domain}\timported\t{}", dns.join(" | "));
            }
            for w in &config.trust.whitelist {
                println!("{}\tconfig\t{}", w.domain, w.operator_dn);
            }
            println!("{} domains in the trust space", space.len());
        }
    }
    store.close().await;
    Ok(())
}

/// Runs `mes audit verify`: exit 0 when the chain is intact, 1 naming the first bad entry.
pub(super) async fn audit_verify(config: &Config, anchors: &[String]) -> anyhow::Result<()> {
    use crate::audit::seal;
    let anchors = anchors
        .iter()
        .map(|a| {
            let (id, hash) = a
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("--anchor {a}: expected ID:HASH"))?;
            Ok((id.trim().parse::<i64>()?, hash.trim().to_ascii_lowercase()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let key = match seal::SealKey::load(&config.audit.key_file) {
        Ok(k) => Some(k),
        Err(e) => {
            eprintln!("warning: {e}: checkpoints not checked");
            None
        }
    };
    let store = open(config).await?;
    match seal::verify(&store, key.as_ref(), &anchors).await? {
        Ok(v) => {
            println!(
                "audit log intact: {} entries, {} sealed checkpoints checked, {} entries after the last checkpoint, {} anchors",
                v.entries,
                v.checkpoints,
                v.unsealed,
                anchors.len()
            );
            Ok(())
        }
        Err(problem) => bail!("audit log: {problem}"),
    }
}

/// Runs `mes audit head`.
pub(super) async fn audit_head(config: &Config) -> anyhow::Result<()> {
    let store = open(config).await?;
    match crate::audit::seal::head(&store).await? {
        Some((id, hash)) => println!("{id}:{hash}"),
        None => println!("0:{}", "0".repeat(64)),
    }
    Ok(())
}

/// Runs `mes careteam …`.
pub(super) async fn careteam(config: &Config, cmd: CareteamCommand) -> anyhow::Result<()> {
    let store = open(config).await?;
    match cmd {
        CareteamCommand::Member {
            establishment,
            professional,
        } => {
            let addr = Address::parse(&professional)?.to_string();
            store.add_care_team_member(&establishment, &addr).await?;
            audit::append(
                &store,
                &AuditEntry::new("operator", "careteam.member", &addr, &establishment),
            )
            .await?;
            println!("{addr} is in the care team of {establishment}");
        }
        CareteamCommand::Patient {
            establishment,
            patient,
        } => {
            let addr = Address::parse(&patient)?.to_string();
            let account = store
                .account_by_address(&addr)
                .await?
                .filter(|a| a.kind == AccountKind::Patient)
                .with_context(|| format!("no patient {addr}"))?;
            store
                .add_care_team_patient(&establishment, account.id)
                .await?;
            audit::append(
                &store,
                &AuditEntry::new("operator", "careteam.patient", &addr, &establishment),
            )
            .await?;
            println!("{addr} is in the care of {establishment}");
        }
    }
    Ok(())
}

/// `mes trust import`'s signature rule: with `trust.whitelist_signing_cert`
/// set, `xml` must come with a signature file that verifies; without it, a
/// signature given is an error (nothing to check it with).
fn check_signature(
    config: &Config,
    xml: &[u8],
    signature: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use crate::trust::signature::{SignatureError, Signer};
    match (&config.trust.whitelist_signing_cert, signature) {
        (None, None) => Ok(()),
        (None, Some(_)) => {
            bail!("--signature needs trust.whitelist_signing_cert in the configuration")
        }
        (Some(_), None) => Err(SignatureError::Missing(
            "trust.whitelist_signing_cert is set: give --signature".into(),
        )
        .into()),
        (Some(cert), Some(sig)) => {
            let sig = std::fs::read(sig)
                .map_err(|e| SignatureError::Missing(format!("{}: {e}", sig.display())))?;
            Signer::load(cert)?.verify(xml, &sig)?;
            Ok(())
        }
    }
}
