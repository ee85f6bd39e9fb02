//! The directory (annuaire) of the trust space: the ANS extract
//! "Extraction_Correspondance_MSSante" (pipe-delimited UTF-8 text, one header
//! line, 31 columns, in a zip or bare), read one line at a time (`import.rs`),
//! searched by professionals and shown beside remote senders (`vcard.rs` for
//! mail clients). Sans-IO apart from the import's reads and the store.

pub mod import;
pub mod vcard;

use unicode_normalization::UnicodeNormalization;

use crate::store::directory::DirectoryRow;

/// Columns of the extract (the header's names, in order).
pub const COLUMNS: usize = 31;

/// The first header names, by which the format is recognised.
pub const HEADER_START: &str = "Type de BAL|Adresse BAL";

/// Why a line of the extract was not imported (the line itself is never
/// logged: it is nominative).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// Not the 31 columns of the header.
    #[error("{0} columns instead of {COLUMNS}")]
    Columns(usize),
    /// No usable mailbox address.
    #[error("invalid mailbox address")]
    Address,
    /// No mailbox type.
    #[error("empty mailbox type")]
    Kind,
    /// Not UTF-8.
    #[error("not UTF-8")]
    Encoding,
    /// Longer than the import accepts.
    #[error("line too long")]
    TooLong,
}

fn field(fields: &[&str], i: usize) -> Option<String> {
    fields
        .get(i)
        .map(|f| f.trim())
        .filter(|f| !f.is_empty())
        .map(str::to_string)
}

/// One data line into a row (fields trimmed; a trailing separator tolerated).
pub fn parse_line(line: &str) -> Result<DirectoryRow, LineError> {
    let mut fields: Vec<&str> = line.split('|').collect();
    if fields.len() == COLUMNS + 1 && fields[COLUMNS].trim().is_empty() {
        fields.pop();
    }
    if fields.len() != COLUMNS {
        return Err(LineError::Columns(fields.len()));
    }
    let address = field(&fields, 1)
        .map(|a| a.to_lowercase())
        .filter(|a| valid_address(a))
        .ok_or(LineError::Address)?;
    let kind = field(&fields, 0).ok_or(LineError::Kind)?.to_uppercase();
    Ok(DirectoryRow {
        address,
        kind,
        rpps: field(&fields, 4),
        civility: field(&fields, 8),
        last_name: field(&fields, 9),
        first_name: field(&fields, 10),
        profession: field(&fields, 14),
        specialty: field(&fields, 16),
        organization: field(&fields, 18),
        city: field(&fields, 27),
    })
}

fn valid_address(a: &str) -> bool {
    match a.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !a.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

/// Lower case without accents, so `medecin` finds `Médecin`.
pub fn fold(text: &str) -> String {
    text.nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The text a search matches: names, address, profession, speciality,
/// structure and city, folded.
pub fn search_text(row: &DirectoryRow) -> String {
    let parts = [
        row.last_name.as_deref(),
        row.first_name.as_deref(),
        Some(row.address.as_str()),
        row.profession.as_deref(),
        row.specialty.as_deref(),
        row.organization.as_deref(),
        row.city.as_deref(),
    ];
    fold(&parts.into_iter().flatten().collect::<Vec<_>>().join(" "))
}

/// A query into folded terms (at most 8, each at least 2 characters).
pub fn terms(query: &str) -> Vec<String> {
    fold(query)
        .split_whitespace()
        .filter(|t| t.chars().count() >= 2)
        .take(8)
        .map(str::to_string)
        .collect()
}

/// How the directory names a mailbox: "First Last, Profession" (or the
/// structure's name), for a patient's view.
pub fn display_name(row: &DirectoryRow) -> Option<String> {
    let name = [row.first_name.as_deref(), row.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let name = if name.is_empty() {
        row.organization.clone()?
    } else {
        name
    };
    Some(match &row.profession {
        Some(p) => format!("{name}, {p}"),
        None => name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(address: &str) -> String {
        let mut f = vec![""; COLUMNS];
        f[0] = "PER";
        f[1] = address;
        f[4] = "810000000001";
        f[9] = "DURAND";
        f[10] = "Hélène";
        f[14] = "Médecin";
        f[27] = "75013 PARIS";
        f.join("|")
    }

    #[test]
    fn a_line_becomes_a_row() {
        let row = parse_line(&line("Helene.Durand@Hopital.MSSANTE.fr")).unwrap();
        assert_eq!(row.address, "helene.durand@hopital.mssante.fr");
        assert_eq!(row.profession.as_deref(), Some("Médecin"));
        assert_eq!(
            display_name(&row).as_deref(),
            Some("Hélène DURAND, Médecin")
        );
        assert!(search_text(&row).contains("durand helene"));
        assert!(
            parse_line(&format!("{}|", line("a@b.fr"))).is_ok(),
            "trailing separator"
        );
    }

    #[test]
    fn malformed_lines_are_refused() {
        assert_eq!(parse_line("PER|a@b.fr"), Err(LineError::Columns(2)));
        assert_eq!(
            parse_line(&line("pas une adresse")),
            Err(LineError::Address)
        );
        assert_eq!(terms("  Médecin  x DURAND "), ["medecin", "durand"]);
    }
}
