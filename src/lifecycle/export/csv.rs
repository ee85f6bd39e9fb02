//! The access history as CSV, the lines the history page shows (date in
//! UTC, actor, actor type, action, document or reason), newest first. The
//! exports of the space themselves are left out, so that downloading does
//! not change the archive.

use crate::access::history::HistoryLine;

/// The header line.
pub const HEADER: [&str; 6] = [
    "date",
    "acteur",
    "type_acteur",
    "action",
    "document_ou_motif",
    "refuse",
];

/// Writes `lines` (and the header) as CSV.
pub fn write(lines: &[HistoryLine]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(HEADER)?;
    for l in lines {
        let date = chrono::DateTime::from_timestamp(l.at, 0)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let actor = match &l.actor_details {
            Some(d) => format!("{} ({d})", l.actor),
            None => l.actor.clone(),
        };
        w.write_record([
            date.as_str(),
            actor.as_str(),
            l.actor_type,
            l.action.as_str(),
            l.reason.as_deref().unwrap_or(""),
            if l.refused { "oui" } else { "non" },
        ])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}
