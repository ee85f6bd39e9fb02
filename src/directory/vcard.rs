//! Directory entries as vCard 4.0 (RFC 6350) for mail clients' address books.

use crate::store::directory::DirectoryRow;

/// Escapes a text value (RFC 6350 §3.4).
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// One VCARD per row, CRLF line ends.
pub fn render(rows: &[DirectoryRow]) -> String {
    let mut out = String::new();
    for r in rows {
        let fname = super::display_name(r).unwrap_or_else(|| r.address.clone());
        let name = [r.first_name.as_deref(), r.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let fname = if name.is_empty() { fname } else { name };
        out.push_str("BEGIN:VCARD\r\nVERSION:4.0\r\n");
        out.push_str(&format!("FN:{}\r\n", escape(&fname)));
        if r.last_name.is_some() || r.first_name.is_some() {
            out.push_str(&format!(
                "N:{};{};;{};\r\n",
                escape(r.last_name.as_deref().unwrap_or_default()),
                escape(r.first_name.as_deref().unwrap_or_default()),
                escape(r.civility.as_deref().unwrap_or_default())
            ));
        }
        if r.kind == "ORG" {
            out.push_str("KIND:org\r\n");
        }
        out.push_str(&format!("EMAIL;TYPE=work:{}\r\n", escape(&r.address)));
        if let Some(p) = &r.profession {
            out.push_str(&format!("TITLE:{}\r\n", escape(p)));
        }
        if let Some(o) = &r.organization {
            out.push_str(&format!("ORG:{}\r\n", escape(o)));
        }
        out.push_str("NOTE:annuaire MSSanté\r\nEND:VCARD\r\n");
    }
    out
}
