//! `mes init`: a configuration file, a development PKI (with an empty revocation
//! list) and an empty store; and
//! the first start of `mes serve` without `--config`, which adds demo accounts.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use crate::address::normalize_domain;
use crate::audit::{self, AuditEntry};
use crate::config::{Config, ExampleValues, render_example};
use crate::identity::ins::Ins;
use crate::identity::{AccountKind, DomainKind, password};
use crate::store::Store;
use crate::store::accounts::NewAccount;

/// Arguments of `mes init`.
#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// Folder to create (mes.toml, certs/, data/).
    pub dir: PathBuf,
    /// Professional mail domain.
    #[arg(long, default_value = "hopital-a.mes.test")]
    pub domain: String,
    /// Patient mail domain.
    #[arg(long, default_value = "patient.mes.test")]
    pub patient_domain: String,
    /// Host name of this server (repeat for more names in the certificate) [default: mx.DOMAIN].
    #[arg(long)]
    pub hostname: Vec<String>,
    /// Operator name (organisation of the operator certificate).
    #[arg(long, default_value = "Operateur MES")]
    pub operator: String,
    /// Sign with the CA of an earlier `mes init` (two instances, one trust space).
    #[arg(long, value_name = "OTHER_DIR")]
    pub ca: Option<PathBuf>,
    /// Overwrite an existing folder.
    #[arg(long)]
    pub force: bool,
}

/// Runs `mes init`.
pub(super) fn run(args: InitArgs) -> anyhow::Result<()> {
    let path = write(&args)?;
    println!("wrote {}", path.display());
    println!("next: mes serve --config {}", path.display());
    Ok(())
}

/// Writes the folder; returns the configuration file's path.
fn write(args: &InitArgs) -> anyhow::Result<PathBuf> {
    let domain = normalize_domain(&args.domain)?;
    let patient_domain = normalize_domain(&args.patient_domain)?;
    if domain == patient_domain {
        bail!("--domain and --patient-domain must differ");
    }
    let mut hostnames: Vec<String> = if args.hostname.is_empty() {
        vec![format!("mx.{domain}")]
    } else {
        args.hostname
            .iter()
            .map(|h| normalize_domain(h).map_err(anyhow::Error::from))
            .collect::<anyhow::Result<_>>()?
    };
    hostnames.dedup();
    let dir = &args.dir;
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
        && !args.force
    {
        bail!(
            "{} already exists (use --force to overwrite)",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir.join("certs"))
        .with_context(|| format!("creating {}", dir.display()))?;
    crate::store::create_private_dir(&dir.join("data"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let pki = crate::pki::init_dev_pki(
        &dir.join("certs"),
        &hostnames,
        &args.operator,
        args.ca.as_deref(),
    )?;
    // An empty revocation list of the CA, which `tls.crl_files` names and
    // `mes pki revoke` extends.
    let ca = crate::pki::Ca::load(&pki.ca_pem, &pki.ca_key)?;
    let crl = dir.join("certs").join(super::pki::DEV_CRL_FILE);
    std::fs::write(&crl, crate::tls::revocation::empty_crl(&ca)?)
        .with_context(|| format!("writing {}", crl.display()))?;
    let text = render_example(&ExampleValues {
        hostname: &hostnames[0],
        operator: &args.operator,
        domain: &domain,
        patient_domain: &patient_domain,
        operator2_dn: &pki.operator2_dn,
        own_dn: &pki.server_dn,
    });
    // The key that seals the audit trail, outside the database (`[audit] key_file`).
    crate::audit::seal::SealKey::load_or_create(&dir.join("certs").join("audit.key"))?;
    // The key that encrypts stored secrets (`[secrets] key_file`).
    crate::keyfile::load_or_create(&dir.join("certs").join("secrets.key"))?;
    let path = dir.join("mes.toml");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    // The store is created by the first command that opens it; the domains are recorded then.
    std::fs::write(
        dir.join("data").join("init-domains"),
        format!("{domain} professional\n{patient_domain} patient\n"),
    )?;
    Ok(path)
}

/// Records the domains `init` chose, once, in a new store.
pub(super) async fn seed_domains(
    config: &Config,
    store: &Store,
) -> anyhow::Result<Vec<(String, DomainKind)>> {
    let marker = config.data_dir.join("init-domains");
    let Ok(text) = std::fs::read_to_string(&marker) else {
        return Ok(Vec::new());
    };
    let mut added = Vec::new();
    for line in text.lines() {
        let Some((name, kind)) = line.split_once(' ') else {
            continue;
        };
        let kind: DomainKind = kind
            .parse()
            .map_err(|e: crate::identity::UnknownKind| anyhow::anyhow!(e))?;
        match store.add_domain(name, kind).await {
            Ok(()) | Err(crate::store::StoreError::Conflict(_)) => {
                added.push((name.to_string(), kind))
            }
            Err(e) => return Err(e.into()),
        }
    }
    std::fs::remove_file(&marker).with_context(|| format!("removing {}", marker.display()))?;
    Ok(added)
}

/// The demo patient of the development setup: the ANS test patient of the corpus.
const DEMO_INS: &str = "279035121518989";

/// `mes serve` without `--config`: make `./mes-data` on first start, with demo accounts.
pub(super) async fn ensure_default(path: PathBuf) -> anyhow::Result<PathBuf> {
    if path.exists() {
        return Ok(path);
    }
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let args = InitArgs {
        dir,
        domain: "hopital-a.mes.test".into(),
        patient_domain: "patient.mes.test".into(),
        hostname: vec!["mx.hopital-a.mes.test".into()],
        operator: "Operateur MES".into(),
        ca: None,
        force: false,
    };
    let path = write(&args)?;
    let config = Config::load(&path)?;
    let store = Store::open(&config.database_url, 2).await?;
    seed_domains(&config, &store).await?;
    let ins = Ins::parse(DEMO_INS)?;
    let demo = [
        (
            "jean.dupont@hopital-a.mes.test".to_string(),
            AccountKind::Professional,
            "Dr Jean Dupont",
            Some("Médecin généraliste"),
            None,
        ),
        (
            format!("{}@patient.mes.test", ins.as_str()),
            AccountKind::Patient,
            "Dominique Pat-Trois",
            None,
            Some(ins.as_str().to_string()),
        ),
    ];
    println!(
        "First start: created {} with a development PKI.",
        path.display()
    );
    for (address, kind, name, profession, ins) in demo {
        let pw = password::generate();
        store
            .create_account(&NewAccount {
                domain: address
                    .rsplit_once('@')
                    .map(|(_, d)| d.to_string())
                    .unwrap_or_default(),
                address: address.clone(),
                kind,
                display_name: name.into(),
                profession: profession.map(str::to_string),
                rpps: None,
                ins,
                password_hash: Some(password::hash(&pw)?),
                cert_subject: None,
            })
            .await?;
        audit::append(
            &store,
            &AuditEntry::new("operator", "account.create", &address, "demo account"),
        )
        .await?;
        println!("  demo {kind}: {address}  password: {pw}  (shown once)");
    }
    store.close().await;
    Ok(path)
}
