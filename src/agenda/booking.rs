//! Appointments a connected service books in a patient's agenda
//! (`agenda.write`, issue 22): the booking checked against the agenda's own
//! [`Limits`] and made into the same [`NewAppointment`] row an invitation
//! gives, with a VCALENDAR of it (so the feed and the pages read it as any
//! other), organised by the service (its audit actor, `service:ID`). A
//! cancellation is a new version (SEQUENCE + 1, CANCELLED) that the one
//! ordering rule ([`super::supersedes`]) lets replace the stored row.
//! Sans-IO: the FHIR reading is `web/fhir/appointments.rs`, the rows are
//! written by `store::agenda`.

use calcard::common::PartialDateTime;
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarProperty, ICalendarStatus,
    ICalendarValue,
};

use super::Limits;
use crate::store::agenda::{Appointment, NewAppointment};

/// Longest appointment a service may book (seconds).
pub const MAX_SPAN_SECS: i64 = 31 * 86_400;

/// A booking as a service asks for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Booking {
    /// Booked (CONFIRMED) or not yet (TENTATIVE).
    pub confirmed: bool,
    /// Start (Unix seconds).
    pub start: i64,
    /// End (Unix seconds).
    pub end: i64,
    /// What the patient reads as the title.
    pub title: String,
    /// Free text, with the practitioner's name when given.
    pub description: Option<String>,
    /// Where it takes place.
    pub location: Option<String>,
}

/// Why a booking is refused (answered 422, naming the field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookingError {
    /// The end is not after the start, or the span is too long.
    #[error("end must be after start, at most 31 days later")]
    Times,
    /// The start is outside the window the agenda lists.
    #[error("start is too far from today")]
    Window,
    /// No title, or one too long.
    #[error("a description (title) of 1 to {0} characters is required")]
    Title(usize),
    /// A text too long or with control characters.
    #[error("{0} is too long or holds control characters")]
    Text(&'static str),
}

/// Who books: the service's audit actor and the name the patient sees.
#[derive(Debug, Clone, Copy)]
pub struct Organiser<'a> {
    /// `service:ID` (`access::check::service_actor`).
    pub actor: &'a str,
    /// The service's name.
    pub name: &'a str,
}

fn clean(
    what: &'static str,
    text: Option<&str>,
    max: usize,
) -> Result<Option<String>, BookingError> {
    let Some(t) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if t.chars().count() > max || t.chars().any(|c| c.is_control() && c != '\n') {
        return Err(BookingError::Text(what));
    }
    Ok(Some(t.to_string()))
}

/// The row of booking `b` by `by`, with UID `uid`, at `now`.
pub fn book(
    b: &Booking,
    by: Organiser<'_>,
    uid: &str,
    now: i64,
    limits: &Limits,
) -> Result<NewAppointment, BookingError> {
    if b.end <= b.start || b.end - b.start > MAX_SPAN_SECS {
        return Err(BookingError::Times);
    }
    if (b.start - now).abs() > limits.max_window_secs {
        return Err(BookingError::Window);
    }
    let title = clean("description", Some(&b.title), limits.max_title_chars)
        .map_err(|_| BookingError::Title(limits.max_title_chars))?
        .ok_or(BookingError::Title(limits.max_title_chars))?;
    let mut a = NewAppointment {
        organizer: by.actor.to_string(),
        organizer_name: Some(by.name.to_string()),
        uid: uid.to_string(),
        recurrence_id: String::new(),
        sequence: 0,
        dtstamp: now,
        status: if b.confirmed {
            "CONFIRMED"
        } else {
            "TENTATIVE"
        }
        .into(),
        title,
        description: clean(
            "comment",
            b.description.as_deref(),
            limits.max_description_chars,
        )?,
        location: clean("location", b.location.as_deref(), limits.max_title_chars)?,
        starts_at: b.start,
        ends_at: b.end,
        tzid: None,
        all_day: false,
        recurring: false,
        ics: String::new(),
    };
    a.ics = calendar(&a);
    Ok(a)
}

/// The cancelled version of stored appointment `a`, at `now`.
pub fn cancel(a: &Appointment, now: i64) -> NewAppointment {
    let mut c = NewAppointment {
        organizer: a.organizer.clone(),
        organizer_name: a.organizer_name.clone(),
        uid: a.uid.clone(),
        recurrence_id: a.recurrence_id.clone(),
        sequence: a.sequence + 1,
        dtstamp: now.max(a.dtstamp),
        status: "CANCELLED".into(),
        title: a.title.clone(),
        description: a.description.clone(),
        location: a.location.clone(),
        starts_at: a.starts_at,
        ends_at: a.ends_at,
        tzid: a.tzid.clone(),
        all_day: a.all_day != 0,
        recurring: a.recurring != 0,
        ics: String::new(),
    };
    c.ics = calendar(&c);
    c
}

/// The VCALENDAR of a booked appointment (times in UTC).
fn calendar(a: &NewAppointment) -> String {
    let root = super::ical::our_calendar();
    let mut event = ICalendarComponent::new(ICalendarComponentType::VEvent);
    event.add_uid(&a.uid);
    event.add_dtstamp(PartialDateTime::from_utc_timestamp(a.dtstamp));
    event.add_sequence(a.sequence);
    for (prop, at) in [
        (ICalendarProperty::Dtstart, a.starts_at),
        (ICalendarProperty::Dtend, a.ends_at),
    ] {
        event.add_property(
            prop,
            ICalendarValue::PartialDateTime(Box::new(PartialDateTime::from_utc_timestamp(at))),
        );
    }
    event.add_property(
        ICalendarProperty::Status,
        ICalendarValue::Status(match a.status.as_str() {
            "CANCELLED" => ICalendarStatus::Cancelled,
            "TENTATIVE" => ICalendarStatus::Tentative,
            _ => ICalendarStatus::Confirmed,
        }),
    );
    event.add_property(
        ICalendarProperty::Summary,
        ICalendarValue::Text(a.title.clone()),
    );
    if let Some(d) = &a.description {
        event.add_property(
            ICalendarProperty::Description,
            ICalendarValue::Text(d.clone()),
        );
    }
    if let Some(l) = &a.location {
        event.add_property(ICalendarProperty::Location, ICalendarValue::Text(l.clone()));
    }
    let mut out = ICalendar {
        components: vec![root, event],
    };
    out.components[0].component_ids.push(1);
    out.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const BY: Organiser<'static> = Organiser {
        actor: "service:suivi-tension",
        name: "Suivi Tension",
    };

    fn booking() -> Booking {
        Booking {
            confirmed: true,
            start: NOW + 86_400,
            end: NOW + 86_400 + 1800,
            title: "Téléconsultation".into(),
            description: Some("Avec Dr Martin".into()),
            location: Some("En ligne".into()),
        }
    }

    #[test]
    fn a_booking_is_an_agenda_row_the_feed_reads() {
        let a = book(&booking(), BY, "u1@suivi-tension", NOW, &Limits::default()).unwrap();
        assert_eq!(a.status, "CONFIRMED");
        assert_eq!(a.organizer, "service:suivi-tension");
        let ical = super::super::ical::stored(&a.ics).expect("readable calendar");
        assert_eq!(ical.components.len(), 2);
        let row = Appointment {
            id: 1,
            patient_id: 1,
            organizer: a.organizer.clone(),
            organizer_name: a.organizer_name.clone(),
            uid: a.uid.clone(),
            recurrence_id: String::new(),
            sequence: 0,
            dtstamp: NOW,
            status: a.status.clone(),
            title: a.title.clone(),
            description: a.description.clone(),
            location: a.location.clone(),
            starts_at: a.starts_at,
            ends_at: a.ends_at,
            tzid: None,
            all_day: 0,
            recurring: 0,
            ics: a.ics.clone(),
            partstat: "NEEDS-ACTION".into(),
            message_id: None,
            created_at: NOW,
            updated_at: NOW,
        };
        let feed = super::super::feed::calendar(std::slice::from_ref(&row));
        assert!(feed.contains("SUMMARY:Téléconsultation"), "{feed}");
        let c = cancel(&row, NOW + 10);
        assert!(super::super::supersedes(c.version(), a.version()));
        assert!(c.ics.contains("STATUS:CANCELLED"), "{}", c.ics);
    }

    #[test]
    fn bad_bookings_are_refused() {
        let limits = Limits::default();
        let mut b = booking();
        b.end = b.start;
        assert_eq!(book(&b, BY, "u", NOW, &limits), Err(BookingError::Times));
        let mut b = booking();
        b.end = b.start + MAX_SPAN_SECS + 1;
        assert_eq!(book(&b, BY, "u", NOW, &limits), Err(BookingError::Times));
        let mut b = booking();
        b.start = NOW + limits.max_window_secs + 1;
        b.end = b.start + 60;
        assert_eq!(book(&b, BY, "u", NOW, &limits), Err(BookingError::Window));
        let mut b = booking();
        b.title = " ".into();
        assert!(matches!(
            book(&b, BY, "u", NOW, &limits),
            Err(BookingError::Title(_))
        ));
        let mut b = booking();
        b.title = "x".repeat(limits.max_title_chars + 1);
        assert!(matches!(
            book(&b, BY, "u", NOW, &limits),
            Err(BookingError::Title(_))
        ));
        let mut b = booking();
        b.location = Some("a\u{0}b".into());
        assert_eq!(
            book(&b, BY, "u", NOW, &limits),
            Err(BookingError::Text("location"))
        );
    }
}
