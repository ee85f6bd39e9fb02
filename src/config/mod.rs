//! The TOML configuration file, validated into typed settings.
//!
//! Every key is documented in the commented example that `mes init` writes
//! ([`render_example`]). Unknown keys and bad values are errors that name the
//! key and the line, because operators edit this file by hand.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::de::{DeTable, DeValue};

mod clients;
pub mod dns;
mod example;
pub mod production;
mod quota;

pub use clients::{ClientEndpoints, Endpoint, PortOf};
pub use example::{ExampleValues, render_example};
pub use quota::{QuotaSettings, parse_count, parse_storage};

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key or a value of the wrong type.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the key and the line.
        message: String,
    },
    /// A value that parses but cannot be used.
    #[error("{path}:{line}:{column}: `{key}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Line of the key, from 1 (0 when the key is absent).
        line: usize,
        /// Column of the key, from 1 (0 when the key is absent).
        column: usize,
        /// Dotted key name.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Whether a listener asks for a client certificate.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientCertPolicy {
    /// The handshake fails without a certificate chaining to the trust anchors.
    #[default]
    Required,
    /// A certificate is verified when presented, but may be absent.
    Optional,
}

/// `[database]`: where the store lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://…` or `postgres://…`; absent means `DATA_DIR/mes.db`.
    pub url: Option<String>,
    /// Upper bound of pooled connections.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: default_max_connections(),
        }
    }
}

fn default_max_connections() -> u32 {
    16
}

/// `[tls]`: our certificate and the trust anchors (IGC-Santé in production).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain presented by every listener and as our client certificate.
    pub certificate: PathBuf,
    /// PEM private key of `certificate`.
    pub private_key: PathBuf,
    /// PEM files of the certification authorities whose certificates we accept.
    pub trust_anchors: Vec<PathBuf>,
    /// Certificate revocation lists (PEM or DER): client certificates and the
    /// servers we relay to are refused when listed. Empty: no revocation check.
    #[serde(default)]
    pub crl_files: Vec<PathBuf>,
    /// Seconds between re-reads of `crl_files` (also re-read on SIGHUP).
    #[serde(default = "default_crl_reload_secs")]
    pub crl_reload_secs: u64,
}

fn default_crl_reload_secs() -> u64 {
    300
}

/// `[listen]`: one `"ADDR:PORT"` per listener; an absent key is a listener that is off.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenSettings {
    /// SMTP for other operators and relaying hospital systems (STARTTLS, mutual TLS).
    pub mx: Option<String>,
    /// SMTP submission with STARTTLS.
    pub submission: Option<String>,
    /// SMTP submission over implicit TLS.
    pub submissions: Option<String>,
    /// IMAP with STARTTLS.
    pub imap: Option<String>,
    /// IMAP over implicit TLS.
    pub imaps: Option<String>,
    /// HTTPS (webmail and API).
    pub https: Option<String>,
    /// Plain HTTP for Prometheus (`/metrics`) and probes (`/healthz`,
    /// `/readyz`); off when absent. Loopback only unless `metrics_public`.
    pub metrics: Option<String>,
    /// Allows `metrics` on an address other than loopback (the metrics have
    /// no authentication: put a firewall or a proxy in front).
    #[serde(default)]
    pub metrics_public: bool,
}

/// `[server] mode`: what `mes config check` and `mes serve` demand of the files.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ServerMode {
    /// The development PKI of `mes init` is fine.
    #[default]
    Development,
    /// Development or self-signed certificates, a missing CRL or metrics on
    /// a public address stop the server (`config::production`).
    Production,
}

/// `[server]`: how this instance is run.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// `development` (default) or `production`.
    pub mode: ServerMode,
}

/// `[clients]`: what mail clients are told (autoconfiguration, `mes dns
/// records`): the public names and ports, which may differ from the bound
/// addresses behind a load balancer. Absent: the host name and the port of
/// the listener (none when the listener is off).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSettings {
    /// Host name of the IMAP service.
    pub imap_host: Option<String>,
    /// Host name of the submission service.
    pub smtp_host: Option<String>,
    /// IMAP over implicit TLS (993 in production).
    pub imaps_port: Option<u16>,
    /// IMAP with STARTTLS (143).
    pub imap_port: Option<u16>,
    /// Submission over implicit TLS (465, preferred by RFC 8314).
    pub submissions_port: Option<u16>,
    /// Submission with STARTTLS (587).
    pub submission_port: Option<u16>,
}

/// `[smtp]`: limits and policy of the SMTP listeners.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSettings {
    /// Largest message accepted, in octets (announced with SIZE).
    pub max_message_size: usize,
    /// Most recipients of one message.
    pub max_recipients: usize,
    /// Most simultaneous connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Most simultaneous SMTP connections in all.
    pub max_connections: usize,
    /// Client certificate policy on the MX listener.
    pub mx_client_certificate: ClientCertPolicy,
    /// Seconds a client may stay silent while a command is expected (RFC 5321 §4.5.3.2: 5 min).
    pub command_timeout_secs: u64,
    /// Seconds a client may stay silent while sending message data (RFC 5321: 3 min per block).
    pub data_timeout_secs: u64,
    /// Longest session, whatever the client does, in seconds.
    pub session_timeout_secs: u64,
    /// Failed logins for one account from one IP address before that pair is
    /// locked out (failures from other addresses never lock the account for
    /// this one). Counted in the database: shared by nodes, kept across restarts.
    pub auth_failures_before_lockout: u32,
    /// Failed logins from one IP address, whatever the account, before the address is locked out.
    pub auth_ip_failures_before_lockout: u32,
    /// Seconds a failure is remembered and a locked pair or address stays locked.
    pub auth_lockout_secs: u64,
    /// Organisation mailboxes that named accounts may send as: mailbox -> accounts.
    pub delegations: BTreeMap<String, Vec<String>>,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            max_message_size: 50 * 1024 * 1024,
            max_recipients: 100,
            max_connections_per_ip: 50,
            max_connections: 2000,
            mx_client_certificate: ClientCertPolicy::Required,
            command_timeout_secs: 300,
            data_timeout_secs: 180,
            session_timeout_secs: 3600,
            auth_failures_before_lockout: 5,
            auth_ip_failures_before_lockout: 20,
            auth_lockout_secs: 300,
            delegations: BTreeMap::new(),
        }
    }
}

/// `[imap]`: limits of the IMAP listeners.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImapSettings {
    /// Most simultaneous IMAP connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Most simultaneous IMAP connections in all.
    pub max_connections: usize,
    /// Longest command line outside literals, in octets with its CRLF (RFC 7162 §4:
    /// at least 8192). Literals are bounded by `smtp.max_message_size`.
    pub max_command_line: usize,
    /// MiB of memory, in all folders, for header FETCHes of large folders
    /// (`imap::listing`; about 300 octets per message); 0 turns it off.
    pub listing_cache_mb: usize,
    /// Seconds from connection to login, however the client trickles its bytes.
    pub login_timeout_secs: u64,
    /// Seconds between two checks that a logged-in session's account is still
    /// enabled with the same credentials (before a command, and while idling,
    /// when an idling session also catches up with its folder).
    pub recheck_secs: u64,
}

/// The smallest `imap.max_command_line` accepted (RFC 7162 §4).
pub const MIN_IMAP_COMMAND_LINE: usize = 8192;

impl Default for ImapSettings {
    fn default() -> Self {
        Self {
            max_connections_per_ip: 100,
            max_connections: 10_000,
            max_command_line: 64 * 1024,
            listing_cache_mb: 64,
            login_timeout_secs: 60,
            recheck_secs: 30,
        }
    }
}

/// `[https]`: limits of the HTTPS listener (webmail and APIs), the same kind
/// as SMTP's and IMAP's, so that idle or slow clients cannot exhaust it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpsSettings {
    /// Most simultaneous HTTPS connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Most simultaneous HTTPS connections in all.
    pub max_connections: usize,
    /// Seconds to receive a request's headers, and the longest idle keep-alive.
    pub header_read_timeout_secs: u64,
    /// Seconds for a whole request, body included, and its answer.
    pub request_timeout_secs: u64,
}

impl Default for HttpsSettings {
    fn default() -> Self {
        Self {
            max_connections_per_ip: 100,
            max_connections: 10_000,
            header_read_timeout_secs: 30,
            request_timeout_secs: 300,
        }
    }
}

/// `[audit]`: the key that seals the audit trail, kept outside the database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// The sealing key (created 0600 by `mes init` or the first `mes serve`);
    /// relative paths are taken from the configuration's folder.
    pub key_file: PathBuf,
    /// Seconds between sealed checkpoints of the trail's head.
    pub checkpoint_secs: u64,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            key_file: PathBuf::from("certs/audit.key"),
            checkpoint_secs: 300,
        }
    }
}

/// `[secrets]`: the key that encrypts the secrets the database keeps (the
/// professionals' TOTP secrets), kept outside the database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsSettings {
    /// The key file (created 0600 by `mes init` or the first `mes serve`);
    /// relative paths are taken from the configuration's folder.
    pub key_file: PathBuf,
}

impl Default for SecretsSettings {
    fn default() -> Self {
        Self {
            key_file: PathBuf::from("certs/secrets.key"),
        }
    }
}

/// `[relay]`: delivery to the other operators of the trust space.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelaySettings {
    /// Static routes: domain -> "HOST:PORT" (tests, smart hosts); others use MX records.
    pub routes: BTreeMap<String, String>,
    /// DNS servers ("IP:PORT") for MX lookups; empty: the system's resolv.conf.
    pub dns: Vec<String>,
    /// Port of the hosts found by MX lookup (25 in production).
    pub mx_port: u16,
    /// Seconds between attempts: the n-th retry waits the n-th value; the last repeats.
    pub retry_schedule_secs: Vec<u64>,
    /// Seconds after which an undelivered message is returned to its sender.
    pub expire_secs: u64,
    /// Seconds after which the sender is told of the delay (once).
    pub delay_dsn_secs: u64,
    /// Most simultaneous outbound connections.
    pub max_connections: usize,
    /// Most simultaneous connections to one domain.
    pub max_connections_per_domain: usize,
    /// Seconds allowed for connecting and for each reply.
    pub timeout_secs: u64,
    /// This node's name in queue leases (several nodes on one PostgreSQL need distinct names);
    /// default: the machine's host name.
    pub node_id: Option<String>,
    /// Seconds a node holds the queue rows it claimed (renewed before each
    /// message) before another node may take them over: how long the mail of a
    /// crashed node waits. Keep it well above `timeout_secs`.
    pub lease_secs: u64,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            routes: BTreeMap::new(),
            dns: Vec::new(),
            mx_port: 25,
            retry_schedule_secs: vec![120, 300, 900, 1800, 3600, 7200, 14400],
            expire_secs: 5 * 24 * 3600,
            delay_dsn_secs: 4 * 3600,
            max_connections: 64,
            max_connections_per_domain: 4,
            timeout_secs: 60,
            node_id: None,
            lease_secs: 300,
        }
    }
}

/// `[notify]`: content-free notices to patients' personal addresses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySettings {
    /// "HOST:PORT" of the smarthost; absent: no notices.
    pub smarthost: Option<String>,
    /// Require STARTTLS with the smarthost.
    pub starttls: bool,
    /// Sender of the notices.
    pub from: String,
    /// At most one notice per patient in this many seconds.
    pub window_secs: u64,
    /// How often the agenda's reminders are looked for (`agenda::reminders`).
    pub reminder_interval_secs: u64,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            smarthost: None,
            starttls: true,
            from: "Espace sante <ne-pas-repondre@mes.test>".into(),
            window_secs: 900,
            reminder_interval_secs: 300,
        }
    }
}

/// `[patients]`: the patient space.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PatientSettings {
    /// Largest attachment a patient may send, in octets.
    pub max_attachment_size: usize,
    /// Seconds of inactivity after which a patient session ends.
    pub session_idle_secs: u64,
    /// Seconds after login at which a patient session (web or API) ends, however active.
    pub session_max_secs: u64,
    /// Days an activation code stays valid.
    pub activation_valid_days: u32,
}

impl Default for PatientSettings {
    fn default() -> Self {
        Self {
            max_attachment_size: 5 * 1024 * 1024,
            session_idle_secs: 900,
            session_max_secs: 12 * 3600,
            activation_valid_days: 30,
        }
    }
}

/// `[lifecycle]`: patient spaces created by opt-out (`lifecycle/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleSettings {
    /// Days between the information notice and the opening of a space,
    /// during which the patient may oppose (six weeks by default).
    pub opposition_days: u32,
    /// Seconds between two passes of `mes serve`'s lifecycle tasks
    /// (opening, purge of archives, end of representations at 18).
    pub open_check_secs: u64,
    /// Years a closed space's content is kept (and may be reopened) before
    /// it is purged; 1 to 100.
    pub archive_years: u32,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        Self {
            opposition_days: 42,
            open_check_secs: 60,
            archive_years: 10,
        }
    }
}

/// `[access]`: emergency access to patients' records (`access/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessSettings {
    /// Professions whose professionals may break the glass: each entry is a
    /// profession name, matched as a prefix of the account's profession without
    /// regard to case, accents, hyphens or spaces (`médecin` matches
    /// "Médecin urgentiste", `infirmier` matches "Infirmière"), or a numeric
    /// profession code (RPPS: 10 médecin, 21 pharmacien, 50 sage-femme,
    /// 60 infirmier), matched exactly.
    pub break_glass_professions: Vec<String>,
    /// Break-glass accesses one professional may open per hour (all patients); 0: none.
    pub break_glass_per_hour: u32,
    /// Seconds a break-glass access stays open for reads of that patient's record.
    pub break_glass_valid_secs: u64,
}

impl Default for AccessSettings {
    fn default() -> Self {
        Self {
            break_glass_professions: ["médecin", "infirmier", "sage-femme", "pharmacien"]
                .into_iter()
                .map(String::from)
                .collect(),
            break_glass_per_hour: 5,
            break_glass_valid_secs: 3600,
        }
    }
}

/// One whitelist entry written in the configuration (the published XML is imported with `mes trust import`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhitelistItem {
    /// A domain of the trust space.
    pub domain: String,
    /// Subject DN of the operator certificate allowed to send for that domain.
    pub operator_dn: String,
}

/// `[trust]`: the trust space known from the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustSettings {
    /// Whitelist entries in addition to the imported ones.
    #[serde(default)]
    pub whitelist: Vec<WhitelistItem>,
    /// Where `mes serve` refreshes the imported whitelist from: a local path
    /// or an `https://` URL (the published XML); absent: only `mes trust import`.
    #[serde(default)]
    pub whitelist_url: Option<String>,
    /// Seconds between refreshes (the first one at start).
    #[serde(default = "default_refresh_secs")]
    pub refresh_secs: u64,
}

fn default_refresh_secs() -> u64 {
    3600
}

impl Default for TrustSettings {
    fn default() -> Self {
        Self {
            whitelist: Vec::new(),
            whitelist_url: None,
            refresh_secs: default_refresh_secs(),
        }
    }
}

/// `[log]`: log output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `mes=debug,info`.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// The file as written by the operator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    hostname: String,
    operator: String,
    #[serde(default = "default_data_dir")]
    data_dir: PathBuf,
    #[serde(default = "default_shutdown_grace")]
    shutdown_grace_secs: u64,
    #[serde(default)]
    database: DatabaseSettings,
    tls: TlsSettings,
    #[serde(default)]
    listen: ListenSettings,
    #[serde(default)]
    smtp: SmtpSettings,
    #[serde(default)]
    imap: ImapSettings,
    #[serde(default)]
    quota: quota::RawQuotaSettings,
    #[serde(default)]
    https: HttpsSettings,
    #[serde(default)]
    relay: RelaySettings,
    #[serde(default)]
    notify: NotifySettings,
    #[serde(default)]
    patients: PatientSettings,
    #[serde(default)]
    lifecycle: LifecycleSettings,
    #[serde(default)]
    access: AccessSettings,
    #[serde(default)]
    trust: TrustSettings,
    #[serde(default)]
    audit: AuditSettings,
    #[serde(default)]
    secrets: SecretsSettings,
    #[serde(default)]
    log: LogSettings,
    #[serde(default)]
    server: ServerSettings,
    #[serde(default)]
    clients: ClientSettings,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

fn default_shutdown_grace() -> u64 {
    20
}

/// Listener addresses after validation.
#[derive(Debug, Clone, Default)]
pub struct Listeners {
    /// See [`ListenSettings::mx`].
    pub mx: Option<SocketAddr>,
    /// See [`ListenSettings::submission`].
    pub submission: Option<SocketAddr>,
    /// See [`ListenSettings::submissions`].
    pub submissions: Option<SocketAddr>,
    /// See [`ListenSettings::imap`].
    pub imap: Option<SocketAddr>,
    /// See [`ListenSettings::imaps`].
    pub imaps: Option<SocketAddr>,
    /// See [`ListenSettings::https`].
    pub https: Option<SocketAddr>,
    /// See [`ListenSettings::metrics`].
    pub metrics: Option<SocketAddr>,
    /// See [`ListenSettings::metrics_public`].
    pub metrics_public: bool,
}

/// The validated configuration: paths are absolute, addresses parsed.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// Our host name, used in greetings and Received headers.
    pub hostname: String,
    /// The operator's name (organisation in our certificate).
    pub operator: String,
    /// Where the SQLite database and other local state live.
    pub data_dir: PathBuf,
    /// Seconds sessions get to finish after SIGTERM.
    pub shutdown_grace_secs: u64,
    /// Database URL (resolved: a SQLite file under `data_dir` by default).
    pub database_url: String,
    /// Pool size.
    pub database_max_connections: u32,
    /// TLS files.
    pub tls: TlsSettings,
    /// Listener addresses.
    pub listen: Listeners,
    /// SMTP settings.
    pub smtp: SmtpSettings,
    /// IMAP settings.
    pub imap: ImapSettings,
    /// The quota of accounts that have none of their own.
    pub quota: QuotaSettings,
    /// Limits of the HTTPS listener.
    pub https: HttpsSettings,
    /// Outbound relay settings.
    pub relay: RelaySettings,
    /// Patient notices.
    pub notify: NotifySettings,
    /// The patient space.
    pub patients: PatientSettings,
    /// Opt-out creation of patient spaces.
    pub lifecycle: LifecycleSettings,
    /// Emergency access rules.
    pub access: AccessSettings,
    /// Trust space entries from the file.
    pub trust: TrustSettings,
    /// The audit trail's sealing key and checkpoints.
    pub audit: AuditSettings,
    /// The key that encrypts secrets the database keeps.
    pub secrets: SecretsSettings,
    /// Logging.
    pub log: LogSettings,
    /// Development or production.
    pub mode: ServerMode,
    /// What mail clients are told.
    pub clients: ClientSettings,
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Validates `text`, read from `path` (relative paths are taken from its folder).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let parse_error = |mut e: toml::de::Error| {
            e.set_input(Some(text));
            ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.to_string().trim_end().replace('\n', " "),
            }
        };
        // Parsed once, kept with its spans: errors found after deserializing
        // point at the key that set the value.
        let doc = DeTable::parse(text).map_err(parse_error)?;
        let raw = RawConfig::deserialize(toml::de::Deserializer::from(doc.clone()))
            .map_err(parse_error)?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let base = std::path::absolute(&base).unwrap_or(base);
        // `within`: where inside the key's value (an array index, a table key).
        let invalid_at = |table: Option<&str>, key: &str, within: &[&str], message: String| {
            let located: Vec<&str> = table
                .into_iter()
                .chain([key])
                .chain(within.iter().copied())
                .collect();
            let (line, column) =
                span_of(doc.get_ref(), &located).map_or((0, 0), |s| position(text, s.start));
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                key: match table {
                    Some(t) => format!("{t}.{key}"),
                    None => key.to_string(),
                },
                message,
            }
        };
        let invalid =
            |table: Option<&str>, key: &str, message: String| invalid_at(table, key, &[], message);

        if raw.hostname.trim().is_empty() {
            return Err(invalid(None, "hostname", "must not be empty".into()));
        }
        let data_dir = base.join(&raw.data_dir);
        let database_url = match &raw.database.url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                url.clone()
            }
            Some(url) if url.starts_with("sqlite:") => url.clone(),
            Some(url) => {
                return Err(invalid(
                    Some("database"),
                    "url",
                    format!("`{url}` is neither sqlite:// nor postgres://"),
                ));
            }
            None => format!("sqlite://{}", data_dir.join("mes.db").display()),
        };
        if raw.database.max_connections == 0 {
            return Err(invalid(
                Some("database"),
                "max_connections",
                "must be at least 1".into(),
            ));
        }

        let mut tls = raw.tls.clone();
        tls.certificate = base.join(&tls.certificate);
        tls.private_key = base.join(&tls.private_key);
        tls.trust_anchors = tls.trust_anchors.iter().map(|p| base.join(p)).collect();
        tls.crl_files = tls.crl_files.iter().map(|p| base.join(p)).collect();
        for (key, file) in [
            ("certificate", &tls.certificate),
            ("private_key", &tls.private_key),
        ] {
            if !file.is_file() {
                return Err(invalid(
                    Some("tls"),
                    key,
                    format!("file {} does not exist", file.display()),
                ));
            }
        }
        if tls.trust_anchors.is_empty() {
            return Err(invalid(
                Some("tls"),
                "trust_anchors",
                "at least one trust anchor is needed".into(),
            ));
        }
        for file in &tls.trust_anchors {
            if !file.is_file() {
                return Err(invalid(
                    Some("tls"),
                    "trust_anchors",
                    format!("file {} does not exist", file.display()),
                ));
            }
        }

        for file in &tls.crl_files {
            // A list that does not load is fatal at startup (on reload, the
            // previous lists stay in force).
            if let Err(e) = crate::pki::crl::load_crl_file(file) {
                return Err(invalid(Some("tls"), "crl_files", e.to_string()));
            }
        }
        if tls.crl_reload_secs == 0 {
            return Err(invalid(
                Some("tls"),
                "crl_reload_secs",
                "must be at least 1".into(),
            ));
        }

        let addr = |key: &str, value: &Option<String>| -> Result<Option<SocketAddr>, ConfigError> {
            match value {
                None => Ok(None),
                Some(v) => v.parse::<SocketAddr>().map(Some).map_err(|_| {
                    invalid(
                        Some("listen"),
                        key,
                        format!("`{v}` is not an ADDR:PORT with a port from 0 to 65535"),
                    )
                }),
            }
        };
        let listen = Listeners {
            mx: addr("mx", &raw.listen.mx)?,
            submission: addr("submission", &raw.listen.submission)?,
            submissions: addr("submissions", &raw.listen.submissions)?,
            imap: addr("imap", &raw.listen.imap)?,
            imaps: addr("imaps", &raw.listen.imaps)?,
            https: addr("https", &raw.listen.https)?,
            metrics: addr("metrics", &raw.listen.metrics)?,
            metrics_public: raw.listen.metrics_public,
        };
        if let Some(m) = listen.metrics
            && !m.ip().is_loopback()
            && !listen.metrics_public
        {
            return Err(invalid(
                Some("listen"),
                "metrics",
                format!(
                    "`{m}` is not a loopback address: the metrics have no authentication; \
                     set `listen.metrics_public = true` to serve them there anyway"
                ),
            ));
        }
        for (key, host) in [
            ("imap_host", &raw.clients.imap_host),
            ("smtp_host", &raw.clients.smtp_host),
        ] {
            if let Some(h) = host
                && crate::address::normalize_domain(h).is_err()
            {
                return Err(invalid(
                    Some("clients"),
                    key,
                    format!("`{h}` is not a host name"),
                ));
            }
        }

        for (domain, route) in &raw.relay.routes {
            let ok = route
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !ok {
                return Err(invalid_at(
                    Some("relay"),
                    "routes",
                    &[domain],
                    format!("route of {domain}: `{route}` is not HOST:PORT"),
                ));
            }
        }
        for dns in &raw.relay.dns {
            if dns.parse::<SocketAddr>().is_err() {
                return Err(invalid(
                    Some("relay"),
                    "dns",
                    format!("`{dns}` is not IP:PORT"),
                ));
            }
        }
        if raw.relay.retry_schedule_secs.is_empty() {
            return Err(invalid(
                Some("relay"),
                "retry_schedule_secs",
                "needs at least one delay".into(),
            ));
        }
        let smtp = raw.smtp.clone();
        for (key, value) in [
            ("max_message_size", smtp.max_message_size),
            ("max_recipients", smtp.max_recipients),
            ("max_connections_per_ip", smtp.max_connections_per_ip),
            ("max_connections", smtp.max_connections),
        ] {
            if value == 0 {
                return Err(invalid(Some("smtp"), key, "must be at least 1".into()));
            }
        }
        for (key, value) in [
            (
                "max_connections_per_ip",
                raw.https.max_connections_per_ip as u64,
            ),
            ("max_connections", raw.https.max_connections as u64),
            (
                "header_read_timeout_secs",
                raw.https.header_read_timeout_secs,
            ),
            ("request_timeout_secs", raw.https.request_timeout_secs),
        ] {
            if value == 0 {
                return Err(invalid(Some("https"), key, "must be at least 1".into()));
            }
        }
        if raw.audit.checkpoint_secs == 0 {
            return Err(invalid(
                Some("audit"),
                "checkpoint_secs",
                "must be at least 1".into(),
            ));
        }
        if !(1..=100).contains(&raw.lifecycle.archive_years) {
            return Err(invalid(
                Some("lifecycle"),
                "archive_years",
                "must be between 1 and 100".into(),
            ));
        }
        if raw.patients.session_max_secs == 0 {
            return Err(invalid(
                Some("patients"),
                "session_max_secs",
                "must be at least 1".into(),
            ));
        }
        if raw.imap.max_command_line < MIN_IMAP_COMMAND_LINE {
            return Err(invalid(
                Some("imap"),
                "max_command_line",
                format!("must be at least {MIN_IMAP_COMMAND_LINE} (RFC 7162)"),
            ));
        }
        let quota = raw
            .quota
            .validate()
            .map_err(|(key, message)| invalid(Some("quota"), key, message))?;
        for (i, item) in raw.trust.whitelist.iter().enumerate() {
            let i = i.to_string();
            if crate::address::normalize_domain(&item.domain).is_err() {
                return Err(invalid_at(
                    Some("trust"),
                    "whitelist",
                    &[&i, "domain"],
                    format!("`{}` is not a domain name", item.domain),
                ));
            }
            if let Err(e) = crate::pki::dn::DistinguishedName::parse(&item.operator_dn) {
                return Err(invalid_at(
                    Some("trust"),
                    "whitelist",
                    &[&i, "operator_dn"],
                    format!("operator_dn `{}` of {}: {e}", item.operator_dn, item.domain),
                ));
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&raw.log.level).is_err() {
            return Err(invalid(
                Some("log"),
                "level",
                format!("`{}` is not a log filter", raw.log.level),
            ));
        }

        Ok(Config {
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            hostname: raw.hostname,
            operator: raw.operator,
            data_dir,
            shutdown_grace_secs: raw.shutdown_grace_secs,
            database_url,
            database_max_connections: raw.database.max_connections,
            tls,
            listen,
            smtp,
            imap: raw.imap,
            quota,
            https: raw.https,
            secrets: SecretsSettings {
                key_file: base.join(&raw.secrets.key_file),
            },
            audit: AuditSettings {
                key_file: base.join(&raw.audit.key_file),
                checkpoint_secs: raw.audit.checkpoint_secs,
            },
            relay: raw.relay,
            notify: raw.notify,
            patients: raw.patients,
            lifecycle: raw.lifecycle,
            access: raw.access,
            trust: raw.trust,
            log: raw.log,
            mode: raw.server.mode,
            clients: raw.clients,
        })
    }
}

/// The span of the key at `path` (table keys, or array indexes in decimal),
/// from toml's parse. Where the path stops existing, the last key found
/// (the table that lacks it); None when even the first is absent.
fn span_of(doc: &DeTable<'_>, path: &[&str]) -> Option<Range<usize>> {
    let (first, rest) = path.split_first()?;
    let (key, mut value) = doc.get_key_value(*first)?;
    let mut span = key.span();
    for step in rest {
        let next = match value.get_ref() {
            DeValue::Table(t) => t.get_key_value(*step).map(|(k, v)| (k.span(), v)),
            DeValue::Array(a) => step
                .parse::<usize>()
                .ok()
                .and_then(|i| a.get(i))
                .map(|v| (v.span(), v)),
            _ => None,
        };
        let Some((next_span, next_value)) = next else {
            break;
        };
        span = next_span;
        value = next_value;
    }
    Some(span)
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

#[cfg(test)]
mod tests;
