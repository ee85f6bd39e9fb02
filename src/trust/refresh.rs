//! The scheduled refresh of the imported whitelist (`trust.whitelist_url`,
//! every `trust.refresh_secs`): fetch (a local path, or an `https://` URL
//! over rustls), parse, validate, then replace the stored list in one
//! transaction. Anything that fails keeps the list in force.
//!
//! The published XML carries no signature (`DateDeGeneration` then `Domaine`
//! elements, nothing else): what is verified is the transport (HTTPS with the
//! Web PKI), the document (well-formed, bounded, no DTD), and every entry (a
//! domain and at least one operator DN that parses under the one DN rule).
//! An empty list is refused: it would cut the operator off the trust space.
//! When `trust.whitelist_signing_cert` is set, the list must also come with a
//! detached signature of that certificate's key (`signature.rs`, our
//! extension), fetched the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::signature::{SignatureError, Signer, signature_source};
use super::whitelist::{self, Whitelist, WhitelistError};
use crate::config::TrustSettings;
use crate::store::{Store, StoreError};

/// The largest whitelist accepted (the national one is well under 1 MiB).
const MAX_BYTES: usize = 16 * 1024 * 1024;
/// Bound on one fetch, connection and body included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a refresh kept the previous list.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The source could not be read.
    #[error("fetching the whitelist: {0}")]
    Fetch(String),
    /// The document was refused by the parser.
    #[error(transparent)]
    Parse(#[from] WhitelistError),
    /// The document parsed but fails validation.
    #[error("whitelist refused: {0}")]
    Invalid(String),
    /// The detached signature is missing or does not verify.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The check of a list against its detached signature.
#[derive(Debug, Clone)]
pub struct Verification {
    /// Whose key signs the list.
    pub signer: Signer,
    /// Where the signature is read (a path or an `https://` URL).
    pub source: String,
}

impl Verification {
    /// The verification `trust` asks for the list at `source`: none without
    /// `whitelist_signing_cert`.
    pub fn configured(
        trust: &TrustSettings,
        source: &str,
    ) -> Result<Option<Verification>, SignatureError> {
        let Some(cert) = &trust.whitelist_signing_cert else {
            return Ok(None);
        };
        Ok(Some(Verification {
            signer: Signer::load(cert)?,
            source: signature_source(source, trust.whitelist_signature_url.as_deref()),
        }))
    }
}

/// What a refresh changed, for the log (domains are not health data).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    /// Domains that joined the list.
    pub added: Vec<String>,
    /// Domains that left it.
    pub removed: Vec<String>,
    /// Domains whose operator DNs changed.
    pub changed: Vec<String>,
}

impl Change {
    /// True when the new list is the one in force.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Reads the list at `source`: a local path, or an `https://` URL fetched
/// with `tls` (Web PKI roots). Plain `http://` is refused.
pub async fn fetch(source: &str, tls: Arc<rustls::ClientConfig>) -> Result<Vec<u8>, RefreshError> {
    if source.starts_with("https://") {
        tokio::time::timeout(FETCH_TIMEOUT, fetch_https(source, tls))
            .await
            .map_err(|_| RefreshError::Fetch("timed out".into()))?
    } else if source.contains("://") {
        Err(RefreshError::Fetch(
            "only a local path or an https:// URL".into(),
        ))
    } else {
        let path = Path::new(source);
        let len = tokio::fs::metadata(path)
            .await
            .map_err(|e| RefreshError::Fetch(format!("{source}: {e}")))?
            .len();
        if len > MAX_BYTES as u64 {
            return Err(RefreshError::Fetch(format!(
                "{source}: larger than {MAX_BYTES} bytes"
            )));
        }
        tokio::fs::read(path)
            .await
            .map_err(|e| RefreshError::Fetch(format!("{source}: {e}")))
    }
}

async fn fetch_https(url: &str, tls: Arc<rustls::ClientConfig>) -> Result<Vec<u8>, RefreshError> {
    use http_body_util::BodyExt;
    let fail = |e: &dyn std::fmt::Display| RefreshError::Fetch(e.to_string());
    let uri: hyper::Uri = url.parse().map_err(|e| fail(&e))?;
    let host = uri.host().ok_or_else(|| fail(&"no host"))?.to_string();
    let port = uri.port_u16().unwrap_or(443);
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| fail(&e))?;
    let name = rustls_pki_types::ServerName::try_from(host.clone()).map_err(|e| fail(&e))?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| fail(&e))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| fail(&e))?;
    tokio::spawn(conn);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, &host)
        .header(hyper::header::USER_AGENT, "mes-whitelist-refresh")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .map_err(|e| fail(&e))?;
    let response = sender.send_request(request).await.map_err(|e| fail(&e))?;
    if !response.status().is_success() {
        return Err(fail(&format!("HTTP {}", response.status())));
    }
    let body = http_body_util::Limited::new(response.into_body(), MAX_BYTES)
        .collect()
        .await
        .map_err(|e| fail(&e))?;
    Ok(body.to_bytes().to_vec())
}

/// Checks what the parser cannot: a list with entries, each with an operator
/// DN that parses (an unparsable DN would silently match nothing).
pub fn validate(list: &Whitelist) -> Result<(), RefreshError> {
    if list.domains.is_empty() {
        return Err(RefreshError::Invalid("no Domaine".into()));
    }
    for d in &list.domains {
        if d.operator_dns.is_empty() {
            return Err(RefreshError::Invalid(format!(
                "{}: no DNCertificatOperateur",
                d.domain
            )));
        }
        if let Some(dn) = d
            .operator_dns
            .iter()
            .find(|dn| crate::pki::dn::key_of(dn).is_none())
        {
            return Err(RefreshError::Invalid(format!(
                "{}: DN {dn} does not parse",
                d.domain
            )));
        }
    }
    Ok(())
}

/// The difference between the stored list and `list`.
pub fn diff(before: &[(String, Vec<String>)], list: &Whitelist) -> Change {
    let old: BTreeMap<&str, BTreeSet<&str>> = before
        .iter()
        .map(|(d, dns)| (d.as_str(), dns.iter().map(String::as_str).collect()))
        .collect();
    let mut new: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for d in &list.domains {
        new.entry(d.domain.as_str())
            .or_default()
            .extend(d.operator_dns.iter().map(String::as_str));
    }
    let mut change = Change::default();
    for (domain, dns) in &new {
        match old.get(domain) {
            None => change.added.push(domain.to_string()),
            Some(o) if o != dns => change.changed.push(domain.to_string()),
            Some(_) => {}
        }
    }
    change.removed = old
        .keys()
        .filter(|d| !new.contains_key(*d))
        .map(|d| d.to_string())
        .collect();
    change
}

/// Fetches the signature `check` names and verifies `bytes` with it.
pub async fn verify(
    bytes: &[u8],
    check: &Verification,
    tls: Arc<rustls::ClientConfig>,
) -> Result<(), RefreshError> {
    let signature = fetch(&check.source, tls)
        .await
        .map_err(|e| SignatureError::Missing(e.to_string()))?;
    check.signer.verify(bytes, &signature)?;
    Ok(())
}

/// One refresh: fetch, verify the signature when `check` is given, parse,
/// validate, replace (when it differs). On any error the stored list stays
/// as it was. The caller logs and audits the change.
pub async fn refresh(
    store: &Store,
    source: &str,
    tls: Arc<rustls::ClientConfig>,
    check: Option<&Verification>,
) -> Result<Change, RefreshError> {
    let bytes = fetch(source, tls.clone()).await?;
    if let Some(check) = check {
        verify(&bytes, check, tls).await?;
    }
    let list = whitelist::parse(&bytes)?;
    validate(&list)?;
    let before = store.whitelist().await?;
    let change = diff(&before, &list);
    if !change.is_empty() {
        store.replace_whitelist(&list.rows()).await?;
    }
    Ok(change)
}
