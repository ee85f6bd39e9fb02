//! Outbound relay: the queue worker that delivers to the other operators of the
//! trust space, retries on a schedule, and returns DSNs.
//!
//! Each node leases due queue rows (so several nodes on one PostgreSQL never
//! send the same row), groups them by domain, opens one connection per
//! destination and sends message after message on it. A row is marked before
//! DATA (`attempt_started`) and after the remote's answer: a crash between the
//! remote's 250 and our update is the one window where a message may be sent
//! twice.

pub mod client;
pub mod dsn;
pub mod route;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::config::RelaySettings;
use crate::delivery::{Acceptor, Report, ReportKind, Source};
use crate::store::Store;
use crate::store::queue::QueueItem;
use crate::trust::TrustSpace;
use client::{Connection, OutRcpt, RcptOutcome};
use dsn::{DsnAction, DsnRecipient, Original};
use route::{RouteError, Router};

/// This node's name in queue leases: `relay.node_id`, else the machine's host name.
fn node_id(settings: &RelaySettings) -> String {
    settings.node_id.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "mes".to_string())
    })
}

/// Rows claimed per round.
const CLAIM_LIMIT: i64 = 500;

/// The relay worker of one node.
pub struct Relay {
    store: Store,
    settings: RelaySettings,
    hostname: String,
    router: Router,
    tls: Arc<rustls::ClientConfig>,
    trust: Arc<RwLock<Arc<TrustSpace>>>,
    delivery: Acceptor,
    node: String,
    all: Arc<Semaphore>,
    per_domain: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// DNS resolver setup.
    #[error("resolver: {0}")]
    Route(#[from] RouteError),
}

impl Relay {
    /// A relay for this node; `tls` verifies servers and presents our operator certificate.
    pub fn new(
        store: Store,
        settings: RelaySettings,
        hostname: String,
        tls: Arc<rustls::ClientConfig>,
        trust: Arc<RwLock<Arc<TrustSpace>>>,
        delivery: Acceptor,
    ) -> Result<Relay, RelayError> {
        let dns: Vec<SocketAddr> = settings.dns.iter().filter_map(|d| d.parse().ok()).collect();
        let router = Router::new(settings.routes.clone(), &dns, settings.mx_port)?;
        let node = node_id(&settings);
        Ok(Relay {
            all: Arc::new(Semaphore::new(settings.max_connections.max(1))),
            per_domain: Mutex::new(HashMap::new()),
            store,
            settings,
            hostname,
            router,
            tls,
            trust,
            delivery,
            node,
        })
    }

    /// Runs until `shutdown` turns true.
    pub fn start(self, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        let this = Arc::new(self);
        tokio::spawn(async move {
            // After a crash of this node, its leases are stale: take the rows back at once.
            match this.store.release_leases(&this.node).await {
                Ok(n) if n > 0 => {
                    tracing::info!(rows = n, node = %this.node, "released the leases of a previous run")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "releasing leases failed"),
            }
            let mut last_report = std::time::Instant::now();
            loop {
                if *shutdown.borrow() {
                    return;
                }
                let claimed = match this
                    .store
                    .claim_due(&this.node, CLAIM_LIMIT, this.lease_secs())
                    .await
                {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(error = %e, "queue claim failed");
                        Vec::new()
                    }
                };
                if last_report.elapsed() > Duration::from_secs(60) {
                    last_report = std::time::Instant::now();
                    if let Ok((depth, age)) = this.store.queue_depth().await
                        && depth > 0
                    {
                        tracing::info!(depth, oldest_secs = age, "outbound queue");
                    }
                }
                if claimed.is_empty() {
                    tokio::select! {
                        _ = this.store.changes().queued() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.changed() => return,
                    }
                    continue;
                }
                let mut by_domain: BTreeMap<String, Vec<QueueItem>> = BTreeMap::new();
                for item in claimed {
                    by_domain.entry(item.domain.clone()).or_default().push(item);
                }
                for (domain, items) in by_domain {
                    // Up to max_connections_per_domain connections, whole messages per connection.
                    let mut messages: BTreeMap<i64, Vec<QueueItem>> = BTreeMap::new();
                    for item in items {
                        messages.entry(item.message_id).or_default().push(item);
                    }
                    let lanes = this
                        .settings
                        .max_connections_per_domain
                        .clamp(1, messages.len().max(1));
                    let mut chunks: Vec<Vec<QueueItem>> = vec![Vec::new(); lanes];
                    for (i, (_, rows)) in messages.into_iter().enumerate() {
                        chunks[i % lanes].extend(rows);
                    }
                    for chunk in chunks {
                        let this = this.clone();
                        let domain = domain.clone();
                        tokio::spawn(async move { this.deliver_domain(domain, chunk).await });
                    }
                }
            }
        })
    }

    /// How long a node keeps rows it works on before another node may take them.
    fn lease_secs(&self) -> i64 {
        i64::try_from(self.settings.lease_secs.max(1)).unwrap_or(i64::MAX / 2)
    }

    fn domain_semaphore(&self, domain: &str) -> Arc<Semaphore> {
        let mut map = self.per_domain.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(domain.to_string())
            .or_insert_with(|| {
                Arc::new(Semaphore::new(
                    self.settings.max_connections_per_domain.max(1),
                ))
            })
            .clone()
    }

    async fn deliver_domain(self: Arc<Self>, domain: String, items: Vec<QueueItem>) {
        let Ok(_all) = self.all.clone().acquire_owned().await else {
            return;
        };
        let Ok(_one) = self.domain_semaphore(&domain).acquire_owned().await else {
            return;
        };
        let trust = self.trust.read().map(|t| t.clone()).unwrap_or_default();
        if !trust.is_whitelisted(&domain) {
            let reason = format!("550 5.7.1 {domain} is not in the trust space");
            for item in &items {
                self.fail(item, &reason, None).await;
            }
            self.return_failures(&items).await;
            return;
        }
        let destinations = match self.router.destinations(&domain).await {
            Ok(d) => d,
            Err(RouteError::NoHost(_)) => {
                let reason = format!("550 5.1.2 no mail server for {domain}");
                for item in &items {
                    self.fail(item, &reason, None).await;
                }
                self.return_failures(&items).await;
                return;
            }
            Err(e) => {
                for item in &items {
                    self.temporary(item, &e.to_string(), None).await;
                }
                return;
            }
        };
        let timeout = Duration::from_secs(self.settings.timeout_secs);
        // The server must hold the certificate the whitelist names as the
        // operator of this domain (the DN rule), not only one valid for the
        // MX host's name: DNS spoofing plus any trust-space certificate must
        // not divert mail.
        let trust = &trust;
        let domain_name = domain.as_str();
        let check_peer = move |subject: &crate::pki::dn::DistinguishedName| {
            trust
                .operator_may_send_dn(subject, domain_name)
                .map_err(|e| match e {
                    crate::trust::TrustError::WrongOperator { subject, domain } => {
                        format!("certificate {subject} is not the operator of domain {domain}")
                    }
                    other => other.to_string(),
                })
        };
        let mut conn = None;
        let mut last_error = String::new();
        'outer: for d in &destinations {
            for addr in &d.addrs {
                match Connection::open(
                    *addr,
                    &d.tls_name,
                    &self.hostname,
                    self.tls.clone(),
                    timeout,
                    check_peer,
                )
                .await
                {
                    Ok(c) => {
                        conn = Some(c);
                        break 'outer;
                    }
                    Err(e) => {
                        tracing::warn!(%domain, error = %e, "outbound connection failed");
                        last_error = e.0;
                    }
                }
            }
        }
        let Some(mut conn) = conn else {
            for item in &items {
                self.temporary(item, &last_error, None).await;
            }
            return;
        };
        let mut by_message: BTreeMap<i64, Vec<QueueItem>> = BTreeMap::new();
        for item in items {
            by_message.entry(item.message_id).or_default().push(item);
        }
        for (message_id, rcpts) in by_message {
            // Renew the lease before each message; rows whose lease ran out (a slow
            // lane) may be another node's by now and are left to it.
            let ids: Vec<i64> = rcpts.iter().map(|r| r.id).collect();
            let held = match self
                .store
                .renew_leases(&ids, &self.node, self.lease_secs())
                .await
            {
                Ok(held) => held,
                Err(e) => {
                    tracing::error!(error = %e, "queue lease renewal failed");
                    continue;
                }
            };
            let rcpts: Vec<QueueItem> =
                rcpts.into_iter().filter(|r| held.contains(&r.id)).collect();
            if rcpts.is_empty() {
                continue;
            }
            let outcome = self.send_message(&mut conn, message_id, &rcpts).await;
            let remote = conn.remote.clone();
            match outcome {
                Ok(outcomes) => {
                    let delivered: Vec<i64> = rcpts
                        .iter()
                        .zip(&outcomes)
                        .filter(|(_, o)| **o == RcptOutcome::Delivered)
                        .map(|(i, _)| i.id)
                        .collect();
                    for _ in &delivered {
                        crate::metrics::relay_attempt("sent");
                    }
                    if !delivered.is_empty() {
                        tracing::info!(message = message_id, recipients = delivered.len(), %remote, "relayed");
                        if let Err(e) = self.store.queue_sent(&delivered, &remote).await {
                            tracing::error!(error = %e, "queue update failed");
                        }
                    }
                    for (item, o) in rcpts.iter().zip(outcomes) {
                        match o {
                            RcptOutcome::Delivered => {}
                            RcptOutcome::Permanent(text) => {
                                self.fail(item, &text, Some(&remote)).await
                            }
                            RcptOutcome::Temporary(text) => {
                                self.temporary(item, &text, Some(&remote)).await
                            }
                        }
                    }
                    self.return_failures(&rcpts).await;
                }
                Err(e) => {
                    for item in &rcpts {
                        self.temporary(item, &e, Some(&remote)).await;
                    }
                    // The connection is unusable: the remaining rows wait for their lease or the next round.
                    return;
                }
            }
        }
        conn.quit().await;
    }

    async fn send_message(
        &self,
        conn: &mut Connection,
        message_id: i64,
        rcpts: &[QueueItem],
    ) -> Result<Vec<RcptOutcome>, String> {
        let message = self
            .store
            .queued_message(message_id)
            .await
            .map_err(|e| e.to_string())?;
        let content = self
            .store
            .blob(&message.blob_hash)
            .await
            .map_err(|e| e.to_string())?;
        let out: Vec<OutRcpt> = rcpts
            .iter()
            .map(|r| OutRcpt {
                address: r.recipient.clone(),
                orcpt: r.orcpt.clone(),
                notify: r.notify,
            })
            .collect();
        let ids: Vec<i64> = rcpts.iter().map(|r| r.id).collect();
        let remote = conn.remote.clone();
        let store = self.store.clone();
        conn.send(
            &message.mail_from,
            message.dsn_ret.as_deref(),
            message.dsn_envid.as_deref(),
            &out,
            &content,
            || async move {
                if let Err(e) = store.queue_attempt_started(&ids, &remote).await {
                    tracing::error!(error = %e, "queue update failed");
                }
            },
        )
        .await
        .map_err(|e| e.0)
    }

    async fn fail(&self, item: &QueueItem, reason: &str, remote: Option<&str>) {
        crate::metrics::relay_attempt("failed");
        // Remote replies often quote the recipient (a patient's INS): not in the logs.
        let logged = crate::address::redact_local_parts(reason);
        tracing::warn!(queue = item.id, domain = %item.domain, reason = %logged, "relay failed permanently");
        if let Err(e) = self.store.queue_failed(item.id, reason, remote).await {
            tracing::error!(error = %e, "queue update failed");
        }
    }

    async fn temporary(&self, item: &QueueItem, reason: &str, remote: Option<&str>) {
        let t = self.store.now();
        if t >= item.created_at + self.settings.expire_secs as i64 {
            let reason = format!("4.4.7 delivery time expired; last error: {reason}");
            self.fail(item, &reason, remote).await;
            self.return_failures(std::slice::from_ref(item)).await;
            return;
        }
        crate::metrics::relay_attempt("deferred");
        let schedule = &self.settings.retry_schedule_secs;
        let step = schedule
            .get(item.attempts as usize)
            .or(schedule.last())
            .copied()
            .unwrap_or(300);
        let logged = crate::address::redact_local_parts(reason);
        tracing::info!(queue = item.id, domain = %item.domain, reason = %logged, retry_in = step, "relay deferred");
        if let Err(e) = self
            .store
            .queue_retry(item.id, reason, remote, t + step as i64)
            .await
        {
            tracing::error!(error = %e, "queue update failed");
        }
        let wants_delay =
            item.notify == 0 || item.notify & smtp_proto::RCPT_NOTIFY_DELAY as i64 != 0;
        if wants_delay
            && !item.delay_notified
            && t - item.created_at >= self.settings.delay_dsn_secs as i64
        {
            let mut delayed = item.clone();
            delayed.last_error = Some(reason.to_string());
            if self.send_dsn(&[delayed], DsnAction::Delayed).await {
                let _ = self.store.queue_delay_notified(item.id).await;
            }
        }
    }

    /// Sends one failure DSN for the rows of `items` that are now failed.
    async fn return_failures(&self, items: &[QueueItem]) {
        let mut failed = Vec::new();
        for item in items {
            if let Ok(Some(current)) = self.store.queue_item(item.id).await
                && current.status == "failed"
            {
                failed.push(current);
            }
        }
        let wanted: Vec<QueueItem> = failed
            .into_iter()
            .filter(|i| i.notify == 0 || i.notify & smtp_proto::RCPT_NOTIFY_FAILURE as i64 != 0)
            .collect();
        if !wanted.is_empty() {
            self.send_dsn(&wanted, DsnAction::Failed).await;
        }
    }

    /// Builds and delivers a DSN about `items` (all of one message) to its sender.
    async fn send_dsn(&self, items: &[QueueItem], action: DsnAction) -> bool {
        let Some(first) = items.first() else {
            return false;
        };
        let Ok(message) = self.store.queued_message(first.message_id).await else {
            return false;
        };
        if message.mail_from.is_empty() {
            // Never a DSN about a DSN (null reverse-path).
            return false;
        }
        let Ok(content) = self.store.blob(&message.blob_hash).await else {
            return false;
        };
        let rcpts: Vec<DsnRecipient> = items
            .iter()
            .map(|i| {
                let diagnostic = i.last_error.clone().unwrap_or_default();
                let fallback = if action == DsnAction::Failed {
                    "5.0.0"
                } else {
                    "4.0.0"
                };
                DsnRecipient {
                    address: i.recipient.clone(),
                    orcpt: i.orcpt.clone(),
                    action,
                    status: dsn::status_of(&diagnostic, fallback),
                    diagnostic,
                    remote_mta: i.remote_mta.clone(),
                }
            })
            .collect();
        let original = Original {
            mail_from: &message.mail_from,
            envid: message.dsn_envid.as_deref(),
            full: message.dsn_ret.as_deref() == Some("FULL"),
            arrival: message.received_at,
            content: &content,
        };
        let Ok(report) = dsn::build(&self.hostname, &original, &rcpts) else {
            return false;
        };
        let source = Source::Report(Report {
            kind: ReportKind::Dsn,
            to: &message.mail_from,
        });
        match self.delivery.accept(source, report).await {
            Ok(_) => {
                tracing::info!(
                    message = first.message_id,
                    ?action,
                    "DSN sent to the sender"
                );
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "DSN delivery failed");
                false
            }
        }
    }
}
