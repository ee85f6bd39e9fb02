//! `mes serve`: opens the store, starts every enabled listener, and stops
//! gracefully on SIGTERM/SIGINT (stop accepting, let sessions finish within
//! the grace period, drain the delivery writers, close the store). The
//! certificate revocation lists are re-read every `tls.crl_reload_secs`, the
//! whitelist every minute, and both on SIGHUP.

pub mod keys;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::config::{ClientCertPolicy, Config};
use crate::delivery::Acceptor;
use crate::identity::auth::Authenticator;
use crate::identity::throttle::Throttle;
use crate::imap::listener::ImapListener;
use crate::imap::{ImapConfig, ImapServices};
use crate::listen::limits::ConnectionLimits;
use crate::relay::Relay;
use crate::smtp::listener::SmtpListener;
use crate::smtp::policy::SmtpServices;
use crate::smtp::{Mode, SessionConfig};
use crate::store::Store;
use crate::tls::revocation::Revocation;
use crate::tls::{self, ClientAuth};
use crate::trust::TrustSpace;

/// How often the whitelist is re-read from the store (after `mes trust import`).
const TRUST_RELOAD: Duration = Duration::from_secs(60);

/// Runs the server until SIGTERM or SIGINT.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let store = Store::open(&config.database_url, config.database_max_connections)
        .await
        .context("opening the store")?;
    // Keys outside the database (made on first start, on an empty database
    // only): the audit trail's seal and the one that encrypts stored secrets.
    let seal_key = keys::audit_key(&config.audit.key_file, &store).await?;
    let secrets = Arc::new(keys::secrets_key(&config.secrets.key_file, &store).await?);
    crate::identity::totp::encrypt_clear_secrets(&store, &secrets)
        .await
        .context("encrypting TOTP secrets")?;
    let trust = TrustSpace::load(&config, &store)
        .await
        .context("loading the whitelist")?;
    tracing::info!(domains = trust.len(), "trust space loaded");
    // Work that follows a commit (notices, MDNs): tracked, and waited for at shutdown.
    let after_commit = tokio_util::task::TaskTracker::new();
    let notifier = crate::threads::notify::Notifier::new(
        store.clone(),
        config.notify.clone(),
        after_commit.clone(),
    );
    let trust = Arc::new(RwLock::new(Arc::new(trust)));
    let (delivery, writer) = Acceptor::start(crate::delivery::Services {
        store: store.clone(),
        hostname: config.hostname.clone(),
        trust: trust.clone(),
        delegations: config
            .smtp
            .delegations
            .iter()
            .map(|(k, v)| {
                (
                    k.to_lowercase(),
                    v.iter().map(|s| s.to_lowercase()).collect(),
                )
            })
            .collect(),
        notifier: notifier.clone(),
        after_commit: after_commit.clone(),
        quota: config.quota,
    });
    let throttle = Arc::new(Throttle::new(
        store.clone(),
        config.smtp.auth_failures_before_lockout,
        config.smtp.auth_ip_failures_before_lockout,
        Duration::from_secs(config.smtp.auth_lockout_secs),
    ));
    let services = Arc::new(SmtpServices {
        store: store.clone(),
        trust: trust.clone(),
        auth: Authenticator::new(
            store.clone(),
            throttle,
            Duration::from_secs(1),
            secrets.clone(),
        ),
        delivery,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let revocation = Revocation::load(&config.tls.crl_files, &config.tls.trust_anchors)
        .context("loading the certificate revocation lists")?;
    tracing::info!(
        lists = revocation.len(),
        "certificate revocation lists loaded"
    );
    let relay_tls = tls::client_config_with_crls(
        &config.tls.trust_anchors,
        Some((
            config.tls.certificate.as_path(),
            config.tls.private_key.as_path(),
        )),
        &revocation,
    )
    .context("TLS for the relay")?;
    let relay = Relay::new(
        store.clone(),
        config.relay.clone(),
        config.hostname.clone(),
        relay_tls,
        trust.clone(),
        services.delivery.clone(),
    )?
    .start(stop_rx.clone());
    let limits = ConnectionLimits::new(
        "smtp",
        config.smtp.max_connections,
        config.smtp.max_connections_per_ip,
    );
    let mut listeners = Vec::new();
    // Bound ports by listener name, for what mail clients are told.
    let mut bound: std::collections::HashMap<&'static str, u16> = Default::default();

    let mx_auth = match config.smtp.mx_client_certificate {
        ClientCertPolicy::Required => ClientAuth::Required,
        ClientCertPolicy::Optional => ClientAuth::Optional,
    };
    let smtp = [
        ("mx", config.listen.mx, Mode::Mx, false, mx_auth),
        (
            "submission",
            config.listen.submission,
            Mode::Submission,
            false,
            ClientAuth::Optional,
        ),
        (
            "submissions",
            config.listen.submissions,
            Mode::Submission,
            true,
            ClientAuth::Optional,
        ),
    ];
    for (name, addr, mode, implicit_tls, client_auth) in smtp {
        let Some(addr) = addr else { continue };
        let tls_config = tls::server_config(&config.tls, client_auth, &revocation)
            .with_context(|| format!("TLS for {name}"))?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {name} on {addr}"))?;
        let local = listener.local_addr()?;
        bound.insert(name, local.port());
        let session = Arc::new(SessionConfig {
            hostname: config.hostname.clone(),
            mode,
            max_message_size: config.smtp.max_message_size,
            max_recipients: config.smtp.max_recipients,
            command_timeout: Duration::from_secs(config.smtp.command_timeout_secs),
            data_timeout: Duration::from_secs(config.smtp.data_timeout_secs),
        });
        let l = SmtpListener {
            config: session,
            implicit_tls,
            acceptor: TlsAcceptor::from(tls_config),
            services: services.clone(),
            limits: limits.clone(),
            session_timeout: Duration::from_secs(config.smtp.session_timeout_secs),
            proxy: proxied(&config, name),
        };
        // Tests and operators read this line to learn the bound port.
        crate::logging::announce("listening", Some((name, local)));
        tracing::info!(listener = name, address = %local, "listening");
        listeners.push(tokio::spawn(l.run(listener, stop_rx.clone())));
    }
    let imap_config = Arc::new(ImapConfig {
        hostname: config.hostname.clone(),
        max_message_size: config.smtp.max_message_size,
        max_command_line: config.imap.max_command_line,
        login_timeout: std::time::Duration::from_secs(config.imap.login_timeout_secs),
        recheck: std::time::Duration::from_secs(config.imap.recheck_secs.max(1)),
    });
    let imap_services = Arc::new(ImapServices {
        store: store.clone(),
        auth: services.auth.for_protocol("imap"),
        delivery: services.delivery.clone(),
        listings: crate::imap::listing::Listings::new(
            config.imap.listing_cache_mb.saturating_mul(1024 * 1024),
        ),
    });
    let imap_limits = ConnectionLimits::new(
        "imap",
        config.imap.max_connections,
        config.imap.max_connections_per_ip,
    );
    for (name, addr, implicit_tls) in [
        ("imap", config.listen.imap, false),
        ("imaps", config.listen.imaps, true),
    ] {
        let Some(addr) = addr else { continue };
        let tls_config = tls::server_config(&config.tls, ClientAuth::Optional, &revocation)
            .with_context(|| format!("TLS for {name}"))?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {name} on {addr}"))?;
        let local = listener.local_addr()?;
        bound.insert(name, local.port());
        let l = ImapListener {
            implicit_tls,
            acceptor: TlsAcceptor::from(tls_config),
            config: imap_config.clone(),
            services: imap_services.clone(),
            limits: imap_limits.clone(),
            proxy: proxied(&config, name),
        };
        crate::logging::announce("listening", Some((name, local)));
        tracing::info!(listener = name, address = %local, "listening");
        listeners.push(tokio::spawn(l.run(listener, stop_rx.clone())));
    }
    if let Some(addr) = config.listen.https {
        let tls_config =
            // Optional client certificates: professionals' software authenticates
            // with one on the professionals' API; browsers send none.
            tls::server_config(&config.tls, ClientAuth::Optional, &revocation)
                .context("TLS for https")?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding https on {addr}"))?;
        let local = listener.local_addr()?;
        let web = Arc::new(crate::web::WebServices {
            store: store.clone(),
            auth: services.auth.for_protocol("https"),
            sender: crate::web::send::Sender {
                store: store.clone(),
                delivery: services.delivery.clone(),
                hostname: config.hostname.clone(),
                max_attachment_size: config.patients.max_attachment_size,
            },
            settings: config.patients.clone(),
            gate: crate::access::check::Gate {
                store: store.clone(),
                notifier: notifier.clone(),
                settings: config.access.clone(),
            },
            archive_years: config.lifecycle.archive_years,
            operator: config.operator.clone(),
            clients: config.client_endpoints(&|name| bound.get(name).copied()),
            web_url: config.clients.web_url.clone(),
        });
        let app = crate::web::router(web);
        crate::logging::announce("listening", Some(("https", local)));
        tracing::info!(listener = "https", address = %local, "listening");
        listeners.push(tokio::spawn(crate::web::serve(
            listener,
            TlsAcceptor::from(tls_config),
            app,
            crate::web::Limits::of(&config.https),
            proxied(&config, "https"),
            stop_rx.clone(),
        )));
    }

    // Metrics and probes, last: `/readyz` answers 200 once every listener is bound.
    let listening = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(addr) = config.listen.metrics {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding metrics on {addr}"))?;
        let local = listener.local_addr()?;
        crate::logging::announce("listening", Some(("metrics", local)));
        tracing::info!(listener = "metrics", address = %local, "listening");
        listeners.push(tokio::spawn(crate::web::ops::serve(
            listener,
            crate::web::ops::OpsState {
                store: store.clone(),
                listening: listening.clone(),
            },
            stop_rx.clone(),
        )));
    }
    listening.store(true, std::sync::atomic::Ordering::Release);

    let reload = {
        let services = services.clone();
        let config = config.clone();
        let revocation = revocation.clone();
        // Installed before "ready": SIGHUP's default action would end the process.
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("installing the SIGHUP handler")?;
        let every = |period: Duration| {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick
        };
        let mut trust_tick = every(TRUST_RELOAD);
        let mut crl_tick = every(Duration::from_secs(config.tls.crl_reload_secs));
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = trust_tick.tick() => reload_trust(&config, &services).await,
                    _ = crl_tick.tick() => reload_crls(&revocation),
                    Some(()) = hangup.recv() => {
                        tracing::info!("SIGHUP: reloading the revocation lists and the whitelist");
                        reload_crls(&revocation);
                        reload_trust(&config, &services).await;
                    }
                }
            }
        })
    };

    // The imported whitelist refreshed from `trust.whitelist_url` (trust/refresh.rs).
    if let Some(source) = config.trust.whitelist_url.clone() {
        let services = services.clone();
        let config = config.clone();
        let web_tls = tls::web_client_config().context("TLS for the whitelist refresh")?;
        let check = crate::trust::refresh::Verification::configured(&config.trust, &source)?;
        let every = Duration::from_secs(config.trust.refresh_secs.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                refresh_whitelist(&config, &services, &source, web_tls.clone(), check.as_ref())
                    .await;
            }
        });
    }

    // Sealed checkpoints of the audit trail's head (audit/seal.rs).
    let sealer = {
        let store = store.clone();
        let key = seal_key.clone();
        let every = Duration::from_secs(config.audit.checkpoint_secs);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = crate::audit::seal::checkpoint(&store, &key).await {
                    tracing::error!(error = %e, "audit checkpoint failed");
                }
            }
        })
    };

    // Agenda reminders (agenda/reminders.rs), through the notices' smarthost.
    if let Some(n) = notifier.clone() {
        tokio::spawn(crate::agenda::reminders::run(
            store.clone(),
            n,
            Duration::from_secs(config.notify.reminder_interval_secs.max(1)),
            stop_rx.clone(),
        ));
    }
    // The 90-day connected-services notice (services/notice.rs).
    if let Some(n) = notifier.clone() {
        tokio::spawn(crate::services::notice::run(
            store.clone(),
            n,
            Duration::from_secs(config.notify.reminder_interval_secs.max(1)),
            stop_rx.clone(),
        ));
    }
    // Patient spaces whose opposition window ended are opened (lifecycle/open.rs).
    let opener = tokio::spawn(crate::lifecycle::open::run(
        store.clone(),
        Duration::from_secs(config.lifecycle.open_check_secs.max(1)),
    ));
    // Archives of closed spaces purged at the end of their period (lifecycle/close.rs).
    let purger = tokio::spawn(crate::lifecycle::close::run(
        store.clone(),
        Duration::from_secs(config.lifecycle.open_check_secs.max(1)),
    ));
    // Representations of minors ended at 18, with a notice (lifecycle/representation.rs).
    let adults = tokio::spawn(crate::lifecycle::representation::run(
        store.clone(),
        crate::threads::notify::NoticeSender::new(&config.notify)?,
        Duration::from_secs(config.lifecycle.open_check_secs.max(1)),
    ));

    // Handlers first, then "ready": a supervisor (or a test) may signal at once.
    let stop_signal = stop_signals();
    crate::logging::announce("ready", None);
    stop_signal.await;
    tracing::info!("stopping: no new connections");
    let _ = stop_tx.send(true);
    for l in listeners {
        let _ = l.await;
    }
    reload.abort();
    opener.abort();
    purger.abort();
    adults.abort();
    let _ = tokio::time::timeout(Duration::from_secs(2), relay).await;
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let deadline = tokio::time::Instant::now() + grace;
    while limits.open() + imap_limits.open() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if limits.open() > 0 {
        tracing::warn!(
            open = limits.open(),
            "grace period over, closing remaining sessions"
        );
    }
    drop(services);
    drop(imap_services);
    // Sessions cut short still hold the delivery handle; don't wait for them forever.
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    // Notices and MDNs of messages already committed go out before the end.
    after_commit.close();
    if tokio::time::timeout(grace, after_commit.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            pending = after_commit.len(),
            "grace period over, after-commit work abandoned"
        );
    }
    sealer.abort();
    // The last entries are sealed before the store closes.
    if let Err(e) = crate::audit::seal::checkpoint(&store, &seal_key).await {
        tracing::error!(error = %e, "audit checkpoint failed");
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The PROXY protocol settings of listener `name` (`listen.proxy_protocol`).
fn proxied(config: &Config, name: &str) -> Option<Arc<crate::listen::proxy::Proxied>> {
    config
        .listen
        .proxy_for(name)
        .map(|from| Arc::new(crate::listen::proxy::Proxied::new(from)))
}

/// Reads the whitelist again; on error the one in force stays.
async fn reload_trust(config: &Config, services: &SmtpServices) {
    match TrustSpace::load(config, &services.store).await {
        Ok(t) => {
            if let Ok(mut slot) = services.trust.write() {
                *slot = Arc::new(t);
            }
        }
        Err(e) => tracing::error!(error = %e, "whitelist reload failed"),
    }
}

/// One whitelist refresh: on success the change is logged (domains only),
/// audited and put in force here at once (other nodes within a minute).
async fn refresh_whitelist(
    config: &Config,
    services: &SmtpServices,
    source: &str,
    web_tls: Arc<rustls::ClientConfig>,
    check: Option<&crate::trust::refresh::Verification>,
) {
    match crate::trust::refresh::refresh(&services.store, source, web_tls, check).await {
        Ok(change) if change.is_empty() => {
            crate::metrics::whitelist_refresh("unchanged");
            tracing::debug!("whitelist refresh: no change")
        }
        Ok(change) => {
            crate::metrics::whitelist_refresh("changed");
            tracing::info!(
                added = change.added.len(),
                removed = change.removed.len(),
                changed = change.changed.len(),
                added_domains = %change.added.join(","),
                removed_domains = %change.removed.join(","),
                changed_domains = %change.changed.join(","),
                "whitelist refreshed"
            );
            let detail = format!(
                "{} added, {} removed, {} changed",
                change.added.len(),
                change.removed.len(),
                change.changed.len()
            );
            let entry =
                crate::audit::AuditEntry::new("system", "whitelist.refresh", "whitelist", &detail);
            if let Err(e) = crate::audit::append(&services.store, &entry).await {
                tracing::error!(error = %e, "audit of the whitelist refresh failed");
            }
            reload_trust(config, services).await;
        }
        Err(e @ crate::trust::refresh::RefreshError::Signature(_)) => {
            crate::metrics::whitelist_refresh("refused_signature");
            tracing::error!(error = %e, "whitelist refresh failed; the list in force stays");
            let entry = crate::audit::AuditEntry::new(
                "system",
                "whitelist.refused",
                "whitelist",
                &e.to_string(),
            );
            if let Err(e) = crate::audit::append(&services.store, &entry).await {
                tracing::error!(error = %e, "audit of the whitelist refusal failed");
            }
        }
        Err(e) => {
            crate::metrics::whitelist_refresh("failed");
            tracing::error!(error = %e, "whitelist refresh failed; the list in force stays")
        }
    }
}

/// Reads the revocation lists again; on error the ones in force stay.
fn reload_crls(revocation: &Revocation) {
    match revocation.reload() {
        Ok(true) => tracing::info!(
            lists = revocation.len(),
            "certificate revocation lists reloaded"
        ),
        Ok(false) => tracing::debug!("certificate revocation lists unchanged"),
        Err(e) => tracing::error!(
            error = %e,
            "certificate revocation lists not reloaded; the previous ones stay in force"
        ),
    }
}

/// Installs the SIGTERM/SIGINT handlers now; the future resolves on the first signal.
fn stop_signals() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        match handlers {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
