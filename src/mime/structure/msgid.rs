//! Message IDs in Message-ID, In-Reply-To and References values, read as
//! Dovecot reads them for threading: every `<…>` in the value, comments and
//! quotes included; one holding `@` and nothing the fast path stops at is
//! taken as written with white space removed; otherwise it must parse as
//! `local@domain>` (RFC 5322 tokens, CFWS between them dropped, a quoted local
//! part unquoted), else it is skipped. Ids are compared as they come out.

use super::lexer::Rfc822;

/// The message IDs in `value`, in order, without their angle brackets.
pub fn message_ids(value: &[u8]) -> Vec<Vec<u8>> {
    let mut ids = Vec::new();
    let mut pos = 0;
    while let Some(open) = value[pos..].iter().position(|&b| b == b'<') {
        let start = pos + open + 1;
        // Fast path: up to `>` without quotes, comments or literals.
        let mut at = false;
        let mut end = start;
        let stop = loop {
            match value.get(end) {
                None | Some(0) => break None,
                Some(&b) if b >= b'A' => {}
                Some(b'@') => at = true,
                Some(&b) if matches!(b, b'>' | b'"' | b'(' | b'[') => break Some(b),
                Some(_) => {}
            }
            end += 1;
        };
        match stop {
            None => break,
            Some(b'>') => {
                if at {
                    ids.push(
                        value[start..end]
                            .iter()
                            .copied()
                            .filter(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                            .collect(),
                    );
                }
                pos = end + 1;
            }
            Some(_) => match tokenized(&value[start..]) {
                Some((id, used)) => {
                    ids.push(id);
                    pos = start + used;
                }
                None => pos = start,
            },
        }
    }
    ids
}

/// `[CFWS] (dot-atom / quoted-string) "@" [CFWS] dot-atom ">"` at the start of
/// `s`: the id and the octets read, `>` included.
fn tokenized(s: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut p = Rfc822::new(s);
    p.skip_lwsp();
    let mut id = Vec::new();
    let ret = if p.peek() == Some(b'"') {
        p.parse_quoted_string(&mut id)
    } else {
        p.parse_dot_atom(&mut id)
    };
    if ret <= 0 || p.peek() != Some(b'@') {
        return None;
    }
    id.push(b'@');
    p.pos += 1;
    p.skip_lwsp();
    if p.parse_dot_atom(&mut id) <= 0 || p.peek() != Some(b'>') {
        return None;
    }
    Some((id, p.pos + 1))
}

#[cfg(test)]
mod tests {
    use super::message_ids;

    fn ids(s: &str) -> Vec<String> {
        message_ids(s.as_bytes())
            .into_iter()
            .map(|i| String::from_utf8(i).unwrap())
            .collect()
    }

    /// What Dovecot 2.3 links in THREAD=REFERENCES (checked on a throwaway
    /// Dovecot: ids inside comments and quotes count, ids without `@` do not).
    #[test]
    fn ids_as_dovecot_reads_them() {
        assert_eq!(ids("<a@x>"), ["a@x"]);
        assert_eq!(ids(" <a@x>  <b@y.z>\r\n <c@x>"), ["a@x", "b@y.z", "c@x"]);
        assert_eq!(
            ids("<a@x> (comment <b@x>) \"<c@x>\""),
            ["a@x", "b@x", "c@x"]
        );
        assert_eq!(ids("<a@x><f@x>"), ["a@x", "f@x"]);
        assert_eq!(ids("<noat> <b@x>"), ["b@x"]);
        assert_eq!(ids("a@x"), Vec::<String>::new());
        assert_eq!(ids("<h @ x>"), ["h@x"]);
        assert_eq!(ids("<x@x"), Vec::<String>::new());
        assert_eq!(ids("<m10@c.test> (sent by Celine)"), ["m10@c.test"]);
        // Case is kept: <A@X> is not <a@x>.
        assert_eq!(ids("<A@X>"), ["A@X"]);
        // Quoted local part and comments go through the tokenizer.
        assert_eq!(ids("<\"q\\\"x\"@x>"), ["q\"x@x"]);
        assert_eq!(ids("<a(c)@x>"), ["a@x"]);
        assert_eq!(ids("<\"a b\"@x> <c@d>"), ["a b@x", "c@d"]);
        // Broken ones are skipped, later ones still found.
        assert_eq!(ids("<(unclosed <b@x>"), ["b@x"]);
        assert_eq!(ids("<[1.2.3.4]> <b@x>"), ["b@x"]);
        assert_eq!(ids(""), Vec::<String>::new());
    }
}
