//! `messages.notify`: `POST /fhir/r4/Communication` puts a short plain-text
//! notification from the service in its patient's INBOX, through the one
//! delivery path (quota, IMAP IDLE, the webmail and the patient's
//! new-message notice as for any message). One `payload` with a
//! `contentString` (no attachment), an optional `topic.text` as subject; the
//! sender is the service's fixed no-reply address; at most
//! `patients.service_notifications_per_day` per patient and day (429 past it).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::booking::read_resource;
use super::{Caller, FhirError, Shared, instant, resource};
use crate::access::check::service_actor;
use crate::audit::{self, AuditEntry};
use crate::delivery::{AcceptError, ServiceNotice, Source};
use crate::services::notify::{self, NotifyError};
use crate::services::scope::Scope;

fn invalid(m: &'static str) -> FhirError {
    FhirError(StatusCode::UNPROCESSABLE_ENTITY, "invalid", m)
}

/// POST /fhir/r4/Communication: 201 with the resource, once committed.
pub(super) async fn create(
    State(s): State<Shared>,
    c: Caller,
    body: axum::body::Bytes,
) -> Result<Response, FhirError> {
    c.allow(&s, Scope::MessagesNotify, "Communication create")
        .await?;
    let v = read_resource(&body, "Communication")?;
    let payload = v["payload"].as_array().map_or(&[][..], Vec::as_slice);
    let text = match payload {
        [one] if one.get("contentAttachment").is_none() => one["contentString"].as_str(),
        _ => None,
    }
    .ok_or_else(|| invalid("exactly one payload with a contentString (no attachment)"))?;
    let n = notify::check(text, v["topic"]["text"].as_str(), &c.service.name).map_err(|e| {
        invalid(match e {
            NotifyError::Empty => "the contentString is empty",
            NotifyError::TooLong => {
                "the contentString is longer than 2000 characters or topic.text than 120"
            }
            NotifyError::Control => "control characters are not allowed",
        })
    })?;
    if !s
        .store
        .take_notification(
            &c.service.id,
            c.patient.id,
            s.settings.service_notifications_per_day,
        )
        .await
        .map_err(FhirError::unavailable)?
    {
        return Err(FhirError(
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            "daily notification limit reached for this patient",
        ));
    }
    let now = s.store.now();
    let domain = c.patient.domain.clone();
    let message_id = format!(
        "{:016x}.notify@{}",
        rand::random::<u64>(),
        s.sender.hostname
    );
    let content = notify::message(
        &n,
        (&c.service.id, &c.service.name),
        &c.patient.address,
        &domain,
        now,
        message_id,
    )
    .map_err(FhirError::unavailable)?;
    let from = notify::from_address(&c.service.id, &domain);
    let name = notify::display_name(&c.service.name);
    let source = Source::Service(ServiceNotice {
        patient: &c.patient,
        from: &from,
        name: &name,
    });
    let accepted = match s.sender.delivery.accept(source, content).await {
        Ok(a) => a,
        Err(AcceptError::Quota(_)) => {
            return Err(FhirError(
                StatusCode::INSUFFICIENT_STORAGE,
                "too-costly",
                "the patient's mailbox is full",
            ));
        }
        Err(e) => return Err(FhirError::unavailable(e)),
    };
    let actor = service_actor(&c.service.id);
    audit::append(
        &s.store,
        &AuditEntry::new(
            &actor,
            "service.notify",
            &c.patient.address,
            &format!("message {}", accepted.stored.message_id),
        ),
    )
    .await
    .map_err(FhirError::unavailable)?;
    let mut res = resource(json!({
        "resourceType": "Communication",
        "id": accepted.stored.message_id.to_string(),
        "status": "completed",
        "sent": instant(now),
        "topic": { "text": n.subject },
    }));
    *res.status_mut() = StatusCode::CREATED;
    Ok(res)
}
