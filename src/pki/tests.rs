//! The development PKI checked with the verifiers the listeners use (rustls, webpki).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rcgen::KeyPair;
use time::OffsetDateTime;

use std::net::Ipv6Addr;

use super::files::{write_private, write_public};
use super::subject::{certificate_der_of_pem, parse_der};
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
fn rustls_verify_server(ca_der: &[u8], leaf_der: &[u8], name: &str) -> Result<(), rustls::Error> {
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
