//! The private ICS feed a phone calendar subscribes to: the patient's
//! appointments only (never documents nor messages), one VCALENDAR with
//! each event's time zones, cancelled ones kept with STATUS:CANCELLED, other
//! attendees and alarms left out.

use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarProperty, ICalendarStatus,
    ICalendarValue,
};

use super::ical::stored;
use crate::store::agenda::Appointment;

/// The feed's text.
pub fn calendar(rows: &[Appointment]) -> String {
    let root = super::ical::our_calendar();
    let mut out = ICalendar {
        components: vec![root],
    };
    let mut zones: Vec<String> = Vec::new();
    for r in rows {
        let Some(ical) = stored(&r.ics) else {
            continue;
        };
        for c in &ical.components {
            match c.component_type {
                ICalendarComponentType::VTimezone => {
                    let name = c
                        .property(&ICalendarProperty::Tzid)
                        .and_then(|e| e.values.first())
                        .and_then(ICalendarValue::as_text)
                        .unwrap_or_default()
                        .to_string();
                    if zones.contains(&name) {
                        continue;
                    }
                    zones.push(name);
                    super::ical::copy_timezone(&mut out, &ical, c);
                }
                ICalendarComponentType::VEvent => {
                    let mut entries: Vec<_> = c
                        .entries
                        .iter()
                        .filter(|e| {
                            let other = matches!(
                                e.name,
                                ICalendarProperty::Attendee | ICalendarProperty::Other(_)
                            );
                            let status =
                                r.status == "CANCELLED" && e.name == ICalendarProperty::Status;
                            !(other || status)
                        })
                        .cloned()
                        .collect();
                    let mut event = ICalendarComponent::new(ICalendarComponentType::VEvent);
                    event.entries.append(&mut entries);
                    if r.status == "CANCELLED" {
                        event.add_property(
                            ICalendarProperty::Status,
                            ICalendarValue::Status(ICalendarStatus::Cancelled),
                        );
                    }
                    let id = out.components.len() as u32;
                    out.components[0].component_ids.push(id);
                    out.components.push(event);
                }
                _ => {}
            }
        }
    }
    out.to_string()
}
