//! The XML readers over arbitrary bytes, with default limits: the hardened
//! reader (`mes::dossier::safexml`), CDA headers and sections
//! (`mes::dossier::cda`), XDS ebRIM metadata (`mes::dossier::metadata`) and
//! the trust space whitelist (`mes::trust::whitelist`). Each returns a value
//! or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mes::dossier::limits::Limits;
use mes::dossier::{cda, metadata, safexml};
use mes::trust::whitelist;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(root) = safexml::parse(data, &limits) {
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
