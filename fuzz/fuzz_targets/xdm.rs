//! The XDM zip reader (`mes::dossier::xdm`) and the attachment indexer
//! (`mes::dossier::index_attachment`: metadata, CDA documents, their
//! agreement), with default limits. Any bytes: a package or a typed error,
//! never more memory than the limits allow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mes::dossier::limits::Limits;
use mes::dossier::xdm;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let _ = xdm::looks_like_xdm(None, data);
    if let Ok(package) = xdm::read_package(data, &limits) {
        assert!(package.documents.len() <= limits.max_entries);
    }
    let _ = mes::dossier::index_attachment(Some("IHE_XDM.zip"), "application/zip", data, &limits);
});
