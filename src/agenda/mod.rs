//! The patient's agenda (issue 19): appointments from iTIP invitations
//! (RFC 5545/5546/6047) indexed on delivery like documents, the patient's
//! answer sent back as an iTIP REPLY, recurrences expanded for display over
//! a bounded horizon, and the private ICS feed.
//!
//! Sans-IO and bounded like the dossier: `ical.rs` reads a calendar part
//! with calcard, `filing.rs` decides what a delivered message files for
//! which patient (rows of `store::agenda`, written in the delivery
//! transaction), `expand.rs` lists occurrences, `reply.rs` builds the REPLY
//! and `feed.rs` the ICS feed; `booking.rs` the appointments a connected
//! service books (`agenda.write`). The organiser is always the message's proven
//! author (`identity::author`), never the ORGANIZER property.

pub mod booking;
pub mod expand;
pub mod feed;
pub mod filing;
pub mod ical;
pub mod recommend;
pub mod reminders;
pub mod reply;

use crate::store::agenda::Version;

/// Bounds on what one calendar part may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of one calendar part, decoded.
    pub max_calendar_bytes: usize,
    /// Most calendar parts read in one message.
    pub max_parts: usize,
    /// Most components (events, time zones, alarms…) in one calendar.
    pub max_components: usize,
    /// Most UIDs indexed from one calendar.
    pub max_events: usize,
    /// Most occurrences expanded from one recurring event.
    pub max_occurrences: usize,
    /// Most characters kept of a title or location.
    pub max_title_chars: usize,
    /// Most characters kept of a description.
    pub max_description_chars: usize,
    /// Widest window listed at once (seconds).
    pub max_window_secs: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_calendar_bytes: 256 * 1024,
            max_parts: 4,
            max_components: 512,
            max_events: 32,
            max_occurrences: 1000,
            max_title_chars: 300,
            max_description_chars: 8000,
            max_window_secs: 800 * 86_400,
        }
    }
}

/// Whether an incoming version of an appointment replaces the stored one
/// (RFC 5546 §2.1.5): a higher SEQUENCE wins, a lower one never does; at the
/// same SEQUENCE a cancellation wins (so a CANCEL that arrived before its
/// REQUEST stays cancelled), else the later DTSTAMP.
pub fn supersedes(incoming: Version, stored: Version) -> bool {
    use std::cmp::Ordering;
    match incoming.sequence.cmp(&stored.sequence) {
        Ordering::Greater => true,
        Ordering::Less => false,
        Ordering::Equal => match (incoming.cancelled, stored.cancelled) {
            (true, _) => true,
            (false, true) => false,
            (false, false) => incoming.dtstamp >= stored.dtstamp,
        },
    }
}

/// The participation statuses a patient may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartStat {
    /// ACCEPTED.
    Accepted,
    /// DECLINED.
    Declined,
}

impl PartStat {
    /// From the API's value.
    pub fn parse(s: &str) -> Option<PartStat> {
        match s {
            "ACCEPTED" => Some(PartStat::Accepted),
            "DECLINED" => Some(PartStat::Declined),
            _ => None,
        }
    }

    /// The iCalendar value.
    pub fn as_str(self) -> &'static str {
        match self {
            PartStat::Accepted => "ACCEPTED",
            PartStat::Declined => "DECLINED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(sequence: i64, dtstamp: i64, cancelled: bool) -> Version {
        Version {
            sequence,
            dtstamp,
            cancelled,
        }
    }

    #[test]
    fn sequence_then_cancel_then_dtstamp() {
        assert!(supersedes(v(2, 0, false), v(1, 9, true)));
        assert!(!supersedes(v(0, 9, false), v(1, 0, false)));
        assert!(!supersedes(v(0, 9, false), v(0, 1, true)));
        assert!(supersedes(v(0, 1, true), v(0, 9, false)));
        assert!(supersedes(v(0, 9, false), v(0, 1, false)));
        assert!(!supersedes(v(0, 1, false), v(0, 9, false)));
    }
}
