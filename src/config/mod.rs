//! The TOML configuration file, validated into typed settings.
//!
//! Every key is documented in the commented example that `mes init` writes
//! ([`render_example`]). Unknown keys and bad values are errors that name the
//! key and the line, because operators edit this file by hand.

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
mod sections;

pub use clients::{ClientEndpoints, Endpoint, PortOf};
pub use example::{ExampleValues, render_example};
pub use quota::{QuotaSettings, parse_count, parse_storage};
pub use sections::*;

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
    /// See [`ListenSettings::proxy_protocol`]: listener names.
    pub proxy_protocol: Vec<String>,
    /// See [`ListenSettings::proxy_from`].
    pub proxy_from: Vec<std::net::IpAddr>,
}

impl Listeners {
    /// The load balancers whose PROXY headers listener `name` reads, when
    /// it is behind one.
    pub fn proxy_for(&self, name: &str) -> Option<Vec<std::net::IpAddr>> {
        self.proxy_protocol
            .iter()
            .any(|n| n == name)
            .then(|| self.proxy_from.clone())
    }
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
            proxy_protocol: raw.listen.proxy_protocol.clone(),
            proxy_from: raw
                .listen
                .proxy_from
                .iter()
                .map(|a| {
                    a.parse().map_err(|_| {
                        invalid(
                            Some("listen"),
                            "proxy_from",
                            format!("`{a}` is not an IP address"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        const PROXIED: [&str; 6] = ["mx", "submission", "submissions", "imap", "imaps", "https"];
        if let Some(n) = listen
            .proxy_protocol
            .iter()
            .find(|n| !PROXIED.contains(&n.as_str()))
        {
            return Err(invalid(
                Some("listen"),
                "proxy_protocol",
                format!("`{n}` is not one of {}", PROXIED.join(", ")),
            ));
        }
        if !listen.proxy_protocol.is_empty() && listen.proxy_from.is_empty() {
            return Err(invalid(
                Some("listen"),
                "proxy_from",
                "needed with proxy_protocol: the load balancers' addresses".into(),
            ));
        }
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

        if let Some(url) = &raw.clients.web_url
            && !is_web_url(url)
        {
            return Err(invalid(
                Some("clients"),
                "web_url",
                format!("`{url}` is not https://HOST or https://HOST:PORT"),
            ));
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
            trust: TrustSettings {
                whitelist_signing_cert: raw
                    .trust
                    .whitelist_signing_cert
                    .as_ref()
                    .map(|p| base.join(p)),
                ..raw.trust
            },
            log: raw.log,
            mode: raw.server.mode,
            clients: raw.clients,
        })
    }
}

/// The span of the key at `path` (table keys, or array indexes in decimal),
/// from toml's parse. Where the path stops existing, the last key found
/// (the table that lacks it); None when even the first is absent.
/// Whether `url` is a public base URL: `https://`, a host name (or
/// `localhost`), an optional port, nothing after (the OAuth issuer must be
/// exactly that, RFC 8414 §2).
fn is_web_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://") else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p != 0))
        && (host == "localhost" || crate::address::normalize_domain(host).is_ok_and(|n| n == host))
}

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
