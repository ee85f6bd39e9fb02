//! The connected-services notice: every 90 days, a patient with at least one
//! connected service whose NOTIF_SYNCHRONIZED_SERVICE setting is on gets a
//! content-free notice listing them (the names only).

/// Days between two notices to one patient.
pub const PERIOD_DAYS: i64 = 90;
