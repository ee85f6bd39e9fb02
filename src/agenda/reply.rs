//! The patient's answer to an invitation as an iTIP REPLY (RFC 5546 §3.2.3)
//! in an iMIP message (RFC 6047): the event's UID, SEQUENCE, RECURRENCE-ID,
//! times and ORGANIZER copied from the stored calendar, the patient as the
//! one ATTENDEE with the chosen PARTSTAT. Built with calcard and
//! mail-builder; the web layer hands the bytes to the delivery path.

use calcard::common::PartialDateTime;
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarMethod,
    ICalendarParameter, ICalendarParameterName, ICalendarParameterValue,
    ICalendarParticipationStatus, ICalendarProperty, ICalendarValue, Uri,
};
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::MimePart;

use super::PartStat;
use super::ical::stored;
use crate::store::agenda::Appointment;

/// Why a REPLY could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    /// The stored calendar cannot be read back.
    #[error("stored calendar unreadable")]
    Calendar,
    /// The message could not be written.
    #[error("message: {0}")]
    Build(#[from] std::io::Error),
}

/// The REPLY calendar for `a`, from `attendee` (the patient's address).
pub fn calendar(
    a: &Appointment,
    attendee: &str,
    partstat: PartStat,
    now: i64,
) -> Result<String, ReplyError> {
    let ical = stored(&a.ics).ok_or(ReplyError::Calendar)?;
    let event = ical
        .components
        .iter()
        .filter(|c| c.component_type == ICalendarComponentType::VEvent)
        .find(|c| !c.has_property(&ICalendarProperty::RecurrenceId))
        .or_else(|| {
            ical.components
                .iter()
                .find(|c| c.component_type == ICalendarComponentType::VEvent)
        })
        .ok_or(ReplyError::Calendar)?;
    let mut root = super::ical::our_calendar();
    root.add_property(
        ICalendarProperty::Method,
        ICalendarValue::Method(ICalendarMethod::Reply),
    );
    let mut out = ICalendar {
        components: vec![root],
    };
    // The time zones the copied times refer to.
    for c in &ical.components {
        if c.component_type == ICalendarComponentType::VTimezone {
            super::ical::copy_timezone(&mut out, &ical, c);
        }
    }
    let mut reply = ICalendarComponent::new(ICalendarComponentType::VEvent);
    for prop in [
        ICalendarProperty::Uid,
        ICalendarProperty::Sequence,
        ICalendarProperty::RecurrenceId,
        ICalendarProperty::Dtstart,
        ICalendarProperty::Dtend,
        ICalendarProperty::Duration,
        ICalendarProperty::Summary,
    ] {
        if let Some(e) = event.property(&prop) {
            reply.entries.push(e.clone());
        }
    }
    match event.property(&ICalendarProperty::Organizer) {
        Some(e) => reply.entries.push(e.clone()),
        None => reply.entries.push(
            ICalendarEntry::new(ICalendarProperty::Organizer).with_value(ICalendarValue::Uri(
                Uri::Location(format!("mailto:{}", a.organizer)),
            )),
        ),
    }
    reply.add_dtstamp(PartialDateTime::from_utc_timestamp(now));
    reply.entries.push(
        ICalendarEntry::new(ICalendarProperty::Attendee)
            .with_param(ICalendarParameter::new(
                ICalendarParameterName::Partstat,
                ICalendarParameterValue::Partstat(match partstat {
                    PartStat::Accepted => ICalendarParticipationStatus::Accepted,
                    PartStat::Declined => ICalendarParticipationStatus::Declined,
                }),
            ))
            .with_value(ICalendarValue::Uri(Uri::Location(format!(
                "mailto:{attendee}"
            )))),
    );
    let id = out.components.len() as u32;
    out.components[0].component_ids.push(id);
    out.components.push(reply);
    Ok(out.to_string())
}

/// The iMIP message carrying the REPLY, from the patient to the organiser.
pub fn message(
    a: &Appointment,
    patient: (&str, &str),
    partstat: PartStat,
    now: i64,
    message_id: String,
) -> Result<Vec<u8>, ReplyError> {
    let ics = calendar(a, patient.0, partstat, now)?;
    let verb = match partstat {
        PartStat::Accepted => "Accepté",
        PartStat::Declined => "Refusé",
    };
    let text = format!(
        "{} a répondu « {} » à votre invitation « {} ».\r\n",
        patient.1,
        verb.to_lowercase(),
        a.title
    );
    let body = MimePart::new(
        "multipart/alternative",
        vec![
            MimePart::new("text/plain", text),
            MimePart::new(
                ContentType::new("text/calendar")
                    .attribute("method", "REPLY")
                    .attribute("charset", "utf-8"),
                ics,
            ),
        ],
    );
    Ok(MessageBuilder::new()
        .from(Address::new_address(
            Some(patient.1.to_string()),
            patient.0.to_string(),
        ))
        .to(Address::new_address(
            a.organizer_name.clone(),
            a.organizer.clone(),
        ))
        .subject(format!("{verb} : {}", a.title))
        .message_id(message_id)
        .date(mail_builder::headers::date::Date::new(now))
        .body(body)
        .write_to_vec()?)
}
