//! The XML readers over arbitrary bytes, with default limits: the hardened
//! streaming reader and the tree built on it (`mes::xml`), CDA headers and sections
//! (`mes::dossier::cda`), XDS ebRIM metadata (`mes::dossier::metadata`) and
//! the trust space whitelist (`mes::trust::whitelist`). Each returns a value
//! or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mes::dossier::limits::Limits;
use mes::dossier::{cda, metadata};
use mes::trust::whitelist;
use mes::xml;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(mut reader) = xml::Reader::new(data, &limits.xml()) {
        let mut depth = 0usize;
        while let Ok(event) = reader.next_event() {
            match event {
                xml::Event::Start(start) => {
                    depth += 1;
                    assert!(depth <= limits.max_xml_depth);
                    assert!(start.attrs.len() <= limits.max_xml_attributes);
                }
                xml::Event::End => depth -= 1,
                xml::Event::Text(_) => assert!(depth > 0),
                xml::Event::Eof => {
                    assert_eq!(depth, 0);
                    break;
                }
            }
        }
    }
    if let Ok(root) = xml::parse(data, &limits.xml()) {
        let mut n = 0usize;
        root.visit(&mut |e| {
            n += 1;
            let _ = e.text_normalized();
        });
        assert!(n <= limits.max_xml_nodes);
    }
    if let Ok(doc) = cda::parse_cda(data, &limits) {
        let _ = doc.items().count();
    }
    let _ = metadata::parse_metadata(data, &limits);
    if let Ok(list) = whitelist::parse(data) {
        for entry in &list.domains {
            let _ = list.find(&entry.domain);
        }
    }
});
