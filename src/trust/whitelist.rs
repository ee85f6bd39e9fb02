//! Parser of the MSSanté trust-space whitelist ("liste blanche").
//!
//! The whitelist lists the domains of the trust space and, for each, the
//! subject DN of the certificate of the operator that serves it. MES uses it
//! twice: inbound, to check that a peer presenting an operator certificate may
//! send as the `MAIL FROM` domain; outbound, to refuse to relay to a domain that
//! is not in the trust space.
//!
//! # Format
//!
//! The published form is XML in the namespace [`NAMESPACE`]:
//!
//! ```xml
//! <ListeBlanche xmlns="https://listeblanche.mssante.fr/schema">
//!   <DateDeGeneration>2026-11-20T03:00:00</DateDeGeneration>
//!   <Domaine>
//!     <Nom>hopital-b.mes.test</Nom>
//!     <Description>Hôpital B</Description>
//!     <DNCertificatOperateur>CN=mx.operateur2.mes.test, O=Operateur Deux, C=FR</DNCertificatOperateur>
//!     <ResponsableContact>dsi@hopital-b.mes.test</ResponsableContact>
//!     <SupportContact>support@hopital-b.mes.test</SupportContact>
//!     <DateMAJ>2026-11-01T10:00:00</DateMAJ>
//!   </Domaine>
//! </ListeBlanche>
//! ```
//!
//! The root element's name is not published, so any root is accepted.
//! `DateDeGeneration` and `Domaine` are read as children of the root, and the
//! fields as children of a `Domaine`. Elements are matched on their local name
//! when they are in [`NAMESPACE`] (with any prefix, or as the default
//! namespace) or in no namespace at all. Elements of other namespaces and
//! unknown elements are skipped, so that additions to the format do not break
//! the parser. A `Domaine` may carry several `DNCertificatOperateur`, and all
//! of them are kept.
//!
//! # Safety
//!
//! The file comes from outside, so it is read with the hardened streaming
//! reader of [`crate::xml`] (no DOCTYPE, so no entity expansion or external
//! entity; only the predefined entities and character references; UTF-8
//! only; characters XML 1.0 forbids refused; attributes bounded), with input
//! size ([`MAX_INPUT_BYTES`]), nesting depth ([`MAX_DEPTH`]), number of
//! `Domaine` elements ([`MAX_DOMAINS`]) and text length per field
//! ([`MAX_FIELD_BYTES`]) bounded. A prefix with no namespace declaration is
//! an error.
//!
//! # Choices
//!
//! - Domain names are trimmed, lower-cased and stripped of one trailing dot,
//!   then must look like a DNS host name: ASCII letters, digits, hyphens and
//!   dots, at least two labels, labels of 1 to 63 characters not starting or
//!   ending with a hyphen, at most 253 characters, and a last label that is
//!   not all digits (so an IP address is refused). Internationalised names
//!   must be written in their A-label (`xn--`) form.
//! - A domain listed in several `Domaine` elements is **merged**, not refused:
//!   the operator DNs of all its entries are kept (duplicates removed, compared
//!   with [`dn_matches`]), and for the single-valued fields the first non-empty
//!   value wins. Listing a domain once per operator certificate is a plausible
//!   way to publish a certificate renewal, and refusing the whole file for it
//!   would cut the server off the trust space.
//! - Within one `Domaine`, a single-valued field given twice is an error
//!   ([`WhitelistError::DuplicateField`]): there is no way to tell which value
//!   was meant. So is a second `DateDeGeneration`.
//! - Field values are trimmed; an empty field counts as absent. An empty
//!   `DNCertificatOperateur` is dropped, since it could only ever match an
//!   empty DN.
//! - A field must contain text only: an element inside a field is an error.
//! - Dates are kept as the text found; they are not interpreted here.
//!
//! DNs written by humans in the whitelist must be compared with the DN read
//! from a certificate with [`dn_matches`] (or [`crate::pki::dn`] directly),
//! never with `==`; see [`crate::pki::dn`] for the rule.

#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};

use crate::store::whitelist::WhitelistRow;
use crate::xml::{Event, Namespace, Reader, XmlError, XmlLimits};

/// XML namespace of the published whitelist. Elements in this namespace, or in
/// no namespace, are recognised; elements of any other namespace are skipped.
pub const NAMESPACE: &str = "https://listeblanche.mssante.fr/schema";

/// Largest whitelist accepted, in bytes (16 MiB), checked before parsing so a
/// hostile or corrupted download cannot make the parser work on unbounded
/// input. The real list is a few megabytes at most.
pub const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;

/// Deepest element nesting accepted (the root counts as 1). The format needs
/// 3 levels; the bound stops nesting bombs early.
pub const MAX_DEPTH: usize = 16;

/// Largest number of `Domaine` elements accepted, far above the size of the
/// real trust space, so memory use stays bounded.
pub const MAX_DOMAINS: usize = 100_000;

/// Largest text of one field, in bytes of UTF-8 after entity decoding (4 KiB).
/// Real values (a domain, a DN, an address, a date) are far shorter.
pub const MAX_FIELD_BYTES: usize = 4 * 1024;

/// Longest element or entity name quoted back in an error message, so that an
/// error built from hostile input stays small.
const MAX_QUOTED_NAME: usize = 64;

/// The parsed whitelist: the domains of the trust space and their operators.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Whitelist {
    /// Text of `DateDeGeneration`, as published (e.g. `2026-11-20T03:00:00`),
    /// if present. Kept so the operator can see how fresh the loaded list is.
    pub generated_at: Option<String>,
    /// One entry per distinct domain, in order of first appearance in the
    /// file. Duplicated domains are merged (see the module documentation).
    pub domains: Vec<WhitelistEntry>,
}

impl Whitelist {
    /// Finds the entry of `domain`, compared after the same normalisation as
    /// the whitelist's names (trimmed, ASCII lower-case, trailing dot removed).
    ///
    /// This is a linear scan, meant for occasional lookups; code that checks
    /// every message should build its own index from [`Whitelist::domains`].
    pub fn find(&self, domain: &str) -> Option<&WhitelistEntry> {
        let wanted = domain.trim().to_ascii_lowercase();
        let wanted = wanted.strip_suffix('.').unwrap_or(&wanted);
        self.domains.iter().find(|entry| entry.domain == wanted)
    }

    /// The entries as the store keeps them (`mes trust import`).
    pub fn rows(&self) -> Vec<WhitelistRow> {
        self.domains
            .iter()
            .map(|e| WhitelistRow {
                domain: e.domain.clone(),
                operator_dns: e.operator_dns.clone(),
                description: e.description.clone(),
                responsable_contact: e.responsable_contact.clone(),
                support_contact: e.support_contact.clone(),
                updated_at: e.updated_at.clone(),
            })
            .collect()
    }
}

/// One domain of the trust space, with the operator allowed to serve it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WhitelistEntry {
    /// The domain (`Nom`), trimmed, ASCII lower-cased, trailing dot removed,
    /// and checked to look like a DNS name, so it can be compared directly with
    /// a normalised `MAIL FROM` or recipient domain.
    pub domain: String,
    /// Human description (`Description`), e.g. the establishment's name.
    pub description: Option<String>,
    /// Subject DNs of the operator certificates (`DNCertificatOperateur`), as
    /// written in the file (trimmed). Compare them with [`dn_matches`].
    pub operator_dns: Vec<String>,
    /// Contact of the person responsible for the domain (`ResponsableContact`).
    pub responsable_contact: Option<String>,
    /// Support contact for the domain (`SupportContact`).
    pub support_contact: Option<String>,
    /// Text of `DateMAJ`, the entry's last update, as published.
    pub updated_at: Option<String>,
}

impl WhitelistEntry {
    /// Whether `cert_dn` (the subject DN of a peer certificate, e.g. as printed
    /// by x509-parser or OpenSSL) is one of this domain's operator DNs, in the
    /// sense of [`dn_matches`]. This is the check behind "the domain belongs
    /// to that certificate's operator".
    pub fn matches_operator_dn(&self, cert_dn: &str) -> bool {
        self.operator_dns.iter().any(|dn| dn_matches(dn, cert_dn))
    }
}

/// Why a whitelist was refused. The whole file is refused on any error: a
/// partially loaded trust space would silently drop or admit domains.
#[derive(thiserror::Error, Debug)]
pub enum WhitelistError {
    /// The XML reader refused the document (not well-formed, too large, too
    /// deep, a DOCTYPE, an undefined entity, a forbidden character…).
    #[error("whitelist refused near byte {position}: {error}")]
    Xml {
        /// Byte offset in the input where the problem was found.
        position: u64,
        /// What the reader refused.
        #[source]
        error: XmlError,
    },
    /// More than [`MAX_DOMAINS`] `Domaine` elements.
    #[error("whitelist has more than {limit} Domaine elements")]
    TooManyDomains {
        /// The limit, [`MAX_DOMAINS`].
        limit: usize,
    },
    /// The text of a field is longer than [`MAX_FIELD_BYTES`].
    #[error("text of <{field}> is longer than {limit} bytes (near byte {position})")]
    FieldTooLong {
        /// Local name of the field.
        field: &'static str,
        /// The limit, [`MAX_FIELD_BYTES`].
        limit: usize,
        /// Byte offset in the input.
        position: u64,
    },
    /// An element inside a field, which must hold text only.
    #[error("element <{element}> is not allowed inside <{field}> (near byte {position})")]
    UnexpectedElement {
        /// Local name of the field.
        field: &'static str,
        /// Local name of the unexpected element (cut to a few dozen characters).
        element: String,
        /// Byte offset in the input.
        position: u64,
    },
    /// A single-valued field appears twice in one `Domaine`.
    #[error("<{field}> appears more than once in Domaine #{index} (0-based)")]
    DuplicateField {
        /// Local name of the field.
        field: &'static str,
        /// 0-based index of the `Domaine` element in document order.
        index: usize,
    },
    /// `DateDeGeneration` appears more than once.
    #[error("<DateDeGeneration> appears more than once")]
    DuplicateGenerationDate,
    /// A `Domaine` has no `Nom`, or an empty one.
    #[error("Domaine #{index} (0-based) has no <Nom>")]
    MissingName {
        /// 0-based index of the `Domaine` element in document order.
        index: usize,
    },
    /// A `Nom` that does not look like a DNS name; holds the value (trimmed).
    #[error("invalid domain name {0:?} in whitelist")]
    InvalidDomain(String),
}

/// Parses the published XML whitelist.
///
/// Returns every domain with its operator DNs, or an error that refuses the
/// whole file (see the module documentation for the rules and limits).
pub fn parse(xml: &[u8]) -> Result<Whitelist, WhitelistError> {
    let limits = XmlLimits {
        max_bytes: MAX_INPUT_BYTES as u64,
        max_depth: MAX_DEPTH,
        ..XmlLimits::default()
    };
    let mut reader =
        Reader::new(xml, &limits).map_err(|error| WhitelistError::Xml { position: 0, error })?;
    let mut state = ParseState::default();
    loop {
        let event = reader.next_event().map_err(|error| WhitelistError::Xml {
            position: reader.position(),
            error,
        })?;
        let position = reader.position();
        match event {
            Event::Start(start) => {
                let in_ns = match &start.namespace {
                    Namespace::None => true,
                    Namespace::Uri(uri) => uri == NAMESPACE,
                    Namespace::Undeclared(prefix) => {
                        return Err(WhitelistError::Xml {
                            position,
                            error: XmlError::Syntax(format!(
                                "undeclared namespace prefix {prefix:?}"
                            )),
                        });
                    }
                };
                state.open(in_ns, start.name.as_bytes(), position)?;
            }
            Event::End => state.close()?,
            Event::Text(text) => state.text(&text, position)?,
            Event::Eof => return Ok(state.finish()),
        }
    }
}

/// Cuts a name from the input to a bounded string for errors.
fn quote_name(name: &[u8]) -> String {
    String::from_utf8_lossy(name)
        .chars()
        .take(MAX_QUOTED_NAME)
        .collect()
}

/// An element whose text is collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextTarget {
    /// `DateDeGeneration`, child of the root.
    GenerationDate,
    /// A field of a `Domaine`.
    Field(Field),
}

impl TextTarget {
    /// The element's local name, for errors.
    fn name(self) -> &'static str {
        match self {
            TextTarget::GenerationDate => "DateDeGeneration",
            TextTarget::Field(field) => field.name(),
        }
    }
}

/// The fields of a `Domaine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Nom,
    Description,
    DnCertificatOperateur,
    ResponsableContact,
    SupportContact,
    DateMaj,
}

impl Field {
    /// Number of fields, for the "already seen" flags.
    const COUNT: usize = 6;

    /// The field with this local name, if any.
    fn from_local_name(name: &[u8]) -> Option<Field> {
        match name {
            b"Nom" => Some(Field::Nom),
            b"Description" => Some(Field::Description),
            b"DNCertificatOperateur" => Some(Field::DnCertificatOperateur),
            b"ResponsableContact" => Some(Field::ResponsableContact),
            b"SupportContact" => Some(Field::SupportContact),
            b"DateMAJ" => Some(Field::DateMaj),
            _ => None,
        }
    }

    /// The field's local name.
    fn name(self) -> &'static str {
        match self {
            Field::Nom => "Nom",
            Field::Description => "Description",
            Field::DnCertificatOperateur => "DNCertificatOperateur",
            Field::ResponsableContact => "ResponsableContact",
            Field::SupportContact => "SupportContact",
            Field::DateMaj => "DateMAJ",
        }
    }

    /// Whether the field may appear several times in one `Domaine`.
    fn repeatable(self) -> bool {
        self == Field::DnCertificatOperateur
    }
}

/// One open element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// The root element, whatever its name.
    Root,
    /// A `Domaine`.
    Domaine,
    /// An element whose text is collected.
    Text(TextTarget),
    /// An unknown or foreign element, skipped with all its content.
    Ignored,
}

/// A `Domaine` being read.
#[derive(Debug, Default)]
struct DomainBuilder {
    index: usize,
    seen: [bool; Field::COUNT],
    name: Option<String>,
    description: Option<String>,
    operator_dns: Vec<String>,
    responsable_contact: Option<String>,
    support_contact: Option<String>,
    updated_at: Option<String>,
}

impl DomainBuilder {
    /// Stores the (trimmed, possibly empty) value of a field.
    fn set(&mut self, field: Field, value: Option<String>) {
        let slot = match field {
            Field::DnCertificatOperateur => {
                if let Some(dn) = value {
                    self.operator_dns.push(dn);
                }
                return;
            }
            Field::Nom => &mut self.name,
            Field::Description => &mut self.description,
            Field::ResponsableContact => &mut self.responsable_contact,
            Field::SupportContact => &mut self.support_contact,
            Field::DateMaj => &mut self.updated_at,
        };
        *slot = value;
    }
}

/// State of the streaming parse.
#[derive(Debug, Default)]
struct ParseState {
    /// Open elements, innermost last; its length is the current depth.
    stack: Vec<Frame>,
    generation_date_seen: bool,
    generated_at: Option<String>,
    /// Text of the field being read.
    text: String,
    /// The `Domaine` being read.
    current: Option<DomainBuilder>,
    /// Number of `Domaine` elements opened so far.
    domain_count: usize,
    domains: Vec<WhitelistEntry>,
    /// Index in `domains` of each domain name.
    by_name: HashMap<String, usize>,
    /// For each entry of `domains`, the keys of its DNs, to merge without
    /// duplicates.
    dn_keys: Vec<HashSet<String>>,
}

impl ParseState {
    /// An element opens.
    fn open(&mut self, in_ns: bool, local: &[u8], position: u64) -> Result<(), WhitelistError> {
        let frame = match self.stack.last().copied() {
            // The reader refuses a second root element.
            None => Frame::Root,
            Some(Frame::Root) if in_ns && local == b"DateDeGeneration" => {
                if self.generation_date_seen {
                    return Err(WhitelistError::DuplicateGenerationDate);
                }
                self.generation_date_seen = true;
                self.text.clear();
                Frame::Text(TextTarget::GenerationDate)
            }
            Some(Frame::Root) if in_ns && local == b"Domaine" => {
                if self.domain_count >= MAX_DOMAINS {
                    return Err(WhitelistError::TooManyDomains { limit: MAX_DOMAINS });
                }
                self.current = Some(DomainBuilder {
                    index: self.domain_count,
                    ..DomainBuilder::default()
                });
                self.domain_count += 1;
                Frame::Domaine
            }
            Some(Frame::Domaine) if in_ns => match Field::from_local_name(local) {
                Some(field) => {
                    if let Some(current) = self.current.as_mut() {
                        let seen = &mut current.seen[field as usize];
                        if *seen && !field.repeatable() {
                            return Err(WhitelistError::DuplicateField {
                                field: field.name(),
                                index: current.index,
                            });
                        }
                        *seen = true;
                    }
                    self.text.clear();
                    Frame::Text(TextTarget::Field(field))
                }
                None => Frame::Ignored,
            },
            Some(Frame::Text(target)) => {
                return Err(WhitelistError::UnexpectedElement {
                    field: target.name(),
                    element: quote_name(local),
                    position,
                });
            }
            Some(Frame::Root | Frame::Domaine | Frame::Ignored) => Frame::Ignored,
        };
        self.stack.push(frame);
        Ok(())
    }

    /// The innermost open element closes (the reader pairs every end tag).
    fn close(&mut self) -> Result<(), WhitelistError> {
        match self.stack.pop() {
            None | Some(Frame::Root | Frame::Ignored) => Ok(()),
            Some(Frame::Text(target)) => {
                let trimmed = self.text.trim();
                let value = (!trimmed.is_empty()).then(|| trimmed.to_owned());
                self.text.clear();
                match target {
                    TextTarget::GenerationDate => self.generated_at = value,
                    TextTarget::Field(field) => {
                        if let Some(current) = self.current.as_mut() {
                            current.set(field, value);
                        }
                    }
                }
                Ok(())
            }
            Some(Frame::Domaine) => match self.current.take() {
                Some(builder) => self.add_domain(builder),
                None => Ok(()),
            },
        }
    }

    /// Character data inside the root (text, CDATA or a resolved reference).
    fn text(&mut self, text: &str, position: u64) -> Result<(), WhitelistError> {
        if let Some(Frame::Text(target)) = self.stack.last() {
            if self.text.len().saturating_add(text.len()) > MAX_FIELD_BYTES {
                return Err(WhitelistError::FieldTooLong {
                    field: target.name(),
                    limit: MAX_FIELD_BYTES,
                    position,
                });
            }
            self.text.push_str(text);
        }
        Ok(())
    }

    /// A `Domaine` is complete: validate it and add or merge it.
    fn add_domain(&mut self, builder: DomainBuilder) -> Result<(), WhitelistError> {
        let raw_name = builder.name.ok_or(WhitelistError::MissingName {
            index: builder.index,
        })?;
        let domain = normalize_domain(&raw_name)?;
        let index = match self.by_name.get(&domain) {
            Some(&index) => index,
            None => {
                let index = self.domains.len();
                self.by_name.insert(domain.clone(), index);
                self.domains.push(WhitelistEntry {
                    domain,
                    ..WhitelistEntry::default()
                });
                self.dn_keys.push(HashSet::new());
                index
            }
        };
        let (Some(entry), Some(keys)) = (self.domains.get_mut(index), self.dn_keys.get_mut(index))
        else {
            return Ok(());
        };
        for dn in builder.operator_dns {
            let key = normalize_dn(&dn);
            if !key.is_empty() && keys.insert(key) {
                entry.operator_dns.push(dn);
            }
        }
        merge_first(&mut entry.description, builder.description);
        merge_first(&mut entry.responsable_contact, builder.responsable_contact);
        merge_first(&mut entry.support_contact, builder.support_contact);
        merge_first(&mut entry.updated_at, builder.updated_at);
        Ok(())
    }

    /// End of input (the reader checked that the root closed).
    fn finish(self) -> Whitelist {
        Whitelist {
            generated_at: self.generated_at,
            domains: self.domains,
        }
    }
}

/// Keeps the first non-empty value of a field across duplicated entries.
fn merge_first(slot: &mut Option<String>, value: Option<String>) {
    if slot.is_none() {
        *slot = value;
    }
}

/// Normalises and checks a `Nom` (see the module documentation).
fn normalize_domain(raw: &str) -> Result<String, WhitelistError> {
    let trimmed = raw.trim();
    let lower = trimmed.to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if is_dns_name(name) {
        Ok(name.to_owned())
    } else {
        Err(WhitelistError::InvalidDomain(trimmed.to_owned()))
    }
}

/// Whether `name` (already lower-cased) looks like a DNS host name.
fn is_dns_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let mut labels = 0usize;
    let mut last = "";
    for label in name.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return false;
        }
        labels += 1;
        last = label;
    }
    labels >= 2 && !last.bytes().all(|b| b.is_ascii_digit())
}

/// Canonical key of a distinguished name ([`crate::pki::dn`], the one DN rule
/// of MES), for comparing the DN a human wrote in the whitelist with the DN
/// read from a certificate: RDNs parsed from any usual textual form, types and
/// values canonicalised, certificate and reversed order the same. A DN that
/// cannot be parsed (blank, no `type=`) normalises to `""`.
pub fn normalize_dn(dn: &str) -> String {
    crate::pki::dn::key_of(dn).unwrap_or_default()
}

/// Whether two DNs name the same subject under the DN rule
/// ([`crate::pki::dn::same_dn`]). A blank or unparsable DN matches nothing,
/// not even another one.
pub fn dn_matches(a: &str, b: &str) -> bool {
    crate::pki::dn::same_dn(a, b)
}

#[cfg(test)]
mod tests;
