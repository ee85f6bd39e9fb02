-- The patient's agenda (issue 19). One row per appointment of a patient, per
-- organiser, per iCalendar UID and per recurrence instance ('' for the event
-- itself, else the RECURRENCE-ID in UTC seconds as text): a REQUEST creates
-- or updates it, a CANCEL marks it cancelled (never deleted), both inside the
-- delivery transaction of the message that brings them. `ics` keeps the
-- VCALENDAR (time zones and this UID's components) for the expansion of
-- recurrences at display and for the iTIP REPLY. Same in ../sqlite and ../postgres.
CREATE TABLE appointments (
    id             BIGSERIAL PRIMARY KEY,
    patient_id     BIGINT NOT NULL REFERENCES accounts (id),
    organizer      TEXT NOT NULL,
    organizer_name TEXT,
    uid            TEXT NOT NULL,
    recurrence_id  TEXT NOT NULL DEFAULT '',
    sequence       BIGINT NOT NULL,
    dtstamp        BIGINT NOT NULL,
    status         TEXT NOT NULL,
    title          TEXT NOT NULL,
    description    TEXT,
    location       TEXT,
    starts_at      BIGINT NOT NULL,
    ends_at        BIGINT NOT NULL,
    tzid           TEXT,
    all_day        BIGINT NOT NULL DEFAULT 0,
    recurring      BIGINT NOT NULL DEFAULT 0,
    ics            TEXT NOT NULL,
    partstat       TEXT NOT NULL DEFAULT 'NEEDS-ACTION',
    message_id     BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (patient_id, organizer, uid, recurrence_id)
);
CREATE INDEX appointments_patient ON appointments (patient_id, starts_at);

-- The private ICS feed of a patient: the token is stored hashed (SHA-256
-- hex); revoking deletes the row, so the old address answers 404.
CREATE TABLE agenda_feeds (
    patient_id     BIGINT PRIMARY KEY REFERENCES accounts (id),
    token_hash     TEXT NOT NULL UNIQUE,
    created_at     BIGINT NOT NULL
);

-- What the patient marked of a recommended screening or vaccination
-- (`agenda::recommend`): the latest mark per code, DONE or NOT_DONE, with
-- the date it was done (ISO AAAA-MM-JJ).
CREATE TABLE recommendation_marks (
    patient_id     BIGINT NOT NULL REFERENCES accounts (id),
    code           TEXT NOT NULL,
    status         TEXT NOT NULL,
    done_on        TEXT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (patient_id, code)
);

-- Reminder slots: one row per patient, kind (appointment, recommendation),
-- what it is about and due day, inserted before the notice goes out, so a
-- reminder is sent once across restarts and nodes.
CREATE TABLE agenda_reminders (
    patient_id     BIGINT NOT NULL REFERENCES accounts (id),
    kind           TEXT NOT NULL,
    subject        TEXT NOT NULL,
    due_day        TEXT NOT NULL,
    sent_at        BIGINT NOT NULL,
    PRIMARY KEY (patient_id, kind, subject, due_day)
);

-- The patient's choices: reminders of appointments (NOTIF_APPOINTMENT) and
-- of recommended screenings and vaccinations (NOTIF_DEPISTAGE).
ALTER TABLE patient_settings ADD COLUMN notify_appointment BIGINT NOT NULL DEFAULT 1;
ALTER TABLE patient_settings ADD COLUMN notify_screening BIGINT NOT NULL DEFAULT 1;
