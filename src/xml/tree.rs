//! The tree reader: a document small enough to hold, read through the
//! streaming [`Reader`] into an owned tree whose node count is bounded.

use super::{Event, Reader, XmlError, XmlLimits};

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

/// Parses `xml` into a tree, with the rules of [`crate::xml`] and the limits.
pub fn parse(xml: &[u8], limits: &XmlLimits) -> Result<Element, XmlError> {
    let mut reader = Reader::new(xml, limits)?;
    let mut stack: Vec<Element> = Vec::new();
    let mut nodes: usize = 0;
    loop {
        match reader.next_event()? {
            Event::Start(start) => {
                count(&mut nodes, limits)?;
                stack.push(Element {
                    name: start.name,
                    attrs: start.attrs,
                    children: Vec::new(),
                });
            }
            Event::End => {
                let element = stack
                    .pop()
                    .ok_or_else(|| XmlError::Syntax("unexpected end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(element)),
                    // The reader refuses a second root: this is the document.
                    None => return finish(&mut reader, element),
                }
            }
            Event::Text(text) => {
                let Some(top) = stack.last_mut() else {
                    continue;
                };
                if let Some(Node::Text(prev)) = top.children.last_mut() {
                    prev.push_str(&text);
                } else {
                    count(&mut nodes, limits)?;
                    top.children.push(Node::Text(text));
                }
            }
            Event::Eof => return Err(XmlError::Empty),
        }
    }
}

/// Reads the rest of the document after the root closed: only comments,
/// processing instructions and whitespace may follow.
fn finish(reader: &mut Reader<'_>, root: Element) -> Result<Element, XmlError> {
    match reader.next_event()? {
        Event::Eof => Ok(root),
        _ => Err(XmlError::OutsideRoot),
    }
}

fn count(nodes: &mut usize, limits: &XmlLimits) -> Result<(), XmlError> {
    *nodes += 1;
    if *nodes > limits.max_nodes {
        Err(XmlError::TooManyNodes(limits.max_nodes))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_predefined_and_char_refs() {
        let e = parse(
            b"<a x=\"1&amp;2\"><b>&lt;&#233;&#x41;</b></a>",
            &XmlLimits::default(),
        )
        .unwrap();
        assert_eq!(e.attr("x"), Some("1&2"));
        assert_eq!(e.child("b").unwrap().text(), "<\u{e9}A");
    }

    #[test]
    fn refuses_doctype_and_unknown_entities() {
        let l = XmlLimits::default();
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
            XmlError::Entity(_)
        ));
    }

    #[test]
    fn bounds_depth_and_nodes() {
        let l = XmlLimits {
            max_depth: 3,
            max_nodes: 5,
            ..XmlLimits::default()
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
        let limits = XmlLimits::default();
        // 200,000 distinct attributes on one element: refused at once.
        let mut xml = String::from("<r");
        for i in 0..200_000 {
            xml.push_str(&format!(" a{i}=\"\""));
        }
        xml.push_str("/>");
        assert_eq!(
            parse(xml.as_bytes(), &limits),
            Err(XmlError::TooManyAttributes(limits.max_attributes))
        );
        let big = format!("<r a=\"{}\"/>", "x".repeat(70 * 1024));
        assert_eq!(
            parse(big.as_bytes(), &limits),
            Err(XmlError::AttributesTooLarge(limits.max_attribute_bytes))
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
        let l = XmlLimits::default();
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
