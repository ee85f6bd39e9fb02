//! Occurrences of the patient's appointments in a window, for display and
//! reminders: a recurring event (RRULE, EXDATE, RECURRENCE-ID overrides in
//! its calendar) is expanded by calcard from its stored VCALENDAR, at most
//! `Limits::max_occurrences` per event; a lone instance row (a change or
//! cancellation of one occurrence) replaces the occurrence it names.

use calcard::common::timezone::Tz;
use calcard::icalendar::ICalendarStatus;

use super::Limits;
use super::ical::{DEFAULT_ZONE, stored};
use crate::store::agenda::Appointment;

/// One occurrence of an appointment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// The appointment row.
    pub id: i64,
    /// Start (Unix seconds).
    pub start: i64,
    /// End (Unix seconds).
    pub end: i64,
    /// This occurrence is cancelled (the event, or only this instance).
    pub cancelled: bool,
}

/// Occurrences of `rows` meeting [`from`, `to`), by start.
pub fn occurrences(rows: &[Appointment], from: i64, to: i64, limits: &Limits) -> Vec<Occurrence> {
    let mut out = Vec::new();
    // Instances replaced by rows of their own: (organiser, uid, start).
    let replaced: Vec<(&str, &str, i64)> = rows
        .iter()
        .filter_map(|r| {
            r.recurrence_id
                .parse::<i64>()
                .ok()
                .map(|rid| (r.organizer.as_str(), r.uid.as_str(), rid))
        })
        .collect();
    for r in rows {
        let row_cancelled = r.status == "CANCELLED";
        if r.recurring == 0 {
            out.push(Occurrence {
                id: r.id,
                start: r.starts_at,
                end: r.ends_at,
                cancelled: row_cancelled,
            });
            continue;
        }
        let Some(ical) = stored(&r.ics) else {
            out.push(Occurrence {
                id: r.id,
                start: r.starts_at,
                end: r.ends_at,
                cancelled: row_cancelled,
            });
            continue;
        };
        let expanded = ical.expand_dates(Tz::Tz(DEFAULT_ZONE), limits.max_occurrences);
        for e in &expanded.events {
            let (start, end) = e.timestamps();
            if replaced
                .iter()
                .any(|(o, u, s)| *o == r.organizer && *u == r.uid && *s == start)
            {
                continue;
            }
            let instance_cancelled = ical
                .components
                .get(e.comp_id as usize)
                .and_then(|c| c.status())
                == Some(&ICalendarStatus::Cancelled);
            out.push(Occurrence {
                id: r.id,
                start,
                end: end.max(start),
                cancelled: row_cancelled || instance_cancelled,
            });
        }
    }
    out.retain(|o| o.start < to && (o.end > from || o.start >= from));
    out.sort_by_key(|o| (o.start, o.id));
    out
}
