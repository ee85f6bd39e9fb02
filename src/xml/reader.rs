//! The streaming hardened reader: quick-xml's namespace-aware reader with the
//! rules of [`crate::xml`] applied to every event.

use std::collections::HashSet;

use quick_xml::events::{BytesRef, BytesStart, Event as RawEvent};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use super::{XmlError, XmlLimits, is_xml_char};

/// The namespace an element's name resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespace {
    /// No prefix and no default namespace in scope.
    None,
    /// A declared namespace URI.
    Uri(String),
    /// A prefix with no declaration in scope (the prefix, cut for messages).
    Undeclared(String),
}

/// An opening tag. An empty element (`<a/>`) is a [`Start`] followed by an
/// [`Event::End`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// Local name (`ns2:Slot` gives `Slot`).
    pub name: String,
    /// Where the name's prefix (or the default namespace) points.
    pub namespace: Namespace,
    /// Attributes by local name (`xsi:type` gives `type`), unescaped;
    /// `xmlns` declarations are dropped.
    pub attrs: Vec<(String, String)>,
}

/// One step of the document, after the rules were applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An element opens.
    Start(Start),
    /// The innermost open element closes.
    End,
    /// Character data inside the root element: text, a CDATA section or a
    /// resolved reference (never whitespace-only text outside the root).
    Text(String),
    /// The document is complete and well-formed.
    Eof,
}

/// Longest name quoted back in an error message.
const MAX_QUOTED_NAME: usize = 64;

/// Streams a document held in memory, refusing anything the rules forbid.
pub struct Reader<'a> {
    inner: NsReader<&'a [u8]>,
    limits: XmlLimits,
    depth: usize,
    root_seen: bool,
}

impl<'a> Reader<'a> {
    /// A reader over `xml`, refused at once if it is larger than the limit.
    pub fn new(xml: &'a [u8], limits: &XmlLimits) -> Result<Self, XmlError> {
        if xml.len() as u64 > limits.max_bytes {
            return Err(XmlError::TooLarge(limits.max_bytes));
        }
        let mut inner = NsReader::from_reader(xml);
        let config = inner.config_mut();
        config.trim_text(false);
        config.expand_empty_elements = true;
        config.check_end_names = true;
        config.allow_unmatched_ends = false;
        config.allow_dangling_amp = false;
        config.check_comments = true;
        Ok(Self {
            inner,
            limits: *limits,
            depth: 0,
            root_seen: false,
        })
    }

    /// Byte offset in the input reached so far (for error messages).
    pub fn position(&self) -> u64 {
        self.inner.buffer_position()
    }

    /// The next event; after an error the document must be dropped.
    pub fn next_event(&mut self) -> Result<Event, XmlError> {
        loop {
            let (ns, event) = self
                .inner
                .read_resolved_event()
                .map_err(|e| XmlError::Syntax(e.to_string()))?;
            let namespace = match ns {
                ResolveResult::Unbound => Namespace::None,
                ResolveResult::Bound(uri) => {
                    Namespace::Uri(String::from_utf8_lossy(uri.as_ref()).into_owned())
                }
                ResolveResult::Unknown(prefix) => Namespace::Undeclared(quote(&prefix)),
            };
            match event {
                RawEvent::Start(start) => {
                    if self.depth == 0 && self.root_seen {
                        return Err(XmlError::OutsideRoot);
                    }
                    if self.depth >= self.limits.max_depth {
                        return Err(XmlError::TooDeep(self.limits.max_depth));
                    }
                    let start = self.start(&start, namespace)?;
                    self.depth += 1;
                    self.root_seen = true;
                    return Ok(Event::Start(start));
                }
                // Empty elements are expanded by the configuration.
                RawEvent::Empty(_) => {
                    return Err(XmlError::Syntax("unexpanded empty element".into()));
                }
                RawEvent::End(_) => {
                    self.depth = self
                        .depth
                        .checked_sub(1)
                        .ok_or_else(|| XmlError::Syntax("end tag without a start tag".into()))?;
                    return Ok(Event::End);
                }
                RawEvent::Text(text) => {
                    let text = text
                        .xml10_content()
                        .map_err(|e| XmlError::Syntax(e.to_string()))?;
                    check_chars(&text)?;
                    if self.depth == 0 {
                        if text.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r')) {
                            continue;
                        }
                        return Err(XmlError::OutsideRoot);
                    }
                    return Ok(Event::Text(text.into_owned()));
                }
                RawEvent::CData(cdata) => {
                    let text = cdata
                        .xml10_content()
                        .map_err(|e| XmlError::Syntax(e.to_string()))?;
                    check_chars(&text)?;
                    self.inside_root()?;
                    return Ok(Event::Text(text.into_owned()));
                }
                RawEvent::GeneralRef(reference) => {
                    let text = resolve_reference(&reference)?;
                    self.inside_root()?;
                    return Ok(Event::Text(text));
                }
                RawEvent::DocType(_) => return Err(XmlError::Doctype),
                RawEvent::Decl(decl) => {
                    if let Some(encoding) = decl.encoding() {
                        let encoding = encoding.map_err(|e| XmlError::Syntax(e.to_string()))?;
                        if !encoding.eq_ignore_ascii_case(b"utf-8")
                            && !encoding.eq_ignore_ascii_case(b"utf8")
                        {
                            return Err(XmlError::Encoding(quote(&encoding)));
                        }
                    }
                }
                RawEvent::Comment(_) | RawEvent::PI(_) => {}
                RawEvent::Eof => {
                    if self.depth > 0 {
                        return Err(XmlError::Syntax("unclosed element at end of input".into()));
                    }
                    if !self.root_seen {
                        return Err(XmlError::Empty);
                    }
                    return Ok(Event::Eof);
                }
            }
        }
    }

    /// CDATA and references are markup: never allowed outside the root, even
    /// when they stand for whitespace.
    fn inside_root(&self) -> Result<(), XmlError> {
        if self.depth == 0 {
            Err(XmlError::OutsideRoot)
        } else {
            Ok(())
        }
    }

    /// The tag's name and attributes, bounded by the limits.
    fn start(&self, tag: &BytesStart<'_>, namespace: Namespace) -> Result<Start, XmlError> {
        let name = String::from_utf8_lossy(tag.local_name().as_ref()).into_owned();
        let mut attrs = Vec::new();
        let mut seen = HashSet::new();
        let mut bytes = 0usize;
        for (i, attr) in tag.attributes().with_checks(false).enumerate() {
            if i >= self.limits.max_attributes {
                return Err(XmlError::TooManyAttributes(self.limits.max_attributes));
            }
            let attr = attr.map_err(|e| XmlError::Syntax(e.to_string()))?;
            if !seen.insert(attr.key.as_ref().to_vec()) {
                return Err(XmlError::DuplicateAttribute);
            }
            let key = attr.key;
            if key.as_ref() == b"xmlns" || key.prefix().is_some_and(|p| p.as_ref() == b"xmlns") {
                continue;
            }
            let value = attr
                .decode_and_unescape_value(self.inner.decoder())
                .map_err(|e| match e {
                    quick_xml::Error::Escape(
                        quick_xml::escape::EscapeError::UnrecognizedEntity(_, name),
                    ) => XmlError::Entity(name.chars().take(MAX_QUOTED_NAME).collect()),
                    other => XmlError::Syntax(other.to_string()),
                })?;
            check_chars(&value)?;
            bytes = bytes.saturating_add(value.len());
            if bytes > self.limits.max_attribute_bytes {
                return Err(XmlError::AttributesTooLarge(
                    self.limits.max_attribute_bytes,
                ));
            }
            let local = String::from_utf8_lossy(key.local_name().as_ref()).into_owned();
            attrs.push((local, value.into_owned()));
        }
        Ok(Start {
            name,
            namespace,
            attrs,
        })
    }
}

/// Decodes `&…;`: a character reference or one of the five predefined
/// entities. No DTD is processed, so nothing else can have a meaning.
fn resolve_reference(reference: &BytesRef<'_>) -> Result<String, XmlError> {
    if reference.is_char_ref() {
        let ch = reference
            .resolve_char_ref()
            .map_err(|e| XmlError::Syntax(e.to_string()))?
            .ok_or_else(|| XmlError::Syntax("malformed character reference".into()))?;
        if !is_xml_char(ch) {
            return Err(XmlError::ForbiddenChar(u32::from(ch)));
        }
        return Ok(ch.to_string());
    }
    let name = String::from_utf8_lossy(reference);
    match quick_xml::escape::resolve_predefined_entity(&name) {
        Some(value) => Ok(value.to_owned()),
        None => Err(XmlError::Entity(quote(reference))),
    }
}

/// Refuses the first character XML 1.0 forbids.
fn check_chars(text: &str) -> Result<(), XmlError> {
    match text.chars().find(|&ch| !is_xml_char(ch)) {
        Some(bad) => Err(XmlError::ForbiddenChar(u32::from(bad))),
        None => Ok(()),
    }
}

/// A name from the input, cut and lossily decoded for error messages.
fn quote(name: &[u8]) -> String {
    String::from_utf8_lossy(name)
        .chars()
        .take(MAX_QUOTED_NAME)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(xml: &str) -> Result<Vec<Event>, XmlError> {
        let mut reader = Reader::new(xml.as_bytes(), &XmlLimits::default())?;
        let mut out = Vec::new();
        loop {
            match reader.next_event()? {
                Event::Eof => return Ok(out),
                e => out.push(e),
            }
        }
    }

    #[test]
    fn resolves_namespaces_and_expands_empty_elements() {
        let got = events(r#"<p:a xmlns:p="urn:x"><b/><q:c/></p:a>"#);
        assert_eq!(
            got,
            Ok(vec![
                Event::Start(Start {
                    name: "a".into(),
                    namespace: Namespace::Uri("urn:x".into()),
                    attrs: vec![],
                }),
                Event::Start(Start {
                    name: "b".into(),
                    namespace: Namespace::None,
                    attrs: vec![],
                }),
                Event::End,
                Event::Start(Start {
                    name: "c".into(),
                    namespace: Namespace::Undeclared("q".into()),
                    attrs: vec![],
                }),
                Event::End,
                Event::End,
            ])
        );
    }

    #[test]
    fn refuses_what_the_rules_forbid() {
        assert_eq!(events("<!DOCTYPE a><a/>"), Err(XmlError::Doctype));
        assert_eq!(
            events(r#"<?xml version="1.0" encoding="ISO-8859-1"?><a/>"#),
            Err(XmlError::Encoding("ISO-8859-1".into()))
        );
        assert_eq!(events("<a>&#1;</a>"), Err(XmlError::ForbiddenChar(1)));
        assert_eq!(events("<a>\u{7}</a>"), Err(XmlError::ForbiddenChar(7)));
        assert_eq!(events("<a b='&#1;'/>"), Err(XmlError::ForbiddenChar(1)));
        assert_eq!(
            events("<a>&nbsp;</a>"),
            Err(XmlError::Entity("nbsp".into()))
        );
        assert_eq!(events("<a/><b/>"), Err(XmlError::OutsideRoot));
        assert_eq!(events("<a/>x"), Err(XmlError::OutsideRoot));
        assert_eq!(events("<a/>&amp;"), Err(XmlError::OutsideRoot));
        assert_eq!(events(" <!-- c --> "), Err(XmlError::Empty));
        assert!(matches!(events("<a>"), Err(XmlError::Syntax(_))));
        assert!(events("\u{feff}<a/>\n").is_ok());
    }

    #[test]
    fn bounds_size_and_depth() {
        let limits = XmlLimits {
            max_bytes: 10,
            max_depth: 2,
            ..XmlLimits::default()
        };
        assert_eq!(
            Reader::new(&[b' '; 11], &limits).err(),
            Some(XmlError::TooLarge(10))
        );
        let mut reader = Reader::new(b"<a><b><c/>", &limits).unwrap();
        assert!(reader.next_event().is_ok());
        assert!(reader.next_event().is_ok());
        assert_eq!(reader.next_event(), Err(XmlError::TooDeep(2)));
    }
}
