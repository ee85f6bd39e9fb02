//! The sections of the configuration file (`[database]`, `[tls]`, `[listen]`,
//! `[smtp]`, …) as serde reads them, with their defaults; `mod.rs` checks
//! them and builds the validated [`super::Config`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

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
    /// Listeners (`mx`, `submission`, `submissions`, `imap`, `imaps`,
    /// `https`) behind a load balancer that sends a PROXY protocol header
    /// (v1 or v2), so throttling and logs see the real client.
    #[serde(default)]
    pub proxy_protocol: Vec<String>,
    /// The load balancers' addresses: only their connections may carry a
    /// PROXY header (and on those listeners they must).
    #[serde(default)]
    pub proxy_from: Vec<String>,
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
    /// Public base URL of the webmail and APIs (`https://host[:port]`, no
    /// path): the OAuth issuer and the endpoints its metadata names.
    /// Required in production; absent in development, the Host a client used.
    pub web_url: Option<String>,
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
    /// Notifications one connected service may put in one patient's INBOX
    /// per day (`messages.notify`); more are answered 429.
    pub service_notifications_per_day: u32,
}

impl Default for PatientSettings {
    fn default() -> Self {
        Self {
            max_attachment_size: 5 * 1024 * 1024,
            session_idle_secs: 900,
            session_max_secs: 12 * 3600,
            activation_valid_days: 30,
            service_notifications_per_day: 10,
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
    /// PEM certificate whose key signs the list (a detached signature, our
    /// extension: the published XML carries none); set, every refresh and
    /// `mes trust import` require a valid signature.
    #[serde(default)]
    pub whitelist_signing_cert: Option<PathBuf>,
    /// Where the detached signature is read (default: the list's source + `.sig`).
    #[serde(default)]
    pub whitelist_signature_url: Option<String>,
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
            whitelist_signing_cert: None,
            whitelist_signature_url: None,
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
