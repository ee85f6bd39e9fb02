//! The development PKI `mes init` writes: a CA and every leaf an operator needs.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::files::{write_private, write_public};
use super::issue::push_unique;
use super::{
    CLIENT_COMMON_NAME, Ca, DEV_CA_COMMON_NAME, LeafSpec, OPERATOR2_HOSTNAME,
    OPERATOR2_ORGANISATION, PkiError, Usage,
};

/// The files [`init_dev_pki`] wrote, and the subject DNs to put on the whitelist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevPki {
    /// `ca.pem`: the trust anchor.
    pub ca_pem: PathBuf,
    /// `ca.key`: the CA key, so that this directory can be given to `mes init --ca`.
    pub ca_key: PathBuf,
    /// `server.pem`: our operator certificate (server, and client when relaying).
    pub server_pem: PathBuf,
    /// `server.key`.
    pub server_key: PathBuf,
    /// `operator2.pem`: the second operator's certificate, for tests that need a peer.
    pub operator2_pem: PathBuf,
    /// `operator2.key`.
    pub operator2_key: PathBuf,
    /// `client.pem`: a hospital information system's client certificate.
    pub client_pem: PathBuf,
    /// `client.key`.
    pub client_key: PathBuf,
    /// Subject DN of the CA.
    pub ca_dn: String,
    /// Subject DN of `server.pem`: our `DNCertificatOperateur` on the whitelist.
    pub server_dn: String,
    /// Subject DN of `operator2.pem`: the second operator's `DNCertificatOperateur`.
    pub operator2_dn: String,
    /// Subject DN of `client.pem`.
    pub client_dn: String,
}

/// Writes the development PKI of one operator into `certs_dir` (created if missing;
/// existing files are overwritten).
///
/// Files: `ca.pem` and `ca.key` (a new CA, or when `ca_from` is given, copies of
/// `<ca_from>/certs/ca.pem` and `<ca_from>/certs/ca.key`, so that several operators
/// share one trust anchor and this directory can itself be given as `--ca` later),
/// `server.pem`/`server.key` (our operator: CN = first host name, O = `operator_org`,
/// SANs = all host names plus `localhost`, 127.0.0.1 and ::1, server and client use),
/// `operator2.pem`/`operator2.key` (a second operator, "Operateur Deux",
/// `mx.operateur2.mes.test`) and `client.pem`/`client.key` (a hospital information
/// system, CN `dpi.hopital.mes.test`, O = `operator_org`, client use only).
/// Key files get mode 0600. Host names that are IP literals become IP SANs.
pub fn init_dev_pki(
    certs_dir: &Path,
    hostnames: &[String],
    operator_org: &str,
    ca_from: Option<&Path>,
) -> Result<DevPki, PkiError> {
    let Some(first_host) = hostnames.first() else {
        return Err(PkiError::InvalidSpec {
            subject: format!("O={operator_org}"),
            reason: "at least one host name is needed for the operator certificate".to_owned(),
        });
    };
    fs::create_dir_all(certs_dir).map_err(|source| PkiError::Io {
        action: "cannot create directory",
        path: certs_dir.to_owned(),
        source,
    })?;

    let ca = match ca_from {
        Some(other) => {
            let other_certs = other.join("certs");
            Ca::load(&other_certs.join("ca.pem"), &other_certs.join("ca.key"))?
        }
        None => Ca::generate(DEV_CA_COMMON_NAME)?,
    };

    let mut server = LeafSpec::new(first_host, operator_org);
    for host in hostnames {
        match host.parse::<IpAddr>() {
            Ok(ip) => push_unique(&mut server.ip_addresses, ip),
            Err(_) => push_unique(&mut server.dns_names, host.clone()),
        }
    }
    let server = ca.issue(&server.with_loopback())?;

    let mut operator2 = LeafSpec::new(OPERATOR2_HOSTNAME, OPERATOR2_ORGANISATION);
    operator2.dns_names.push(OPERATOR2_HOSTNAME.to_owned());
    let operator2 = ca.issue(&operator2.with_loopback())?;

    let mut client = LeafSpec::new(CLIENT_COMMON_NAME, operator_org);
    client.dns_names.push(CLIENT_COMMON_NAME.to_owned());
    client.usage = Usage::Client;
    let client = ca.issue(&client)?;

    let pki = DevPki {
        ca_pem: certs_dir.join("ca.pem"),
        ca_key: certs_dir.join("ca.key"),
        server_pem: certs_dir.join("server.pem"),
        server_key: certs_dir.join("server.key"),
        operator2_pem: certs_dir.join("operator2.pem"),
        operator2_key: certs_dir.join("operator2.key"),
        client_pem: certs_dir.join("client.pem"),
        client_key: certs_dir.join("client.key"),
        ca_dn: ca.subject_dn().to_owned(),
        server_dn: server.subject_dn.clone(),
        operator2_dn: operator2.subject_dn.clone(),
        client_dn: client.subject_dn.clone(),
    };
    write_public(&pki.ca_pem, &ca.cert_pem())?;
    write_private(&pki.ca_key, &ca.key_pem())?;
    write_public(&pki.server_pem, &server.cert_pem)?;
    write_private(&pki.server_key, &server.key_pem)?;
    write_public(&pki.operator2_pem, &operator2.cert_pem)?;
    write_private(&pki.operator2_key, &operator2.key_pem)?;
    write_public(&pki.client_pem, &client.cert_pem)?;
    write_private(&pki.client_key, &client.key_pem)?;
    Ok(pki)
}
