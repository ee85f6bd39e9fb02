-- Notifications connected services put in patients' INBOXes (messages.notify,
-- issue 22): one counter per service, patient and UTC day, for the daily limit
-- (`patients.service_notifications_per_day`). Days before yesterday are purged
-- as new ones are counted.
-- Keep in step with the other backend's 0021_service_notifications.sql.
CREATE TABLE service_notifications (
    service_id  TEXT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    patient_id  BIGINT NOT NULL REFERENCES accounts (id),
    day         BIGINT NOT NULL,
    sent        BIGINT NOT NULL,
    PRIMARY KEY (service_id, patient_id, day)
);
CREATE INDEX service_notifications_day ON service_notifications (day);
