//! The one distinguished-name rule of MES: how a certificate subject is
//! compared with a DN written by a human (the whitelist's
//! `DNCertificatOperateur`, `mes user add --certificate-subject`) or with
//! another certificate's subject.
//!
//! # The rule
//!
//! A DN is compared as a **list of RDNs**, never as a rendered string:
//!
//! - A certificate's subject is read from its DER encoding, RDN by RDN and
//!   attribute by attribute ([`DistinguishedName::from_der_certificate`],
//!   [`DistinguishedName::from_x509_name`]). Nothing is rendered and re-parsed,
//!   so a CN holding `, O=Evil` stays one CN and cannot collide with a DN that
//!   has an `O=Evil` RDN.
//! - A textual DN ([`DistinguishedName::parse`]) may be written in any usual
//!   form: RFC 4514 / RFC 2253 as OpenSSL prints it with `-nameopt RFC2253`
//!   (`C=FR,O=b,CN=a`), x509-parser's and [`DistinguishedName`]'s own rendering
//!   (`C=FR, O=b, CN=a`), OpenSSL's default one-line form (`C = FR, O = b, CN = a`)
//!   and its old slash form (`/C=FR/O=b/CN=a`), with or without a leading
//!   `subject=`. RDNs are separated by `,` or `;` (by `/` in the slash form),
//!   attributes of a multi-valued RDN by `+`. RFC 4514 escapes are honoured
//!   (`\,` and hex pairs such as `\2C`, several forming UTF-8), as are
//!   double-quoted values (RFC 1779). A piece that does not start with
//!   `type=` continues the previous value (so `O=Dupont, Durand` typed without
//!   escaping keeps its comma); text whose first piece has no `type=` is an
//!   error.
//! - Attribute types are case-insensitive and short names, long names and
//!   OIDs are the same type (`CN`, `commonName`, `2.5.4.3`, `OID.2.5.4.3`;
//!   `E`, `emailAddress`, `1.2.840.113549.1.9.1`; …).
//! - Values are trimmed, runs of whitespace are collapsed to one space, and
//!   they are compared ignoring case (Unicode lower case).
//! - The attributes inside one RDN are a set: their order does not matter.
//! - **Order of RDNs.** A certificate stores its RDNs most general first
//!   (`C`, `O`, `CN`); RFC 4514 prints them the other way round, and a human
//!   may write either. So two DNs are the same when their RDN lists are equal
//!   **or one is the other reversed**; any other reordering is a different DN.
//!   (Two certificates whose subjects are exact reverses of each other would
//!   match; both would have to be issued by a CA of the trust space.)
//! - A value in RFC 4514's `#hex` form (a non-string DER value) is compared as
//!   that hex text; it never equals a string value, even one spelling the
//!   same characters.
//! - An empty DN matches nothing.
//!
//! # Forms
//!
//! - [`DistinguishedName`]'s `Display` is for people and logs: the RDNs in the
//!   order held (certificate order for a certificate), `", "` between RDNs,
//!   `" + "` inside one, values with their case and RFC 4514 escapes where
//!   needed, so the rendering parses back to the same DN. For ordinary DNs it
//!   is exactly x509-parser's rendering.
//! - [`DistinguishedName::key`] is the canonical string for storage and
//!   indexing (`accounts.cert_subject`): upper-case short types, lower-case
//!   values, attributes of an RDN sorted and joined by `+`, RDNs joined by `,`,
//!   values RFC 4514-escaped, and of the two directions the one whose
//!   rendering sorts first. Two DNs are the same exactly when their keys are
//!   equal, and a key parses back to a DN with the same key.

use std::fmt;

use x509_parser::prelude::{FromDer, X509Certificate, X509Name};
use x509_parser::x509::AttributeTypeAndValue;

/// Why a DN could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DnError {
    /// Nothing but blanks and separators.
    #[error("empty distinguished name")]
    Empty,
    /// A DN that does not start with `type=value`.
    #[error("not a distinguished name: {0:?} is not of the form type=value")]
    MissingType(String),
    /// The DER certificate or name could not be parsed.
    #[error("certificate: {0}")]
    Certificate(#[source] x509_parser::nom::Err<x509_parser::error::X509Error>),
}

/// One attribute of an RDN: canonical type and value as written (unescaped,
/// trimmed, whitespace collapsed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    kind: String,
    value: String,
    folded: String,
    /// The value is RFC 4514's `#` and hex form (a non-string DER value), not text.
    hex: bool,
}

impl Attribute {
    fn new(kind: String, (value, hex): (String, bool)) -> Attribute {
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        let folded = value.to_lowercase();
        Attribute {
            kind,
            value,
            folded,
            hex,
        }
    }

    /// The canonical attribute type (`CN`, `O`, `EMAILADDRESS`, or a dotted OID).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The value, with its case.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// A relative distinguished name: one or more attributes (`CN=a + UID=7`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdn {
    attributes: Vec<Attribute>,
}

impl Rdn {
    fn new(mut attributes: Vec<Attribute>) -> Rdn {
        attributes.sort_by(|a, b| (&a.kind, &a.folded).cmp(&(&b.kind, &b.folded)));
        Rdn { attributes }
    }

    /// Its attributes, sorted by type then value.
    pub fn attributes(&self) -> &[Attribute] {
        &self.attributes
    }

    fn key(&self) -> String {
        self.attributes
            .iter()
            .map(|a| format!("{}={}", a.kind, escape_value(&a.folded, a.hex)))
            .collect::<Vec<_>>()
            .join("+")
    }
}

/// A parsed distinguished name: its RDNs in the order they were read.
#[derive(Debug, Clone)]
pub struct DistinguishedName {
    rdns: Vec<Rdn>,
    key: String,
}

impl PartialEq for DistinguishedName {
    /// The DN rule: same canonical key (see the module documentation).
    fn eq(&self, other: &DistinguishedName) -> bool {
        self.key == other.key
    }
}

impl Eq for DistinguishedName {}

impl std::hash::Hash for DistinguishedName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl fmt::Display for DistinguishedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first_rdn = true;
        for rdn in &self.rdns {
            if !first_rdn {
                f.write_str(", ")?;
            }
            first_rdn = false;
            let mut first = true;
            for attribute in &rdn.attributes {
                if !first {
                    f.write_str(" + ")?;
                }
                first = false;
                write!(
                    f,
                    "{}={}",
                    attribute.kind,
                    escape_value(&attribute.value, attribute.hex)
                )?;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for DistinguishedName {
    type Err = DnError;

    fn from_str(text: &str) -> Result<DistinguishedName, DnError> {
        DistinguishedName::parse(text)
    }
}

impl DistinguishedName {
    fn from_rdns(rdns: Vec<Rdn>) -> Result<DistinguishedName, DnError> {
        let rdns: Vec<Rdn> = rdns
            .into_iter()
            .filter(|r| !r.attributes.is_empty())
            .collect();
        if rdns.is_empty() {
            return Err(DnError::Empty);
        }
        let forward: Vec<String> = rdns.iter().map(Rdn::key).collect();
        let mut backward = forward.clone();
        backward.reverse();
        let (forward, backward) = (forward.join(","), backward.join(","));
        let key = if backward < forward {
            backward
        } else {
            forward
        };
        Ok(DistinguishedName { rdns, key })
    }

    /// Parses a DN written in any usual textual form (see the module documentation).
    pub fn parse(text: &str) -> Result<DistinguishedName, DnError> {
        let mut body = text.trim();
        for prefix in ["subject=", "subject:", "subject ="] {
            if body
                .get(..prefix.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
            {
                body = body[prefix.len()..].trim_start();
                break;
            }
        }
        let (body, rdn_separators): (&str, &[char]) = match body.strip_prefix('/') {
            Some(rest) => (rest, &['/']),
            None => (body, &[',', ';']),
        };
        // Raw (still escaped) attributes, RDN by RDN.
        let mut rdns: Vec<Vec<(String, String)>> = Vec::new();
        for (separator, piece) in split_unescaped(body, rdn_separators) {
            if piece.trim().is_empty() {
                continue;
            }
            let typed = piece
                .split_once('=')
                .filter(|(kind, _)| is_attribute_type(kind.trim()));
            match typed {
                Some((kind, value)) => {
                    let attribute = (canonical_type(kind), value.to_owned());
                    match (separator, rdns.last_mut()) {
                        (Some('+'), Some(rdn)) => rdn.push(attribute),
                        _ => rdns.push(vec![attribute]),
                    }
                }
                None => {
                    // Continues the previous value (a separator that was not escaped).
                    let last = rdns.last_mut().and_then(|rdn| rdn.last_mut());
                    match (last, separator) {
                        (Some((_, value)), Some(separator)) => {
                            value.push(separator);
                            value.push_str(piece);
                        }
                        _ => return Err(DnError::MissingType(piece.trim().to_owned())),
                    }
                }
            }
        }
        let rdns = rdns
            .into_iter()
            .map(|attributes| {
                Rdn::new(
                    attributes
                        .into_iter()
                        .map(|(kind, value)| Attribute::new(kind, canonical_value(&value)))
                        .collect(),
                )
            })
            .collect();
        DistinguishedName::from_rdns(rdns)
    }

    /// The subject (or any name) of a certificate, from its parsed RDNs.
    pub fn from_x509_name(name: &X509Name<'_>) -> Result<DistinguishedName, DnError> {
        let rdns = name
            .iter()
            .map(|rdn| {
                Rdn::new(
                    rdn.iter()
                        .map(|attribute| {
                            Attribute::new(
                                canonical_type(&attribute.attr_type().to_id_string()),
                                der_value(attribute),
                            )
                        })
                        .collect(),
                )
            })
            .collect();
        DistinguishedName::from_rdns(rdns)
    }

    /// The subject of a DER certificate.
    pub fn from_der_certificate(der: &[u8]) -> Result<DistinguishedName, DnError> {
        let (_, cert) = X509Certificate::from_der(der).map_err(DnError::Certificate)?;
        DistinguishedName::from_x509_name(cert.subject())
    }

    /// The canonical key: for storage, indexing and equality (see the module documentation).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The RDNs in the order read (certificate order for a certificate).
    pub fn rdns(&self) -> &[Rdn] {
        &self.rdns
    }

    /// Whether `self` and `other` name the same subject (the DN rule).
    pub fn matches(&self, other: &DistinguishedName) -> bool {
        self == other
    }
}

/// The canonical key of a textual DN, or `None` when it cannot be parsed.
pub fn key_of(text: &str) -> Option<String> {
    DistinguishedName::parse(text)
        .ok()
        .map(|dn| dn.key().to_owned())
}

/// Whether two textual DNs name the same subject. A DN that cannot be parsed
/// (blank, no `type=`) matches nothing, not even itself.
pub fn same_dn(a: &str, b: &str) -> bool {
    match (DistinguishedName::parse(a), DistinguishedName::parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// A DER attribute value as text: the string types decoded, anything else as
/// `#` and the hex of its DER encoding (RFC 4514 section 2.4, flagged `true`).
fn der_value(attribute: &AttributeTypeAndValue<'_>) -> (String, bool) {
    let any = attribute.attr_value();
    let data = any.data;
    let text = if any.header.is_universal() {
        match any.header.tag().0 {
            // UTF8String, NumericString, PrintableString, IA5String, VisibleString.
            12 | 18 | 19 | 22 | 26 => std::str::from_utf8(data).ok().map(str::to_owned),
            // TeletexString: in practice Latin-1.
            20 => Some(data.iter().map(|&b| char::from(b)).collect()),
            // BMPString: UTF-16BE.
            30 if data.len() % 2 == 0 => {
                let units: Vec<u16> = data
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                String::from_utf16(&units).ok()
            }
            // UniversalString: UCS-4BE.
            28 if data.len() % 4 == 0 => data
                .chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
            _ => None,
        }
    } else {
        None
    };
    if let Some(text) = text {
        return (text, false);
    }
    {
        let tag = u8::try_from(any.header.tag().0).unwrap_or(0x1f);
        let mut der = vec![tag];
        let len = data.len();
        if len < 0x80 {
            der.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|&b| b == 0)
                .collect();
            der.push(0x80 | bytes.len() as u8);
            der.extend(bytes);
        }
        der.extend_from_slice(data);
        let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
        (format!("#{hex}"), true)
    }
}

/// Splits `body` on unescaped separators (and `+`) outside a quoted value.
/// Returns each piece with the separator that preceded it (`None` for the first).
fn split_unescaped<'a>(body: &'a str, separators: &[char]) -> Vec<(Option<char>, &'a str)> {
    let mut pieces = Vec::new();
    let mut start = 0usize;
    let mut previous_separator = None;
    let mut escaped = false;
    let mut in_quotes = false;
    // Between the first `=` of a piece and the first non-blank character after
    // it: where an opening quote is recognised.
    let mut value_start = false;
    let mut seen_equals = false;
    for (index, ch) in body.char_indices() {
        if escaped {
            escaped = false;
            value_start = false;
            continue;
        }
        match ch {
            '\\' => {
                escaped = true;
                value_start = false;
            }
            '"' if in_quotes => in_quotes = false,
            '"' if value_start => {
                in_quotes = true;
                value_start = false;
            }
            _ if in_quotes => {}
            _ if ch == '+' || separators.contains(&ch) => {
                pieces.push((previous_separator, &body[start..index]));
                previous_separator = Some(ch);
                start = index + ch.len_utf8();
                seen_equals = false;
                value_start = false;
            }
            '=' if !seen_equals => {
                seen_equals = true;
                value_start = true;
            }
            _ if ch.is_whitespace() => {}
            _ => value_start = false,
        }
    }
    pieces.push((previous_separator, &body[start..]));
    pieces
}

/// Whether `text` can be an attribute type (`CN`, `2.5.4.3`, `OID.2.5.4.3`,
/// `OID(2.5.4.97)`), as opposed to a piece of a value that held a separator.
fn is_attribute_type(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text.starts_with(|ch: char| ch.is_ascii_alphanumeric())
        && text
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '.' | '(' | ')'))
}

/// Canonical spelling of an attribute type.
fn canonical_type(raw: &str) -> String {
    let upper = raw.trim().to_ascii_uppercase();
    let oid = upper
        .strip_prefix("OID(")
        .and_then(|rest| rest.strip_suffix(')'))
        .or_else(|| upper.strip_prefix("OID."))
        .unwrap_or(&upper);
    let name = match oid {
        "CN" | "COMMONNAME" | "2.5.4.3" => "CN",
        "SN" | "SURNAME" | "2.5.4.4" => "SN",
        "SERIALNUMBER" | "2.5.4.5" => "SERIALNUMBER",
        "C" | "COUNTRYNAME" | "2.5.4.6" => "C",
        "L" | "LOCALITYNAME" | "2.5.4.7" => "L",
        "ST" | "S" | "STATEORPROVINCENAME" | "2.5.4.8" => "ST",
        "STREET" | "STREETADDRESS" | "2.5.4.9" => "STREET",
        "O" | "ORGANIZATIONNAME" | "2.5.4.10" => "O",
        "OU" | "ORGANIZATIONALUNIT" | "ORGANIZATIONALUNITNAME" | "2.5.4.11" => "OU",
        "T" | "TITLE" | "2.5.4.12" => "TITLE",
        "BUSINESSCATEGORY" | "2.5.4.15" => "BUSINESSCATEGORY",
        "POSTALCODE" | "2.5.4.17" => "POSTALCODE",
        "NAME" | "2.5.4.41" => "NAME",
        "GN" | "G" | "GIVENNAME" | "2.5.4.42" => "GIVENNAME",
        "INITIALS" | "2.5.4.43" => "INITIALS",
        "GENERATIONQUALIFIER" | "2.5.4.44" => "GENERATIONQUALIFIER",
        "DNQUALIFIER" | "2.5.4.46" => "DNQUALIFIER",
        "PSEUDONYM" | "2.5.4.65" => "PSEUDONYM",
        "ORGANIZATIONIDENTIFIER" | "2.5.4.97" => "ORGANIZATIONIDENTIFIER",
        "DC" | "DOMAINCOMPONENT" | "0.9.2342.19200300.100.1.25" => "DC",
        "UID" | "USERID" | "0.9.2342.19200300.100.1.1" => "UID",
        "E" | "EMAIL" | "EMAILADDRESS" | "1.2.840.113549.1.9.1" => "EMAILADDRESS",
        other => other,
    };
    name.to_owned()
}

/// Canonical form of a raw textual value: trimmed, unquoted, unescaped
/// (whitespace is collapsed by [`Attribute::new`]). A value starting with an
/// unescaped `#` (RFC 4514 hex form) is kept as written, in lower case, and
/// flagged `true`.
fn canonical_value(raw: &str) -> (String, bool) {
    let trimmed = raw.trim();
    if trimmed.starts_with('#') {
        return (trimmed.to_ascii_lowercase(), true);
    }
    let unquoted = match trimmed
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    {
        Some(inner) if !ends_with_escape(inner) => inner,
        _ => trimmed,
    };
    (unescape(unquoted), false)
}

/// Whether `text` ends with an odd number of backslashes, i.e. the character
/// after it was escaped.
fn ends_with_escape(text: &str) -> bool {
    text.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// Resolves DN escapes: `\` followed by two hex digits is a byte (several
/// forming UTF-8), `\` followed by any other character is that character.
fn unescape(text: &str) -> String {
    let mut bytes = Vec::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let mut lookahead = chars.clone();
        let high = lookahead.next().and_then(|c| c.to_digit(16));
        let low = lookahead.next().and_then(|c| c.to_digit(16));
        if let (Some(high), Some(low)) = (high, low) {
            // Both digits are below 16, so the byte fits.
            bytes.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
            chars.next();
            chars.next();
        } else if let Some(next) = chars.next() {
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(next.encode_utf8(&mut buf).as_bytes());
        } else {
            bytes.push(b'\\');
        }
    }
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
    }
}

/// RFC 4514 escaping of a value (plus `=`, which RFC 4514 allows escaping, so
/// that no reading of the text can split the value).
fn escape_value(value: &str, hex: bool) -> String {
    if hex {
        // The hex form of a non-string value: written as is.
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len() + 4);
    let last = value.chars().count().saturating_sub(1);
    for (index, ch) in value.chars().enumerate() {
        let special = matches!(ch, '\\' | ',' | '+' | '"' | ';' | '<' | '>' | '=')
            || (index == 0 && matches!(ch, '#' | ' '))
            || (index == last && ch == ' ');
        if special {
            out.push('\\');
            out.push(ch);
        } else if ch.is_control() {
            let mut buf = [0u8; 4];
            for b in ch.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\{b:02X}"));
            }
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(text: &str) -> DistinguishedName {
        DistinguishedName::parse(text).expect(text)
    }

    #[test]
    fn usual_forms_are_the_same_dn() {
        let forms = [
            "C=FR, O=Hopital A, CN=dpi.hopital-a.mes.test",
            "CN=dpi.hopital-a.mes.test, O=Hopital A, C=FR",
            "C=FR,O=Hopital A,CN=dpi.hopital-a.mes.test",
            "CN=dpi.hopital-a.mes.test,O=Hopital A,C=FR",
            "C = FR, O = Hopital A, CN = dpi.hopital-a.mes.test",
            "subject=C = FR, O = Hopital A, CN = dpi.hopital-a.mes.test",
            "subject=C=FR,O=Hopital A,CN=dpi.hopital-a.mes.test",
            "/C=FR/O=Hopital A/CN=dpi.hopital-a.mes.test",
            "c=fr; o=HOPITAL  a; commonName=DPI.hopital-a.mes.test",
            "2.5.4.6=FR, OID.2.5.4.10=Hopital A, OID(2.5.4.3)=dpi.hopital-a.mes.test",
        ];
        let first = dn(forms[0]);
        for form in forms {
            assert_eq!(dn(form), first, "{form}");
            assert!(same_dn(form, forms[0]), "{form}");
        }
        assert_eq!(first.key(), "C=fr,O=hopital a,CN=dpi.hopital-a.mes.test");
        assert_eq!(first.to_string(), forms[0]);
        // The key is a fixed point.
        assert_eq!(dn(first.key()).key(), first.key());
    }

    #[test]
    fn other_orders_and_values_differ() {
        assert!(!same_dn("C=FR, O=B, CN=a", "O=B, C=FR, CN=a"));
        assert!(!same_dn("CN=a, O=B", "CN=a, O=C"));
        assert!(!same_dn("CN=a, O=B", "CN=a, O=B, C=FR"));
        assert!(!same_dn("SN=a", "SERIALNUMBER=a"));
    }

    #[test]
    fn embedded_separators_do_not_collide() {
        let evil = dn(r"CN=x\, O=Evil");
        assert_eq!(evil.rdns().len(), 1);
        assert_ne!(evil, dn("CN=x, O=Evil"));
        assert_ne!(dn(r"CN=x\2C O=Evil"), dn("CN=x, O=Evil"));
        assert_eq!(dn(r"CN=x\2C O=Evil"), evil);
        assert_eq!(dn(r#"CN="x, O=Evil""#), evil);
        // The rendering escapes, so it parses back to the same DN.
        assert_eq!(evil.to_string(), r"CN=x\, O\=Evil");
        assert_eq!(dn(&evil.to_string()), evil);
        assert_eq!(dn(evil.key()), evil);
        assert_ne!(dn(r"CN=a\+UID=7"), dn("CN=a+UID=7"));
    }

    #[test]
    fn escapes_and_quotes() {
        let escaped = dn(r"CN=a, O=Dupont\, Durand et Cie, C=FR");
        assert_eq!(dn(r#"CN=a, O="Dupont, Durand et Cie", C=FR"#), escaped);
        assert_eq!(dn(r"C=FR,O=Dupont\2C Durand et Cie,CN=a"), escaped);
        // A comma typed without escape, followed by no `type=`, stays in the value.
        assert_eq!(dn("C=FR, O=Dupont, Durand et Cie, CN=a"), escaped);
        assert_eq!(dn(r"O=Op\C3\A9rateur"), dn("O=Opérateur"));
        assert_eq!(dn("O=Opérateur"), dn("O=OPÉRATEUR"));
        assert_eq!(dn(r"CN=a\\b").rdns()[0].attributes()[0].value(), r"a\b");
        assert_eq!(dn("CN=#0C0161").key(), "CN=#0c0161");
        // A text value that starts with `#` is not the hex form.
        assert_ne!(dn(r"CN=\#0c0161"), dn("CN=#0c0161"));
        assert_eq!(dn(r"CN=\#0c0161").key(), r"CN=\#0c0161");
        assert_eq!(dn(dn(r"CN=\#0c0161").key()), dn(r"CN=\#0c0161"));
    }

    #[test]
    fn multi_valued_rdns() {
        let multi = dn("CN=a + UID=7, O=B");
        assert_eq!(multi.rdns().len(), 2);
        assert_eq!(multi, dn("O=B,UID=7+CN=a"));
        assert_eq!(multi, dn("/O=B/CN=a+UID=7"));
        assert_ne!(multi, dn("CN=a, UID=7, O=B"));
        assert_eq!(multi.key(), "CN=a+UID=7,O=b");
    }

    #[test]
    fn bad_dns() {
        assert_eq!(DistinguishedName::parse("  "), Err(DnError::Empty));
        assert_eq!(DistinguishedName::parse(" , ; "), Err(DnError::Empty));
        assert_eq!(DistinguishedName::parse("/"), Err(DnError::Empty));
        assert!(DistinguishedName::parse(" , /").is_err());
        assert!(matches!(
            DistinguishedName::parse("hello"),
            Err(DnError::MissingType(_))
        ));
        assert!(matches!(
            DistinguishedName::parse("=x"),
            Err(DnError::MissingType(_))
        ));
        assert!(!same_dn("", ""));
        assert!(!same_dn("/", "/"));
        assert_eq!(key_of("nothing"), None);
    }

    #[test]
    fn certificate_subjects_are_read_from_der() {
        let mut params = rcgen::CertificateParams::default();
        let mut name = rcgen::DistinguishedName::new();
        name.push(rcgen::DnType::CountryName, "FR");
        name.push(rcgen::DnType::OrganizationName, "Evil");
        name.push(rcgen::DnType::CommonName, "x, O=Evil");
        params.distinguished_name = name;
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("certificate");
        let subject = DistinguishedName::from_der_certificate(cert.der()).expect("subject");
        assert_eq!(subject.rdns().len(), 3);
        assert_eq!(subject.to_string(), r"C=FR, O=Evil, CN=x\, O\=Evil");
        assert_eq!(subject, dn(r"CN=x\, O\=Evil,O=Evil,C=FR"));
        assert_ne!(subject, dn("C=FR, O=Evil, CN=x, O=Evil"));
        assert_ne!(subject, dn("CN=x, O=Evil"));
    }
}
