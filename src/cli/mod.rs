//! The command line (clap): every operator command, each in its own file.

mod accounts;
mod directory;
mod dns;
mod init;
mod lifecycle;
mod pki;
mod queue;
mod services;

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::identity::{AccountKind, DomainKind};

/// Where `mes serve` looks when no configuration is named.
pub const DEFAULT_CONFIG: &str = "mes-data/mes.toml";

/// MES: secure health messaging server.
#[derive(Debug, Parser)]
#[command(name = "mes", version, about)]
pub struct Cli {
    /// Configuration file [default: ./mes-data/mes.toml].
    #[arg(long, global = true, env = "MES_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a configuration file and a development PKI into a new folder.
    Init(init::InitArgs),
    /// Run the server (creates ./mes-data with demo accounts on first start when no --config is given).
    Serve,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage hosted domains.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Check the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage the trust space whitelist.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// What to publish in DNS for a hosted domain.
    #[command(subcommand)]
    Dns(DnsCommand),
    /// Inspect and act on the outbound queue.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// The directory (annuaire) of the trust space.
    #[command(subcommand)]
    Directory(directory::DirectoryCommand),
    /// Load tools: measure a running server.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The audit trail: check its hash chain.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Care teams of establishments (who may read their patients' records).
    #[command(subcommand)]
    Careteam(CareteamCommand),
    /// The development PKI: revoke a certificate.
    #[command(subcommand)]
    Pki(pki::PkiCommand),
    /// Create patient spaces by opt-out from a beneficiaries file (CSV or
    /// NDJSON): each new space is informed (notice with an opposition code)
    /// and opens at the end of the opposition window.
    Provision(lifecycle::ProvisionArgs),
    /// The catalogue of referenced health services (OAuth clients).
    #[command(subcommand)]
    Service(services::ServiceCommand),
    /// Record a beneficiary's opposition to the creation of their space
    /// (before it opens; afterwards opposing closes it, archived).
    Oppose {
        /// The beneficiary's INS.
        ins: String,
    },
    /// Close a patient space: login, mail and professionals' access stop;
    /// the content is archived `lifecycle.archive_years`, then purged.
    Close {
        /// The patient's INS.
        ins: String,
        /// Purge the content now instead of archiving it.
        #[arg(long)]
        destroy: bool,
    },
    /// Reopen a closed patient space within its archive period.
    Reopen {
        /// The patient's INS.
        ins: String,
    },
    /// Legal representatives of a minor (they act in the child's space
    /// from their own login until the child turns 18).
    #[command(subcommand)]
    Representative(RepresentativeCommand),
    /// Export a whole patient space (messages as mbox, dossier as IHE XDM,
    /// profile and agenda as FHIR, access history as CSV) into a zip file,
    /// the same archive the patient downloads; audited.
    Export {
        /// The patient's INS.
        ins: String,
        /// The zip file to write.
        file: PathBuf,
    },
}

/// `mes representative …`
#[derive(Debug, clap::Subcommand)]
pub enum RepresentativeCommand {
    /// Make a patient a representative of a child.
    Add {
        /// The child's INS.
        child_ins: String,
        /// The representative's address (an existing patient account).
        parent_address: String,
    },
    /// End a representation.
    Remove {
        /// The child's INS.
        child_ins: String,
        /// The representative's address.
        parent_address: String,
    },
}

/// `mes audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain, the stored head, the sealed checkpoints (with
    /// the key of `audit.key_file`) and any published heads given.
    Verify {
        /// A head published earlier, as `mes audit head` printed it
        /// (`ID:HASH`); may be given several times.
        #[arg(long = "anchor", value_name = "ID:HASH")]
        anchors: Vec<String>,
    },
    /// Print the current head (`ID:HASH`) for anchoring outside the server
    /// (publish it daily; give it to `verify --anchor` later).
    Head,
}

/// `mes careteam …`
#[derive(Debug, Subcommand)]
pub enum CareteamCommand {
    /// Add a professional to an establishment's care team.
    Member {
        /// The establishment (a name the operator chooses, e.g. its FINESS).
        establishment: String,
        /// The professional's address.
        professional: String,
    },
    /// Put a patient in an establishment's care.
    Patient {
        /// The establishment.
        establishment: String,
        /// The patient's address.
        patient: String,
    },
}

/// `mes queue …`
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// List queued recipients (pending only, unless --all).
    List {
        /// Include sent and failed rows.
        #[arg(long)]
        all: bool,
    },
    /// Show one queue row.
    Show {
        /// Row id (from `mes queue list`).
        id: i64,
    },
    /// Retry a pending row now.
    Retry {
        /// Row id.
        id: i64,
    },
    /// Remove a row (no DSN is sent).
    Delete {
        /// Row id.
        id: i64,
    },
}

/// `mes bench …`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Concurrent TLS SMTP sessions sending messages; prints msg/s and p50/p99 latency.
    Smtp(crate::bench::smtp::SmtpBenchArgs),
    /// IMAP: header FETCH of a large mailbox, mixed workload, memory of idle IDLE connections.
    Imap(crate::bench::imap::ImapBenchArgs),
    /// Provision generated beneficiaries (valid INS and traits) into the
    /// configured store and print the rate, or write them to a file.
    Provision(lifecycle::BenchProvisionArgs),
    /// Import a generated directory extract into the configured store and
    /// print the time (or write the extract to a file).
    Directory(directory::BenchDirectoryArgs),
}

/// `mes user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. Without --password-stdin a password is generated and
    /// printed once; for a patient, an activation code instead.
    Add {
        /// The address (a patient's local part is the INS matricule).
        address: String,
        /// Kind of account.
        #[arg(long, value_parser = parse_kind)]
        kind: AccountKind,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Profession (professionals).
        #[arg(long)]
        profession: Option<String>,
        /// RPPS number (professionals).
        #[arg(long)]
        rpps: Option<String>,
        /// Subject DN of a client certificate mapped to this account (SASL EXTERNAL,
        /// relaying systems, professional API), in any usual form: `CN=a, O=b, C=FR`,
        /// OpenSSL's `C=FR,O=b,CN=a` (-nameopt RFC2253), `C = FR, O = b, CN = a` or `/C=FR/O=b/CN=a`.
        #[arg(long, value_name = "DN", conflicts_with = "certificate")]
        certificate_subject: Option<String>,
        /// A PEM certificate whose subject is mapped to this account (instead of --certificate-subject).
        #[arg(long, value_name = "FILE.pem")]
        certificate: Option<PathBuf>,
        /// The establishment a professional acts for (e.g. "CHU de Test").
        #[arg(long)]
        establishment: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts.
    List,
    /// Set a new password (generated and printed once unless --password-stdin).
    Passwd {
        /// The account.
        address: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Mark (or, with --off, unmark) a professional as a SAMU / Centre 15
    /// regulating physician: emergency access to records unless the patient refused it.
    Regulator {
        /// The professional's address.
        address: String,
        /// Remove the mark.
        #[arg(long)]
        off: bool,
    },
    /// Give a professional a second factor (TOTP) for API tokens; prints the
    /// secret and its otpauth:// URI once (a new one voids the old).
    Totp {
        /// The professional's address.
        address: String,
    },
    /// Issue a new activation code for a patient space (voids the previous one).
    Activation {
        /// The patient's address.
        address: String,
    },
    /// Show an account's storage quota (usage and limits), or set its
    /// limits: `--storage 500M` (octets, or K, M, G, T: powers of 1024),
    /// `--messages 100000`; `none` for no limit, `default` for `[quota]`'s.
    Quota {
        /// The account.
        address: String,
        /// Storage limit, all folders together.
        #[arg(long, value_name = "SIZE|none|default")]
        storage: Option<String>,
        /// Message count limit, all folders together.
        #[arg(long, value_name = "N|none|default")]
        messages: Option<String>,
    },
    /// Disable an account: no login, no delivery; mail is kept.
    Disable {
        /// The account.
        address: String,
    },
    /// Map a client certificate to an account (replacing any previous mapping),
    /// or remove the mapping: `mes user certificate ADDRESS FILE.pem`,
    /// `… ADDRESS --subject DN`, `… ADDRESS --remove`.
    Certificate {
        /// The account.
        address: String,
        /// A PEM certificate whose subject is mapped.
        #[arg(value_name = "FILE.pem", required_unless_present_any = ["subject", "remove"], conflicts_with_all = ["subject", "remove"])]
        file: Option<PathBuf>,
        /// The subject DN, in any usual form (see `mes user add --certificate-subject`).
        #[arg(long, value_name = "DN", conflicts_with = "remove")]
        subject: Option<String>,
        /// Remove the mapping.
        #[arg(long)]
        remove: bool,
    },
}

/// `mes domain …`
#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    /// Host a new domain.
    Add {
        /// The domain.
        domain: String,
        /// Who has addresses in it.
        #[arg(long, value_parser = parse_domain_kind)]
        kind: DomainKind,
    },
    /// List hosted domains.
    List,
}

/// `mes config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration file, its certificates and the database
    /// connection; with `[server] mode = "production"`, also refuse
    /// development or self-signed certificates, missing revocation lists and
    /// metrics on a public address (as `mes serve` does).
    Check,
}

/// `mes dns …`
#[derive(Debug, Subcommand)]
pub enum DnsCommand {
    /// Print the records to publish for DOMAIN: MX, RFC 6186 SRV,
    /// autoconfig/autodiscover, MTA-STS and TLS-RPT, with comments.
    Records {
        /// A hosted domain.
        domain: String,
    },
}

/// `mes trust …`
#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Load the published XML whitelist (replaces the previous import).
    Import {
        /// The XML file.
        file: PathBuf,
        /// Its detached signature (required when `trust.whitelist_signing_cert` is set).
        #[arg(long, value_name = "SIG")]
        signature: Option<PathBuf>,
    },
    /// Show the whitelist in force (configuration and import).
    List,
}

fn parse_kind(s: &str) -> Result<AccountKind, String> {
    s.parse()
        .map_err(|e: crate::identity::UnknownKind| e.to_string())
}

fn parse_domain_kind(s: &str) -> Result<DomainKind, String> {
    s.parse()
        .map_err(|_| format!("unknown domain kind `{s}` (professional or patient)"))
}

/// Entry point of the binary: runs the command, prints a one-line reason on failure.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mes: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("mes: {}", chain.join(": ").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init(args) => init::run(args),
        Command::Serve => {
            let path = match cli.config {
                Some(p) => p,
                None => init::ensure_default(PathBuf::from(DEFAULT_CONFIG)).await?,
            };
            let config = Config::load(&path)?;
            production_check(&config)?;
            crate::logging::init(&config.log);
            crate::server::serve(config).await
        }
        Command::User(cmd) => accounts::user(&load(cli.config)?, cmd).await,
        Command::Domain(cmd) => accounts::domain(&load(cli.config)?, cmd).await,
        Command::Config(ConfigCommand::Check) => {
            let config = load(cli.config)?;
            production_check(&config)?;
            let revocation = crate::tls::revocation::Revocation::load(
                &config.tls.crl_files,
                &config.tls.trust_anchors,
            )?;
            crate::tls::server_config(&config.tls, crate::tls::ClientAuth::Required, &revocation)?;
            if let Some(cert) = &config.trust.whitelist_signing_cert {
                crate::trust::signature::Signer::load(cert)?;
            }
            let store = crate::store::Store::open(&config.database_url, 1).await?;
            store.close().await;
            let mode = match config.mode {
                crate::config::ServerMode::Production => "production",
                crate::config::ServerMode::Development => "development",
            };
            println!("{}: OK ({mode})", config.path.display());
            Ok(())
        }
        Command::Dns(DnsCommand::Records { domain }) => {
            dns::records(&load(cli.config)?, &domain).await
        }
        Command::Trust(cmd) => accounts::trust(&load(cli.config)?, cmd).await,
        Command::Audit(AuditCommand::Verify { anchors }) => {
            accounts::audit_verify(&load(cli.config)?, &anchors).await
        }
        Command::Audit(AuditCommand::Head) => accounts::audit_head(&load(cli.config)?).await,
        Command::Careteam(cmd) => accounts::careteam(&load(cli.config)?, cmd).await,
        Command::Queue(cmd) => queue::run(&load(cli.config)?, cmd).await,
        Command::Directory(cmd) => directory::run(&load(cli.config)?, cmd).await,
        Command::Bench(BenchCommand::Directory(args)) => {
            directory::bench(&load(cli.config)?, args).await
        }
        Command::Pki(cmd) => pki::run(&load(cli.config)?, cmd),
        Command::Bench(BenchCommand::Smtp(args)) => {
            let report = crate::bench::smtp::run(args).await?;
            println!("{report}");
            Ok(())
        }
        Command::Bench(BenchCommand::Imap(args)) => crate::bench::imap::run(args).await,
        Command::Bench(BenchCommand::Provision(args)) => {
            lifecycle::bench(&load(cli.config)?, args).await
        }
        Command::Provision(args) => lifecycle::provision(&load(cli.config)?, args).await,
        Command::Service(cmd) => services::run(&load(cli.config)?, cmd).await,
        Command::Oppose { ins } => lifecycle::oppose(&load(cli.config)?, &ins).await,
        Command::Close { ins, destroy } => {
            lifecycle::close(&load(cli.config)?, &ins, destroy).await
        }
        Command::Reopen { ins } => lifecycle::reopen(&load(cli.config)?, &ins).await,
        Command::Representative(RepresentativeCommand::Add {
            child_ins,
            parent_address,
        }) => {
            lifecycle::representative(&load(cli.config)?, true, &child_ins, &parent_address).await
        }
        Command::Representative(RepresentativeCommand::Remove {
            child_ins,
            parent_address,
        }) => {
            lifecycle::representative(&load(cli.config)?, false, &child_ins, &parent_address).await
        }
        Command::Export { ins, file } => lifecycle::export(&load(cli.config)?, &ins, &file).await,
    }
}

/// In production mode, refuses a configuration with development or
/// self-signed certificates, a trust anchor without a revocation list or
/// metrics on a public address, naming every key at fault.
fn production_check(config: &Config) -> anyhow::Result<()> {
    if config.mode != crate::config::ServerMode::Production {
        return Ok(());
    }
    let problems = crate::config::production::check(config);
    if problems.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
    anyhow::bail!(
        "{}: not fit for production ([server] mode = \"production\"): {}",
        config.path.display(),
        list.join("; ")
    )
}

fn load(path: Option<PathBuf>) -> anyhow::Result<Config> {
    let path = path.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    Ok(Config::load(&path)?)
}

/// Reads one line of standard input (for `--password-stdin`), without its line ending.
fn read_password_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
