//! `mes dns records DOMAIN`: the zone lines an operator publishes for a
//! hosted domain, from the configuration (host name, `[clients]`, the
//! listeners): MX, RFC 6186 SRV records (with RFC 8314's preference for
//! implicit TLS), the autoconfiguration names, MTA-STS (RFC 8461) and
//! TLS-RPT (RFC 8460).

use std::fmt::Write;

use sha2::{Digest, Sha256};

use super::{Config, Endpoint};

/// The records for `domain`, in zone-file syntax with `;` comments.
pub fn records(config: &Config, domain: &str) -> String {
    let host = &config.hostname;
    let e = config.client_endpoints(&|name| config.configured_port(name));
    let policy = mta_sts_policy(host);
    let policy_id = hex::encode(&Sha256::digest(policy.as_bytes())[..8]);
    let mut out = String::new();
    let mut line = |s: String| {
        let _ = writeln!(out, "{s}");
    };
    line(format!("; DNS records for {domain} (mes dns records)"));
    line(format!(
        "; Incoming mail from the trust space reaches {host}."
    ));
    line(format!("{domain}. 3600 IN MX 10 {host}."));
    line(String::new());
    line("; Mail clients (RFC 6186). RFC 8314: implicit TLS (imaps, submissions)".into());
    line("; is preferred (priority 0) over STARTTLS (priority 10); a service that".into());
    line("; is off is published with target \".\" so clients do not try it.".into());
    for (service, endpoint, priority) in [
        ("_submissions._tcp", &e.submissions, 0),
        ("_submission._tcp", &e.submission, 10),
        ("_imaps._tcp", &e.imaps, 0),
        ("_imap._tcp", &e.imap, 10),
    ] {
        line(srv(service, domain, endpoint, priority));
    }
    line(String::new());
    line("; Autoconfiguration (Thunderbird autoconfig, Outlook autodiscover), served".into());
    line(format!(
        "; by the HTTPS listener: {host}'s certificate must also name these."
    ));
    line(format!("autoconfig.{domain}. 3600 IN CNAME {host}."));
    line(format!("autodiscover.{domain}. 3600 IN CNAME {host}."));
    line(String::new());
    line("; MTA-STS (RFC 8461): senders require TLS to our MX. Publish the policy".into());
    line(format!(
        "; below at https://mta-sts.{domain}/.well-known/mta-sts.txt and change the"
    ));
    line("; id whenever it changes (this id is a digest of the policy).".into());
    line(format!(
        "_mta-sts.{domain}. 3600 IN TXT \"v=STSv1; id={policy_id}\""
    ));
    line(format!("mta-sts.{domain}. 3600 IN CNAME {host}."));
    for l in policy.lines() {
        line(format!(";   {l}"));
    }
    line(String::new());
    line("; TLS reporting (RFC 8460): where senders report TLS failures.".into());
    line(format!(
        "_smtp._tls.{domain}. 3600 IN TXT \"v=TLSRPTv1; rua=mailto:tls-reports@{domain}\""
    ));
    out
}

/// One SRV line; a service that is off gets the RFC 6186 "no service" target.
fn srv(service: &str, domain: &str, endpoint: &Endpoint, priority: u16) -> String {
    match endpoint {
        Some((host, port)) => {
            format!("{service}.{domain}. 3600 IN SRV {priority} 1 {port} {host}.")
        }
        None => format!("{service}.{domain}. 3600 IN SRV 0 0 0 ."),
    }
}

/// The MTA-STS policy file for an MX `host`.
fn mta_sts_policy(host: &str) -> String {
    format!("version: STSv1\nmode: enforce\nmx: {host}\nmax_age: 604800\n")
}
