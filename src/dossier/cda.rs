//! CDA R2 documents (French CI-SIS): header, patient identity, sections as
//! plain text, and the entries that feed the profil médical.
//!
//! Parsing goes through the hardened reader (no DOCTYPE, bounded depth), then
//! walks the tree. Items come only from sections whose LOINC code says what
//! they hold (see [`section_category`]); blood group observations are taken
//! from any section.

use std::collections::HashMap;

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::dossier::identity::INS_OIDS;
use crate::dossier::limits::Limits;
use crate::dossier::metadata::{Author, Code};
use crate::dossier::profile::{ProfileCategory, ProfileItem};
use crate::xml::{self, Element, Node, XmlError};

/// LOINC codes of blood group observations (ABO+Rh, ABO, Rh).
const BLOOD_GROUP_CODES: [&str; 3] = ["882-1", "883-9", "10331-7"];

/// Why a CDA document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CdaError {
    /// A DOCTYPE was present.
    #[error("CDA document carries a DOCTYPE declaration, refused (no entity is ever expanded)")]
    Doctype,
    /// Nesting deeper than the limit.
    #[error("CDA document is nested deeper than {0} levels")]
    TooDeep(usize),
    /// Any other XML-level refusal.
    #[error("CDA document is not acceptable XML: {0}")]
    Xml(XmlError),
    /// The root element is not ClinicalDocument.
    #[error("root element is <{0}>, expected ClinicalDocument")]
    NotCda(String),
    /// The non-XML body is not valid base64.
    #[error("the non-XML body is not valid base64: {0}")]
    Base64(#[source] base64::DecodeError),
    /// The non-XML body decodes to more than `max_entry_size` bytes.
    #[error("the non-XML body is larger than allowed")]
    TooLarge,
}

impl From<XmlError> for CdaError {
    fn from(e: XmlError) -> Self {
        match e {
            XmlError::Doctype => Self::Doctype,
            XmlError::TooDeep(n) => Self::TooDeep(n),
            other => Self::Xml(other),
        }
    }
}

/// The patient (recordTarget) with the INS identity traits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CdaPatient {
    /// INS: extension of the patientRole/id whose root is an INS OID.
    pub ins: Option<String>,
    /// That root (1.2.250.1.213.1.4.8 INS-NIR, .9 INS-NIA, .10/.11 test NIR/NIA).
    pub ins_oid: Option<String>,
    /// Birth name: family qualified BR, else the first family.
    pub birth_name: Option<String>,
    /// Birth given names: `given` elements not qualified CL (used name), in order.
    pub given_names: Vec<String>,
    /// birthTime.
    pub birth_date: Option<String>,
    /// administrativeGenderCode (F, M, U).
    pub sex: Option<String>,
}

/// A section, flattened (sub-sections follow their parent with a higher level).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// Section code (LOINC).
    pub code: Option<Code>,
    /// Section title.
    pub title: Option<String>,
    /// Nesting level, 0 for a top-level section.
    pub level: usize,
    /// The `<text>` as plain text: whitespace collapsed, paragraphs, rows and
    /// list items on separate lines, table cells separated by ` | `.
    pub narrative: String,
    /// Profile items drawn from this section's entries.
    pub items: Vec<ProfileItem>,
}

/// The body of a CDA level 1 document (usually a PDF).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NonXmlBody {
    /// mediaType of the body (`application/pdf`…).
    pub media_type: String,
    /// Decoded bytes (bounded by `max_entry_size`).
    pub data: Vec<u8>,
}

/// What MES keeps from a CDA document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CdaDocument {
    /// Document code (LOINC or 1.2.250.1.213.1.1.4.12).
    pub code: Option<Code>,
    /// Title.
    pub title: Option<String>,
    /// effectiveTime.
    pub effective_time: Option<String>,
    /// First author.
    pub author: Option<Author>,
    /// Custodian organisation name.
    pub custodian: Option<String>,
    /// The patient.
    pub patient: CdaPatient,
    /// Sections in document order, flattened.
    pub sections: Vec<Section>,
    /// Non-XML body, for level 1 documents.
    pub non_xml_body: Option<NonXmlBody>,
}

impl CdaDocument {
    /// All profile items of all sections.
    pub fn items(&self) -> impl Iterator<Item = &ProfileItem> {
        self.sections.iter().flat_map(|s| s.items.iter())
    }
}

/// Parses a CDA R2 document.
pub fn parse_cda(xml: &[u8], limits: &Limits) -> Result<CdaDocument, CdaError> {
    let root = xml::parse(xml, &limits.xml())?;
    if root.name != "ClinicalDocument" {
        return Err(CdaError::NotCda(root.name));
    }
    let mut refs = HashMap::new();
    root.visit(&mut |e| {
        if let Some(id) = e.attr("ID") {
            refs.insert(id.to_owned(), e.text());
        }
    });
    let ctx = Ctx { refs };

    let mut sections = Vec::new();
    let mut non_xml_body = None;
    for comp in root.children_named("component") {
        if let Some(body) = comp.child("structuredBody") {
            for c in body.children_named("component") {
                if let Some(s) = c.child("section") {
                    walk_section(s, 0, &ctx, &mut sections);
                }
            }
        }
        if let Some(nx) = comp.child("nonXMLBody") {
            non_xml_body = non_xml(nx, limits)?;
        }
    }

    Ok(CdaDocument {
        code: root.child("code").and_then(code_of),
        title: root.child("title").and_then(Element::text_normalized),
        effective_time: root
            .child("effectiveTime")
            .and_then(|e| e.attr_nonempty("value")),
        author: root.child("author").map(author_of),
        custodian: root
            .path(&[
                "custodian",
                "assignedCustodian",
                "representedCustodianOrganization",
                "name",
            ])
            .and_then(Element::text_normalized),
        patient: root
            .path(&["recordTarget", "patientRole"])
            .map(patient_of)
            .unwrap_or_default(),
        sections,
        non_xml_body,
    })
}

fn non_xml(nx: &Element, limits: &Limits) -> Result<Option<NonXmlBody>, CdaError> {
    let Some(text) = nx.child("text") else {
        return Ok(None);
    };
    let media_type = text
        .attr_nonempty("mediaType")
        .unwrap_or_else(|| "text/plain".to_owned());
    let raw = text.text();
    let data = if text.attr("representation") == Some("B64") {
        let compact: String = raw.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        if (compact.len() as u64 / 4).saturating_mul(3) > limits.max_entry_size {
            return Err(CdaError::TooLarge);
        }
        base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(CdaError::Base64)?
    } else {
        raw.into_bytes()
    };
    Ok(Some(NonXmlBody { media_type, data }))
}

/// Which profile category a section's entries feed, by section LOINC code.
pub fn section_category(loinc: &str) -> Option<ProfileCategory> {
    Some(match loinc {
        "48765-2" => ProfileCategory::Allergies,
        // Current medication and discharge medication; 18610-6 (given during
        // the stay, often stopped) is deliberately not taken.
        "10160-0" | "10183-2" => ProfileCategory::Traitements,
        // Active problems, past illnesses, past procedures (surgery).
        "11450-4" | "11348-0" | "47519-4" => ProfileCategory::Maladies,
        "46240-8" => ProfileCategory::Hospitalisations,
        // Functional status: CI-SIS codes handicaps here.
        "47420-5" => ProfileCategory::Handicaps,
        "10157-6" => ProfileCategory::AntecedentsFamiliaux,
        "8716-3" => ProfileCategory::Mesures,
        "11369-6" => ProfileCategory::Vaccinations,
        "42348-3" => ProfileCategory::DirectivesAnticipees,
        _ => return None,
    })
}

struct Ctx {
    /// Narrative fragments by ID, for `<reference value="#id"/>`.
    refs: HashMap<String, String>,
}

fn walk_section(s: &Element, level: usize, ctx: &Ctx, out: &mut Vec<Section>) {
    let code = s.child("code").and_then(code_of);
    let category = code.as_ref().and_then(|c| section_category(&c.code));
    let mut items = Vec::new();
    for entry in s.children_named("entry") {
        for stmt in entry.elements() {
            if let Some(cat) = category {
                statement(stmt, cat, ctx, &mut items);
            }
            blood_groups(stmt, ctx, &mut items);
        }
    }
    out.push(Section {
        code,
        title: s.child("title").and_then(Element::text_normalized),
        level,
        narrative: s.child("text").map(narrative).unwrap_or_default(),
        items,
    });
    for c in s.children_named("component") {
        if let Some(sub) = c.child("section") {
            walk_section(sub, level + 1, ctx, out);
        }
    }
}

fn is_statement(e: &Element) -> bool {
    matches!(
        e.name.as_str(),
        "act" | "observation" | "substanceAdministration" | "procedure" | "encounter" | "organizer"
    )
}

fn statement(el: &Element, cat: ProfileCategory, ctx: &Ctx, out: &mut Vec<ProfileItem>) {
    if el.attr("negationInd") == Some("true") {
        return;
    }
    match el.name.as_str() {
        "act" => {
            // A concern wrapper: the facts are the SUBJ statements inside.
            let mut inner = false;
            for er in el.children_named("entryRelationship") {
                if er.attr("typeCode").is_some_and(|t| t != "SUBJ") {
                    continue;
                }
                for s in er.elements().filter(|e| is_statement(e)) {
                    inner = true;
                    statement(s, cat, ctx, out);
                }
            }
            if !inner {
                push_generic(el, cat, ctx, out);
            }
        }
        "observation" => observation(el, cat, None, ctx, out),
        "substanceAdministration" => {
            let material = el.path(&["consumable", "manufacturedProduct", "manufacturedMaterial"]);
            let code = material.and_then(|m| m.child("code")).and_then(code_of);
            let label = material
                .and_then(|m| label_of(m.child("code"), ctx))
                .or_else(|| {
                    material
                        .and_then(|m| m.child("name"))
                        .and_then(Element::text_normalized)
                })
                .or_else(|| el.child("text").and_then(|t| text_of(t, ctx)));
            if let Some(label) = label {
                out.push(ProfileItem {
                    category: cat,
                    label,
                    code,
                    date: effective_time(el),
                    value: dose(el),
                });
            }
        }
        "organizer" => {
            let relation = el
                .path(&["subject", "relatedSubject", "code"])
                .and_then(|c| label_of(Some(c), ctx));
            for comp in el.children_named("component") {
                for s in comp.elements().filter(|e| is_statement(e)) {
                    if s.name == "observation" {
                        observation(s, cat, relation.clone(), ctx, out);
                    } else {
                        statement(s, cat, ctx, out);
                    }
                }
            }
        }
        _ => push_generic(el, cat, ctx, out),
    }
}

/// An observation: a measurement (PQ value) is labelled by its code; a coded
/// finding by its value; an allergy with an empty value by its allergen.
fn observation(
    el: &Element,
    cat: ProfileCategory,
    qualifier: Option<String>,
    ctx: &Ctx,
    out: &mut Vec<ProfileItem>,
) {
    if el.attr("negationInd") == Some("true") {
        return;
    }
    let obs_code = el.child("code");
    let value = el.child("value");
    let vtype = value.and_then(|v| v.attr("type")).unwrap_or_default();
    let date = effective_time(el);
    if matches!(vtype, "PQ" | "INT" | "REAL" | "ST" | "BL" | "IVL_PQ") {
        let Some(label) = label_of(obs_code, ctx) else {
            return;
        };
        out.push(ProfileItem {
            category: cat,
            label,
            code: obs_code.and_then(code_of),
            date,
            value: value.and_then(|v| scalar_value(v, ctx)).or(qualifier),
        });
        return;
    }
    if let Some(label) = label_of(value, ctx) {
        out.push(ProfileItem {
            category: cat,
            label,
            code: value.and_then(code_of),
            date,
            value: qualifier,
        });
        return;
    }
    let allergen = el.path(&["participant", "participantRole", "playingEntity"]);
    if let Some(label) = allergen
        .and_then(|p| label_of(p.child("code"), ctx))
        .or_else(|| {
            allergen
                .and_then(|p| p.child("name"))
                .and_then(Element::text_normalized)
        })
    {
        out.push(ProfileItem {
            category: cat,
            label,
            code: allergen.and_then(|p| p.child("code")).and_then(code_of),
            date,
            value: qualifier.or_else(|| label_of(obs_code, ctx)),
        });
        return;
    }
    push_generic(el, cat, ctx, out);
}

fn push_generic(el: &Element, cat: ProfileCategory, ctx: &Ctx, out: &mut Vec<ProfileItem>) {
    let code_el = el.child("code");
    let label = label_of(code_el, ctx).or_else(|| el.child("text").and_then(|t| text_of(t, ctx)));
    if let Some(label) = label {
        out.push(ProfileItem {
            category: cat,
            label,
            code: code_el.and_then(code_of),
            date: effective_time(el),
            value: None,
        });
    }
}

/// Blood group observations anywhere below an entry, whatever the section.
fn blood_groups(stmt: &Element, ctx: &Ctx, out: &mut Vec<ProfileItem>) {
    stmt.visit(&mut |e| {
        if e.name != "observation" || e.attr("negationInd") == Some("true") {
            return;
        }
        let is_bg = e
            .child("code")
            .and_then(|c| c.attr("code"))
            .is_some_and(|c| BLOOD_GROUP_CODES.contains(&c));
        if !is_bg {
            return;
        }
        let value = e.child("value");
        if let Some(label) =
            label_of(value, ctx).or_else(|| value.and_then(|v| scalar_value(v, ctx)))
        {
            out.push(ProfileItem {
                category: ProfileCategory::GroupeSanguin,
                label,
                code: value.and_then(code_of),
                date: effective_time(e),
                value: None,
            });
        }
    });
}

fn code_of(e: &Element) -> Option<Code> {
    Some(Code {
        code: e.attr_nonempty("code")?,
        scheme: e.attr_nonempty("codeSystem"),
        display: e.attr_nonempty("displayName"),
    })
}

/// displayName, else originalText (resolving references), else the code.
fn label_of(e: Option<&Element>, ctx: &Ctx) -> Option<String> {
    let e = e?;
    e.attr_nonempty("displayName")
        .map(|s| xml::collapse_ws(&s))
        .or_else(|| e.child("originalText").and_then(|o| text_of(o, ctx)))
        .or_else(|| e.attr_nonempty("code"))
}

/// Text of an element, or of the narrative it references.
fn text_of(e: &Element, ctx: &Ctx) -> Option<String> {
    if let Some(t) = e.text_normalized() {
        return Some(t);
    }
    let r = e.child("reference")?.attr("value")?;
    let t = xml::collapse_ws(ctx.refs.get(r.strip_prefix('#')?)?);
    (!t.is_empty()).then_some(t)
}

fn scalar_value(v: &Element, ctx: &Ctx) -> Option<String> {
    match v.attr("type").unwrap_or_default() {
        "PQ" => {
            let val = v.attr_nonempty("value")?;
            Some(match v.attr_nonempty("unit").filter(|u| u != "1") {
                Some(u) => format!("{val} {u}"),
                None => val,
            })
        }
        "ST" => text_of(v, ctx),
        _ => v.attr_nonempty("value").or_else(|| text_of(v, ctx)),
    }
}

fn dose(el: &Element) -> Option<String> {
    let d = el.child("doseQuantity")?;
    let val = d.attr_nonempty("value")?;
    Some(match d.attr_nonempty("unit").filter(|u| u != "1") {
        Some(u) => format!("{val} {u}"),
        None => val,
    })
}

/// `effectiveTime@value`, else its `low@value`, else its `center@value`.
fn effective_time(el: &Element) -> Option<String> {
    el.children_named("effectiveTime").find_map(|t| {
        t.attr_nonempty("value")
            .or_else(|| t.child("low").and_then(|l| l.attr_nonempty("value")))
            .or_else(|| t.child("center").and_then(|l| l.attr_nonempty("value")))
    })
}

fn person_name(name: &Element) -> Option<String> {
    let mut parts: Vec<String> = name
        .children_named("given")
        .filter_map(Element::text_normalized)
        .collect();
    parts.extend(
        name.children_named("family")
            .filter_map(Element::text_normalized),
    );
    if parts.is_empty() {
        name.text_normalized()
    } else {
        Some(parts.join(" "))
    }
}

fn author_of(a: &Element) -> Author {
    let aa = a.child("assignedAuthor");
    Author {
        person: aa
            .and_then(|x| x.path(&["assignedPerson", "name"]))
            .and_then(person_name),
        institution: aa
            .and_then(|x| x.path(&["representedOrganization", "name"]))
            .and_then(Element::text_normalized),
        role: a
            .child("functionCode")
            .and_then(|f| f.attr_nonempty("displayName")),
        specialty: aa
            .and_then(|x| x.child("code"))
            .and_then(|c| c.attr_nonempty("displayName")),
    }
}

fn has_qualifier(e: &Element, q: &str) -> bool {
    e.attr("qualifier")
        .is_some_and(|v| v.split_whitespace().any(|x| x == q))
}

fn patient_of(role: &Element) -> CdaPatient {
    let ins_id = role.children_named("id").find(|id| {
        id.attr("root")
            .is_some_and(|r| INS_OIDS.contains(&r.trim()))
    });
    let patient = role.child("patient");
    let names: Vec<&Element> = patient
        .map(|p| p.children_named("name").collect())
        .unwrap_or_default();
    let families: Vec<&Element> = names
        .iter()
        .flat_map(|n| n.children_named("family"))
        .collect();
    let birth_name = families
        .iter()
        .find(|f| has_qualifier(f, "BR"))
        .or_else(|| families.first())
        .and_then(|f| f.text_normalized());
    let mut given_names: Vec<String> = Vec::new();
    for g in names.iter().flat_map(|n| n.children_named("given")) {
        if has_qualifier(g, "CL") {
            continue;
        }
        if let Some(t) = g.text_normalized()
            && !given_names.contains(&t)
        {
            given_names.push(t);
        }
    }
    CdaPatient {
        ins: ins_id.and_then(|i| i.attr_nonempty("extension")),
        ins_oid: ins_id.and_then(|i| i.attr_nonempty("root")),
        birth_name,
        given_names,
        birth_date: patient
            .and_then(|p| p.child("birthTime"))
            .and_then(|b| b.attr_nonempty("value")),
        sex: patient
            .and_then(|p| p.child("administrativeGenderCode"))
            .and_then(|g| g.attr_nonempty("code")),
    }
}

/// Plain text of a section `<text>`.
fn narrative(text: &Element) -> String {
    let mut lines = Vec::new();
    let mut cur = String::new();
    narrative_walk(text, &mut lines, &mut cur);
    flush(&mut lines, &mut cur);
    lines.join("\n")
}

fn flush(lines: &mut Vec<String>, cur: &mut String) {
    let l = xml::collapse_ws(cur);
    if !l.is_empty() {
        lines.push(l);
    }
    cur.clear();
}

fn narrative_walk(e: &Element, lines: &mut Vec<String>, cur: &mut String) {
    for c in &e.children {
        match c {
            Node::Text(t) => cur.push_str(t),
            Node::Element(el) => match el.name.as_str() {
                "br" => flush(lines, cur),
                "paragraph" | "tr" | "item" | "caption" | "list" | "table" | "thead" | "tbody"
                | "tfoot" => {
                    flush(lines, cur);
                    narrative_walk(el, lines, cur);
                    flush(lines, cur);
                }
                "td" | "th" => {
                    if !cur.trim().is_empty() {
                        cur.push_str(" | ");
                    }
                    narrative_walk(el, lines, cur);
                }
                "renderMultiMedia" | "footnoteRef" => {}
                _ => narrative_walk(el, lines, cur),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(rel: &str) -> Vec<u8> {
        let p = format!("{}/tests/fixtures/corpus/{rel}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    fn cda(name: &str) -> CdaDocument {
        parse_cda(&corpus(&format!("cda/{name}")), &Limits::default()).unwrap()
    }

    fn labels(d: &CdaDocument, cat: ProfileCategory) -> Vec<String> {
        d.items()
            .filter(|i| i.category == cat)
            .map(|i| i.label.clone())
            .collect()
    }

    fn check_pat_trois(p: &CdaPatient) {
        assert_eq!(p.ins.as_deref(), Some("279035121518989"));
        assert_eq!(p.ins_oid.as_deref(), Some("1.2.250.1.213.1.4.10"));
        assert_eq!(p.birth_name.as_deref(), Some("PAT-TROIS"));
        assert_eq!(p.given_names, ["DOMINIQUE MARIE-LOUISE", "DOMINIQUE"]);
        assert_eq!(p.birth_date.as_deref(), Some("19790328"));
        assert_eq!(p.sex.as_deref(), Some("F"));
    }

    #[test]
    fn vsm_header_and_items() {
        let d = cda("VSM_1.4_2022.01.xml");
        assert_eq!(d.code.as_ref().unwrap().code, "SYNTH");
        assert_eq!(d.title.as_deref(), Some("Synthèse Médicale"));
        assert_eq!(d.effective_time.as_deref(), Some("20200312111700+0100"));
        let a = d.author.as_ref().unwrap();
        assert_eq!(a.person.as_deref(), Some("Stéphane MEDIONI"));
        assert_eq!(a.role.as_deref(), Some("Médecin traitant"));
        assert_eq!(
            a.institution.as_deref(),
            Some("Centre de soins le Belvédère")
        );
        assert_eq!(d.custodian.as_deref(), Some("Centre de soins le Belvédère"));
        check_pat_trois(&d.patient);
        assert_eq!(
            labels(&d, ProfileCategory::Maladies),
            [
                "Accident ischémique cérébral transitoire, sans précision",
                "Angine de poitrine instable",
                "Pyélonéphrite aiguë",
                "Infarctus transmural aigu du myocarde, de la paroi inférieure",
                "Dilatation intraluminale de 2 vaisseaux coronaires avec pose d'endoprothèse, par voie artérielle transcutanée",
            ]
        );
        assert_eq!(labels(&d, ProfileCategory::Allergies), ["PARACETAMOL"]);
        let allergy = d
            .items()
            .find(|i| i.category == ProfileCategory::Allergies)
            .unwrap();
        assert_eq!(allergy.date.as_deref(), Some("20180603"));
        assert_eq!(allergy.value.as_deref(), Some("allergie médicamenteuse"));
        assert_eq!(
            labels(&d, ProfileCategory::Traitements),
            [
                "PLAVIX 75 mg, comprimé pelliculé",
                "COUMADINE 5mg, comprimé sécable"
            ]
        );
        let fam: Vec<_> = d
            .items()
            .filter(|i| i.category == ProfileCategory::AntecedentsFamiliaux)
            .collect();
        assert_eq!(fam.len(), 1);
        assert_eq!(fam[0].label, "Anémie à hématies falciformes sans crises");
        assert_eq!(fam[0].value.as_deref(), Some("Mère"));
        assert_eq!(fam[0].code.as_ref().unwrap().code, "D57.1");
        // Narrative: table rows on their own lines, cells separated.
        let allergies = d
            .sections
            .iter()
            .find(|s| s.code.as_ref().is_some_and(|c| c.code == "48765-2"))
            .unwrap();
        assert_eq!(
            allergies.narrative,
            "Date | Type d'allergie | Agent responsable | Statut\n03/06/2018 | Allergie médicamenteuse | Paracétamol | Intermittent"
        );
        assert_eq!(allergies.level, 2);
    }

    #[test]
    fn ldl_ses_items() {
        let d = cda("LDL-SES_2022.01.xml");
        assert_eq!(d.code.as_ref().unwrap().code, "11490-0");
        assert_eq!(
            d.author.as_ref().unwrap().person.as_deref(),
            Some("Charles DAVID")
        );
        assert_eq!(
            d.custodian.as_deref(),
            Some("Hôpital Européen Georges Pompidou")
        );
        check_pat_trois(&d.patient);
        assert_eq!(
            labels(&d, ProfileCategory::Traitements),
            ["LEPONEX 100 mg, comprimé sécable"]
        );
        assert_eq!(labels(&d, ProfileCategory::Allergies).len(), 1);
    }

    #[test]
    fn vaccination_items() {
        let d = cda("VAC_2023.01.xml");
        assert_eq!(d.code.as_ref().unwrap().code, "11369-6");
        assert_eq!(d.custodian.as_deref(), Some("Assurance Maladie"));
        check_pat_trois(&d.patient);
        let v = labels(&d, ProfileCategory::Vaccinations);
        assert_eq!(v.len(), 4);
        assert_eq!(
            v[0],
            "VACCIN BCG SSI, poudre et solvant pour suspension injectable"
        );
        let d = cda("VAC-NOTE_2023.01.xml");
        assert_eq!(d.code.as_ref().unwrap().code, "87273-9");
        let items: Vec<_> = d.items().collect();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].date.as_deref(), Some("20090928"));
        assert_eq!(items[0].code.as_ref().unwrap().code, "68747507");
    }

    #[test]
    fn bio_has_results_but_no_profile_items() {
        let d = cda("BIO-CR-BIO_2024.01_TSH_1.xml");
        assert_eq!(d.code.as_ref().unwrap().code, "11502-2");
        assert_eq!(
            d.author.as_ref().unwrap().person.as_deref(),
            Some("Marcel CAMPARINI")
        );
        check_pat_trois(&d.patient);
        assert_eq!(d.items().count(), 0);
        assert!(d.sections.iter().any(|s| s.narrative.contains("TSH")));
    }

    #[test]
    fn blood_group_anywhere_and_non_xml_body() {
        let xml = br#"<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<component><structuredBody><component><section><code code="30954-2"/>
<text><paragraph>Groupe <content>A</content> positif</paragraph></text>
<entry><observation classCode="OBS" moodCode="EVN"><code code="882-1" codeSystem="2.16.840.1.113883.6.1"/>
<effectiveTime value="20200101"/><value xsi:type="CD" code="LA21321-7" displayName="A Rh(D) positif"/></observation></entry>
</section></component></structuredBody></component></ClinicalDocument>"#;
        let d = parse_cda(xml, &Limits::default()).unwrap();
        let bg: Vec<_> = d.items().collect();
        assert_eq!(bg.len(), 1);
        assert_eq!(bg[0].category, ProfileCategory::GroupeSanguin);
        assert_eq!(bg[0].label, "A Rh(D) positif");
        assert_eq!(d.sections[0].narrative, "Groupe A positif");

        let xml = br#"<ClinicalDocument><component><nonXMLBody><text mediaType="application/pdf" representation="B64">JVBE
Ri0x</text></nonXMLBody></component></ClinicalDocument>"#;
        let d = parse_cda(xml, &Limits::default()).unwrap();
        let b = d.non_xml_body.unwrap();
        assert_eq!(b.media_type, "application/pdf");
        assert_eq!(b.data, b"%PDF-1");
        let bad = br#"<ClinicalDocument><component><nonXMLBody><text representation="B64">@@@@</text></nonXMLBody></component></ClinicalDocument>"#;
        assert!(matches!(
            parse_cda(bad, &Limits::default()),
            Err(CdaError::Base64(_))
        ));
        let l = Limits {
            max_entry_size: 2,
            ..Limits::default()
        };
        let small = br#"<ClinicalDocument><component><nonXMLBody><text representation="B64">JVBERi0x</text></nonXMLBody></component></ClinicalDocument>"#;
        assert_eq!(
            parse_cda(
                small,
                &Limits {
                    max_entry_size: 200,
                    ..l
                }
            )
            .map(|_| ()),
            Ok(())
        );
        assert!(matches!(
            parse_cda(
                br#"<ClinicalDocument><component><nonXMLBody><text representation="B64">JVBERi0xJVBERi0xJVBERi0xJVBERi0x</text></nonXMLBody></component></ClinicalDocument>"#,
                &Limits { max_entry_size: 200, ..l }
            )
            .map(|d| d.non_xml_body.map(|b| b.data.len())),
            Ok(Some(24))
        ));
    }

    #[test]
    fn hostile_cda() {
        let l = Limits::default();
        assert_eq!(
            parse_cda(b"<!DOCTYPE x [<!ENTITY a \"b\">]><ClinicalDocument/>", &l),
            Err(CdaError::Doctype)
        );
        assert_eq!(
            parse_cda(b"<html/>", &l),
            Err(CdaError::NotCda("html".into()))
        );
        let deep = format!(
            "<ClinicalDocument>{}{}</ClinicalDocument>",
            "<a>".repeat(200),
            "</a>".repeat(200)
        );
        assert_eq!(parse_cda(deep.as_bytes(), &l), Err(CdaError::TooDeep(100)));
    }
}
