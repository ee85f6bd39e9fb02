//! Occurrences of the patient's appointments in a window, for display and
//! reminders: a recurring event (RRULE, EXDATE, RECURRENCE-ID overrides in
//! its calendar) is expanded by calcard from its stored VCALENDAR, at most
//! `Limits::max_occurrences` per event; a lone instance row (a change or
//! cancellation of one occurrence) replaces the occurrence it names.

use calcard::common::PartialDateTime;
use calcard::common::timezone::Tz;
use calcard::icalendar::{ICalendar, ICalendarProperty, ICalendarStatus, ICalendarValue};

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
        let Some(mut ical) = stored(&r.ics) else {
            out.push(Occurrence {
                id: r.id,
                start: r.starts_at,
                end: r.ends_at,
                cancelled: row_cancelled,
            });
            continue;
        };
        let untils = relax_utc_until(&mut ical);
        let expanded = ical.expand_dates(Tz::Tz(DEFAULT_ZONE), limits.max_occurrences);
        for e in &expanded.events {
            let (start, end) = e.timestamps();
            if untils
                .iter()
                .any(|(comp, until)| *comp == e.comp_id && start > *until)
            {
                continue;
            }
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

/// Most a zone's local time differs from UTC (UTC+14, Kiribati).
const MAX_ZONE_OFFSET: i64 = 14 * 3600;

/// calcard compares a UTC `UNTIL` with the local times of the occurrences,
/// so in a zone east of UTC it drops the last one (Exchange and Outlook
/// always write `UNTIL` in UTC). RFC 5545 §3.3.10: `UNTIL` bounds the
/// occurrences inclusively, by their instant. Each UTC `UNTIL` is pushed
/// past any zone's offset here, and the caller drops the occurrences after
/// the real one: (component, UNTIL in Unix seconds).
fn relax_utc_until(ical: &mut ICalendar) -> Vec<(u32, i64)> {
    let mut untils = Vec::new();
    for (id, comp) in ical.components.iter_mut().enumerate() {
        for entry in comp
            .entries
            .iter_mut()
            .filter(|e| e.name == ICalendarProperty::Rrule)
        {
            for value in entry.values.iter_mut() {
                let ICalendarValue::RecurrenceRule(rule) = value else {
                    continue;
                };
                let Some(until) = rule.until.as_ref().filter(|u| u.has_zone() && u.has_time())
                else {
                    continue;
                };
                let (Some(at), Ok(id)) = (until.to_timestamp(), u32::try_from(id)) else {
                    continue;
                };
                untils.push((id, at));
                rule.until = Some(PartialDateTime::from_utc_timestamp(at + MAX_ZONE_OFFSET));
            }
        }
    }
    untils
}
