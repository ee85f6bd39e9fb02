//! Recommended screenings, vaccinations and child examinations: the
//! calendar is data (`schemas/agenda/recommendations.toml`, with its
//! sources, compiled in), the computation is pure: from the patient's sex
//! and birth date, what the record already proves (screening reports by
//! their LOINC typeCode, vaccinations of the profile by ATC code or label)
//! and what the patient marked, each recommendation that concerns them now
//! gets a status and a due date.
//!
//! Statuses: DONE (proven or marked done for the current cycle; due = the
//! next one), NOT_DONE (marked not done since the last time it was done),
//! TO_PLAN (due within [`SOON_DAYS`] or overdue), NOT_SPECIFIED (due later,
//! nothing known).

use std::sync::OnceLock;

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};

/// The calendar as shipped.
const CALENDAR: &str = include_str!("../../schemas/agenda/recommendations.toml");

/// How close a due date makes a recommendation something to plan.
pub const SOON_DAYS: i64 = 90;

/// One line of the calendar.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Recommendation {
    /// Stable code (API path, marks).
    pub code: String,
    /// French label.
    pub label: String,
    /// `depistage`, `vaccination` or `examen`.
    pub kind: String,
    /// `F` or `M` when it concerns one sex only.
    pub sex: Option<String>,
    /// First age (years) of a rolling schedule.
    pub from_age: Option<u32>,
    /// Last age (years, inclusive).
    pub to_age: Option<u32>,
    /// Interval (years) after the last time.
    pub every_years: Option<u32>,
    /// Interval after the first time, when it differs.
    pub first_every_years: Option<u32>,
    /// Fixed ages (years).
    #[serde(default)]
    pub at_ages: Vec<u32>,
    /// Interval after the last fixed age.
    pub then_every_years: Option<u32>,
    /// One examination, this many days after birth.
    pub at_days: Option<u32>,
    /// LOINC typeCodes of reports proving it.
    #[serde(default)]
    pub document_codes: Vec<String>,
    /// ATC code prefixes of vaccinations proving it.
    #[serde(default)]
    pub vaccine_codes: Vec<String>,
    /// Words of vaccination labels proving it (lower case).
    #[serde(default)]
    pub vaccine_words: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Calendar {
    recommendation: Vec<Recommendation>,
}

/// The calendar (parsed once; a unit test proves the shipped file parses).
pub fn calendar() -> &'static [Recommendation] {
    static PARSED: OnceLock<Vec<Recommendation>> = OnceLock::new();
    PARSED.get_or_init(|| {
        toml::from_str::<Calendar>(CALENDAR)
            .map(|c| c.recommendation)
            .unwrap_or_default()
    })
}

/// The recommendation of code `code`.
pub fn by_code(code: &str) -> Option<&'static Recommendation> {
    calendar().iter().find(|r| r.code == code)
}

/// Sex as the calendar reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Sex {
    /// Female.
    F,
    /// Male.
    M,
}

/// What the computation needs of the patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traits {
    /// Sex.
    pub sex: Sex,
    /// Birth date (the 1st of the month when only the month is known).
    pub birth: NaiveDate,
}

impl Traits {
    /// From the matricule INS (NIR + key): sex from the first digit, year
    /// and month of birth from the next four (the day is not in the NIR:
    /// the 1st is taken). The century is the one that makes the patient
    /// not yet born in the future.
    pub fn from_ins(ins: &str, today: NaiveDate) -> Option<Traits> {
        let digits = ins.as_bytes();
        if digits.len() < 5 || !digits[..5].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let sex = match digits[0] {
            b'1' | b'3' | b'7' => Sex::M,
            b'2' | b'4' | b'8' => Sex::F,
            _ => return None,
        };
        let yy = i32::from(digits[1] - b'0') * 10 + i32::from(digits[2] - b'0');
        let mm = u32::from(digits[3] - b'0') * 10 + u32::from(digits[4] - b'0');
        let month = if (1..=12).contains(&mm) { mm } else { 1 };
        let mut year = 2000 + yy;
        if year > today.year() {
            year -= 100;
        }
        Some(Traits {
            sex,
            birth: NaiveDate::from_ymd_opt(year, month, 1)?,
        })
    }
}

/// A recommendation's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[allow(non_camel_case_types)]
pub enum Status {
    /// Due soon or overdue.
    TO_PLAN,
    /// Done for the current cycle.
    DONE,
    /// Marked not done by the patient.
    NOT_DONE,
    /// Not due soon, nothing known.
    NOT_SPECIFIED,
}

impl Status {
    /// French label.
    pub fn label_fr(self) -> &'static str {
        match self {
            Status::TO_PLAN => "À planifier",
            Status::DONE => "Fait",
            Status::NOT_DONE => "Non fait",
            Status::NOT_SPECIFIED => "Non renseigné",
        }
    }
}

/// What the patient marked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// Recommendation code.
    pub code: String,
    /// `DONE` or `NOT_DONE`.
    pub done: bool,
    /// When (the date given, else the day it was marked).
    pub date: NaiveDate,
}

/// What the record proves: a report of this LOINC typeCode on this date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// LOINC code (`code` of `code^scheme`).
    pub code: String,
    /// Date of the report.
    pub date: NaiveDate,
}

/// A vaccination of the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vaccination {
    /// Code (ATC when coded).
    pub code: Option<String>,
    /// Label.
    pub label: String,
    /// Date given.
    pub date: NaiveDate,
}

/// One recommendation for the patient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Computed {
    /// Code.
    pub code: String,
    /// French label.
    pub label: String,
    /// `depistage`, `vaccination`, `examen`.
    pub kind: String,
    /// Status.
    pub status: Status,
    /// When it is (or was) due; None when nothing is due any more.
    pub due_date: Option<NaiveDate>,
    /// The last time it was done, when known.
    pub last_done: Option<NaiveDate>,
    /// Where the last time comes from: `dossier`, `profil` or `patient`.
    pub source: Option<String>,
}

fn add_years(d: NaiveDate, years: u32) -> NaiveDate {
    d.checked_add_months(Months::new(years * 12)).unwrap_or(d)
}

fn add_days(d: NaiveDate, days: u32) -> NaiveDate {
    d.checked_add_days(chrono::Days::new(u64::from(days)))
        .unwrap_or(d)
}

/// Reads an HL7 TS or ISO date (`20240115…`, `2024-01-15`).
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let digits: String = text.chars().filter(char::is_ascii_digit).take(8).collect();
    match digits.len() {
        8 => NaiveDate::parse_from_str(&digits, "%Y%m%d").ok(),
        6 => NaiveDate::parse_from_str(&format!("{digits}01"), "%Y%m%d").ok(),
        _ => None,
    }
}

/// The times `r` was done, with where each comes from.
fn done_dates(
    r: &Recommendation,
    reports: &[Report],
    vaccinations: &[Vaccination],
    marks: &[Mark],
) -> Vec<(NaiveDate, &'static str)> {
    let mut out = Vec::new();
    for rep in reports {
        if r.document_codes.contains(&rep.code) {
            out.push((rep.date, "dossier"));
        }
    }
    for v in vaccinations {
        let by_code = v.code.as_deref().is_some_and(|c| {
            r.vaccine_codes
                .iter()
                .any(|p| c.to_ascii_uppercase().starts_with(p.as_str()))
        });
        let label = v.label.to_lowercase();
        let by_word = r.vaccine_words.iter().any(|w| label.contains(w.as_str()));
        if by_code || by_word {
            out.push((v.date, "profil"));
        }
    }
    for m in marks.iter().filter(|m| m.code == r.code && m.done) {
        out.push((m.date, "patient"));
    }
    out.sort();
    out
}

/// The recommendations that concern the patient on `today`.
pub fn compute(
    traits: Traits,
    today: NaiveDate,
    reports: &[Report],
    vaccinations: &[Vaccination],
    marks: &[Mark],
) -> Vec<Computed> {
    calendar()
        .iter()
        .filter_map(|r| compute_one(r, traits, today, reports, vaccinations, marks))
        .collect()
}

/// One recommendation, or None when it does not concern the patient now.
pub fn compute_one(
    r: &Recommendation,
    traits: Traits,
    today: NaiveDate,
    reports: &[Report],
    vaccinations: &[Vaccination],
    marks: &[Mark],
) -> Option<Computed> {
    match (r.sex.as_deref(), traits.sex) {
        (Some("F"), Sex::M) | (Some("M"), Sex::F) => return None,
        _ => {}
    }
    let birth = traits.birth;
    let dones = done_dates(r, reports, vaccinations, marks);
    let soon = today + chrono::Duration::days(SOON_DAYS);
    let horizon = add_years(today, 1);
    // (due date, start of the cycle it belongs to, the last time relevant)
    let (due, last): (Option<NaiveDate>, Option<(NaiveDate, &'static str)>) = if let Some(days) =
        r.at_days
    {
        let point = add_days(birth, days);
        if point > horizon || add_years(point, 1) < today {
            return None;
        }
        let last = dones.iter().rev().find(|(d, _)| *d >= birth).copied();
        (if last.is_some() { None } else { Some(point) }, last)
    } else if !r.at_ages.is_empty() {
        let mut points: Vec<NaiveDate> = r.at_ages.iter().map(|a| add_years(birth, *a)).collect();
        if let (Some(every), Some(&last_age)) = (r.then_every_years, r.at_ages.last()) {
            let mut age = last_age + every;
            while age <= 130 {
                points.push(add_years(birth, age));
                age += every;
            }
        }
        let current = points.iter().rev().find(|p| **p <= today).copied();
        let next = points.iter().find(|p| **p > today).copied();
        if current.is_none() && next.is_none_or(|n| n > horizon) {
            return None;
        }
        // A dose up to a year before the age counts for it.
        let last = dones
            .iter()
            .rev()
            .find(|(d, _)| current.is_some_and(|c| *d >= c - chrono::Duration::days(365)))
            .copied();
        match (current, last) {
            (Some(_), Some(l)) => (next, Some(l)),
            (Some(c), None) => (Some(c), dones.last().copied()),
            (None, _) => (next, dones.last().copied()),
        }
    } else {
        let from = add_years(birth, r.from_age.unwrap_or(0));
        let end = add_years(birth, r.to_age.unwrap_or(130) + 1);
        if today >= end || from > horizon {
            return None;
        }
        let every = r.every_years.unwrap_or(1);
        let in_window: Vec<_> = dones
            .iter()
            .filter(|(d, _)| *d >= from - chrono::Duration::days(365 * i64::from(every)))
            .copied()
            .collect();
        match in_window.last() {
            Some(&(d, source)) => {
                let interval = match r.first_every_years {
                    Some(first) if in_window.len() == 1 => first,
                    _ => every,
                };
                let next = add_years(d, interval);
                (
                    if next >= end { None } else { Some(next) },
                    Some((d, source)),
                )
            }
            None => (Some(from), None),
        }
    };
    let last_date = last.map(|(d, _)| d);
    let not_done = marks
        .iter()
        .filter(|m| m.code == r.code && !m.done)
        .any(|m| last_date.is_none_or(|l| m.date > l));
    // Done for the current cycle: the next one is not yet close.
    let done_now = match (due, last_date) {
        (None, Some(_)) => true,
        (Some(d), Some(_)) => d > soon,
        _ => false,
    };
    let status = if done_now {
        Status::DONE
    } else if not_done {
        Status::NOT_DONE
    } else if due.is_some_and(|d| d <= soon) {
        Status::TO_PLAN
    } else {
        Status::NOT_SPECIFIED
    };
    Some(Computed {
        code: r.code.clone(),
        label: r.label.clone(),
        kind: r.kind.clone(),
        status,
        due_date: due,
        last_done: last_date,
        source: last.map(|(_, s)| s.to_string()),
    })
}

/// The recommendations of patient `patient_id` on `today`, from their INS
/// traits, the record (screening reports by typeCode, vaccinations of the
/// profile) and their marks. A patient without an INS has none.
pub async fn of_patient(
    store: &crate::store::Store,
    patient_id: i64,
    ins: Option<&str>,
    today: NaiveDate,
) -> Result<Vec<Computed>, crate::store::StoreError> {
    let Some(traits) = ins.and_then(|i| Traits::from_ins(i, today)) else {
        return Ok(Vec::new());
    };
    let day_of = |t: i64| chrono::DateTime::from_timestamp(t, 0).map(|t| t.date_naive());
    let reports: Vec<Report> = store
        .documents_of(patient_id)
        .await?
        .into_iter()
        .filter_map(|d| {
            let code = d.type_code?.split('^').next()?.to_string();
            let date = d
                .creation_time
                .as_deref()
                .and_then(parse_date)
                .or_else(|| day_of(d.created_at))?;
            Some(Report { code, date })
        })
        .collect();
    let vaccinations: Vec<Vaccination> = store
        .profile_of(patient_id)
        .await?
        .into_iter()
        .filter(|i| i.category == "vaccinations")
        .filter_map(|i| {
            let date = i
                .date
                .as_deref()
                .and_then(parse_date)
                .or_else(|| day_of(i.created_at))?;
            Some(Vaccination {
                code: i.code,
                label: i.label,
                date,
            })
        })
        .collect();
    let marks: Vec<Mark> = store
        .recommendation_marks(patient_id)
        .await?
        .into_iter()
        .filter_map(|(code, status, done_on)| {
            Some(Mark {
                code,
                done: status == "DONE",
                date: parse_date(&done_on)?,
            })
        })
        .collect();
    Ok(compute(traits, today, &reports, &vaccinations, &marks))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_shipped_calendar_parses() {
        let c = calendar();
        assert_eq!(c.len(), 27);
        assert_eq!(
            c.iter()
                .filter(|r| r.code.starts_with("EXAMEN_ENFANT_"))
                .count(),
            20
        );
    }

    #[test]
    fn traits_from_the_ins() {
        let t = Traits::from_ins("279035121518989", d("2026-12-03")).unwrap();
        assert_eq!(t.sex, Sex::F);
        assert_eq!(t.birth, d("1979-03-01"));
        let t = Traits::from_ins("112037512345678", d("2026-12-03")).unwrap();
        assert_eq!(t.birth, d("2012-03-01"));
    }

    #[test]
    fn cytology_twice_a_year_apart_then_every_three_years() {
        let t = Traits {
            sex: Sex::F,
            birth: d("2000-01-01"),
        };
        let r = by_code("DEPISTAGE_COL_CYTOLOGIE").unwrap();
        let rep = |date: &str| Report {
            code: "10524-7".into(),
            date: d(date),
        };
        let c = compute_one(r, t, d("2026-06-01"), &[rep("2025-03-01")], &[], &[]).unwrap();
        assert_eq!(c.due_date, Some(d("2026-03-01")));
        assert_eq!(c.status, Status::TO_PLAN);
        let c = compute_one(
            r,
            t,
            d("2026-06-01"),
            &[rep("2025-03-01"), rep("2026-03-01")],
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(c.due_date, Some(d("2029-03-01")));
        assert_eq!(c.status, Status::DONE);
    }
}
