//! The beneficiaries file (`schemas/lifecycle/beneficiary.schema.json`):
//! CSV with a header line or NDJSON, read one record at a time so memory
//! does not grow with the file. Each record is checked here (INS key,
//! traits, contact, representatives); a bad one is a [`LineError`] with
//! its line number, never the end of the run.

use std::io::BufRead;

use serde::Deserialize;

use crate::identity::ins::Ins;

/// One beneficiary as the file gives it (both formats).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBeneficiary {
    /// INS matricule (15 characters, key checked).
    pub ins: String,
    /// Birth name.
    pub birth_name: String,
    /// First names, space separated.
    pub first_names: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// `M`, `F` or `I` (undetermined).
    pub sex: String,
    /// INSEE code of the birth place (5 characters).
    pub birth_place: String,
    /// Personal e-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Postal address on one line.
    #[serde(default)]
    pub postal: Option<String>,
    /// INS of legal representatives (NDJSON: an array; CSV: separated by spaces or `;`).
    #[serde(default, deserialize_with = "representatives")]
    pub representatives: Vec<String>,
}

fn representatives<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_any(Representatives)
}

/// Representatives as NDJSON gives them (an array of strings) or as CSV
/// does (one text, separated by spaces, `;` or `,`; csv may read a lone
/// INS as a number).
struct Representatives;

impl<'de> serde::de::Visitor<'de> for Representatives {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of INS, as an array or separated by spaces or `;`")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Vec<String>, E> {
        Ok(v.split([' ', ';', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect())
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Vec<String>, E> {
        Ok(vec![v.to_string()])
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Vec<String>, E> {
        Ok(vec![v.to_string()])
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
        d.deserialize_any(Representatives)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut out = Vec::new();
        while let Some(s) = seq.next_element::<String>()? {
            out.push(s);
        }
        Ok(out)
    }
}

/// A checked beneficiary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beneficiary {
    /// The INS.
    pub ins: Ins,
    /// Birth name (trimmed).
    pub birth_name: String,
    /// First names (trimmed).
    pub first_names: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// `M`, `F` or `I`.
    pub sex: String,
    /// INSEE code.
    pub birth_place: String,
    /// Normalised e-mail address.
    pub email: Option<String>,
    /// Postal address.
    pub postal: Option<String>,
    /// Representatives' INS, checked.
    pub representatives: Vec<Ins>,
}

/// Why a line was not taken (the text goes to the report: no INS in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// The line is not CSV/JSON of the schema.
    #[error("unreadable line: {0}")]
    Syntax(String),
    /// The INS is not one.
    #[error("INS: {0}")]
    Ins(#[from] crate::identity::ins::InsError),
    /// A required trait is missing or malformed.
    #[error("{0}")]
    Trait(&'static str),
    /// Neither e-mail nor postal address.
    #[error("no contact: an e-mail or a postal address is required")]
    NoContact,
    /// The e-mail address does not parse.
    #[error("e-mail address not valid")]
    Email,
    /// A representative's INS is not one.
    #[error("legal representative's INS: {0}")]
    Representative(crate::identity::ins::InsError),
}

/// A record and the line it starts on (from 1).
pub type Record = (u64, Result<Beneficiary, Invalid>);

impl RawBeneficiary {
    /// Checks every field.
    pub fn check(self) -> Result<Beneficiary, Invalid> {
        let ins = Ins::parse(&self.ins)?;
        let birth_name = self.birth_name.trim().to_string();
        let first_names = self.first_names.trim().to_string();
        if birth_name.is_empty() || birth_name.chars().count() > 100 {
            return Err(Invalid::Trait("birth name missing or too long"));
        }
        if first_names.is_empty() || first_names.chars().count() > 100 {
            return Err(Invalid::Trait("first names missing or too long"));
        }
        let birth_date = self.birth_date.trim().to_string();
        if chrono::NaiveDate::parse_from_str(&birth_date, "%Y-%m-%d").is_err() {
            return Err(Invalid::Trait("birth date is not YYYY-MM-DD"));
        }
        let sex = self.sex.trim().to_ascii_uppercase();
        if !matches!(sex.as_str(), "M" | "F" | "I") {
            return Err(Invalid::Trait("sex is not M, F or I"));
        }
        let birth_place = self.birth_place.trim().to_ascii_uppercase();
        let place_ok = birth_place.len() == 5
            && birth_place
                .bytes()
                .enumerate()
                .all(|(i, c)| c.is_ascii_digit() || (i == 1 && (c == b'A' || c == b'B')));
        if !place_ok {
            return Err(Invalid::Trait(
                "birth place is not a 5-character INSEE code",
            ));
        }
        let email = match self
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            Some(e) => Some(
                crate::address::Address::parse(e)
                    .map_err(|_| Invalid::Email)?
                    .to_string(),
            ),
            None => None,
        };
        let postal = self
            .postal
            .as_deref()
            .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|p| !p.is_empty());
        if email.is_none() && postal.is_none() {
            return Err(Invalid::NoContact);
        }
        let representatives = self
            .representatives
            .iter()
            .map(|r| Ins::parse(r).map_err(Invalid::Representative))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Beneficiary {
            ins,
            birth_name,
            first_names,
            birth_date,
            sex,
            birth_place,
            email,
            postal,
            representatives,
        })
    }
}

/// The file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV, comma separated, with a header line naming the schema's fields.
    Csv,
    /// One JSON object per line.
    Ndjson,
}

impl Format {
    /// By extension: `.csv` is CSV, `.ndjson`/`.jsonl`/`.json` NDJSON.
    pub fn of(path: &std::path::Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "ndjson" | "jsonl" | "json" => Some(Format::Ndjson),
            _ => None,
        }
    }
}

/// The records of `reader`, one at a time.
pub fn records<R: BufRead + 'static>(
    reader: R,
    format: Format,
) -> Box<dyn Iterator<Item = Record>> {
    match format {
        Format::Ndjson => Box::new(
            reader
                .lines()
                .enumerate()
                .filter(|(_, l)| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
                .map(|(i, line)| {
                    let n = i as u64 + 1;
                    let r = line
                        .map_err(|e| Invalid::Syntax(e.to_string()))
                        .and_then(|l| {
                            serde_json::from_str::<RawBeneficiary>(&l)
                                .map_err(|e| Invalid::Syntax(e.to_string()))
                        })
                        .and_then(RawBeneficiary::check);
                    (n, r)
                }),
        ),
        Format::Csv => {
            let mut csv = csv::ReaderBuilder::new()
                .has_headers(true)
                .flexible(false)
                .trim(csv::Trim::All)
                .from_reader(reader);
            let headers = csv.headers().cloned();
            let mut record = csv::StringRecord::new();
            let mut done = false;
            Box::new(std::iter::from_fn(move || {
                if done {
                    return None;
                }
                let headers = match &headers {
                    Ok(h) => h,
                    Err(e) => {
                        // No header line: one error for line 1, then the end.
                        done = true;
                        return Some((1, Err(Invalid::Syntax(csv_reason(e)))));
                    }
                };
                match csv.read_record(&mut record) {
                    Ok(false) => None,
                    Ok(true) => {
                        let n = record.position().map_or(0, |p| p.line());
                        let r = record
                            .deserialize::<RawBeneficiary>(Some(headers))
                            .map_err(|e| Invalid::Syntax(csv_reason(&e)))
                            .and_then(RawBeneficiary::check);
                        Some((n, r))
                    }
                    Err(e) => {
                        let n = e.position().map_or(0, |p| p.line());
                        if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                            done = true;
                        }
                        Some((n, Err(Invalid::Syntax(csv_reason(&e)))))
                    }
                }
            }))
        }
    }
}

/// A csv error without the record's content (which holds personal data).
fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { .. } => "wrong number of fields".into(),
        csv::ErrorKind::Utf8 { .. } => "not UTF-8".into(),
        csv::ErrorKind::Deserialize { err, .. } => match err.field() {
            Some(f) => format!("field {}: {}", f + 1, err.kind()),
            None => err.kind().to_string(),
        },
        _ => "unreadable".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str =
        "ins,birth_name,first_names,birth_date,sex,birth_place,email,postal,representatives\n";

    fn csv(body: &str) -> Vec<Record> {
        let text = format!("{HEAD}{body}");
        records(std::io::Cursor::new(text.into_bytes()), Format::Csv).collect()
    }

    #[test]
    fn csv_lines_are_checked_one_by_one() {
        let got = csv(
            "279035121518989,DUPONT,Marie Anne,1979-03-12,F,51215,m@example.test,,\n\
             279035121518988,DUPONT,Marie,1979-03-12,F,51215,m@example.test,,\n\
             184127645108946,MARTIN,Jean,2015-01-01,M,76451,,1 rue de la Paix 75002 Paris,279035121518989\n",
        );
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0, 2);
        assert!(got[0].1.is_ok());
        assert_eq!(
            got[1].1,
            Err(Invalid::Ins(crate::identity::ins::InsError::Key))
        );
        let b = got[2].1.as_ref().expect("valid");
        assert_eq!(b.representatives.len(), 1);
        assert_eq!(b.postal.as_deref(), Some("1 rue de la Paix 75002 Paris"));
    }

    #[test]
    fn ndjson_and_missing_contact() {
        let text = "{\"ins\":\"279035121518989\",\"birth_name\":\"D\",\"first_names\":\"M\",\"birth_date\":\"1979-03-12\",\"sex\":\"F\",\"birth_place\":\"51215\"}\n\nnot json\n";
        let got: Vec<Record> = records(
            std::io::Cursor::new(text.as_bytes().to_vec()),
            Format::Ndjson,
        )
        .collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1, Err(Invalid::NoContact));
        assert_eq!(got[1].0, 3);
        assert!(matches!(got[1].1, Err(Invalid::Syntax(_))));
    }
}
