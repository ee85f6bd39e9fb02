//! The FHIR reader (`mes::dossier::fhir::parse_bundle`) with default limits,
//! also reached as an `application/fhir+json` attachment through
//! `mes::dossier::index_attachment`. Any bytes: a bundle or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mes::dossier::fhir;
use mes::dossier::limits::Limits;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let _ = fhir::parse_bundle(data, &limits);
    let _ = mes::dossier::index_attachment(None, "application/fhir+json", data, &limits);
});
