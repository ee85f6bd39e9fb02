//! The services mail clients are told about (autoconfiguration and `mes dns
//! records`): `[clients]` over the host name and the listeners' ports.

use super::Config;

/// One service: host and port, or None when it is off.
pub type Endpoint = Option<(String, u16)>;

/// What a mail client connects to, after `[clients]` and the listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientEndpoints {
    /// IMAP over implicit TLS (RFC 8314: preferred).
    pub imaps: Endpoint,
    /// IMAP with STARTTLS.
    pub imap: Endpoint,
    /// Submission over implicit TLS (RFC 8314: preferred).
    pub submissions: Endpoint,
    /// Submission with STARTTLS.
    pub submission: Endpoint,
}

/// The bound (or configured) port of each listener, by name (`imaps`,
/// `imap`, `submissions`, `submission`); None when it is off.
pub type PortOf<'a> = &'a dyn Fn(&str) -> Option<u16>;

impl Config {
    /// The endpoints announced to clients: a `[clients]` port wins, else the
    /// listener's port from `port_of` (bound ports at run time, configured
    /// ones for `mes dns records`); a listener that is off is announced as
    /// off even when a public port is configured.
    pub fn client_endpoints(&self, port_of: PortOf<'_>) -> ClientEndpoints {
        let c = &self.clients;
        let imap_host = c.imap_host.clone().unwrap_or_else(|| self.hostname.clone());
        let smtp_host = c.smtp_host.clone().unwrap_or_else(|| self.hostname.clone());
        let one = |name: &str, host: &str, public: Option<u16>| -> Endpoint {
            let bound = port_of(name)?;
            Some((host.to_string(), public.unwrap_or(bound)))
        };
        ClientEndpoints {
            imaps: one("imaps", &imap_host, c.imaps_port),
            imap: one("imap", &imap_host, c.imap_port),
            submissions: one("submissions", &smtp_host, c.submissions_port),
            submission: one("submission", &smtp_host, c.submission_port),
        }
    }

    /// The configured port of a listener (`port_of` for [`Config::client_endpoints`]).
    pub fn configured_port(&self, name: &str) -> Option<u16> {
        let l = &self.listen;
        match name {
            "imaps" => l.imaps,
            "imap" => l.imap,
            "submissions" => l.submissions,
            "submission" => l.submission,
            _ => None,
        }
        .map(|a| a.port())
    }
}
