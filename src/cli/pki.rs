//! `mes pki …`: the development PKI's certificate revocation list.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::config::Config;
use crate::pki::Ca;
use crate::tls::revocation::{self, write_atomically};

/// The development CA's revocation list, in the `certs/` folder `mes init` writes.
pub(super) const DEV_CRL_FILE: &str = "crl.pem";

/// `mes pki …`
#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Add a certificate to the development CA's revocation list (the list of
    /// `tls.crl_files` issued by the CA, signed again with the CA key of
    /// `mes init`, CRL number + 1). Running servers refuse the certificate after
    /// SIGHUP or within `tls.crl_reload_secs`.
    Revoke {
        /// The certificate, PEM or DER.
        certificate: PathBuf,
        /// The reason recorded in the list.
        #[arg(long, value_enum)]
        reason: Option<Reason>,
    },
}

/// Revocation reasons (RFC 5280 5.3.1) `mes pki revoke` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Reason {
    /// unspecified (0).
    Unspecified,
    /// keyCompromise (1).
    KeyCompromise,
    /// affiliationChanged (3).
    AffiliationChanged,
    /// superseded (4).
    Superseded,
    /// cessationOfOperation (5).
    CessationOfOperation,
}

impl From<Reason> for rcgen::RevocationReason {
    fn from(r: Reason) -> Self {
        match r {
            Reason::Unspecified => rcgen::RevocationReason::Unspecified,
            Reason::KeyCompromise => rcgen::RevocationReason::KeyCompromise,
            Reason::AffiliationChanged => rcgen::RevocationReason::AffiliationChanged,
            Reason::Superseded => rcgen::RevocationReason::Superseded,
            Reason::CessationOfOperation => rcgen::RevocationReason::CessationOfOperation,
        }
    }
}

/// Runs `mes pki …`.
pub(super) fn run(config: &Config, cmd: PkiCommand) -> anyhow::Result<()> {
    match cmd {
        PkiCommand::Revoke {
            certificate,
            reason,
        } => revoke(config, &certificate, reason),
    }
}

fn revoke(config: &Config, certificate: &Path, reason: Option<Reason>) -> anyhow::Result<()> {
    let ca = dev_ca(config)?;
    let (crl_path, crl_bytes, crl_der) = crl_of(config, &ca)?;
    let cert_bytes =
        std::fs::read(certificate).with_context(|| format!("reading {}", certificate.display()))?;
    let cert_der = if is_pem(&cert_bytes) {
        CertificateDer::from_pem_slice(&cert_bytes)
            .with_context(|| format!("{}: no PEM certificate", certificate.display()))?
            .to_vec()
    } else {
        cert_bytes
    };
    let done = revocation::revoke(&ca, &crl_der, &cert_der, reason.map(Into::into))
        .with_context(|| certificate.display().to_string())?;
    if done.already {
        println!(
            "{} (serial {}) is already in {}; nothing changed",
            done.subject,
            done.serial,
            crl_path.display()
        );
        return Ok(());
    }
    let contents = if is_pem(&crl_bytes) {
        done.crl_pem.into_bytes()
    } else {
        done.crl_der
    };
    write_atomically(&crl_path, &contents)?;
    println!(
        "revoked {} (serial {}) in {}, CRL number {}",
        done.subject,
        done.serial,
        crl_path.display(),
        done.crl_number
    );
    println!(
        "running servers refuse it after SIGHUP (kill -HUP <pid of mes serve>) or within {} s",
        config.tls.crl_reload_secs
    );
    Ok(())
}

/// The CA of `mes init`: a trust anchor with its key beside it (`certs/ca.pem`, `certs/ca.key`).
fn dev_ca(config: &Config) -> anyhow::Result<Ca> {
    for anchor in &config.tls.trust_anchors {
        let key = anchor.with_extension("key");
        if key.is_file() {
            return Ca::load(anchor, &key).map_err(Into::into);
        }
    }
    bail!(
        "no CA key beside the trust anchors ({}): `mes pki revoke` signs with the \
         development CA of `mes init`; production certificates are revoked by their CA",
        config
            .tls
            .trust_anchors
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The file of `tls.crl_files` holding the list issued by `ca`: (path, file bytes, the list's DER).
fn crl_of(config: &Config, ca: &Ca) -> anyhow::Result<(PathBuf, Vec<u8>, Vec<u8>)> {
    for file in &config.tls.crl_files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let crls = revocation::parse_crls(&bytes, &file.display().to_string())?;
        if let [only] = crls.as_slice()
            && revocation::is_list_of(ca, only.as_ref())
        {
            return Ok((file.clone(), bytes, only.to_vec()));
        }
    }
    bail!(
        "no list of the CA `{}` in tls.crl_files (mes init writes certs/{DEV_CRL_FILE})",
        ca.subject_dn()
    )
}

fn is_pem(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'-')
}
