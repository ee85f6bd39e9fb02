//! Content-free notices to a patient's personal address: "you have a new message
//! in your health space", nothing more (no sender, no subject, no health data),
//! at most one per window, through the configured smarthost — the one path that
//! leaves the trust space.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::client::Tls;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::NotifySettings;
use crate::store::Store;

/// The notice text (French: it goes to patients).
pub const NOTICE_SUBJECT: &str = "Nouveau message dans votre espace santé";
/// The notice body.
pub const NOTICE_BODY: &str = "Bonjour,\r\n\r\nVous avez reçu un nouveau message dans votre espace santé.\r\n\
Connectez-vous à votre espace santé pour le lire.\r\n\r\nCe message est envoyé automatiquement, merci de ne pas y répondre.\r\n";

/// The emergency-access notice (no name, no document: see the access history).
pub const EMERGENCY_SUBJECT: &str = "Accès en urgence à votre dossier médical";
/// Its body.
pub const EMERGENCY_BODY: &str = "Bonjour,\r\n\r\nUn professionnel de santé a consulté votre dossier médical en situation d'urgence.\r\n\
Connectez-vous à votre espace santé et ouvrez « Historique des accès » pour en savoir plus.\r\n\r\n\
Ce message est envoyé automatiquement, merci de ne pas y répondre.\r\n";

/// The reminder of an appointment (no title, no professional, no place).
pub const APPOINTMENT_SUBJECT: &str = "Rappel de rendez-vous";
/// Its body.
pub const APPOINTMENT_BODY: &str = "Bonjour,\r\n\r\nUn rendez-vous de votre agenda approche.\r\n\
Connectez-vous à votre espace santé et ouvrez « Agenda » pour le consulter.\r\n\r\n\
Ce message est envoyé automatiquement, merci de ne pas y répondre.\r\n";

/// The reminder of a recommended screening or vaccination (which one is not said).
pub const PREVENTION_SUBJECT: &str = "Rappel de prévention";
/// Its body.
pub const PREVENTION_BODY: &str = "Bonjour,\r\n\r\nUn examen de dépistage ou une vaccination recommandés sont à prévoir.\r\n\
Connectez-vous à votre espace santé et ouvrez « Agenda » pour en savoir plus.\r\n\r\n\
Ce message est envoyé automatiquement, merci de ne pas y répondre.\r\n";

/// Sends notices; cheap to clone.
#[derive(Debug, Clone)]
pub struct Notifier {
    store: Store,
    settings: NotifySettings,
    /// Notices go out after their commit, as tasks the shutdown waits for.
    tasks: tokio_util::task::TaskTracker,
}

impl Notifier {
    /// A notifier, when a smarthost is configured; its notices run on `tasks`.
    pub fn new(
        store: Store,
        settings: NotifySettings,
        tasks: tokio_util::task::TaskTracker,
    ) -> Option<Notifier> {
        settings.smarthost.as_ref()?;
        Some(Notifier {
            store,
            settings,
            tasks,
        })
    }

    /// After a commit: [`Notifier::message_for`] on the tracked task set.
    pub fn spawn_message_for(&self, patient_id: i64) {
        let n = self.clone();
        self.tasks
            .spawn(async move { n.message_for(patient_id).await });
    }

    /// After a commit: [`Notifier::emergency_access_for`] on the tracked task set.
    pub fn spawn_emergency_access_for(&self, patient_id: i64) {
        let n = self.clone();
        self.tasks
            .spawn(async move { n.emergency_access_for(patient_id).await });
    }

    /// A message reached `patient_id`: send a notice unless one went out within the window.
    pub async fn message_for(&self, patient_id: i64) {
        let Ok((Some(email), true, _)) = self.store.patient_settings(patient_id).await else {
            return;
        };
        match self
            .store
            .take_notice_slot(patient_id, self.settings.window_secs as i64)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::error!(error = %e, "notice slot");
                return;
            }
        }
        if let Err(e) = self.send(&email, NOTICE_SUBJECT, NOTICE_BODY).await {
            // The address is personal data: not logged.
            tracing::warn!(error = %e, "patient notice not sent");
        }
    }

    /// Someone read `patient_id`'s record in an emergency: tell them, at most
    /// once per window (each access is listed in their access history).
    pub async fn emergency_access_for(&self, patient_id: i64) {
        let Ok((Some(email), _, _)) = self.store.patient_settings(patient_id).await else {
            return;
        };
        match self
            .store
            .take_emergency_notice_slot(patient_id, self.settings.window_secs as i64)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::error!(error = %e, "emergency notice slot");
                return;
            }
        }
        if let Err(e) = self.send(&email, EMERGENCY_SUBJECT, EMERGENCY_BODY).await {
            tracing::warn!(error = %e, "emergency access notice not sent");
        }
    }

    /// A content-free agenda reminder to `email` (the caller took its slot).
    pub async fn reminder(&self, email: &str, appointment: bool) {
        let (subject, body) = if appointment {
            (APPOINTMENT_SUBJECT, APPOINTMENT_BODY)
        } else {
            (PREVENTION_SUBJECT, PREVENTION_BODY)
        };
        if let Err(e) = self.send(email, subject, body).await {
            tracing::warn!(error = %e, "agenda reminder not sent");
        }
    }

    /// A content-free notice another rule wrote (the connected-services
    /// notice of `services::notice`); a failure is logged without the address.
    pub async fn send_notice(&self, to: &str, subject: &str, body: &str) {
        if let Err(e) = self.send(to, subject, body).await {
            tracing::warn!(error = %e, "patient notice not sent");
        }
    }

    async fn send(&self, to: &str, subject: &str, body: &str) -> anyhow::Result<()> {
        match NoticeSender::new(&self.settings)? {
            Some(sender) => sender.send(to, subject, body).await,
            None => Ok(()),
        }
    }
}

/// One connection set to the smarthost for many notices (the information
/// notices of a provisioning run, `lifecycle/provision.rs`): the transport
/// is built once and its pool reuses the connection.
#[derive(Clone)]
pub struct NoticeSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for NoticeSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoticeSender").finish_non_exhaustive()
    }
}

impl NoticeSender {
    /// A sender through `settings.smarthost`; `None` without one.
    pub fn new(settings: &NotifySettings) -> anyhow::Result<Option<NoticeSender>> {
        let Some(host) = &settings.smarthost else {
            return Ok(None);
        };
        let (name, port) = host
            .rsplit_once(':')
            .and_then(|(h, p)| p.parse::<u16>().ok().map(|p| (h.to_string(), p)))
            .ok_or_else(|| anyhow::anyhow!("notify.smarthost is not HOST:PORT"))?;
        let tls = if settings.starttls {
            Tls::Required(lettre::transport::smtp::client::TlsParameters::new(
                name.clone(),
            )?)
        } else {
            Tls::None
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(name)
            .port(port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(30)))
            .build();
        Ok(Some(NoticeSender {
            transport,
            from: settings.from.parse::<Mailbox>()?,
        }))
    }

    /// Sends one plain-text notice (content-free: the callers' texts).
    pub async fn send(&self, to: &str, subject: &str, body: &str) -> anyhow::Result<()> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(to.parse::<Mailbox>()?)
            .subject(subject)
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(body.to_string())?;
        self.transport.send(message).await?;
        Ok(())
    }
}
