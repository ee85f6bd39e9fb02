//! Hardened XML reading for everything MES reads from outside: the dossier's
//! CDA documents and METADATA.XML, and the trust-space whitelist.
//!
//! One streaming [`Reader`] applies the rules; the tree reader ([`parse`]) is
//! built on it for the documents small enough to hold, and the whitelist
//! consumes the stream directly.
//!
//! - Any DOCTYPE is refused, so no entity can ever be declared, expanded or
//!   fetched (billion laughs, XXE); only the five predefined entities and
//!   character references are resolved.
//! - Only UTF-8 is accepted; characters XML 1.0 forbids are refused, raw or
//!   as references.
//! - Input size, nesting depth, attributes per element and their bytes are
//!   bounded by [`XmlLimits`]; the tree reader also bounds its node count, so
//!   memory stays proportional to a bounded input. Duplicate attributes are
//!   found with a set: quick-xml's own check is quadratic in their number.
//! - Namespaces are resolved and reported; prefixes are dropped from names
//!   (documents use arbitrary prefixes), and whether an undeclared prefix is
//!   an error is the caller's choice.

mod reader;
mod tree;

pub use reader::{Event, Namespace, Reader, Start};
pub use tree::{Element, Node, collapse_ws, parse};

/// Why an XML document was refused by the hardened reader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// The document carries a DOCTYPE declaration.
    #[error("XML with a DOCTYPE declaration is refused (entities are never expanded)")]
    Doctype,
    /// The XML declaration names an encoding other than UTF-8.
    #[error("XML declares encoding {0:?}; only UTF-8 is accepted")]
    Encoding(String),
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
    #[error(
        "reference to undeclared entity &{0}; (only the predefined XML entities and character references are allowed)"
    )]
    Entity(String),
    /// A character that XML 1.0 forbids, written raw or as a reference.
    #[error("character U+{0:04X} is not allowed in XML")]
    ForbiddenChar(u32),
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
    /// Text, a reference or a second element outside the root element.
    #[error("XML content outside the root element")]
    OutsideRoot,
    /// Not well-formed (or not UTF-8).
    #[error("malformed XML: {0}")]
    Syntax(String),
}

/// Upper bounds for one XML document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XmlLimits {
    /// Most bytes of input, checked before reading.
    pub max_bytes: u64,
    /// Deepest element nesting (stack and memory guard).
    pub max_depth: usize,
    /// Most nodes (elements and text runs) the tree reader keeps, so that a
    /// flood of tiny elements cannot amplify memory use.
    pub max_nodes: usize,
    /// Most attributes on one element (real documents have a handful).
    pub max_attributes: usize,
    /// Most bytes of attribute values on one element, after unescaping.
    pub max_attribute_bytes: usize,
}

impl Default for XmlLimits {
    fn default() -> Self {
        Self {
            max_bytes: 20 * 1024 * 1024,
            max_depth: 100,
            max_nodes: 500_000,
            max_attributes: 256,
            max_attribute_bytes: 64 * 1024,
        }
    }
}

/// Whether XML 1.0 allows `ch` in a document (production `Char`).
fn is_xml_char(ch: char) -> bool {
    matches!(ch, '\t' | '\n' | '\r') || (ch >= ' ' && ch != '\u{FFFE}' && ch != '\u{FFFF}')
}
