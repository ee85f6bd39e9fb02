//! The certificate authority and the leaf certificates it issues.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;

use super::files::read_to_string;
use super::subject::{certificate_der_of_pem, name_to_string, parse_der, subject_dn_of_der};
use super::{BACKDATE, CA_LIFETIME, COUNTRY, DEV_CA_ORGANISATION, LEAF_LIFETIME, PkiError};

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

pub(super) fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}
