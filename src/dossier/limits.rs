//! Resource bounds applied to every attachment before and while it is read.
//!
//! Attachments come from other operators' servers and must never be able to
//! exhaust memory or CPU: every reader in this module tree takes a [`Limits`].

/// Upper bounds for one attachment (zip package, XML document or JSON bundle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most entries (files and folders) a zip package may list.
    pub max_entries: usize,
    /// Most bytes one zip entry, XML document or JSON bundle may hold once inflated.
    pub max_entry_size: u64,
    /// Most bytes all the entries read from one package may hold together once inflated.
    pub max_total_size: u64,
    /// Highest inflated/compressed ratio accepted for a zip entry (zip bomb guard).
    pub max_ratio: u64,
    /// Entries smaller than this many inflated bytes are exempt from the ratio
    /// check: tiny, highly repetitive files (empty XML skeletons) are harmless.
    pub ratio_floor: u64,
    /// Deepest element nesting accepted in XML (stack and memory guard).
    pub max_xml_depth: usize,
    /// Most XML nodes (elements and text runs) kept in memory for one document,
    /// so that a flood of tiny elements cannot amplify memory use.
    pub max_xml_nodes: usize,
    /// Most attributes on one XML element (real documents have a handful;
    /// the cap keeps the duplicate check and memory linear).
    pub max_xml_attributes: usize,
    /// Most bytes of attribute values on one XML element, after unescaping.
    pub max_xml_attribute_bytes: usize,
    /// Most structured attachments (packages, bundles) indexed in one message;
    /// past it the message's other attachments are not read.
    pub max_structured_per_message: usize,
    /// Most bytes all the structured attachments of one message may hold
    /// once inflated (the per-package bound alone would let one message carry
    /// dozens of packages).
    pub max_message_inflated: u64,
}

impl Limits {
    /// The bounds for one XML document of an attachment.
    pub fn xml(&self) -> crate::xml::XmlLimits {
        crate::xml::XmlLimits {
            max_bytes: self.max_entry_size,
            max_depth: self.max_xml_depth,
            max_nodes: self.max_xml_nodes,
            max_attributes: self.max_xml_attributes,
            max_attribute_bytes: self.max_xml_attribute_bytes,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries: 1000,
            max_entry_size: 20 * 1024 * 1024,
            max_total_size: 50 * 1024 * 1024,
            max_ratio: 100,
            ratio_floor: 1024 * 1024,
            max_xml_depth: 100,
            max_xml_nodes: 500_000,
            max_xml_attributes: 256,
            max_xml_attribute_bytes: 64 * 1024,
            max_structured_per_message: 20,
            max_message_inflated: 100 * 1024 * 1024,
        }
    }
}
