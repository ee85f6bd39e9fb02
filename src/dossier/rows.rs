//! What filing decides, as the store's rows: the one place where the
//! dossier's values ([`Filing`] and its parts) become `store::dossier` rows.
//! The store knows rows only and imports nothing above it, so the mapping
//! lives here, in the layer that knows both. Also the way back for a stored
//! document's place in its message ([`filing::extract`](super::filing::extract)).

use super::filing::{DocumentRef, FiledDocument, FiledItem, Filing, Outcome, Withdrawal};
use crate::store::dossier as store;

impl From<Filing> for store::DossierFiling {
    fn from(f: Filing) -> store::DossierFiling {
        store::DossierFiling {
            documents: f
                .documents
                .into_iter()
                .map(|(patient_id, d)| (patient_id, d.into()))
                .collect(),
            outcomes: f.outcomes.into_iter().map(Into::into).collect(),
            withdrawals: f
                .withdrawals
                .into_iter()
                .map(|(patient_id, w)| (patient_id, w.into()))
                .collect(),
        }
    }
}

impl From<Withdrawal> for store::Withdrawal {
    fn from(w: Withdrawal) -> store::Withdrawal {
        store::Withdrawal {
            unique_id: w.unique_id,
            requested_by: w.requested_by.unwrap_or_default(),
        }
    }
}

impl From<FiledDocument> for store::NewDocument {
    fn from(d: FiledDocument) -> store::NewDocument {
        store::NewDocument {
            unique_id: d.unique_id,
            entry_uuid: d.entry_uuid,
            category: d.category,
            title: d.title,
            type_code: d.type_code,
            class_code: d.class_code,
            format_code: d.format_code,
            creation_time: d.creation_time,
            service_start: d.service_start,
            service_stop: d.service_stop,
            author: d.author,
            author_institution: d.author_institution,
            author_role: d.author_role,
            author_specialty: d.author_specialty,
            confidentiality: d.confidentiality,
            mime_type: d.mime_type,
            data: d.data,
            hash: d.hash.unwrap_or_default(),
            reference: d.reference.map(Into::into),
            source: d.source.as_str(),
            replaces: d.replaces,
            items: d.items.into_iter().map(Into::into).collect(),
            deposited_by: d.deposited_by,
            deposited_establishment: d.deposited_establishment,
        }
    }
}

impl From<FiledItem> for store::NewProfileItem {
    fn from(FiledItem { item, author }: FiledItem) -> store::NewProfileItem {
        let (code, code_system) = match item.code {
            Some(c) => (Some(c.code), c.scheme),
            None => (None, None),
        };
        store::NewProfileItem {
            category: item.category.as_str().to_string(),
            label: item.label,
            code,
            code_system,
            value: item.value,
            item_date: item.date,
            author,
        }
    }
}

impl From<Outcome> for store::IndexingOutcome {
    fn from(o: Outcome) -> store::IndexingOutcome {
        store::IndexingOutcome {
            recipient: o.recipient,
            outcome: o.kind.as_str().to_string(),
            detail: o.detail,
            header_codecda: o.headers.codecda,
            header_ins: o.headers.ins,
            remarks: o.remarks.join("; "),
        }
    }
}

impl From<DocumentRef> for store::DocumentRef {
    fn from(r: DocumentRef) -> store::DocumentRef {
        store::DocumentRef {
            part: r.part,
            entry: r.entry,
        }
    }
}

impl From<store::DocumentRef> for DocumentRef {
    fn from(r: store::DocumentRef) -> DocumentRef {
        DocumentRef {
            part: r.part,
            entry: r.entry,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dossier::filing::{DocumentSource, OutcomeKind};
    use crate::dossier::metadata::Code;
    use crate::dossier::profile::{ProfileCategory, ProfileItem};

    #[test]
    fn a_filing_becomes_the_rows_it_decided() {
        let item = FiledItem {
            item: ProfileItem {
                category: ProfileCategory::Allergies,
                label: "Pénicilline".into(),
                code: Some(Code {
                    code: "Z88.0".into(),
                    scheme: Some("2.16.840.1.113883.6.3".into()),
                    display: None,
                }),
                date: Some("20240102".into()),
                value: None,
            },
            author: Some("Dr Jean".into()),
        };
        let mut document = crate::dossier::filing::patient_document(
            "ORD_SOIN",
            "Ordonnance",
            "o.pdf",
            b"%PDF-1.4\n%%EOF\n".to_vec(),
        )
        .expect("a patient's PDF is accepted");
        assert_eq!(document.source, DocumentSource::Patient);
        document.items.push(item);
        document.reference = Some(DocumentRef {
            part: 2,
            entry: "IHE_XDM/SUBSET01/DOC0001.XML".into(),
        });
        let filing = Filing {
            documents: vec![(7, document)],
            outcomes: vec![Outcome {
                recipient: "pro@hospital.test".into(),
                kind: OutcomeKind::NotIndexed,
                detail: "1 structured attachment(s), professional recipient".into(),
                headers: crate::dossier::headers::ReceivedHeaders {
                    codecda: Some("SYNTH".into()),
                    ins: None,
                },
                remarks: vec!["tolerated: a".into(), "tolerated: b".into()],
            }],
            withdrawals: vec![(
                7,
                Withdrawal {
                    unique_id: "1.2.3".into(),
                    requested_by: Some("jean@a.test".into()),
                },
            )],
        };
        let rows = store::DossierFiling::from(filing);
        let (patient, d) = &rows.documents[0];
        assert_eq!(*patient, 7);
        assert_eq!(d.source, "patient");
        assert_eq!(d.hash, "", "computed by the writer");
        assert_eq!(
            d.reference,
            Some(store::DocumentRef {
                part: 2,
                entry: "IHE_XDM/SUBSET01/DOC0001.XML".into()
            })
        );
        assert_eq!(
            d.items[0],
            store::NewProfileItem {
                category: "allergies".into(),
                label: "Pénicilline".into(),
                code: Some("Z88.0".into()),
                code_system: Some("2.16.840.1.113883.6.3".into()),
                value: None,
                item_date: Some("20240102".into()),
                author: Some("Dr Jean".into()),
            }
        );
        assert_eq!(rows.outcomes[0].outcome, "not_indexed");
        assert_eq!(rows.outcomes[0].header_codecda.as_deref(), Some("SYNTH"));
        assert_eq!(rows.outcomes[0].remarks, "tolerated: a; tolerated: b");
        assert_eq!(
            rows.withdrawals,
            [(
                7,
                store::Withdrawal {
                    unique_id: "1.2.3".into(),
                    requested_by: "jean@a.test".into()
                }
            )]
        );
    }
}
