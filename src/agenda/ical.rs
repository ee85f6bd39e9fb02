//! One calendar part read with calcard (RFC 5545), sans-IO and bounded: the
//! iTIP method and, per UID, the event as the agenda keeps it (title, first
//! start and end in UTC, its IANA zone, status, version) with a VCALENDAR
//! holding only that UID's components and the time zones they use, which is
//! what is stored and later expanded or answered.
//!
//! Time zones: a TZID is resolved by calcard, which knows IANA names, the
//! Windows names Exchange sends (`W. Europe Standard Time`, `(UTC+01:00)
//! Amsterdam, Berlin, …`) and the VTIMEZONE's own hints; an unknown or
//! floating time is read in [`DEFAULT_ZONE`].

use calcard::common::timezone::Tz;
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarMethod,
    ICalendarProperty, ICalendarStatus, ICalendarValue,
};

use super::Limits;

/// Where floating times and all-day dates are placed (the patients are in France).
pub const DEFAULT_ZONE: chrono_tz::Tz = chrono_tz::Europe::Paris;

/// Why a calendar part could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// Over `Limits::max_calendar_bytes`.
    #[error("calendar too large")]
    TooLarge,
    /// Over `Limits::max_components`.
    #[error("too many components")]
    TooManyComponents,
    /// Not an iCalendar object.
    #[error("not an iCalendar object")]
    NotICalendar,
    /// No event with a UID and a start.
    #[error("no usable event")]
    NoEvent,
    /// A method the agenda does not take (REPLY, COUNTER, …).
    #[error("method {0} not for a patient's agenda")]
    Method(String),
}

/// The iTIP methods the agenda acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// REQUEST or PUBLISH (or none): create or update.
    Request,
    /// CANCEL: mark cancelled.
    Cancel,
}

/// One UID's event (or one instance of it) as read from a calendar part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// UID.
    pub uid: String,
    /// RECURRENCE-ID (UTC seconds) when the part carries only this instance.
    pub recurrence_id: Option<i64>,
    /// SEQUENCE (0 when absent, RFC 5545 §3.8.7.4).
    pub sequence: i64,
    /// DTSTAMP (Unix seconds; 0 when absent).
    pub dtstamp: i64,
    /// Cancelled (METHOD:CANCEL or STATUS:CANCELLED).
    pub cancelled: bool,
    /// TENTATIVE rather than CONFIRMED.
    pub tentative: bool,
    /// SUMMARY (bounded).
    pub title: String,
    /// DESCRIPTION (bounded, plain text).
    pub description: Option<String>,
    /// LOCATION.
    pub location: Option<String>,
    /// First start (Unix seconds).
    pub start: i64,
    /// Its end.
    pub end: i64,
    /// IANA zone of DTSTART (None: UTC).
    pub tzid: Option<String>,
    /// DTSTART is a date.
    pub all_day: bool,
    /// Has an RRULE.
    pub recurring: bool,
    /// A VCALENDAR with only this UID's components and their time zones.
    pub ics: String,
}

/// What a calendar part says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// The method.
    pub method: Method,
    /// Its events, one per UID (or per lone instance).
    pub events: Vec<Event>,
}

/// Parses a calendar part.
pub fn parse(text: &str, limits: &Limits) -> Result<Invitation, CalendarError> {
    if text.len() > limits.max_calendar_bytes {
        return Err(CalendarError::TooLarge);
    }
    let ical = match calcard::Parser::new(text).entry() {
        calcard::Entry::ICalendar(ical) => ical,
        calcard::Entry::TooManyComponents => return Err(CalendarError::TooManyComponents),
        _ => return Err(CalendarError::NotICalendar),
    };
    if ical.components.len() > limits.max_components {
        return Err(CalendarError::TooManyComponents);
    }
    let root = ical.components.first().ok_or(CalendarError::NotICalendar)?;
    if root.component_type != ICalendarComponentType::VCalendar {
        return Err(CalendarError::NotICalendar);
    }
    let method = match root
        .property(&ICalendarProperty::Method)
        .and_then(|e| e.values.first())
    {
        None => Method::Request,
        Some(ICalendarValue::Method(ICalendarMethod::Request | ICalendarMethod::Publish)) => {
            Method::Request
        }
        Some(ICalendarValue::Method(ICalendarMethod::Cancel)) => Method::Cancel,
        Some(other) => {
            let name = other.as_text().unwrap_or("?").to_ascii_uppercase();
            // A client-side typo in case is still a request or a cancel.
            match name.as_str() {
                "REQUEST" | "PUBLISH" => Method::Request,
                "CANCEL" => Method::Cancel,
                _ => return Err(CalendarError::Method(name.chars().take(16).collect())),
            }
        }
    };
    // The events, grouped by UID: the event itself and its overrides.
    let mut uids: Vec<(String, Vec<u32>)> = Vec::new();
    for (id, comp) in ical.components.iter().enumerate() {
        if comp.component_type != ICalendarComponentType::VEvent {
            continue;
        }
        let Some(uid) = comp.uid().map(str::trim).filter(|u| !u.is_empty()) else {
            continue;
        };
        let id = u32::try_from(id).map_err(|_| CalendarError::TooManyComponents)?;
        match uids.iter_mut().find(|(u, _)| u == uid) {
            Some((_, ids)) => ids.push(id),
            None => uids.push((bounded(uid, 255), vec![id])),
        }
    }
    let mut events = Vec::new();
    for (uid, ids) in uids.into_iter().take(limits.max_events) {
        let master = ids
            .iter()
            .copied()
            .find(|id| !component(&ical, *id).has_property(&ICalendarProperty::RecurrenceId));
        match master {
            // The event with its overrides: one row, expanded at display.
            Some(master) => {
                if let Some(e) = event(&ical, &uid, master, &ids, method, limits, false) {
                    events.push(e);
                }
            }
            // Lone instances (a change or cancel of one occurrence): a row each.
            None => {
                for id in &ids {
                    if let Some(e) = event(&ical, &uid, *id, &[*id], method, limits, true) {
                        events.push(e);
                    }
                }
            }
        }
    }
    if events.is_empty() {
        return Err(CalendarError::NoEvent);
    }
    Ok(Invitation { method, events })
}

fn component(ical: &ICalendar, id: u32) -> &ICalendarComponent {
    // Ids come from enumerating the same vector.
    &ical.components[id as usize]
}

fn text(comp: &ICalendarComponent, prop: ICalendarProperty) -> Option<String> {
    comp.property(&prop)
        .and_then(|e| e.values.first())
        .and_then(ICalendarValue::as_text)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// The first `max` characters of `s`.
fn bounded(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// A date-time property in UTC seconds, its zone resolved by `tz`.
fn instant(
    entry: &ICalendarEntry,
    tz: &calcard::icalendar::timezone::TzResolver<&str>,
) -> Option<i64> {
    let dt = entry
        .values
        .first()?
        .as_partial_date_time()?
        .to_date_time()?;
    let zone = tz.resolve_or_default(entry.tz_id());
    Some(dt.to_date_time_with_tz(zone)?.timestamp())
}

#[allow(clippy::too_many_arguments)]
fn event(
    ical: &ICalendar,
    uid: &str,
    main: u32,
    ids: &[u32],
    method: Method,
    limits: &Limits,
    lone_instance: bool,
) -> Option<Event> {
    let comp = component(ical, main);
    let tz = ical.build_tz_resolver().with_default(Tz::Tz(DEFAULT_ZONE));
    let dtstart = comp.property(&ICalendarProperty::Dtstart)?;
    let all_day = dtstart
        .values
        .first()
        .and_then(ICalendarValue::as_partial_date_time)
        .is_some_and(|d| d.hour.is_none());
    let zone = tz.resolve_or_default(dtstart.tz_id());
    let tzid = match zone {
        Tz::Tz(z) if z != chrono_tz::UTC => Some(z.name().to_string()),
        _ if dtstart.tz_id().is_none() && all_day => Some(DEFAULT_ZONE.name().to_string()),
        _ => None,
    };
    // The calendar this row keeps: these components and every time zone.
    let kept = only(ical, ids);
    let expanded = kept.expand_dates(Tz::Tz(DEFAULT_ZONE), limits.max_occurrences);
    // Component ids in `kept`: the VCALENDAR is 0, then the time zones, then ours.
    let first = expanded
        .events
        .iter()
        .map(|e| e.timestamps())
        .min_by_key(|(s, _)| *s);
    let (start, end) = match first {
        Some(t) => t,
        None => {
            let s = instant(dtstart, &tz)?;
            (s, s)
        }
    };
    let end = if end <= start && all_day {
        start + 86_400
    } else {
        end.max(start)
    };
    let status = comp.status();
    let recurrence_id = if lone_instance {
        comp.property(&ICalendarProperty::RecurrenceId)
            .and_then(|e| instant(e, &tz))
    } else {
        None
    };
    Some(Event {
        uid: uid.to_string(),
        recurrence_id,
        sequence: comp
            .property(&ICalendarProperty::Sequence)
            .and_then(|e| e.values.first())
            .and_then(ICalendarValue::as_integer)
            .unwrap_or(0)
            .max(0),
        dtstamp: comp
            .property(&ICalendarProperty::Dtstamp)
            .and_then(|e| instant(e, &tz))
            .unwrap_or(0),
        cancelled: method == Method::Cancel || status == Some(&ICalendarStatus::Cancelled),
        tentative: status == Some(&ICalendarStatus::Tentative),
        title: text(comp, ICalendarProperty::Summary)
            .map(|t| bounded(&t, limits.max_title_chars))
            .unwrap_or_else(|| "Rendez-vous".to_string()),
        description: text(comp, ICalendarProperty::Description)
            .map(|t| bounded(&t, limits.max_description_chars)),
        location: text(comp, ICalendarProperty::Location)
            .map(|t| bounded(&t, limits.max_title_chars)),
        start,
        end,
        tzid,
        all_day,
        recurring: comp.has_property(&ICalendarProperty::Rrule),
        ics: kept.to_string(),
    })
}

/// Copies the VTIMEZONE `tz` of `ical`, with its STANDARD and DAYLIGHT
/// rules, under the root (component 0) of `out`: calendars MES writes
/// (stored rows, the ICS feed, REPLYs) carry the zones their times name.
pub(super) fn copy_timezone(out: &mut ICalendar, ical: &ICalendar, tz: &ICalendarComponent) {
    let tz_id = out.components.len() as u32;
    if let Some(root) = out.components.first_mut() {
        root.component_ids.push(tz_id);
    }
    out.components.push(ICalendarComponent {
        component_type: ICalendarComponentType::VTimezone,
        entries: tz.entries.clone(),
        component_ids: Vec::new(),
    });
    for child in &tz.component_ids {
        if let Some(item) = ical.components.get(*child as usize) {
            let item_id = out.components.len() as u32;
            out.components.push(ICalendarComponent {
                component_type: item.component_type.clone(),
                entries: item.entries.clone(),
                component_ids: Vec::new(),
            });
            out.components[tz_id as usize].component_ids.push(item_id);
        }
    }
}

/// A VCALENDAR holding the root's VERSION and PRODID, every VTIMEZONE (with
/// its rules) and the components `ids` (without their alarms).
fn only(ical: &ICalendar, ids: &[u32]) -> ICalendar {
    let mut root = ICalendarComponent::new(ICalendarComponentType::VCalendar);
    root.add_property(
        ICalendarProperty::Version,
        ICalendarValue::Text("2.0".into()),
    );
    root.add_property(
        ICalendarProperty::Prodid,
        ICalendarValue::Text("-//MES//Agenda//FR".into()),
    );
    let mut out = ICalendar {
        components: vec![root],
    };
    for tz in ical.timezones() {
        copy_timezone(&mut out, ical, tz);
    }
    for id in ids {
        let comp = component(ical, *id);
        let new_id = out.components.len() as u32;
        out.components[0].component_ids.push(new_id);
        out.components.push(ICalendarComponent {
            component_type: comp.component_type.clone(),
            entries: comp.entries.clone(),
            component_ids: Vec::new(),
        });
    }
    out
}

/// An empty VCALENDAR as the agenda writes every calendar it makes
/// (feed, reply, booking): our PRODID, version 2.0.
pub fn our_calendar() -> ICalendarComponent {
    let mut root = ICalendarComponent::new(ICalendarComponentType::VCalendar);
    root.add_property(
        ICalendarProperty::Prodid,
        ICalendarValue::Text("-//MES//Agenda//FR".into()),
    );
    root.add_property(
        ICalendarProperty::Version,
        ICalendarValue::Text("2.0".into()),
    );
    root
}

/// Reads back a calendar the agenda stored.
pub fn stored(ics: &str) -> Option<ICalendar> {
    match calcard::Parser::new(ics).entry() {
        calcard::Entry::ICalendar(ical) => Some(ical),
        _ => None,
    }
}
