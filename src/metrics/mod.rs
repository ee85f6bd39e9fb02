//! Operational metrics (prometheus-client), counted where each event
//! happens and exposed in the OpenMetrics text format on the metrics
//! listener (`web::ops`).
//!
//! One process-wide set, because every layer counts into it (the accept
//! path, the relay, the listeners, logins, indexing, the audit writer, the
//! store's connection hand-out): a leaf module, so none of them depends on
//! another to count. Labels are small closed sets (listener, protocol,
//! reason, result, code) and the relay queue's destination domain; never an
//! address, a name or a subject.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels1 = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];
type DomainLabel = [(&'static str, String); 1];
type HistogramFamily = Family<Labels1, Histogram, fn() -> Histogram>;

/// Every series of the process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    accepted: Family<Labels1, Counter>,
    refused: Family<Labels2, Counter>,
    delivery_latency: HistogramFamily,
    queue_depth: Family<DomainLabel, Gauge>,
    queue_oldest: Family<DomainLabel, Gauge>,
    relay_attempts: Family<Labels1, Counter>,
    sessions: Family<Labels1, Gauge>,
    auth_failures: Family<Labels1, Counter>,
    indexing: Family<Labels2, Counter>,
    audit_entries: Counter,
    db_acquire: HistogramFamily,
    whitelist_refreshes: Family<Labels1, Counter>,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

fn acquire_histogram() -> Histogram {
    // 10 µs to about 5 s.
    Histogram::new(exponential_buckets(0.000_01, 3.0, 13))
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("mes");
        let m = Metrics {
            accepted: Family::default(),
            refused: Family::default(),
            delivery_latency: Family::new_with_constructor(latency_histogram),
            queue_depth: Family::default(),
            queue_oldest: Family::default(),
            relay_attempts: Family::default(),
            sessions: Family::default(),
            auth_failures: Family::default(),
            indexing: Family::default(),
            audit_entries: Counter::default(),
            db_acquire: Family::new_with_constructor(acquire_histogram),
            whitelist_refreshes: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "messages_accepted",
            "Messages committed, by the listener or source that accepted them",
            m.accepted.clone(),
        );
        registry.register(
            "messages_refused",
            "Messages refused at the end of the accept path, by listener and reason",
            m.refused.clone(),
        );
        registry.register(
            "delivery_latency_seconds",
            "From the start of the accept path to the commit's return, by listener",
            m.delivery_latency.clone(),
        );
        registry.register(
            "queue_depth",
            "Pending outbound recipients, by destination domain (read at scrape)",
            m.queue_depth.clone(),
        );
        registry.register(
            "queue_oldest_age_seconds",
            "Age of the oldest pending outbound recipient, by destination domain (read at scrape)",
            m.queue_oldest.clone(),
        );
        registry.register(
            "relay_attempts",
            "Outbound delivery attempts per recipient, by result (sent, deferred, failed)",
            m.relay_attempts.clone(),
        );
        registry.register(
            "sessions_open",
            "Connections open now, by protocol (smtp, imap, https)",
            m.sessions.clone(),
        );
        registry.register(
            "auth_failures",
            "Failed or throttled logins, by protocol",
            m.auth_failures.clone(),
        );
        registry.register(
            "indexing_outcomes",
            "Structured attachments examined at delivery, by kind (xdm, calendar) and code",
            m.indexing.clone(),
        );
        registry.register(
            "audit_entries",
            "Entries appended to the audit trail",
            m.audit_entries.clone(),
        );
        registry.register(
            "db_acquire_seconds",
            "Time to obtain a database connection on the hot paths, by use (reader, writer)",
            m.db_acquire.clone(),
        );
        registry.register(
            "whitelist_refreshes",
            "Scheduled whitelist refreshes, by outcome (changed, unchanged, failed, refused_signature)",
            m.whitelist_refreshes.clone(),
        );
        Metrics { registry, ..m }
    }
}

/// The process's metrics, made on first use.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// A message committed by `listener` (`mx`, `relay_in`, `submission`,
/// `imap_append`, `patient`, `report`, `calendar_reply`) after `elapsed`.
pub fn message_accepted(listener: &'static str, elapsed: Duration) {
    let m = get();
    m.accepted.get_or_create(&[("listener", listener)]).inc();
    m.delivery_latency
        .get_or_create(&[("listener", listener)])
        .observe(elapsed.as_secs_f64());
}

/// A message refused by the accept path, for `reason` (a fixed word).
pub fn message_refused(listener: &'static str, reason: &'static str) {
    get()
        .refused
        .get_or_create(&[("listener", listener), ("reason", reason)])
        .inc();
}

/// The pending queue as read from the store: (domain, recipients, oldest
/// age in seconds) for every domain with pending rows; the previous
/// reading is replaced whole, so a drained domain disappears.
pub fn set_queue(rows: &[(String, i64, i64)]) {
    let m = get();
    m.queue_depth.clear();
    m.queue_oldest.clear();
    for (domain, depth, oldest) in rows {
        let label = [("domain", domain.clone())];
        m.queue_depth.get_or_create(&label).set(*depth);
        m.queue_oldest.get_or_create(&label).set(*oldest);
    }
}

/// A scheduled whitelist refresh ended with `outcome` (`changed`,
/// `unchanged`, `failed`, `refused_signature`).
pub fn whitelist_refresh(outcome: &'static str) {
    get()
        .whitelist_refreshes
        .get_or_create(&[("outcome", outcome)])
        .inc();
}

/// One recipient's relay attempt ended with `result` (`sent`, `deferred`, `failed`).
pub fn relay_attempt(result: &'static str) {
    get()
        .relay_attempts
        .get_or_create(&[("result", result)])
        .inc();
}

/// A connection of `protocol` opened; the returned guard counts it closed when dropped.
pub fn session_opened(protocol: &'static str) -> SessionGauge {
    get()
        .sessions
        .get_or_create(&[("protocol", protocol)])
        .inc();
    SessionGauge(protocol)
}

/// An open connection in `mes_sessions_open`, until dropped.
#[derive(Debug)]
pub struct SessionGauge(&'static str);

impl Drop for SessionGauge {
    fn drop(&mut self) {
        get().sessions.get_or_create(&[("protocol", self.0)]).dec();
    }
}

/// A login of `protocol` failed (bad credentials or throttled).
pub fn auth_failure(protocol: &'static str) {
    get()
        .auth_failures
        .get_or_create(&[("protocol", protocol)])
        .inc();
}

/// Structured attachments of `kind` (`xdm`, `calendar`) examined, with
/// `code` (`filed`, or the MDN error code of a refusal).
pub fn indexing_outcome(kind: &'static str, code: &'static str) {
    get()
        .indexing
        .get_or_create(&[("kind", kind), ("code", code)])
        .inc();
}

/// One entry appended to the audit trail.
pub fn audit_entry() {
    get().audit_entries.inc();
}

/// A database connection for `use_` was obtained after `waited`.
pub fn db_acquired(use_: &'static str, waited: Duration) {
    get()
        .db_acquire
        .get_or_create(&[("use", use_)])
        .observe(waited.as_secs_f64());
}

/// Every series in the OpenMetrics text format.
pub fn render() -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = text::encode(&mut out, &get().registry);
    out
}

/// The MDN error codes as label values (a fixed set, so `&'static str`).
pub fn mdn_code_label(code: u16) -> &'static str {
    match code {
        900 => "900",
        901 => "901",
        902 => "902",
        903 => "903",
        904 => "904",
        905 => "905",
        906 => "906",
        907 => "907",
        908 => "908",
        909 => "909",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_series_carry_the_counts() {
        // Labels of their own: other tests of this process count too.
        message_refused("unit", "quota");
        message_refused("unit", "quota");
        let open = session_opened("unit");
        set_queue(&[("b.test".into(), 3, 42)]);
        let text = render();
        assert!(
            text.contains("mes_messages_refused_total{listener=\"unit\",reason=\"quota\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("mes_sessions_open{protocol=\"unit\"} 1"),
            "{text}"
        );
        drop(open);
        assert!(render().contains("mes_sessions_open{protocol=\"unit\"} 0"));
        assert!(
            text.contains("mes_queue_depth{domain=\"b.test\"} 3"),
            "{text}"
        );
        set_queue(&[]);
        assert!(!render().contains("b.test"));
    }
}
