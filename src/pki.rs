//! The development PKI of MES: a stand-in for the French IGC-Santé.
//!
//! A real operator of the trust space holds certificates issued by the
//! IGC-Santé. For development, tests and demonstrations MES makes its own:
//! a certificate authority ([`Ca`]) and the leaf certificates an operator
//! needs ([`init_dev_pki`], used by `mes init DIR [--ca OTHER_DIR]`), plus any
//! extra leaf a test wants ([`LeafSpec`], [`Ca::issue`]): expired ones, ones
//! for another operator, ones from another CA.
//!
//! Subject DNs are read by [`dn::DistinguishedName`], the one DN rule of MES
//! (see [`dn`]): comparisons with the whitelist's `DNCertificatOperateur` and
//! certificate-to-account mappings go through its parsed RDNs, never through a
//! rendered string. [`subject_dn_of_der`] renders it for people and logs: the
//! attributes in the order they appear in the certificate (not reversed as
//! RFC 4514 would), short names (`CN`, `O`, `OU`, `C`, `L`, `ST`…), `", "`
//! between RDNs, `" + "` inside a multi-valued RDN, RFC 4514 escapes only where
//! a value needs them, e.g. `CN=mx.hopital-b.mes.test, O=Hopital B, C=FR`.
//! Certificates made here put CN first, then O, then C.
//!
//! All keys are ECDSA P-256 with SHA-256 (rcgen's default). Private keys are
//! PKCS#8 PEM files written with mode 0600.

use std::fmt;
use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::x509::X509Name;

pub mod dn;

/// Organisation (O) of the development CA, so that no one mistakes it for the IGC-Santé.
pub const DEV_CA_ORGANISATION: &str = "MES Development PKI";

/// Common name of the CA that [`init_dev_pki`] creates when it is not given one.
pub const DEV_CA_COMMON_NAME: &str = "MES Development CA";

/// Organisation of the second operator of the development trust space, so tests have a peer.
pub const OPERATOR2_ORGANISATION: &str = "Operateur Deux";

/// Host name (and CN) of the second operator of the development trust space.
pub const OPERATOR2_HOSTNAME: &str = "mx.operateur2.mes.test";

/// CN of the development client certificate of a hospital information system (DPI).
pub const CLIENT_COMMON_NAME: &str = "dpi.hopital.mes.test";

/// Country (C) put in every subject made here: the trust space is French.
const COUNTRY: &str = "FR";

/// PEM label of a certificate.
const CERTIFICATE_LABEL: &str = "CERTIFICATE";

/// Mode of private key files: readable by their owner only.
const KEY_FILE_MODE: u32 = 0o600;

/// How long a development CA lives: long enough never to expire under a developer.
const CA_LIFETIME: Duration = Duration::days(3650);

/// How long a default leaf certificate lives.
const LEAF_LIFETIME: Duration = Duration::days(730);

/// Backdating of `not_before`, so that clocks a little behind still accept new certificates.
const BACKDATE: Duration = Duration::days(1);

/// Why the development PKI could not do what was asked; each names the file or item concerned.
#[derive(thiserror::Error, Debug)]
pub enum PkiError {
    /// A file or directory could not be read, written or created.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done ("cannot read", "cannot write"…).
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// rcgen refused to make a key or certificate (bad name, bad key…).
    #[error("cannot generate {what}: {source}")]
    Generate {
        /// The key or certificate being made, e.g. `certificate CN=…` or `CA key`.
        what: String,
        /// The underlying error.
        source: rcgen::Error,
    },
    /// A DER certificate could not be parsed, or its subject could not be rendered.
    #[error("cannot parse certificate {origin}: {reason}")]
    Parse {
        /// Where the certificate came from (a file name, or a description).
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A PEM text held no usable certificate or key.
    #[error("bad PEM in {origin}: {reason}")]
    BadPem {
        /// Where the PEM text came from (a file name, or a description).
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A certificate loaded as a CA is not one (no basicConstraints CA=true).
    #[error("{origin} is not a CA certificate (basicConstraints CA is not set)")]
    NotCa {
        /// Where the certificate came from.
        origin: String,
    },
    /// A CA key does not belong to the CA certificate it was loaded with.
    #[error("key {key_origin} does not match certificate {cert_origin}")]
    KeyMismatch {
        /// Where the certificate came from.
        cert_origin: String,
        /// Where the key came from.
        key_origin: String,
    },
    /// A request for a certificate is inconsistent (no host name, validity ending before it starts…).
    #[error("invalid certificate request for {subject}: {reason}")]
    InvalidSpec {
        /// The subject asked for.
        subject: String,
        /// What is wrong with the request.
        reason: String,
    },
}

/// A certificate authority of the development PKI, able to issue leaf certificates.
///
/// It keeps its certificate and key PEM texts as generated or loaded, so that
/// saving a loaded CA gives back the very same bytes.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    key_pem: String,
    subject_dn: String,
}

impl fmt::Debug for Ca {
    /// Shows the CA's subject only: the private key must never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("subject_dn", &self.subject_dn)
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// Makes a new self-signed CA `CN=<common_name>, O=MES Development PKI, C=FR`,
    /// valid from yesterday for ten years, with a fresh ECDSA P-256 key.
    pub fn generate(common_name: &str) -> Result<Ca, PkiError> {
        let what = || format!("CA certificate CN={common_name}");
        let gen_err = |source| PkiError::Generate {
            what: what(),
            source,
        };
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name =
            distinguished_name(common_name, DEV_CA_ORGANISATION).map_err(gen_err)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_LIFETIME;
        let key = KeyPair::generate().map_err(gen_err)?;
        let cert = params.self_signed(&key).map_err(gen_err)?;
        let subject_dn = subject_dn_of_der(cert.der())?;
        let key_pem = key.serialize_pem();
        Ok(Ca {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
            key_pem,
            subject_dn,
        })
    }

    /// Loads a CA saved earlier (by [`init_dev_pki`] or from [`Ca::cert_pem`] and
    /// [`Ca::key_pem`]), checking that the certificate is a CA and that the key is its own.
    pub fn load(cert_pem_path: &Path, key_pem_path: &Path) -> Result<Ca, PkiError> {
        let cert_pem = read_to_string(cert_pem_path)?;
        let key_pem = read_to_string(key_pem_path)?;
        Ca::from_pem_named(
            cert_pem,
            key_pem,
            &cert_pem_path.display().to_string(),
            &key_pem_path.display().to_string(),
        )
    }

    /// Builds a CA from PEM texts already in memory (a certificate, and its PKCS#8 key),
    /// with the same checks as [`Ca::load`].
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca, PkiError> {
        Ca::from_pem_named(
            cert_pem.to_owned(),
            key_pem.to_owned(),
            "CA certificate PEM",
            "CA key PEM",
        )
    }

    fn from_pem_named(
        cert_pem: String,
        key_pem: String,
        cert_origin: &str,
        key_origin: &str,
    ) -> Result<Ca, PkiError> {
        let der = certificate_der_of_pem(&cert_pem, cert_origin)?;
        let cert = parse_der(&der, cert_origin)?;
        if !cert.is_ca() {
            return Err(PkiError::NotCa {
                origin: cert_origin.to_owned(),
            });
        }
        let key = KeyPair::from_pem(&key_pem).map_err(|e| PkiError::BadPem {
            origin: key_origin.to_owned(),
            reason: format!("not a usable PKCS#8 private key: {e}"),
        })?;
        if key.public_key_raw() != cert.public_key().subject_public_key.data.as_ref() {
            return Err(PkiError::KeyMismatch {
                cert_origin: cert_origin.to_owned(),
                key_origin: key_origin.to_owned(),
            });
        }
        let subject_dn = name_to_string(cert.subject(), cert_origin)?;
        let issuer = Issuer::from_ca_cert_der(&der.as_slice().into(), key).map_err(|source| {
            PkiError::Generate {
                what: format!("issuer from {cert_origin}"),
                source,
            }
        })?;
        Ok(Ca {
            issuer,
            cert_pem,
            key_pem,
            subject_dn,
        })
    }

    /// The CA certificate in PEM, to be saved as `ca.pem` and given to peers as their trust anchor.
    pub fn cert_pem(&self) -> String {
        self.cert_pem.clone()
    }

    /// The CA private key in PEM (PKCS#8), to be saved as `ca.key` with mode 0600.
    pub fn key_pem(&self) -> String {
        self.key_pem.clone()
    }

    /// The CA's subject DN in MES's format (see the module documentation).
    pub fn subject_dn(&self) -> &str {
        &self.subject_dn
    }

    /// Signs a certificate revocation list with the CA key (see `tls::revocation`).
    pub fn sign_crl(
        &self,
        params: &rcgen::CertificateRevocationListParams,
    ) -> Result<rcgen::CertificateRevocationList, PkiError> {
        params
            .signed_by(&self.issuer)
            .map_err(|source| PkiError::Generate {
                what: format!("revocation list of {}", self.subject_dn),
                source,
            })
    }

    /// Issues a leaf certificate, with a fresh key, as `spec` describes.
    pub fn issue(&self, spec: &LeafSpec) -> Result<IssuedCert, PkiError> {
        let subject = format!("CN={}, O={}", spec.common_name, spec.organisation);
        if spec.common_name.is_empty() {
            return Err(PkiError::InvalidSpec {
                subject,
                reason: "the common name is empty".to_owned(),
            });
        }
        if spec.not_after <= spec.not_before {
            return Err(PkiError::InvalidSpec {
                subject,
                reason: format!(
                    "not_after ({}) is not after not_before ({})",
                    spec.not_after, spec.not_before
                ),
            });
        }
        let gen_err = |source| PkiError::Generate {
            what: format!("certificate {subject}"),
            source,
        };
        let mut params = CertificateParams::default();
        params.distinguished_name =
            distinguished_name(&spec.common_name, &spec.organisation).map_err(gen_err)?;
        for name in &spec.dns_names {
            let ia5 = name.as_str().try_into().map_err(gen_err)?;
            params.subject_alt_names.push(SanType::DnsName(ia5));
        }
        params
            .subject_alt_names
            .extend(spec.ip_addresses.iter().copied().map(SanType::IpAddress));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = spec.usage.extended_key_usages();
        params.use_authority_key_identifier_extension = true;
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        let key = KeyPair::generate().map_err(gen_err)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(gen_err)?;
        Ok(IssuedCert {
            subject_dn: subject_dn_of_der(cert.der())?,
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// What a leaf certificate may be used for in TLS (its extended key usages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// serverAuth only: a listener that never relays.
    Server,
    /// clientAuth only: a hospital information system or a professional's software.
    Client,
    /// serverAuth and clientAuth: an operator, which listens and also relays to other operators.
    ServerAndClient,
}

impl Usage {
    fn extended_key_usages(self) -> Vec<ExtendedKeyUsagePurpose> {
        match self {
            Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Usage::ServerAndClient => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        }
    }
}

/// What to put in a leaf certificate; tests change the fields to make odd ones (expired, client-only…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSpec {
    /// Subject CN: the host name for an operator, the application's name for a client.
    pub common_name: String,
    /// Subject O: the operator or organisation; left out of the subject when empty.
    pub organisation: String,
    /// DNS subject alternative names, which TLS clients check the host name against.
    pub dns_names: Vec<String>,
    /// IP subject alternative names, for connecting to a literal address such as 127.0.0.1.
    pub ip_addresses: Vec<IpAddr>,
    /// Extended key usages.
    pub usage: Usage,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity; in the past for an expired certificate.
    pub not_after: OffsetDateTime,
}

impl LeafSpec {
    /// A spec for `CN=<cn>, O=<org>, C=FR` without SANs, for server and client use,
    /// valid from yesterday for two years.
    pub fn new(cn: &str, org: &str) -> LeafSpec {
        let now = OffsetDateTime::now_utc();
        LeafSpec {
            common_name: cn.to_owned(),
            organisation: org.to_owned(),
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            usage: Usage::ServerAndClient,
            not_before: now - BACKDATE,
            not_after: now + LEAF_LIFETIME,
        }
    }

    /// The same spec with `localhost`, 127.0.0.1 and ::1 added to the SANs, so that
    /// a test or a single-machine setup can connect to the loopback address.
    pub fn with_loopback(mut self) -> LeafSpec {
        push_unique(&mut self.dns_names, "localhost".to_owned());
        push_unique(&mut self.ip_addresses, IpAddr::V4(Ipv4Addr::LOCALHOST));
        push_unique(&mut self.ip_addresses, IpAddr::V6(Ipv6Addr::LOCALHOST));
        self
    }
}

/// A freshly issued leaf certificate with its key, both PEM, and its subject in MES's DN format.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM (PKCS#8); save it with mode 0600.
    pub key_pem: String,
    /// Its subject DN, as [`subject_dn_of_der`] renders it: what the whitelist must list.
    pub subject_dn: String,
}

impl fmt::Debug for IssuedCert {
    /// Leaves the private key out, so the value can be logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCert")
            .field("subject_dn", &self.subject_dn)
            .finish_non_exhaustive()
    }
}

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
    write_public(&pki.ca_pem, &ca.cert_pem)?;
    write_private(&pki.ca_key, &ca.key_pem)?;
    write_public(&pki.server_pem, &server.cert_pem)?;
    write_private(&pki.server_key, &server.key_pem)?;
    write_public(&pki.operator2_pem, &operator2.cert_pem)?;
    write_private(&pki.operator2_key, &operator2.key_pem)?;
    write_public(&pki.client_pem, &client.cert_pem)?;
    write_private(&pki.client_key, &client.key_pem)?;
    Ok(pki)
}

/// Subject DN of the first certificate in a PEM text, in MES's format (see the module documentation).
pub fn subject_dn_of_pem(cert_pem: &str) -> Result<String, PkiError> {
    let der = certificate_der_of_pem(cert_pem, "certificate PEM")?;
    subject_dn_of_der_named(&der, "certificate PEM")
}

/// Subject DN of a DER certificate (e.g. a TLS peer's), rendered for people and logs
/// (see the module documentation); the rendering parses back to the same DN.
pub fn subject_dn_of_der(der: &[u8]) -> Result<String, PkiError> {
    subject_dn_of_der_named(der, "DER certificate")
}

/// Subject DN of the first certificate in a PEM file, with errors naming the file.
pub fn subject_dn_of_file(path: &Path) -> Result<String, PkiError> {
    let origin = path.display().to_string();
    let der = certificate_der_of_pem(&read_to_string(path)?, &origin)?;
    subject_dn_of_der_named(&der, &origin)
}

fn subject_dn_of_der_named(der: &[u8], origin: &str) -> Result<String, PkiError> {
    let cert = parse_der(der, origin)?;
    name_to_string(cert.subject(), origin)
}

/// Renders a name for people and logs (see the module documentation), from its
/// parsed RDNs; a name that cannot be read is an error, not a placeholder.
fn name_to_string(name: &X509Name<'_>, origin: &str) -> Result<String, PkiError> {
    name_to_dn(name, origin).map(|dn| dn.to_string())
}

fn name_to_dn(name: &X509Name<'_>, origin: &str) -> Result<dn::DistinguishedName, PkiError> {
    dn::DistinguishedName::from_x509_name(name).map_err(|e| PkiError::Parse {
        origin: origin.to_owned(),
        reason: format!("subject cannot be read: {e}"),
    })
}

/// Subject of the first certificate in a PEM file, parsed (the DN rule), with
/// errors naming the file.
pub fn subject_of_file(path: &Path) -> Result<dn::DistinguishedName, PkiError> {
    let origin = path.display().to_string();
    let der = certificate_der_of_pem(&read_to_string(path)?, &origin)?;
    let cert = parse_der(&der, &origin)?;
    name_to_dn(cert.subject(), &origin)
}

/// Subject of a DER certificate (e.g. a TLS peer's), parsed (the DN rule).
pub fn subject_of_der(der: &[u8]) -> Result<dn::DistinguishedName, PkiError> {
    let cert = parse_der(der, "DER certificate")?;
    name_to_dn(cert.subject(), "DER certificate")
}

fn parse_der<'a>(der: &'a [u8], origin: &str) -> Result<X509Certificate<'a>, PkiError> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, cert)| cert)
        .map_err(|e| PkiError::Parse {
            origin: origin.to_owned(),
            reason: e.to_string(),
        })
}

/// DER of the first `CERTIFICATE` block of a PEM text.
fn certificate_der_of_pem(pem_text: &str, origin: &str) -> Result<Vec<u8>, PkiError> {
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(pem_text.as_bytes()).map_err(|e| PkiError::BadPem {
            origin: origin.to_owned(),
            reason: format!("no PEM block found: {e}"),
        })?;
    if pem.label != CERTIFICATE_LABEL {
        return Err(PkiError::BadPem {
            origin: origin.to_owned(),
            reason: format!(
                "first block is {:?}, expected {CERTIFICATE_LABEL:?}",
                pem.label
            ),
        });
    }
    Ok(pem.contents)
}

/// `CN=<cn>, O=<org>, C=FR` in that order, O left out when empty; C as a PrintableString
/// as RFC 5280 requires.
fn distinguished_name(cn: &str, org: &str) -> Result<DistinguishedName, rcgen::Error> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    if !org.is_empty() {
        dn.push(DnType::OrganizationName, org);
    }
    dn.push(
        DnType::CountryName,
        DnValue::PrintableString(COUNTRY.try_into()?),
    );
    Ok(dn)
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

fn read_to_string(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|source| PkiError::Io {
        action: "cannot read",
        path: path.to_owned(),
        source,
    })
}

fn write_public(path: &Path, contents: &str) -> Result<(), PkiError> {
    fs::write(path, contents).map_err(|source| PkiError::Io {
        action: "cannot write",
        path: path.to_owned(),
        source,
    })
}

/// Writes a private key readable by its owner only. The mode is set before the key is
/// written, also when the file already existed with a wider mode.
fn write_private(path: &Path, contents: &str) -> Result<(), PkiError> {
    let io_err = |source| PkiError::Io {
        action: "cannot write",
        path: path.to_owned(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(KEY_FILE_MODE)
        .open(path)
        .map_err(io_err)?;
    file.set_permissions(fs::Permissions::from_mode(KEY_FILE_MODE))
        .map_err(io_err)?;
    file.write_all(contents.as_bytes()).map_err(io_err)?;
    file.sync_all().map_err(io_err)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::server::WebPkiClientVerifier;
    use rustls::{CertificateError, RootCertStore};
    use std::sync::Arc;
    use x509_parser::extensions::GeneralName;

    fn der_of(pem_text: &str) -> Vec<u8> {
        certificate_der_of_pem(pem_text, "test").unwrap()
    }

    fn der_of_file(path: &Path) -> Vec<u8> {
        der_of(&fs::read_to_string(path).unwrap())
    }

    fn hosts(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// Checks with x509-parser that `leaf_der` names `ca_der` as issuer and carries its signature.
    fn assert_issued_by(leaf_der: &[u8], ca_der: &[u8]) {
        let leaf = parse_der(leaf_der, "leaf").unwrap();
        let ca = parse_der(ca_der, "ca").unwrap();
        assert_eq!(leaf.issuer().as_raw(), ca.subject().as_raw());
        leaf.verify_signature(Some(ca.public_key())).unwrap();
        let aki = leaf
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    aki.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => None,
            })
            .unwrap();
        let ski = ca
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(ski) => {
                    Some(ski.0.to_vec())
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(aki, ski, "authority key identifier must match the CA's");
    }

    fn roots(ca_der: &[u8]) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from(ca_der.to_vec())).unwrap();
        Arc::new(roots)
    }

    /// Verifies a server certificate the way MES's TLS client does (rustls + webpki).
    fn rustls_verify_server(
        ca_der: &[u8],
        leaf_der: &[u8],
        name: &str,
    ) -> Result<(), rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(roots(ca_der), provider)
            .build()
            .unwrap();
        verifier
            .verify_server_cert(
                &CertificateDer::from(leaf_der.to_vec()),
                &[],
                &ServerName::try_from(name.to_owned()).unwrap(),
                &[],
                UnixTime::now(),
            )
            .map(|_| ())
    }

    /// Verifies a client certificate the way MES's TLS server does (rustls + webpki).
    fn rustls_verify_client(ca_der: &[u8], leaf_der: &[u8]) -> Result<(), rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca_der), provider)
            .build()
            .unwrap();
        verifier
            .verify_client_cert(
                &CertificateDer::from(leaf_der.to_vec()),
                &[],
                UnixTime::now(),
            )
            .map(|_| ())
    }

    #[test]
    fn dev_pki_is_complete_and_chains_to_its_ca() {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        let pki = init_dev_pki(
            &certs,
            &hosts(&[
                "mx.hopital-a.mes.test",
                "imap.hopital-a.mes.test",
                "192.0.2.7",
            ]),
            "Hopital A",
            None,
        )
        .unwrap();

        let ca_der = der_of_file(&pki.ca_pem);
        let ca = parse_der(&ca_der, "ca").unwrap();
        assert!(ca.is_ca());
        assert_eq!(
            pki.ca_dn,
            "CN=MES Development CA, O=MES Development PKI, C=FR"
        );
        let ku = ca.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign());
        ca.verify_signature(None).unwrap();

        let server_der = der_of_file(&pki.server_pem);
        assert_issued_by(&server_der, &ca_der);
        assert_eq!(pki.server_dn, "CN=mx.hopital-a.mes.test, O=Hopital A, C=FR");
        assert_eq!(subject_dn_of_file(&pki.server_pem).unwrap(), pki.server_dn);

        let server = parse_der(&server_der, "server").unwrap();
        assert!(!server.is_ca());
        let sans = &server
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names;
        let dns: Vec<&str> = sans
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some(*d),
                _ => None,
            })
            .collect();
        let ips: Vec<&[u8]> = sans
            .iter()
            .filter_map(|n| match n {
                GeneralName::IPAddress(ip) => Some(*ip),
                _ => None,
            })
            .collect();
        assert_eq!(
            dns,
            [
                "mx.hopital-a.mes.test",
                "imap.hopital-a.mes.test",
                "localhost"
            ]
        );
        assert!(ips.contains(&&[127u8, 0, 0, 1][..]));
        assert!(ips.contains(&&Ipv6Addr::LOCALHOST.octets()[..]));
        assert!(ips.contains(&&[192u8, 0, 2, 7][..]));
        let eku = server.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        assert!(
            server
                .key_usage()
                .unwrap()
                .unwrap()
                .value
                .digital_signature()
        );

        for name in [
            "localhost",
            "127.0.0.1",
            "::1",
            "mx.hopital-a.mes.test",
            "192.0.2.7",
        ] {
            rustls_verify_server(&ca_der, &server_der, name).unwrap();
        }
        rustls_verify_client(&ca_der, &server_der).unwrap();
        assert!(rustls_verify_server(&ca_der, &server_der, "mx.elsewhere.mes.test").is_err());

        let op2_der = der_of_file(&pki.operator2_pem);
        assert_issued_by(&op2_der, &ca_der);
        assert_eq!(
            pki.operator2_dn,
            "CN=mx.operateur2.mes.test, O=Operateur Deux, C=FR"
        );
        rustls_verify_server(&ca_der, &op2_der, "mx.operateur2.mes.test").unwrap();
        rustls_verify_server(&ca_der, &op2_der, "127.0.0.1").unwrap();
        rustls_verify_client(&ca_der, &op2_der).unwrap();

        let client_der = der_of_file(&pki.client_pem);
        assert_issued_by(&client_der, &ca_der);
        assert_eq!(pki.client_dn, "CN=dpi.hopital.mes.test, O=Hopital A, C=FR");
        let client = parse_der(&client_der, "client").unwrap();
        let eku = client.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        rustls_verify_client(&ca_der, &client_der).unwrap();
        assert!(rustls_verify_server(&ca_der, &client_der, "dpi.hopital.mes.test").is_err());

        // The key files hold the keys of the certificates next to them.
        for (cert, key) in [
            (&pki.ca_pem, &pki.ca_key),
            (&pki.server_pem, &pki.server_key),
            (&pki.operator2_pem, &pki.operator2_key),
            (&pki.client_pem, &pki.client_key),
        ] {
            let key = KeyPair::from_pem(&fs::read_to_string(key).unwrap()).unwrap();
            let der = der_of_file(cert);
            let cert = parse_der(&der, "cert").unwrap();
            assert_eq!(
                key.public_key_raw(),
                cert.public_key().subject_public_key.data.as_ref()
            );
        }
    }

    #[test]
    fn key_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        let pki = init_dev_pki(&certs, &hosts(&["mx.a.mes.test"]), "A", None).unwrap();
        let keys = [
            &pki.ca_key,
            &pki.server_key,
            &pki.operator2_key,
            &pki.client_key,
        ];
        for key in keys {
            assert_eq!(mode(key), 0o600, "{}", key.display());
        }
        // A key file left world-readable from before is tightened when rewritten.
        fs::set_permissions(&pki.server_key, fs::Permissions::from_mode(0o644)).unwrap();
        let pki = init_dev_pki(&certs, &hosts(&["mx.a.mes.test"]), "A", None).unwrap();
        for key in [
            &pki.ca_key,
            &pki.server_key,
            &pki.operator2_key,
            &pki.client_key,
        ] {
            assert_eq!(mode(key), 0o600, "{}", key.display());
        }
    }

    #[test]
    fn reusing_a_ca_keeps_it_byte_for_byte() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let pki_a = init_dev_pki(
            &a.path().join("certs"),
            &hosts(&["mx.a.mes.test"]),
            "A",
            None,
        )
        .unwrap();
        let pki_b = init_dev_pki(
            &b.path().join("certs"),
            &hosts(&["mx.b.mes.test"]),
            "Hopital B",
            Some(a.path()),
        )
        .unwrap();
        assert_eq!(
            fs::read(&pki_a.ca_pem).unwrap(),
            fs::read(&pki_b.ca_pem).unwrap()
        );
        assert_eq!(
            fs::read(&pki_a.ca_key).unwrap(),
            fs::read(&pki_b.ca_key).unwrap()
        );
        assert_eq!(mode(&pki_b.ca_key), 0o600);
        assert_eq!(pki_b.server_dn, "CN=mx.b.mes.test, O=Hopital B, C=FR");

        let ca_der = der_of_file(&pki_a.ca_pem);
        let b_server = der_of_file(&pki_b.server_pem);
        assert_issued_by(&b_server, &ca_der);
        rustls_verify_server(&ca_der, &b_server, "mx.b.mes.test").unwrap();
        rustls_verify_client(&ca_der, &b_server).unwrap();

        // B can in turn be the CA source of a third operator.
        let c = tempfile::tempdir().unwrap();
        let pki_c = init_dev_pki(
            &c.path().join("certs"),
            &hosts(&["mx.c.mes.test"]),
            "C",
            Some(b.path()),
        )
        .unwrap();
        assert_eq!(
            fs::read(&pki_a.ca_pem).unwrap(),
            fs::read(&pki_c.ca_pem).unwrap()
        );
        assert_issued_by(&der_of_file(&pki_c.server_pem), &ca_der);
    }

    #[test]
    fn certificates_from_another_ca_do_not_chain() {
        let ours = Ca::generate("Our CA").unwrap();
        let theirs = Ca::generate("Their CA").unwrap();
        let spec = LeafSpec::new("mx.intrus.mes.test", "Intrus").with_loopback();
        let leaf = theirs.issue(&spec).unwrap();
        let leaf_der = der_of(&leaf.cert_pem);
        let our_der = der_of(&ours.cert_pem());
        let our_cert = parse_der(&our_der, "ours").unwrap();
        assert!(
            parse_der(&leaf_der, "leaf")
                .unwrap()
                .verify_signature(Some(our_cert.public_key()))
                .is_err()
        );
        assert!(rustls_verify_server(&our_der, &leaf_der, "localhost").is_err());
        assert!(rustls_verify_client(&our_der, &leaf_der).is_err());
        assert_issued_by(&leaf_der, &der_of(&theirs.cert_pem()));
    }

    #[test]
    fn expired_spec_gives_a_certificate_valid_only_in_the_past() {
        let ca = Ca::generate("Test CA").unwrap();
        let now = OffsetDateTime::now_utc();
        let mut spec = LeafSpec::new("mx.perime.mes.test", "Perime").with_loopback();
        spec.not_before = now - Duration::days(30);
        spec.not_after = now - Duration::days(1);
        let issued = ca.issue(&spec).unwrap();
        let der = der_of(&issued.cert_pem);
        let cert = parse_der(&der, "expired").unwrap();
        assert!(!cert.validity().is_valid());
        assert!(cert.validity().not_after.timestamp() < now.unix_timestamp());
        assert_eq!(
            cert.validity().not_after.timestamp(),
            spec.not_after.unix_timestamp()
        );
        assert_issued_by(&der, &der_of(&ca.cert_pem()));
        match rustls_verify_server(&der_of(&ca.cert_pem()), &der, "localhost") {
            Err(rustls::Error::InvalidCertificate(CertificateError::ExpiredContext {
                not_after,
                ..
            })) => assert_eq!(
                not_after.as_secs(),
                u64::try_from(spec.not_after.unix_timestamp()).unwrap()
            ),
            other => panic!("expected an expiry error, got {other:?}"),
        }
    }

    #[test]
    fn leaf_spec_defaults() {
        let spec = LeafSpec::new("mx.x.mes.test", "X");
        assert!(spec.dns_names.is_empty() && spec.ip_addresses.is_empty());
        assert_eq!(spec.usage, Usage::ServerAndClient);
        let now = OffsetDateTime::now_utc();
        assert!(spec.not_before < now && spec.not_before > now - Duration::days(2));
        assert!(spec.not_after > now + Duration::days(729));
        assert!(spec.not_after < now + Duration::days(731));
        let looped = spec.with_loopback().with_loopback();
        assert_eq!(looped.dns_names, ["localhost"]);
        assert_eq!(looped.ip_addresses.len(), 2);
    }

    #[test]
    fn subject_dn_format_follows_the_certificate_order() {
        let ca = Ca::generate("Test CA").unwrap();
        let issued = ca
            .issue(&LeafSpec::new("mx.hopital-b.mes.test", "Hopital B"))
            .unwrap();
        assert_eq!(
            issued.subject_dn,
            "CN=mx.hopital-b.mes.test, O=Hopital B, C=FR"
        );
        assert_eq!(
            subject_dn_of_pem(&issued.cert_pem).unwrap(),
            issued.subject_dn
        );
        assert_eq!(
            subject_dn_of_der(&der_of(&issued.cert_pem)).unwrap(),
            issued.subject_dn
        );
        // Special characters are escaped as RFC 4514 says, so the rendering
        // parses back to the same RDNs; accents are kept.
        let odd = ca
            .issue(&LeafSpec::new("mx.c.mes.test", "Hôpital C, site Nord"))
            .unwrap();
        assert_eq!(
            odd.subject_dn,
            r"CN=mx.c.mes.test, O=Hôpital C\, site Nord, C=FR"
        );
        assert_eq!(
            dn::DistinguishedName::parse(&odd.subject_dn).unwrap(),
            subject_of_der(&der_of(&odd.cert_pem)).unwrap()
        );
        // No organisation: O is left out.
        let bare = ca.issue(&LeafSpec::new("app.mes.test", "")).unwrap();
        assert_eq!(bare.subject_dn, "CN=app.mes.test, C=FR");
        assert_eq!(ca.subject_dn(), "CN=Test CA, O=MES Development PKI, C=FR");
    }

    #[test]
    fn ca_round_trips_through_pem_files() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::generate("Round Trip CA").unwrap();
        let cert_path = dir.path().join("ca.pem");
        let key_path = dir.path().join("ca.key");
        write_public(&cert_path, &ca.cert_pem()).unwrap();
        write_private(&key_path, &ca.key_pem()).unwrap();
        let loaded = Ca::load(&cert_path, &key_path).unwrap();
        assert_eq!(loaded.cert_pem(), ca.cert_pem());
        assert_eq!(loaded.key_pem(), ca.key_pem());
        assert_eq!(loaded.subject_dn(), ca.subject_dn());
        let leaf = loaded.issue(&LeafSpec::new("mx.x.mes.test", "X")).unwrap();
        assert_issued_by(&der_of(&leaf.cert_pem), &der_of(&ca.cert_pem()));
        assert!(!format!("{loaded:?}").contains("PRIVATE"));
        assert!(!format!("{leaf:?}").contains("PRIVATE"));
    }

    #[test]
    fn loading_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::generate("CA").unwrap();
        let other = Ca::generate("Other").unwrap();
        let cert_path = dir.path().join("ca.pem");
        let key_path = dir.path().join("ca.key");
        let missing = dir.path().join("missing.pem");
        write_public(&cert_path, &ca.cert_pem()).unwrap();

        // Missing file.
        let err = Ca::load(&missing, &key_path).unwrap_err();
        assert!(matches!(err, PkiError::Io { .. }));
        assert!(err.to_string().contains("missing.pem"), "{err}");

        // A key that is not the certificate's.
        write_private(&key_path, &other.key_pem()).unwrap();
        let err = Ca::load(&cert_path, &key_path).unwrap_err();
        assert!(matches!(err, PkiError::KeyMismatch { .. }), "{err}");
        assert!(err.to_string().contains("ca.key"), "{err}");

        // A key file holding garbage.
        write_private(&key_path, "not a key").unwrap();
        let err = Ca::load(&cert_path, &key_path).unwrap_err();
        assert!(matches!(err, PkiError::BadPem { .. }), "{err}");
        assert!(err.to_string().contains("ca.key"), "{err}");

        // A certificate file holding a key.
        write_private(&key_path, &ca.key_pem()).unwrap();
        let err = Ca::load(&key_path, &key_path).unwrap_err();
        assert!(matches!(err, PkiError::BadPem { .. }), "{err}");
        assert!(err.to_string().contains("ca.key"), "{err}");

        // A leaf certificate is not a CA.
        let leaf = ca.issue(&LeafSpec::new("mx.x.mes.test", "X")).unwrap();
        write_public(&cert_path, &leaf.cert_pem).unwrap();
        write_private(&key_path, &leaf.key_pem).unwrap();
        let err = Ca::load(&cert_path, &key_path).unwrap_err();
        assert!(matches!(err, PkiError::NotCa { .. }), "{err}");
        assert!(err.to_string().contains("ca.pem"), "{err}");

        // --ca pointing at a directory without a PKI.
        let err = init_dev_pki(
            &dir.path().join("out"),
            &hosts(&["mx.y.mes.test"]),
            "Y",
            Some(dir.path()),
        )
        .unwrap_err();
        assert!(err.to_string().contains("certs/ca.pem"), "{err}");

        // Corrupt DER and bad PEM given as text.
        assert!(matches!(
            subject_dn_of_der(b"\x30\x03abc"),
            Err(PkiError::Parse { .. })
        ));
        assert!(matches!(
            subject_dn_of_pem("nothing here"),
            Err(PkiError::BadPem { .. })
        ));
    }

    #[test]
    fn bad_requests_are_refused() {
        let ca = Ca::generate("CA").unwrap();
        let mut spec = LeafSpec::new("mx.x.mes.test", "X");
        spec.not_after = spec.not_before;
        assert!(matches!(ca.issue(&spec), Err(PkiError::InvalidSpec { .. })));
        assert!(matches!(
            ca.issue(&LeafSpec::new("", "X")),
            Err(PkiError::InvalidSpec { .. })
        ));
        let mut spec = LeafSpec::new("mx.x.mes.test", "X");
        spec.dns_names.push("hôpital.mes.test".to_owned());
        assert!(matches!(ca.issue(&spec), Err(PkiError::Generate { .. })));
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            init_dev_pki(dir.path(), &[], "X", None),
            Err(PkiError::InvalidSpec { .. })
        ));
    }
}
