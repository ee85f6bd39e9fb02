//! The Content-* headers of a part (type, parameters with RFC 2231
//! continuations merged as Dovecot merges them, transfer encoding,
//! disposition, language, …) and their IMAP parameter lists.

use imap_codec::imap_types::body::{Disposition, Language, Location};
use imap_codec::imap_types::core::IString;

use super::headers::split_fields;
use super::lexer::Rfc822;
use super::strings::{istring, nstring_nolf, quoted_ascii};

pub(super) type Params = Vec<(Vec<u8>, Vec<u8>)>;

#[derive(Debug, Default)]
pub(super) struct PartData {
    pub(super) ctype: Option<Vec<u8>>,
    pub(super) subtype: Option<Vec<u8>>,
    pub(super) params: Params,
    pub(super) encoding: Option<Vec<u8>>,
    pub(super) id: Option<Vec<u8>>,
    pub(super) description: Option<Vec<u8>>,
    pub(super) md5: Option<Vec<u8>>,
    pub(super) location: Option<Vec<u8>>,
    pub(super) disposition: Option<(Vec<u8>, Params)>,
    pub(super) language: Option<Vec<Vec<u8>>>,
}

impl PartData {
    pub(super) fn is_message_rfc822(&self) -> bool {
        self.ctype
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(b"message"))
            && self
                .subtype
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case(b"rfc822"))
    }

    pub(super) fn from_header(header: &[u8]) -> PartData {
        let mut data = PartData::default();
        let mut seen_type = false;
        let (fields, _) = split_fields(header);
        for field in &fields {
            let Some(name) = strip_prefix_ci(field.name, b"Content-") else {
                continue;
            };
            let value = field.value;
            if name.eq_ignore_ascii_case(b"Type") && !seen_type {
                seen_type = true;
                data.parse_content_type(value);
            } else if name.eq_ignore_ascii_case(b"Transfer-Encoding") && data.encoding.is_none() {
                let mut p = Rfc822::new(value);
                p.skip_lwsp();
                let mut token = Vec::new();
                if p.parse_mime_token(&mut token) >= 0 && p.skip_lwsp() == 0 && !token.is_empty() {
                    data.encoding = Some(token);
                }
            } else if name.eq_ignore_ascii_case(b"ID") && data.id.is_none() {
                data.id = Some(value.to_vec());
            } else if name.eq_ignore_ascii_case(b"MD5") && data.md5.is_none() {
                data.md5 = Some(value.to_vec());
            } else if name.eq_ignore_ascii_case(b"Description") && data.description.is_none() {
                data.description = Some(value.to_vec());
            } else if name.eq_ignore_ascii_case(b"Location") && data.location.is_none() {
                data.location = Some(value.to_vec());
            } else if name.eq_ignore_ascii_case(b"Language") && data.language.is_none() {
                data.parse_content_language(value);
            } else if name.eq_ignore_ascii_case(b"Disposition")
                && data.disposition.as_ref().is_none_or(|(_, p)| p.is_empty())
            {
                let mut p = Rfc822::new(value);
                p.skip_lwsp();
                let mut token = Vec::new();
                if p.parse_mime_token(&mut token) >= 0 {
                    let params = parse_params(&mut p);
                    data.disposition = Some((token, params));
                }
            }
        }
        data
    }

    fn parse_content_type(&mut self, value: &[u8]) {
        let mut p = Rfc822::new(value);
        p.skip_lwsp();
        let mut token = Vec::new();
        let ret = p.parse_content_type(&mut token);
        match token.iter().position(|&b| b == b'/') {
            Some(slash) => {
                self.subtype = Some(token[slash + 1..].to_vec());
                token.truncate(slash);
            }
            None => self.subtype = None,
        }
        self.ctype = Some(token);
        if ret >= 0 {
            self.params = parse_params(&mut p);
        }
    }

    fn parse_content_language(&mut self, value: &[u8]) {
        let mut p = Rfc822::new(value);
        let mut langs = Vec::new();
        p.skip_lwsp();
        loop {
            let mut atom = Vec::new();
            if p.parse_atom(&mut atom) < 0 {
                break;
            }
            langs.push(atom);
            if p.peek() != Some(b',') {
                break;
            }
            p.pos += 1;
            p.skip_lwsp();
        }
        if !langs.is_empty() {
            self.language = Some(langs);
        }
    }

    /// The disposition, language and location extension fields.
    pub(super) fn disposition_tail(&self) -> Disposition<'static> {
        Disposition {
            disposition: self
                .disposition
                .as_ref()
                .map(|(kind, params)| (istring(kind), params_list(params, false))),
            tail: Some(Language {
                language: self.language.iter().flatten().map(|l| istring(l)).collect(),
                tail: Some(Location {
                    location: nstring_nolf(self.location.as_deref()),
                    extensions: Vec::new(),
                }),
            }),
        }
    }
}

fn strip_prefix_ci<'h>(name: &'h [u8], prefix: &[u8]) -> Option<&'h [u8]> {
    let head = name.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &name[prefix.len()..])
}

/// `("name" "value" …)`, with `("charset" "us-ascii")` appended to text parts
/// that have no charset, as Dovecot does.
pub(super) fn params_list(
    params: &Params,
    default_charset: bool,
) -> Vec<(IString<'static>, IString<'static>)> {
    let mut list: Vec<(IString<'static>, IString<'static>)> = params
        .iter()
        .map(|(name, value)| (istring(name), istring(value)))
        .collect();
    if default_charset
        && !params
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case(b"charset"))
    {
        list.push((quoted_ascii("charset"), quoted_ascii("us-ascii")));
    }
    list
}

/// Parses `;name=value` parameters and merges RFC 2231 continuations the way
/// Dovecot does: `name*0*`/`name*1*` become one `name*` whose value stays
/// percent-encoded (`charset'lang'value`, non-extended pieces have `%`
/// escaped); plain parameters come first, merged ones after, sorted by name.
fn parse_params(p: &mut Rfc822<'_>) -> Params {
    struct Piece {
        key: Vec<u8>,
        value: Vec<u8>,
        index: u32,
        extended: bool,
    }
    let mut result: Params = Vec::new();
    let mut pieces: Vec<Piece> = Vec::new();
    loop {
        let mut key = Vec::new();
        let mut value = Vec::new();
        let ret = p.parse_content_param(&mut key, &mut value);
        if ret == 0 {
            break;
        }
        if ret < 0 {
            // Broken parameter: skip one byte and try again.
            if p.at_end() {
                break;
            }
            p.pos += 1;
            continue;
        }
        match key.iter().position(|&b| b == b'*') {
            Some(star) => {
                // name*  |  name*N  |  name*N*
                let after = &key[star + 1..];
                let (index, mut rest) = if after.is_empty() {
                    (0, &key[star..])
                } else {
                    let digits = after.iter().take_while(|b| b.is_ascii_digit()).count();
                    let index = after[..digits].iter().fold(0u32, |acc, &d| {
                        acc.saturating_mul(10).saturating_add(u32::from(d - b'0'))
                    });
                    (index, &after[digits..])
                };
                let extended = rest.first() == Some(&b'*');
                if extended {
                    rest = &rest[1..];
                }
                if rest.is_empty() {
                    pieces.push(Piece {
                        key: key[..star].to_vec(),
                        value,
                        index,
                        extended,
                    });
                } else {
                    result.push((key, value));
                }
            }
            None => result.push((key, value)),
        }
    }
    if pieces.is_empty() {
        return result;
    }
    pieces.sort_by(|a, b| a.key.cmp(&b.key).then(a.index.cmp(&b.index)));
    let mut i = 0;
    while i < pieces.len() {
        let mut j = i;
        let mut in_order = true;
        let mut have_extended = false;
        while j < pieces.len() && pieces[j].key.eq_ignore_ascii_case(&pieces[i].key) {
            if pieces[j].index as usize != j - i {
                in_order = false;
            }
            have_extended |= pieces[j].extended;
            j += 1;
        }
        if !in_order {
            // Missing pieces: give them back as they were sent.
            for piece in &pieces[i..j] {
                let mut key = piece.key.clone();
                key.push(b'*');
                key.extend_from_slice(piece.index.to_string().as_bytes());
                if piece.extended {
                    key.push(b'*');
                }
                result.push((key, piece.value.clone()));
            }
        } else {
            let mut value = Vec::new();
            if !pieces[i].extended && have_extended {
                value.extend_from_slice(b"''");
            }
            for piece in &pieces[i..j] {
                if !piece.extended && have_extended {
                    for &b in &piece.value {
                        if b == b'%' {
                            value.extend_from_slice(b"%25");
                        } else {
                            value.push(b);
                        }
                    }
                } else {
                    value.extend_from_slice(&piece.value);
                }
            }
            let mut key = pieces[i].key.clone();
            if have_extended {
                key.push(b'*');
            }
            result.push((key, value));
        }
        i = j;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::super::tests::bs_wire;

    #[test]
    fn rfc2231_parameters() {
        let raw = b"MIME-Version: 1.0\r\nContent-Type: application/x; a*1=\"b%\"; a*0*=us-ascii'en'x%41;\r\n\x20plain=1; z*2=late\r\nContent-Disposition: attachment; filename*=utf-8''%C3%A9.pdf\r\n\r\n";
        let bs = bs_wire(raw);
        assert!(
            bs.starts_with(
                r#"("application" "x" ("plain" "1" "a*" "us-ascii'en'x%41b%25" "z*2" "late")"#
            ),
            "{bs}"
        );
        assert!(
            bs.contains(r#"("attachment" ("filename*" "utf-8''%C3%A9.pdf"))"#),
            "{bs}"
        );
    }
}
