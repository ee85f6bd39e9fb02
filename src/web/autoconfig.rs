//! Mail-client autoconfiguration, for professionals' clients only (patients
//! use the patient space, never IMAP or SMTP): Thunderbird's autoconfig
//! (`/.well-known/autoconfig/mail/config-v1.1.xml`, `/mail/config-v1.1.xml`,
//! answered for any Host, `autoconfig.DOMAIN` included) and Outlook's
//! Autodiscover POX (`POST /autodiscover/autodiscover.xml`, its request read
//! by the hardened `xml` reader: no DOCTYPE, so no entity, and a small body).
//! Only hosted professional domains are described; others get 404.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use quick_xml::escape::escape;
use serde::Deserialize;

use super::WebServices;
use crate::address::Address;
use crate::config::ClientEndpoints;
use crate::identity::DomainKind;
use crate::xml::XmlLimits;

type Shared = Arc<WebServices>;

/// Largest Autodiscover request (a real one is a few hundred octets).
const AUTODISCOVER_LIMIT: usize = 8 * 1024;

/// The autoconfiguration routes.
pub(super) fn routes() -> axum::Router<Shared> {
    axum::Router::new()
        .route(
            "/.well-known/autoconfig/mail/config-v1.1.xml",
            get(thunderbird),
        )
        .route("/mail/config-v1.1.xml", get(thunderbird))
        .route(
            "/autodiscover/autodiscover.xml",
            post(autodiscover).layer(DefaultBodyLimit::max(AUTODISCOVER_LIMIT)),
        )
        .route(
            "/Autodiscover/Autodiscover.xml",
            post(autodiscover).layer(DefaultBodyLimit::max(AUTODISCOVER_LIMIT)),
        )
}

/// What a client asks about.
#[derive(Debug, Deserialize)]
struct Ask {
    emailaddress: Option<String>,
}

fn xml(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "unknown domain\n").into_response()
}

/// The domain asked about: the address's, else the Host's (`autoconfig.` removed).
fn asked_domain(ask: &Ask, headers: &HeaderMap) -> Option<String> {
    if let Some(address) = ask.emailaddress.as_deref().filter(|a| !a.is_empty()) {
        return Address::parse(address).ok().map(|a| a.domain().to_string());
    }
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let domain = host.strip_prefix("autoconfig.").unwrap_or(host);
    crate::address::normalize_domain(domain).ok()
}

/// Whether `domain` is one of our professional domains.
async fn hosted(s: &WebServices, domain: &str) -> Result<bool, Response> {
    match s.store.domain_kind(domain).await {
        Ok(kind) => Ok(kind == Some(DomainKind::Professional)),
        Err(e) => {
            tracing::error!(error = %e, "domain lookup failed");
            Err(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
    }
}

async fn thunderbird(
    State(s): State<Shared>,
    Query(ask): Query<Ask>,
    headers: HeaderMap,
) -> Response {
    let Some(domain) = asked_domain(&ask, &headers) else {
        return not_found();
    };
    match hosted(&s, &domain).await {
        Ok(true) => xml(thunderbird_xml(&domain, &s.operator, &s.clients)),
        Ok(false) => not_found(),
        Err(r) => r,
    }
}

/// Thunderbird's config-v1.1 document for `domain`: implicit TLS first (RFC 8314).
pub fn thunderbird_xml(domain: &str, operator: &str, e: &ClientEndpoints) -> String {
    let server = |tag: &str, kind: &str, endpoint: &crate::config::Endpoint, socket: &str| {
        endpoint.as_ref().map_or(String::new(), |(host, port)| {
            format!(
                "    <{tag} type=\"{kind}\">\n      <hostname>{}</hostname>\n      \
                 <port>{port}</port>\n      <socketType>{socket}</socketType>\n      \
                 <username>%EMAILADDRESS%</username>\n      \
                 <authentication>password-cleartext</authentication>\n    </{tag}>\n",
                escape(host)
            )
        })
    };
    let domain = escape(domain);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n  \
         <emailProvider id=\"{domain}\">\n    <domain>{domain}</domain>\n    \
         <displayName>{operator}</displayName>\n    <displayShortName>{operator}</displayShortName>\n\
         {imaps}{imap}{submissions}{submission}  </emailProvider>\n</clientConfig>\n",
        operator = escape(operator),
        imaps = server("incomingServer", "imap", &e.imaps, "SSL"),
        imap = server("incomingServer", "imap", &e.imap, "STARTTLS"),
        submissions = server("outgoingServer", "smtp", &e.submissions, "SSL"),
        submission = server("outgoingServer", "smtp", &e.submission, "STARTTLS"),
    )
}

async fn autodiscover(State(s): State<Shared>, body: axum::body::Bytes) -> Response {
    let Some(address) = autodiscover_address(&body) else {
        return (StatusCode::BAD_REQUEST, "bad Autodiscover request\n").into_response();
    };
    match hosted(&s, address.domain()).await {
        Ok(true) => xml(autodiscover_xml(&address.to_string(), &s.clients)),
        Ok(false) => not_found(),
        Err(r) => r,
    }
}

/// The `EMailAddress` of a POX Autodiscover request, read by the hardened
/// reader within small limits; None for anything else.
fn autodiscover_address(body: &[u8]) -> Option<Address> {
    let limits = XmlLimits {
        max_bytes: AUTODISCOVER_LIMIT as u64,
        max_depth: 8,
        max_nodes: 64,
        max_attributes: 8,
        max_attribute_bytes: 1024,
    };
    let root = crate::xml::parse(body, &limits).ok()?;
    if root.name != "Autodiscover" {
        return None;
    }
    let text = root.path(&["Request", "EMailAddress"])?.text();
    Address::parse(text.trim()).ok()
}

/// Outlook's POX answer: IMAP and SMTP entries, implicit TLS preferred.
pub fn autodiscover_xml(address: &str, e: &ClientEndpoints) -> String {
    let protocol = |kind: &str, endpoint: &crate::config::Endpoint, ssl: bool| {
        endpoint.as_ref().map_or(String::new(), |(host, port)| {
            let encryption = if ssl {
                "<SSL>on</SSL>".to_string()
            } else {
                "<SSL>off</SSL><Encryption>TLS</Encryption>".to_string()
            };
            format!(
                "      <Protocol>\n        <Type>{kind}</Type>\n        <Server>{}</Server>\n        \
                 <Port>{port}</Port>\n        <DomainRequired>off</DomainRequired>\n        \
                 <LoginName>{}</LoginName>\n        <SPA>off</SPA>\n        {encryption}\n        \
                 <AuthRequired>on</AuthRequired>\n      </Protocol>\n",
                escape(host),
                escape(address)
            )
        })
    };
    let imap = protocol("IMAP", &e.imaps, true)
        + &if e.imaps.is_none() {
            protocol("IMAP", &e.imap, false)
        } else {
            String::new()
        };
    let smtp = protocol("SMTP", &e.submissions, true)
        + &if e.submissions.is_none() {
            protocol("SMTP", &e.submission, false)
        } else {
            String::new()
        };
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n  \
         <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n    \
         <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n\
         {imap}{smtp}    </Account>\n  </Response>\n</Autodiscover>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autodiscover_request_is_read_and_hostile_ones_refused() {
        let ok = br#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request><EMailAddress>jean@a.test</EMailAddress>
  <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request></Autodiscover>"#;
        assert_eq!(
            autodiscover_address(ok).map(|a| a.to_string()).as_deref(),
            Some("jean@a.test")
        );
        let laughs =
            br#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>
<Autodiscover><Request><EMailAddress>&b;@a.test</EMailAddress></Request></Autodiscover>"#;
        assert!(autodiscover_address(laughs).is_none());
        assert!(autodiscover_address(b"<Other><Request/></Other>").is_none());
    }

    #[test]
    fn thunderbird_document_escapes_the_operator() {
        let e = ClientEndpoints {
            imaps: Some(("imap.a.test".into(), 993)),
            imap: None,
            submissions: Some(("smtp.a.test".into(), 465)),
            submission: Some(("smtp.a.test".into(), 587)),
        };
        let x = thunderbird_xml("a.test", "A & <B>", &e);
        assert!(
            x.contains("<displayName>A &amp; &lt;B&gt;</displayName>"),
            "{x}"
        );
        assert!(x.contains("<port>993</port>"));
        assert!(!x.contains("STARTTLS</socketType>\n      <username>%EMAILADDRESS%</username>\n      <authentication>password-cleartext</authentication>\n    </incomingServer>"));
    }
}
