//! The MSSanté headers that travel with structured documents (Référentiel
//! socle MSSanté #2, clients de messagerie): `X-MSS-CODECDA`, the `code` of
//! each CDA document's header, comma separated, and `X-MSS-INS`, `O` when the
//! documents identify the patient by a qualified INS, `N` otherwise. Neither
//! is set on a message without a CDA document in an XDM package.
//!
//! MES computes them from what it read (never from what a sender claimed)
//! for the messages it builds about documents (MDNs), and on receipt
//! records what the sender said beside what the package holds, so a client
//! whose headers disagree with its packages shows up in the indexing
//! outcomes. Sans-IO: values in, values out.

use mail_parser::Message;

use super::Indexed;
use super::identity::INS_OIDS;

/// Name of the header listing the CDA codes.
pub const CODECDA: &str = "X-MSS-CODECDA";
/// Name of the header saying whether the INS is qualified (`O`/`N`).
pub const INS: &str = "X-MSS-INS";

/// Longest header value kept from a received message (a list of codes).
const RECEIVED_MAX: usize = 256;

/// The MSSanté header values a message carrying some documents should have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MssHeaders {
    /// Codes of the CDA documents, in package order, each once.
    pub codecda: Vec<String>,
    /// Every CDA document names its patient by an INS (None: no CDA).
    pub ins: Option<bool>,
}

impl MssHeaders {
    /// The values for documents read from `indexed` attachments.
    pub fn of<'a>(indexed: impl IntoIterator<Item = &'a Indexed>) -> MssHeaders {
        let mut codecda: Vec<String> = Vec::new();
        let mut ins: Option<bool> = None;
        for cda in indexed
            .into_iter()
            .flat_map(|i| i.documents.iter())
            .filter_map(|d| d.cda.as_ref())
        {
            if let Some(code) = cda.code.as_ref().map(|c| c.code.trim().to_string())
                && !code.is_empty()
                && !codecda.contains(&code)
            {
                codecda.push(code);
            }
            let qualified = cda.patient.ins.is_some()
                && cda
                    .patient
                    .ins_oid
                    .as_deref()
                    .is_some_and(|o| INS_OIDS.contains(&o.trim()));
            ins = Some(ins.unwrap_or(true) && qualified);
        }
        MssHeaders { codecda, ins }
    }

    /// The `X-MSS-CODECDA` value, when there is a CDA document.
    pub fn codecda_value(&self) -> Option<String> {
        (!self.codecda.is_empty()).then(|| self.codecda.join(","))
    }

    /// The `X-MSS-INS` value, when there is a CDA document.
    pub fn ins_value(&self) -> Option<&'static str> {
        self.ins.map(|q| if q { "O" } else { "N" })
    }
}

/// The MSSanté headers as a received message gives them, cleaned (control
/// characters removed, length bounded): they are stored with the outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceivedHeaders {
    /// `X-MSS-CODECDA` as sent.
    pub codecda: Option<String>,
    /// `X-MSS-INS` as sent.
    pub ins: Option<String>,
}

impl ReceivedHeaders {
    /// Reads both headers of `msg`.
    pub fn read(msg: &Message<'_>) -> ReceivedHeaders {
        let get = |name: &str| {
            msg.header_raw(name).map(|v| {
                crate::mime::facts::clean_text(v.trim())
                    .chars()
                    .take(RECEIVED_MAX)
                    .collect::<String>()
            })
        };
        ReceivedHeaders {
            codecda: get(CODECDA),
            ins: get(INS),
        }
    }

    /// What disagrees between what the sender said and what the package
    /// holds, one remark each (empty when they agree). The codes are compared
    /// as sets: order and repetition carry no meaning.
    pub fn disagreements(&self, package: &MssHeaders) -> Vec<String> {
        let mut out = Vec::new();
        let said: Vec<String> = self
            .codecda
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect();
        let same = said.iter().all(|c| package.codecda.contains(c))
            && package.codecda.iter().all(|c| said.contains(c));
        if !same {
            out.push(format!(
                "{CODECDA} disagrees with the package: header {:?}, package {:?}",
                self.codecda.as_deref().unwrap_or(""),
                package.codecda_value().unwrap_or_default()
            ));
        }
        if let (Some(said), Some(holds)) = (self.ins.as_deref(), package.ins_value())
            && !said.eq_ignore_ascii_case(holds)
        {
            out.push(format!(
                "{INS} disagrees with the package: header {said:?}, package {holds:?}"
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dossier::limits::Limits;

    fn sample(name: &str) -> Indexed {
        let p = format!(
            "{}/tests/fixtures/corpus/xdm/ans-interop-exemples-xdm/{name}/IHE_XDM.ZIP",
            env!("CARGO_MANIFEST_DIR")
        );
        let zip = std::fs::read(&p).unwrap();
        crate::dossier::index_attachment(None, "application/zip", &zip, &Limits::default())
            .unwrap()
            .unwrap()
    }

    #[test]
    fn values_come_from_the_documents() {
        let vsm = sample("VSM_1.4_2022.01");
        let ldl = sample("LDL-SES_2022.01");
        let h = MssHeaders::of([&vsm, &ldl, &vsm]);
        assert_eq!(h.codecda_value().as_deref(), Some("SYNTH,11490-0"));
        assert_eq!(h.ins_value(), Some("O"));
        let none = MssHeaders::of([]);
        assert_eq!((none.codecda_value(), none.ins_value()), (None, None));
    }

    #[test]
    fn disagreements_are_named() {
        let h = MssHeaders::of([&sample("VSM_1.4_2022.01")]);
        let said = |codecda: Option<&str>, ins: Option<&str>| ReceivedHeaders {
            codecda: codecda.map(str::to_string),
            ins: ins.map(str::to_string),
        };
        assert!(
            said(Some(" SYNTH "), Some("o"))
                .disagreements(&h)
                .is_empty()
        );
        let d = said(Some("11490-0"), Some("N")).disagreements(&h);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].starts_with("X-MSS-CODECDA disagrees"), "{d:?}");
        assert!(d[1].starts_with("X-MSS-INS disagrees"), "{d:?}");
        // Absent where a CDA travels: the client did not say it.
        assert_eq!(said(None, None).disagreements(&h).len(), 1);
        let raw = b"X-MSS-CODECDA: SYNTH,\r\n 11490-0\r\nX-MSS-INS: O\r\n\r\nx";
        let msg = crate::mime::parse(raw).unwrap();
        let r = ReceivedHeaders::read(&msg);
        let codes = r.codecda.unwrap_or_default();
        assert!(
            codes.starts_with("SYNTH,") && codes.ends_with(" 11490-0"),
            "{codes}"
        );
        assert_eq!(r.ins.as_deref(), Some("O"));
    }
}
