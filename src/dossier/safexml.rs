//! Hardened XML reading shared by the METADATA.XML and CDA parsers.
//!
//! The input is streamed with quick-xml into a small owned tree. Any DOCTYPE is
//! refused outright, so no entity can ever be declared, expanded or fetched
//! (billion laughs, XXE); only the five predefined entities and character
//! references are resolved. Nesting depth and node count are bounded by
//! [`Limits`], so memory stays proportional to a bounded input.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::dossier::limits::Limits;

/// Why an XML document was refused by the hardened reader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// The document carries a DOCTYPE declaration.
    #[error("XML with a DOCTYPE declaration is refused (entities are never expanded)")]
    Doctype,
    /// Elements are nested deeper than allowed.
    #[error("XML nesting is deeper than {0} levels")]
    TooDeep(usize),
    /// The document has more nodes than allowed.
    #[error("XML document has more than {0} nodes")]
    TooManyNodes(usize),
    /// The document is larger than allowed.
    #[error("XML document is larger than {0} bytes")]
    TooLarge(u64),
    /// A reference to an entity other than the five predefined ones.
    #[error("reference to undeclared entity &{0};")]
    Entity(String),
    /// An element has more attributes than allowed.
    #[error("XML element has more than {0} attributes")]
    TooManyAttributes(usize),
    /// An element's attribute values are larger than allowed.
    #[error("XML element attributes are larger than {0} bytes")]
    AttributesTooLarge(usize),
    /// The same attribute twice on one element (not well-formed).
    #[error("XML element has a duplicate attribute")]
    DuplicateAttribute,
    /// No root element was found.
    #[error("XML document has no root element")]
    Empty,
    /// Not well-formed (or not UTF-8).
    #[error("malformed XML: {0}")]
    Syntax(String),
}

/// One node of the tree: an element or a run of character data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Character data, entities resolved, not trimmed.
    Text(String),
}

/// An element with its namespace prefix dropped (documents use arbitrary prefixes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Local name (`ns2:Slot` gives `Slot`).
    pub name: String,
    /// Attributes by local name (`xsi:type` gives `type`); `xmlns` declarations are dropped.
    pub attrs: Vec<(String, String)>,
    /// Children in document order.
    pub children: Vec<Node>,
}

impl Element {
    /// Value of the attribute with this local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Value of the attribute, trimmed, or `None` when absent or blank.
    pub fn attr_nonempty(&self, name: &str) -> Option<String> {
        self.attr(name)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// Child elements in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// Child elements with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.elements().filter(move |e| e.name == name)
    }

    /// First child element with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    /// Follows a path of child names, taking the first match at each step.
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        let mut cur = self;
        for n in names {
            cur = cur.child(n)?;
        }
        Some(cur)
    }

    /// All text below this element, concatenated in document order.
    pub fn text(&self) -> String {
        let mut out = String::new();
        self.collect_text(&mut out);
        out
    }

    fn collect_text(&self, out: &mut String) {
        for c in &self.children {
            match c {
                Node::Text(t) => out.push_str(t),
                Node::Element(e) => e.collect_text(out),
            }
        }
    }

    /// Text below this element with whitespace runs collapsed and trimmed; `None` if blank.
    pub fn text_normalized(&self) -> Option<String> {
        let t = collapse_ws(&self.text());
        if t.is_empty() { None } else { Some(t) }
    }

    /// Calls `f` on this element and every descendant element, depth first.
    pub fn visit<'a>(&'a self, f: &mut dyn FnMut(&'a Element)) {
        f(self);
        for e in self.elements() {
            e.visit(f);
        }
    }
}

/// Collapses every run of whitespace into one space and trims the ends.
pub fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses `xml` into a tree, refusing DOCTYPEs and enforcing the limits.
pub fn parse(xml: &[u8], limits: &Limits) -> Result<Element, XmlError> {
    if xml.len() as u64 > limits.max_entry_size {
        return Err(XmlError::TooLarge(limits.max_entry_size));
    }
    let mut reader = Reader::from_reader(xml);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut nodes: usize = 0;
    let count = |nodes: &mut usize| -> Result<(), XmlError> {
        *nodes += 1;
        if *nodes > limits.max_xml_nodes {
            Err(XmlError::TooManyNodes(limits.max_xml_nodes))
        } else {
            Ok(())
        }
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| XmlError::Syntax(e.to_string()))?;
        match event {
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Start(s) => {
                count(&mut nodes)?;
                if stack.len() + 1 > limits.max_xml_depth {
                    return Err(XmlError::TooDeep(limits.max_xml_depth));
                }
                stack.push(element_of(&reader, &s, limits)?);
            }
            Event::Empty(s) => {
                count(&mut nodes)?;
                if stack.len() + 1 > limits.max_xml_depth {
                    return Err(XmlError::TooDeep(limits.max_xml_depth));
                }
                let e = element_of(&reader, &s, limits)?;
                attach(&mut stack, &mut root, e)?;
            }
            Event::End(_) => {
                let e = stack
                    .pop()
                    .ok_or_else(|| XmlError::Syntax("unexpected end tag".into()))?;
                attach(&mut stack, &mut root, e)?;
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| XmlError::Syntax(e.to_string()))?;
                push_text(&mut stack, &s, &mut nodes, limits)?;
            }
            Event::CData(t) => {
                let s = t.decode().map_err(|e| XmlError::Syntax(e.to_string()))?;
                push_text(&mut stack, &s, &mut nodes, limits)?;
            }
            Event::GeneralRef(r) => {
                let resolved = match r
                    .resolve_char_ref()
                    .map_err(|e| XmlError::Syntax(e.to_string()))?
                {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(|e| XmlError::Syntax(e.to_string()))?;
                        match quick_xml::escape::resolve_predefined_entity(&name) {
                            Some(v) => v.to_owned(),
                            None => return Err(XmlError::Entity(name.into_owned())),
                        }
                    }
                };
                push_text(&mut stack, &resolved, &mut nodes, limits)?;
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Syntax("unclosed element at end of input".into()));
    }
    root.ok_or(XmlError::Empty)
}

fn push_text(
    stack: &mut [Element],
    s: &str,
    nodes: &mut usize,
    limits: &Limits,
) -> Result<(), XmlError> {
    // Text outside the root element is only whitespace in well-formed XML.
    let Some(top) = stack.last_mut() else {
        return Ok(());
    };
    if let Some(Node::Text(prev)) = top.children.last_mut() {
        prev.push_str(s);
        return Ok(());
    }
    *nodes += 1;
    if *nodes > limits.max_xml_nodes {
        return Err(XmlError::TooManyNodes(limits.max_xml_nodes));
    }
    top.children.push(Node::Text(s.to_owned()));
    Ok(())
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, e: Element) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(parent) => {
            parent.children.push(Node::Element(e));
            Ok(())
        }
        None if root.is_none() => {
            *root = Some(e);
            Ok(())
        }
        None => Err(XmlError::Syntax("more than one root element".into())),
    }
}

/// An element with its attributes, bounded by [`Limits`]. quick-xml's own
/// duplicate check compares each attribute with all earlier ones (quadratic in
/// their number); it is off, and duplicates are found here with a set.
fn element_of(
    reader: &Reader<&[u8]>,
    s: &BytesStart<'_>,
    limits: &Limits,
) -> Result<Element, XmlError> {
    let name = String::from_utf8_lossy(s.local_name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut bytes = 0usize;
    for (i, a) in s.attributes().with_checks(false).enumerate() {
        if i >= limits.max_xml_attributes {
            return Err(XmlError::TooManyAttributes(limits.max_xml_attributes));
        }
        let a = a.map_err(|e| XmlError::Syntax(e.to_string()))?;
        if !seen.insert(a.key.as_ref().to_vec()) {
            return Err(XmlError::DuplicateAttribute);
        }
        let key = a.key;
        if key.as_ref() == b"xmlns" || key.prefix().is_some_and(|p| p.as_ref() == b"xmlns") {
            continue;
        }
        let local = String::from_utf8_lossy(key.local_name().as_ref()).into_owned();
        let value =
            a.decode_and_unescape_value(reader.decoder())
                .map_err(|e| match e {
                    quick_xml::Error::Escape(
                        quick_xml::escape::EscapeError::UnrecognizedEntity(_, n),
                    ) => XmlError::Entity(n),
                    other => XmlError::Syntax(other.to_string()),
                })?;
        bytes = bytes.saturating_add(value.len());
        if bytes > limits.max_xml_attribute_bytes {
            return Err(XmlError::AttributesTooLarge(limits.max_xml_attribute_bytes));
        }
        attrs.push((local, value.into_owned()));
    }
    Ok(Element {
        name,
        attrs,
        children: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_predefined_and_char_refs() {
        let e = parse(
            b"<a x=\"1&amp;2\"><b>&lt;&#233;&#x41;</b></a>",
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(e.attr("x"), Some("1&2"));
        assert_eq!(e.child("b").unwrap().text(), "<\u{e9}A");
    }

    #[test]
    fn refuses_doctype_and_unknown_entities() {
        let l = Limits::default();
        assert_eq!(
            parse(b"<!DOCTYPE a []><a/>", &l).unwrap_err(),
            XmlError::Doctype
        );
        assert!(matches!(
            parse(b"<a>&foo;</a>", &l).unwrap_err(),
            XmlError::Entity(_)
        ));
        assert!(matches!(
            parse(b"<a b=\"&foo;\"/>", &l).unwrap_err(),
            XmlError::Entity(_) | XmlError::Syntax(_)
        ));
    }

    #[test]
    fn bounds_depth_and_nodes() {
        let l = Limits {
            max_xml_depth: 3,
            max_xml_nodes: 5,
            ..Limits::default()
        };
        assert_eq!(
            parse(b"<a><b><c><d/></c></b></a>", &l).unwrap_err(),
            XmlError::TooDeep(3)
        );
        assert_eq!(
            parse(b"<a><b/><b/><b/><b/><b/></a>", &l).unwrap_err(),
            XmlError::TooManyNodes(5)
        );
        assert!(parse(b"<a><b><c/></b></a>", &l).is_ok());
    }

    #[test]
    fn bounds_attributes_in_linear_time() {
        let limits = Limits::default();
        // 200,000 distinct attributes on one element: refused at once.
        let mut xml = String::from("<r");
        for i in 0..200_000 {
            xml.push_str(&format!(" a{i}=\"\""));
        }
        xml.push_str("/>");
        assert_eq!(
            parse(xml.as_bytes(), &limits),
            Err(XmlError::TooManyAttributes(limits.max_xml_attributes))
        );
        let big = format!("<r a=\"{}\"/>", "x".repeat(70 * 1024));
        assert_eq!(
            parse(big.as_bytes(), &limits),
            Err(XmlError::AttributesTooLarge(limits.max_xml_attribute_bytes))
        );
        assert_eq!(
            parse(b"<r a=\"1\" b=\"2\" a=\"3\"/>", &limits),
            Err(XmlError::DuplicateAttribute)
        );
        // Namespace declarations and prefixed names still read as before.
        let e = parse(b"<x:r xmlns:x=\"u\" x:a=\"1\" b=\"2\"/>", &limits).unwrap();
        assert_eq!(e.attr("a"), Some("1"));
        assert_eq!(e.attr("b"), Some("2"));
    }

    #[test]
    fn refuses_malformed() {
        let l = Limits::default();
        assert!(matches!(
            parse(b"<a><b></a>", &l).unwrap_err(),
            XmlError::Syntax(_)
        ));
        assert!(matches!(
            parse(b"<a>", &l).unwrap_err(),
            XmlError::Syntax(_)
        ));
        assert_eq!(parse(b"  ", &l).unwrap_err(), XmlError::Empty);
    }
}
