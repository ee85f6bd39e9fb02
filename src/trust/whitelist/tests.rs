//! Whitelist parsing: the published sample, every refusal, merges and the DN rule.

use super::*;

const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListeBlanche xmlns="https://listeblanche.mssante.fr/schema">
  <DateDeGeneration>2026-11-20T03:00:00</DateDeGeneration>
  <!-- établissements de test -->
  <Domaine>
<Nom>hopital-a.mes.test</Nom>
<Description>Hôpital A — Centre hospitalier</Description>
<DNCertificatOperateur>CN=mx.operateur1.mes.test, O=Opérateur Un, C=FR</DNCertificatOperateur>
<ResponsableContact>dsi@hopital-a.mes.test</ResponsableContact>
<SupportContact>support@hopital-a.mes.test</SupportContact>
<DateMAJ>2026-10-15T08:30:00</DateMAJ>
  </Domaine>
  <Domaine>
<Nom>Hopital-B.MES.test.</Nom>
<Description>Hôpital B</Description>
<DNCertificatOperateur>CN=mx.operateur2.mes.test, O=Operateur Deux, C=FR</DNCertificatOperateur>
<DNCertificatOperateur>/C=FR/O=Operateur Deux/CN=mx2.operateur2.mes.test</DNCertificatOperateur>
<ResponsableContact>dsi@hopital-b.mes.test</ResponsableContact>
<SupportContact>support@hopital-b.mes.test</SupportContact>
<DateMAJ>2026-11-01T10:00:00</DateMAJ>
  </Domaine>
</ListeBlanche>
"#;

fn doc(domaines: &str) -> String {
    format!(
        "<ListeBlanche xmlns=\"{NAMESPACE}\"><DateDeGeneration>2026-11-20T03:00:00</DateDeGeneration>{domaines}</ListeBlanche>"
    )
}

fn domaine(nom: &str) -> String {
    format!(
        "<Domaine><Nom>{nom}</Nom><DNCertificatOperateur>CN=mx, O=Op, C=FR</DNCertificatOperateur></Domaine>"
    )
}

#[test]
fn parses_realistic_sample() {
    let list = parse(SAMPLE.as_bytes()).expect("sample parses");
    assert_eq!(list.generated_at.as_deref(), Some("2026-11-20T03:00:00"));
    assert_eq!(list.domains.len(), 2);

    let a = &list.domains[0];
    assert_eq!(a.domain, "hopital-a.mes.test");
    assert_eq!(
        a.description.as_deref(),
        Some("Hôpital A — Centre hospitalier")
    );
    assert_eq!(
        a.operator_dns,
        vec!["CN=mx.operateur1.mes.test, O=Opérateur Un, C=FR"]
    );
    assert_eq!(
        a.responsable_contact.as_deref(),
        Some("dsi@hopital-a.mes.test")
    );
    assert_eq!(
        a.support_contact.as_deref(),
        Some("support@hopital-a.mes.test")
    );
    assert_eq!(a.updated_at.as_deref(), Some("2026-10-15T08:30:00"));

    let b = &list.domains[1];
    assert_eq!(b.domain, "hopital-b.mes.test");
    assert_eq!(b.description.as_deref(), Some("Hôpital B"));
    assert_eq!(b.operator_dns.len(), 2);
    assert_eq!(b.updated_at.as_deref(), Some("2026-11-01T10:00:00"));
    assert!(b.matches_operator_dn("C=FR, O=Operateur Deux, CN=mx.operateur2.mes.test"));
    assert!(b.matches_operator_dn("C=FR, O=Operateur Deux, CN=mx2.operateur2.mes.test"));
    assert!(!b.matches_operator_dn("C=FR, O=Operateur Un, CN=mx.operateur1.mes.test"));

    assert_eq!(
        list.find("HOPITAL-B.mes.test.").map(|e| e.domain.as_str()),
        Some("hopital-b.mes.test")
    );
    assert!(list.find("hopital-c.mes.test").is_none());
}

#[test]
fn accepts_prefixed_namespace_and_any_root() {
    let xml = format!(
        r#"<lb:Liste xmlns:lb="{NAMESPACE}">
  <lb:DateDeGeneration>2026-11-20T03:00:00</lb:DateDeGeneration>
  <lb:Domaine>
<lb:Nom>hopital-b.mes.test</lb:Nom>
<lb:Description>Hôpital B</lb:Description>
<lb:DNCertificatOperateur>CN=mx.operateur2.mes.test, O=Operateur Deux, C=FR</lb:DNCertificatOperateur>
  </lb:Domaine>
</lb:Liste>"#
    );
    let list = parse(xml.as_bytes()).expect("prefixed document parses");
    assert_eq!(list.generated_at.as_deref(), Some("2026-11-20T03:00:00"));
    assert_eq!(list.domains.len(), 1);
    assert_eq!(list.domains[0].domain, "hopital-b.mes.test");
    assert_eq!(list.domains[0].description.as_deref(), Some("Hôpital B"));
}

#[test]
fn accepts_document_without_namespace() {
    let xml = "<ListeBlanche><Domaine><Nom>a.mes.test</Nom></Domaine></ListeBlanche>";
    let list = parse(xml.as_bytes()).expect("no-namespace document parses");
    assert_eq!(list.generated_at, None);
    assert_eq!(list.domains[0].domain, "a.mes.test");
    assert!(list.domains[0].operator_dns.is_empty());
}

#[test]
fn skips_foreign_namespace_and_unknown_elements() {
    let xml = format!(
        r#"<ListeBlanche xmlns="{NAMESPACE}" xmlns:x="urn:other">
  <x:Domaine><x:Nom>evil.example.com</x:Nom></x:Domaine>
  <Extension><Domaine><Nom>nested.example.com</Nom></Domaine></Extension>
  <Domaine><Nom>a.mes.test</Nom><x:Nom>evil.example.com</x:Nom><Futur>x</Futur></Domaine>
</ListeBlanche>"#
    );
    let list = parse(xml.as_bytes()).expect("parses");
    let names: Vec<&str> = list.domains.iter().map(|d| d.domain.as_str()).collect();
    assert_eq!(names, vec!["a.mes.test"]);
}

#[test]
fn decodes_predefined_entities_char_refs_and_cdata() {
    let xml = doc(
        "<Domaine><Nom>a.mes.test</Nom><Description>R&amp;D &lt;x&gt; &quot;&apos; &#233;&#x41; <![CDATA[<b>&amp;</b>]]></Description></Domaine>",
    );
    let list = parse(xml.as_bytes()).expect("parses");
    assert_eq!(
        list.domains[0].description.as_deref(),
        Some("R&D <x> \"' éA <b>&amp;</b>")
    );
}

#[test]
fn rejects_billion_laughs_doctype() {
    let xml = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<ListeBlanche><Domaine><Nom>a.mes.test</Nom><Description>&lol3;</Description></Domaine></ListeBlanche>"#;
    assert!(matches!(
        parse(xml.as_bytes()),
        Err(WhitelistError::Xml {
            error: XmlError::Doctype,
            ..
        })
    ));
}

#[test]
fn rejects_external_entity_doctype() {
    let xml = r#"<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><ListeBlanche><Domaine><Nom>&xxe;</Nom></Domaine></ListeBlanche>"#;
    assert!(matches!(
        parse(xml.as_bytes()),
        Err(WhitelistError::Xml {
            error: XmlError::Doctype,
            ..
        })
    ));
}

#[test]
fn rejects_undefined_entity() {
    let xml = doc("<Domaine><Nom>a.mes.test</Nom><Description>&nbsp;</Description></Domaine>");
    match parse(xml.as_bytes()) {
        Err(WhitelistError::Xml {
            error: XmlError::Entity(name),
            ..
        }) => assert_eq!(name, "nbsp"),
        other => panic!("expected UndefinedEntity, got {other:?}"),
    }
}

#[test]
fn rejects_forbidden_characters() {
    let xml = doc("<Domaine><Nom>a.mes.test</Nom><Description>a&#1;b</Description></Domaine>");
    assert!(matches!(
        parse(xml.as_bytes()),
        Err(WhitelistError::Xml {
            error: XmlError::ForbiddenChar(1),
            ..
        })
    ));
    let xml = doc("<Domaine><Nom>a.mes.test</Nom><Description>a\u{7}b</Description></Domaine>");
    assert!(matches!(
        parse(xml.as_bytes()),
        Err(WhitelistError::Xml {
            error: XmlError::ForbiddenChar(7),
            ..
        })
    ));
    let xml = doc("<Domaine><Nom>a.mes.test</Nom><Description>&#0;</Description></Domaine>");
    assert!(parse(xml.as_bytes()).is_err());
}

#[test]
fn rejects_depth_bomb() {
    let depth = 10_000;
    let xml = format!(
        "<ListeBlanche>{}{}</ListeBlanche>",
        "<a>".repeat(depth),
        "</a>".repeat(depth)
    );
    assert!(matches!(
        parse(xml.as_bytes()),
        Err(WhitelistError::Xml {
            error: XmlError::TooDeep(MAX_DEPTH),
            ..
        })
    ));
    // Right at the limit is fine.
    let ok = format!(
        "<ListeBlanche>{}{}</ListeBlanche>",
        "<a>".repeat(MAX_DEPTH - 1),
        "</a>".repeat(MAX_DEPTH - 1)
    );
    assert!(parse(ok.as_bytes()).is_ok());
}

#[test]
fn rejects_missing_name_with_index() {
    let xml = doc(&format!(
        "{}<Domaine><Description>sans nom</Description></Domaine>",
        domaine("a.mes.test")
    ));
    assert!(matches!(
        parse(xml.as_bytes()),
        Err(WhitelistError::MissingName { index: 1 })
    ));
    let xml = doc("<Domaine/>");
    assert!(matches!(
        parse(xml.as_bytes()),
        Err(WhitelistError::MissingName { index: 0 })
    ));
    let xml = doc("<Domaine><Nom>  </Nom></Domaine>");
    assert!(matches!(
        parse(xml.as_bytes()),
        Err(WhitelistError::MissingName { index: 0 })
    ));
}

#[test]
fn rejects_invalid_domains() {
    let long = format!("{}.test", "a.".repeat(125));
    for bad in [
        "bad_domain.mes.test",
        "-x.mes.test",
        "x-.mes.test",
        "a..mes.test",
        "localhost",
        "192.168.0.1",
        "hôpital.mes.test",
        "a.mes.test/evil",
        "a mes.test",
        "*.mes.test",
        long.as_str(),
    ] {
        let xml = doc(&domaine(bad));
        match parse(xml.as_bytes()) {
            Err(WhitelistError::InvalidDomain(value)) => assert_eq!(value, bad),
            other => panic!("{bad:?}: expected InvalidDomain, got {other:?}"),
        }
    }
    let label63 = "a".repeat(63);
    let xml = doc(&domaine(&format!("{label63}.xn--hpital-fua.test")));
    assert!(parse(xml.as_bytes()).is_ok());
}

#[test]
fn normalizes_domain_names() {
    let xml = doc(&domaine("  Hopital-A.MES.Test.  "));
    let list = parse(xml.as_bytes()).expect("parses");
    assert_eq!(list.domains[0].domain, "hopital-a.mes.test");
}

#[test]
fn merges_duplicate_domains() {
    let xml = doc(
        "<Domaine><Nom>a.mes.test</Nom><DNCertificatOperateur>CN=old, O=Op, C=FR</DNCertificatOperateur></Domaine>\
         <Domaine><Nom>b.mes.test</Nom></Domaine>\
         <Domaine><Nom>A.mes.test.</Nom><Description>second</Description>\
           <DNCertificatOperateur>/C=FR/O=Op/CN=old</DNCertificatOperateur>\
           <DNCertificatOperateur>CN=new, O=Op, C=FR</DNCertificatOperateur>\
           <DNCertificatOperateur> </DNCertificatOperateur></Domaine>",
    );
    let list = parse(xml.as_bytes()).expect("parses");
    assert_eq!(list.domains.len(), 2);
    let a = &list.domains[0];
    assert_eq!(a.domain, "a.mes.test");
    assert_eq!(a.description.as_deref(), Some("second"));
    assert_eq!(
        a.operator_dns,
        vec!["CN=old, O=Op, C=FR", "CN=new, O=Op, C=FR"]
    );
    assert_eq!(list.domains[1].domain, "b.mes.test");
}

#[test]
fn rejects_duplicate_single_fields() {
    let xml = doc("<Domaine><Nom>a.mes.test</Nom><Nom>b.mes.test</Nom></Domaine>");
    assert!(matches!(
        parse(xml.as_bytes()),
        Err(WhitelistError::DuplicateField {
            field: "Nom",
            index: 0
        })
    ));
    let xml = "<L><DateDeGeneration>1</DateDeGeneration><DateDeGeneration>2</DateDeGeneration></L>";
    assert!(matches!(
        parse(xml.as_bytes()),
        Err(WhitelistError::DuplicateGenerationDate)
    ));
}

#[test]
fn rejects_element_inside_field() {
    let xml = doc("<Domaine><Nom>a.<b>mes</b>.test</Nom></Domaine>");
    assert!(matches!(
        parse(xml.as_bytes()),
        Err(WhitelistError::UnexpectedElement { field: "Nom", .. })
    ));
}

#[test]
fn rejects_too_large_input() {
    let xml = vec![b' '; MAX_INPUT_BYTES + 1];
    assert!(matches!(
        parse(&xml),
        Err(WhitelistError::Xml { error: XmlError::TooLarge(limit), .. }) if limit == MAX_INPUT_BYTES as u64
    ));
}

#[test]
fn rejects_too_long_field() {
    let xml = doc(&format!(
        "<Domaine><Nom>a.mes.test</Nom><Description>{}</Description></Domaine>",
        "é".repeat(MAX_FIELD_BYTES / 2 + 1)
    ));
    assert!(matches!(
        parse(xml.as_bytes()),
        Err(WhitelistError::FieldTooLong {
            field: "Description",
            ..
        })
    ));
    // Entities count after decoding, and cannot be used to get around the limit.
    let xml = doc(&format!(
        "<Domaine><Nom>a.mes.test</Nom><Description>{}</Description></Domaine>",
        "&#233;".repeat(MAX_FIELD_BYTES / 2 + 1)
    ));
    assert!(matches!(
        parse(xml.as_bytes()),
        Err(WhitelistError::FieldTooLong { .. })
    ));
}

#[test]
fn rejects_too_many_domains() {
    let mut body = String::new();
    for i in 0..=MAX_DOMAINS {
        body.push_str(&format!("<Domaine><Nom>d{i}.test</Nom></Domaine>"));
    }
    let xml = format!("<L>{body}</L>");
    assert!(matches!(
        parse(xml.as_bytes()),
        Err(WhitelistError::TooManyDomains { limit: MAX_DOMAINS })
    ));
}

#[test]
fn rejects_malformed_documents() {
    for bad in ["", "   ", "<!-- nothing -->"] {
        assert!(
            matches!(
                parse(bad.as_bytes()),
                Err(WhitelistError::Xml {
                    error: XmlError::Empty,
                    ..
                })
            ),
            "{bad:?}"
        );
    }
    for bad in [
        "<L><Domaine><Nom>a.mes.test</Nom></Domaine>",
        "<L><Domaine><Nom>a.mes.test</Domaine></Nom></L>",
        "<L></M>",
        "<L><Domaine><Nom>a & b</Nom></Domaine></L>",
        "<L><x:Domaine/></L>",
    ] {
        assert!(
            matches!(parse(bad.as_bytes()), Err(WhitelistError::Xml { .. })),
            "{bad:?}: {:?}",
            parse(bad.as_bytes())
        );
    }
    for bad in ["<L/><L/>", "<L/>text", "junk<L/>", "<L/>&amp;"] {
        assert!(
            matches!(
                parse(bad.as_bytes()),
                Err(WhitelistError::Xml {
                    error: XmlError::OutsideRoot,
                    ..
                })
            ),
            "{bad:?}: {:?}",
            parse(bad.as_bytes())
        );
    }
}

#[test]
fn rejects_non_utf8() {
    let xml = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><L/>";
    assert!(matches!(
        parse(xml.as_bytes()),
        Err(WhitelistError::Xml { error: XmlError::Encoding(enc), .. }) if enc == "ISO-8859-1"
    ));
    let mut xml = b"<L><Domaine><Nom>a.mes.test</Nom><Description>H".to_vec();
    xml.push(0xF4); // Latin-1 "ô": not UTF-8
    xml.extend_from_slice(b"pital</Description></Domaine></L>");
    assert!(matches!(parse(&xml), Err(WhitelistError::Xml { .. })));
}

#[test]
fn accepts_utf8_bom() {
    let mut xml = b"\xEF\xBB\xBF".to_vec();
    xml.extend_from_slice(SAMPLE.as_bytes());
    assert_eq!(parse(&xml).expect("parses").domains.len(), 2);
}

#[test]
fn dn_order_and_form_do_not_matter() {
    assert!(dn_matches("CN=a, O=B, C=FR", "C=FR,O=B,CN=a"));
    assert!(dn_matches("CN=a, O=B, C=FR", "/C=FR/O=B/CN=a"));
    assert!(dn_matches("C=FR,O=B,CN=a", "/C=FR/O=B/CN=a"));
    assert!(!dn_matches("CN=a, O=B", "CN=a, O=C"));
    assert!(!dn_matches("CN=a, O=B", "CN=a, O=B, C=FR"));
    assert_eq!(normalize_dn("CN=a, O=B, C=FR"), "C=fr,O=b,CN=a");
    assert_eq!(normalize_dn("/C=FR/O=B/CN=a"), "C=fr,O=b,CN=a");
    // Certificate order or its reverse, nothing else.
    assert!(!dn_matches("CN=a, O=B, C=FR", "O=B, CN=a, C=FR"));
}

#[test]
fn dn_attribute_aliases_and_oids() {
    assert!(dn_matches(
        "E=ops@op.test, CN=a",
        "CN=a, emailAddress=ops@op.test"
    ));
    assert!(dn_matches(
        "Email=ops@op.test, CN=a",
        "CN=a, EMAILADDRESS=ops@op.test"
    ));
    assert!(dn_matches("S=Paris, CN=a", "cn=a, st=Paris"));
    assert!(dn_matches("2.5.4.3=a, OID.2.5.4.10=B", "CN=a, O=B"));
    assert!(dn_matches(
        "OID(2.5.4.97)=NTRFR-123, CN=a",
        "CN=a, organizationIdentifier=NTRFR-123"
    ));
    assert!(!dn_matches("SN=a", "SERIALNUMBER=a"));
}

#[test]
fn dn_values_whitespace_case_quotes_and_escapes() {
    assert!(dn_matches(
        "CN = a ,  O = Opérateur   Un",
        "O=Opérateur Un,CN=a"
    ));
    assert!(dn_matches(
        "CN=MX.Operateur.TEST, O=op",
        "cn=mx.operateur.test, o=OP"
    ));
    assert_eq!(normalize_dn("O=Opérateur Un"), "O=opérateur un");
    // Escaped, quoted and (as printed by x509-parser) unescaped commas.
    let escaped = r"CN=a, O=Dupont\, Durand et Cie, C=FR";
    assert!(dn_matches(
        escaped,
        r#"CN=a, O="Dupont, Durand et Cie", C=FR"#
    ));
    assert!(dn_matches(escaped, "C=FR, O=Dupont, Durand et Cie, CN=a"));
    assert!(dn_matches(
        escaped,
        r"CN=a, O=Dupont\2C Durand et Cie, C=FR"
    ));
    assert!(dn_matches(escaped, "/C=FR/O=Dupont, Durand et Cie/CN=a"));
    assert!(!dn_matches(escaped, "CN=a, O=Dupont, C=FR"));
    assert_eq!(normalize_dn(escaped), r"C=fr,O=dupont\, durand et cie,CN=a");
    // A CN holding ", O=Evil" is not an O RDN.
    assert!(!dn_matches(r"CN=x\, O=Evil", "CN=x, O=Evil"));
    // Hex-escaped UTF-8.
    assert!(dn_matches(r"O=Op\C3\A9rateur", "O=Opérateur"));
    // Multi-valued RDNs are sets, not flattened.
    assert!(dn_matches("CN=a + UID=7, O=B", "O=B, UID=7+CN=a"));
    assert!(!dn_matches("CN=a + UID=7, O=B", "O=B, UID=7, CN=a"));
    // Repeated types sort the same whatever the case.
    assert!(dn_matches("OU=b, OU=A, CN=x", "CN=x, OU=a, OU=B"));
}

#[test]
fn blank_dns_never_match() {
    assert_eq!(normalize_dn("   "), "");
    assert!(!dn_matches("", ""));
    assert!(!dn_matches(" , ", ""));
    assert!(!dn_matches("/", "/"));
}
