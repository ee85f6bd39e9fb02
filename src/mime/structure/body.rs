//! BODYSTRUCTURE (with extension data) and BODY (without) of a parsed
//! message, and the removal of extension data.

use imap_codec::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, Language, Location, MultiPartExtensionData,
    SinglePartExtensionData, SpecificFields,
};
use imap_codec::imap_types::core::{NString, Vec1};

use super::MAX_DEPTH;
use super::ParsedMessage;
use super::envelope::envelope_of;
use super::params::{PartData, params_list};
use super::strings::{istring, nstring_nolf, quoted_ascii};
use super::tree::{Kind, Node};

impl ParsedMessage<'_> {
    /// The BODYSTRUCTURE of `node` (with extension data when `ext`), `depth`
    /// levels below the top; deeper than [`MAX_DEPTH`] parts are leaves.
    pub(super) fn structure_of(
        &self,
        node: &Node,
        ext: bool,
        depth: usize,
    ) -> BodyStructure<'static> {
        let header = self.slice(&node.header);
        let data = if node.mime {
            PartData::from_header(header)
        } else {
            PartData::default()
        };
        match &node.kind {
            Kind::Multipart(children) if depth < MAX_DEPTH => {
                let bodies: Vec<BodyStructure<'static>> = children
                    .iter()
                    .map(|child| self.structure_of(child, ext, depth + 1))
                    .collect();
                let bodies = match Vec1::try_from(bodies) {
                    Ok(bodies) => bodies,
                    // "no parts in multipart message, that's not allowed":
                    // Dovecot shows one empty text/plain part.
                    Err(_) => Vec1::from(empty_body(ext)),
                };
                let subtype = data
                    .subtype
                    .as_deref()
                    .map(istring)
                    .unwrap_or_else(|| quoted_ascii("x-unknown"));
                BodyStructure::Multi {
                    bodies,
                    subtype,
                    extension_data: ext.then(|| MultiPartExtensionData {
                        parameter_list: params_list(&data.params, false),
                        tail: Some(data.disposition_tail()),
                    }),
                }
            }
            kind => {
                let body_bytes = self.slice(&node.body);
                let size = u32::try_from(body_bytes.len()).unwrap_or(u32::MAX);
                let lines = count_lines(body_bytes);
                let is_text = data
                    .ctype
                    .as_deref()
                    .is_none_or(|t| t.eq_ignore_ascii_case(b"text"));
                let (specific, is_text) = match kind {
                    Kind::Message(inner) if depth < MAX_DEPTH => (
                        SpecificFields::Message {
                            envelope: Box::new(envelope_of(self.slice(&inner.header))),
                            body_structure: Box::new(self.structure_of(inner, ext, depth + 1)),
                            number_of_lines: lines,
                        },
                        false,
                    ),
                    // Too deep to describe: still a well-formed message/rfc822
                    // (clients expect an envelope and a body after the size).
                    _ if matches!(kind, Kind::Message(_)) || data.is_message_rfc822() => (
                        SpecificFields::Message {
                            envelope: Box::new(envelope_of(&[])),
                            body_structure: Box::new(empty_body(ext)),
                            number_of_lines: lines,
                        },
                        false,
                    ),
                    _ if is_text => (
                        SpecificFields::Text {
                            subtype: data
                                .subtype
                                .as_deref()
                                .map(istring)
                                .unwrap_or_else(|| quoted_ascii("plain")),
                            number_of_lines: lines,
                        },
                        true,
                    ),
                    _ => (
                        SpecificFields::Basic {
                            r#type: data
                                .ctype
                                .as_deref()
                                .map(istring)
                                .unwrap_or_else(|| quoted_ascii("application")),
                            subtype: data
                                .subtype
                                .as_deref()
                                .map(istring)
                                .unwrap_or_else(|| quoted_ascii("unknown")),
                        },
                        false,
                    ),
                };
                let basic = BasicFields {
                    parameter_list: params_list(&data.params, is_text),
                    id: nstring_nolf(data.id.as_deref()),
                    description: nstring_nolf(data.description.as_deref()),
                    content_transfer_encoding: data
                        .encoding
                        .as_deref()
                        .map(istring)
                        .unwrap_or_else(|| quoted_ascii("7bit")),
                    size,
                };
                BodyStructure::Single {
                    body: Body { basic, specific },
                    extension_data: ext.then(|| SinglePartExtensionData {
                        md5: nstring_nolf(data.md5.as_deref()),
                        tail: Some(data.disposition_tail()),
                    }),
                }
            }
        }
    }
}

/// Removes the extension data (MD5, disposition, language, location,
/// multipart parameters) at every level, turning a BODYSTRUCTURE into the
/// non-extensible form `FETCH BODY` must return (RFC 3501 §7.4.2: "extension
/// data is never returned with the BODY fetch").
pub fn strip_extensions(bs: BodyStructure<'static>) -> BodyStructure<'static> {
    strip_at(bs, 0)
}

fn strip_at(bs: BodyStructure<'static>, depth: usize) -> BodyStructure<'static> {
    if depth > MAX_DEPTH * 2 {
        // Deeper than anything we build: never recurse without bound.
        return empty_body(false);
    }
    match bs {
        BodyStructure::Single { body, .. } => {
            let specific = match body.specific {
                SpecificFields::Message {
                    envelope,
                    body_structure,
                    number_of_lines,
                } => SpecificFields::Message {
                    envelope,
                    body_structure: Box::new(strip_at(*body_structure, depth + 1)),
                    number_of_lines,
                },
                other => other,
            };
            BodyStructure::Single {
                body: Body {
                    basic: body.basic,
                    specific,
                },
                extension_data: None,
            }
        }
        BodyStructure::Multi {
            bodies, subtype, ..
        } => {
            let inner: Vec<BodyStructure<'static>> =
                bodies.into_iter().map(|b| strip_at(b, depth + 1)).collect();
            let bodies = match Vec1::try_from(inner) {
                Ok(bodies) => bodies,
                Err(_) => Vec1::from(empty_body(false)),
            };
            BodyStructure::Multi {
                bodies,
                subtype,
                extension_data: None,
            }
        }
    }
}

fn count_lines(bytes: &[u8]) -> u32 {
    u32::try_from(bytes.iter().filter(|&&b| b == b'\n').count()).unwrap_or(u32::MAX)
}

/// What Dovecot shows for a multipart without parts: one empty text/plain.
fn empty_body(ext: bool) -> BodyStructure<'static> {
    BodyStructure::Single {
        body: Body {
            basic: BasicFields {
                parameter_list: vec![(quoted_ascii("charset"), quoted_ascii("us-ascii"))],
                id: NString(None),
                description: NString(None),
                content_transfer_encoding: quoted_ascii("7bit"),
                size: 0,
            },
            specific: SpecificFields::Text {
                subtype: quoted_ascii("plain"),
                number_of_lines: 0,
            },
        },
        extension_data: ext.then(|| SinglePartExtensionData {
            md5: NString(None),
            tail: Some(Disposition {
                disposition: None,
                tail: Some(Language {
                    language: Vec::new(),
                    tail: Some(Location {
                        location: NString(None),
                        extensions: Vec::new(),
                    }),
                }),
            }),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::bs_wire;

    #[test]
    fn no_mime_version_ignores_content_headers() {
        // Neither MIME-Version nor Content-Type: the Content-* headers do not count.
        let raw = b"Subject: x\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n";
        assert!(bs_wire(raw).contains(r#""7bit" 6 1"#), "{}", bs_wire(raw));
        let raw =
            b"Subject: x\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n";
        assert!(bs_wire(raw).contains(r#""base64" 6 1"#), "{}", bs_wire(raw));
    }
}
