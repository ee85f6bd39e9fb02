//! Where an accepted message goes: the envelope each [`Source`] makes
//! (sender, recipients with their folders, trace hop), including the
//! recipients of a patient's reply, of a report and of a service's notice.

use super::{
    AcceptError, Acceptor, CalendarReply, Envelope, FromPatient, Hop, Recipient, Source, Target,
};
use crate::delivery::NewRecipient;
use crate::store::StoreError;
use crate::threads;

impl Acceptor {
    /// Where the message goes, and what its source says of it.
    pub(super) async fn envelope<'a>(
        &self,
        source: &Source<'a>,
    ) -> Result<Envelope<'a>, AcceptError> {
        Ok(match *source {
            Source::Mx(s) | Source::Submission(s) => Envelope {
                mail_from: s.mail_from,
                recipients: s.recipients.iter().map(new_recipient).collect(),
                hop: Some(Hop {
                    helo: s.helo,
                    peer_ip: s.peer_ip.to_string(),
                    protocol: match (s.tls.is_some(), s.authenticated) {
                        (true, true) => "ESMTPSA",
                        (true, false) => "ESMTPS",
                        (false, true) => "ESMTPA",
                        (false, false) => "ESMTP",
                    },
                    tls: s.tls,
                }),
                received_at: None,
                flags: "",
                env_id: s.env_id,
                ret: s.ret,
            },
            Source::Append(a) => Envelope {
                mail_from: a.account,
                recipients: vec![NewRecipient {
                    address: a.account.to_string(),
                    orcpt: None,
                    notify: 0,
                    mailbox_id: Some(a.mailbox_id),
                    remote: false,
                    patient_id: None,
                }],
                hop: None,
                received_at: a.internal_date,
                flags: a.flags,
                env_id: None,
                ret: None,
            },
            Source::Patient(p) => Envelope {
                mail_from: &p.patient.address,
                recipients: self.patient_recipients(p).await?,
                hop: Some(patient_space_hop()),
                received_at: None,
                // Flags apply to every copy: the correspondent's too.
                flags: "\\Seen",
                env_id: None,
                ret: None,
            },
            Source::CalendarReply(c) => Envelope {
                mail_from: &c.patient.address,
                recipients: self.reply_recipients(c).await?,
                hop: Some(patient_space_hop()),
                received_at: None,
                // Unread for the organiser (flags apply to every copy).
                flags: "",
                env_id: None,
                ret: None,
            },
            Source::Service(n) => Envelope {
                mail_from: n.from,
                recipients: vec![NewRecipient {
                    address: n.patient.address.clone(),
                    orcpt: None,
                    notify: 0,
                    mailbox_id: Some(
                        self.services
                            .store
                            .mailbox_id(n.patient.id, "INBOX")
                            .await?
                            .ok_or_else(|| {
                                StoreError::NotFound(format!("INBOX of account {}", n.patient.id))
                            })?,
                    ),
                    remote: false,
                    patient_id: Some(n.patient.id),
                }],
                hop: Some(Hop {
                    helo: "service-api",
                    peer_ip: "127.0.0.1".into(),
                    protocol: "HTTPS",
                    tls: None,
                }),
                received_at: None,
                flags: "",
                env_id: None,
                ret: None,
            },
            Source::Report(r) => Envelope {
                mail_from: "",
                recipients: vec![self.report_recipient(r.to).await?],
                hop: None,
                received_at: None,
                flags: "",
                env_id: None,
                ret: None,
            },
        })
    }

    /// A patient writes only in an open thread, to its correspondent, here or
    /// at another operator of the trust space; a copy goes to their Sent folder.
    async fn patient_recipients(
        &self,
        p: FromPatient<'_>,
    ) -> Result<Vec<NewRecipient>, AcceptError> {
        threads::may_reply(p.thread)?;
        let store = &self.services.store;
        let correspondent = &p.thread.correspondent;
        let target = match store.account_by_address(correspondent).await? {
            Some(acc) if !acc.disabled => {
                let inbox = store
                    .mailbox_id(acc.id, "INBOX")
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("INBOX of {}", acc.address)))?;
                NewRecipient {
                    address: acc.address,
                    orcpt: None,
                    notify: 0,
                    mailbox_id: Some(inbox),
                    remote: false,
                    patient_id: None,
                }
            }
            _ => {
                let domain = correspondent
                    .rsplit_once('@')
                    .map(|(_, d)| d)
                    .unwrap_or_default();
                if !self.trust().is_whitelisted(domain) {
                    return Err(threads::Refusal::NoOpenThread.into());
                }
                NewRecipient {
                    address: correspondent.clone(),
                    orcpt: None,
                    notify: 0,
                    mailbox_id: None,
                    remote: true,
                    patient_id: None,
                }
            }
        };
        let sent = store.mailbox_id(p.patient.id, "Sent").await?;
        Ok(vec![
            target,
            NewRecipient {
                address: p.patient.address.clone(),
                orcpt: None,
                notify: 0,
                mailbox_id: sent,
                remote: false,
                patient_id: None,
            },
        ])
    }

    /// A REPLY goes to the organiser, here or at another operator of the trust
    /// space, with a copy in the patient's Sent folder.
    async fn reply_recipients(
        &self,
        c: CalendarReply<'_>,
    ) -> Result<Vec<NewRecipient>, AcceptError> {
        let store = &self.services.store;
        let target =
            match store.account_by_address(c.to).await? {
                Some(acc) if !acc.disabled => NewRecipient {
                    mailbox_id: Some(store.mailbox_id(acc.id, "INBOX").await?.ok_or_else(
                        || StoreError::NotFound(format!("INBOX of {}", acc.address)),
                    )?),
                    address: acc.address,
                    orcpt: None,
                    notify: 0,
                    remote: false,
                    patient_id: None,
                },
                _ => {
                    let domain = c.to.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
                    if !self.trust().is_whitelisted(domain) {
                        return Err(AcceptError::Unroutable);
                    }
                    NewRecipient {
                        address: c.to.to_string(),
                        orcpt: None,
                        notify: 0,
                        mailbox_id: None,
                        remote: true,
                        patient_id: None,
                    }
                }
            };
        let sent = store.mailbox_id(c.patient.id, "Sent").await?;
        Ok(vec![
            target,
            NewRecipient {
                address: c.patient.address.clone(),
                orcpt: None,
                notify: 0,
                mailbox_id: sent,
                remote: false,
                patient_id: None,
            },
        ])
    }

    /// A report goes to the local INBOX when the address is ours, else to the queue.
    async fn report_recipient(&self, to: &str) -> Result<NewRecipient, AcceptError> {
        let store = &self.services.store;
        let target = match store.account_by_address(to).await? {
            Some(acc) if !acc.disabled => store.mailbox_id(acc.id, "INBOX").await.ok().flatten(),
            _ => None,
        };
        Ok(NewRecipient {
            address: to.to_string(),
            orcpt: None,
            notify: smtp_proto::RCPT_NOTIFY_NEVER as i64,
            mailbox_id: target,
            remote: target.is_none(),
            patient_id: None,
        })
    }
}

fn new_recipient(r: &Recipient) -> NewRecipient {
    let (mailbox_id, patient_id) = match r.target {
        Target::Local {
            account_id,
            mailbox_id,
            patient,
        } => (Some(mailbox_id), patient.then_some(account_id)),
        Target::Remote => (None, None),
    };
    NewRecipient {
        address: r.address.clone(),
        orcpt: r.orcpt.clone(),
        notify: r.notify as i64,
        mailbox_id,
        remote: r.target == Target::Remote,
        patient_id,
    }
}

/// The trace hop of what a patient sends from the patient space (a reply,
/// an answer to an invitation): written by this server over HTTPS.
fn patient_space_hop() -> Hop<'static> {
    Hop {
        helo: "patient-space",
        peer_ip: "127.0.0.1".into(),
        protocol: "HTTPS",
        tls: None,
    }
}
