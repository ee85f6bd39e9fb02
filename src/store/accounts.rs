//! Accounts (mailboxes of the directory) and their IMAP folders.

use super::kinds::{self, AccountKind};
use super::{Store, StoreError, is_unique_violation};

/// The folders every account gets, with their RFC 6154 special use.
pub const DEFAULT_MAILBOXES: &[(&str, Option<&str>)] = &[
    ("INBOX", None),
    ("Sent", Some("\\Sent")),
    ("Drafts", Some("\\Drafts")),
    ("Trash", Some("\\Trash")),
    ("Junk", Some("\\Junk")),
    ("Archive", Some("\\Archive")),
];

/// An account as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// Row id.
    pub id: i64,
    /// Normalised address.
    pub address: String,
    /// Its domain.
    pub domain: String,
    /// Professional, organisation, application or patient.
    pub kind: AccountKind,
    /// Name shown to correspondents.
    pub display_name: String,
    /// Profession (for professionals).
    pub profession: Option<String>,
    /// RPPS number (for professionals).
    pub rpps: Option<String>,
    /// INS matricule (for patients).
    pub ins: Option<String>,
    /// Argon2 PHC string: never logged.
    pub password_hash: Option<String>,
    /// Canonical key ([`crate::pki::dn::DistinguishedName::key`]) of the subject DN of a
    /// client certificate mapped to this account (SASL EXTERNAL, MX relaying, professional API).
    pub cert_subject: Option<String>,
    /// A disabled account neither logs in nor receives.
    pub disabled: bool,
    /// A SAMU / Centre 15 regulating physician (emergency access to records).
    pub emergency_regulator: bool,
    /// Base32 TOTP secret of the professional's second factor: never logged.
    pub totp_secret: Option<String>,
    /// The establishment a professional acts for.
    pub establishment: Option<String>,
}

impl Account {
    /// The name to show: the display name, else the address.
    pub fn shown_name(&self) -> String {
        if self.display_name.is_empty() {
            self.address.clone()
        } else {
            self.display_name.clone()
        }
    }
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("address", &self.address)
            .field("kind", &self.kind)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// A recipient's account as the RCPT TO lookup reads it.
#[derive(Debug, Clone)]
pub struct RecipientAccount {
    /// The account.
    pub account: Account,
    /// Its INBOX (None only if the folder was removed by hand).
    pub inbox: Option<i64>,
    /// Its quota usage and limits.
    pub quota: super::quota::AccountQuota,
}

/// What `create_account` needs.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Normalised address (its domain must be hosted).
    pub address: String,
    /// Its domain.
    pub domain: String,
    /// Kind.
    pub kind: AccountKind,
    /// Display name.
    pub display_name: String,
    /// Profession.
    pub profession: Option<String>,
    /// RPPS number.
    pub rpps: Option<String>,
    /// INS matricule.
    pub ins: Option<String>,
    /// Argon2 PHC string.
    pub password_hash: Option<String>,
    /// Mapped client certificate subject.
    pub cert_subject: Option<String>,
}

const ACCOUNT_COLUMNS: &str = "id, address, domain, kind, display_name, profession, rpps, ins, \
     password_hash, cert_subject, disabled, emergency_regulator, totp_secret, establishment";

/// Deletes the sessions and API tokens of `address` but `keep`.
async fn end_sessions(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    address: &str,
    keep: Option<&str>,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "DELETE FROM api_sessions WHERE account_id IN (SELECT id FROM accounts WHERE address = $1) \
         AND token_hash <> $2",
    )
    .bind(address)
    .bind(keep.unwrap_or(""))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// An `accounts` row as read ([`ACCOUNT_COLUMNS`]): the kind as its name,
/// the switches as integers; checked into an [`Account`].
#[derive(sqlx::FromRow)]
struct AccountRow {
    id: i64,
    address: String,
    domain: String,
    kind: String,
    display_name: String,
    profession: Option<String>,
    rpps: Option<String>,
    ins: Option<String>,
    password_hash: Option<String>,
    cert_subject: Option<String>,
    disabled: i64,
    emergency_regulator: i64,
    totp_secret: Option<String>,
    establishment: Option<String>,
}

impl TryFrom<AccountRow> for Account {
    type Error = StoreError;
    fn try_from(r: AccountRow) -> Result<Account, StoreError> {
        Ok(Account {
            id: r.id,
            address: r.address,
            domain: r.domain,
            kind: kinds::parse(r.kind)?,
            display_name: r.display_name,
            profession: r.profession,
            rpps: r.rpps,
            ins: r.ins,
            password_hash: r.password_hash,
            cert_subject: r.cert_subject,
            disabled: r.disabled != 0,
            emergency_regulator: r.emergency_regulator != 0,
            totp_secret: r.totp_secret,
            establishment: r.establishment,
        })
    }
}

/// The canonical key stored in `accounts.cert_subject` for a DN in any usual form.
fn cert_subject_key(dn: &str) -> Result<String, StoreError> {
    crate::pki::dn::DistinguishedName::parse(dn)
        .map(|parsed| parsed.key().to_owned())
        .map_err(|e| StoreError::InvalidDn(format!("{dn:?}: {e}")))
}

impl Store {
    /// Rewrites every `accounts.cert_subject` into its canonical key (the DN
    /// rule): the data migration for rows written when the DN was stored as
    /// typed. Idempotent, so it runs at every open; a DN that cannot be
    /// parsed is left as it is (it matches no certificate) and logged.
    pub(crate) async fn canonicalize_cert_subjects(&self) -> Result<(), StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT address, cert_subject FROM accounts WHERE cert_subject IS NOT NULL",
        )
        .fetch_all(self.pool())
        .await?;
        for (address, stored) in rows {
            match crate::pki::dn::key_of(&stored) {
                Some(key) if key != stored => {
                    sqlx::query(
                        "UPDATE accounts SET cert_subject = $1 WHERE address = $2 AND cert_subject = $3",
                    )
                    .bind(&key)
                    .bind(&address)
                    .bind(&stored)
                    .execute(self.pool())
                    .await?;
                }
                Some(_) => {}
                None => tracing::warn!(
                    %address,
                    "certificate subject mapped to this account cannot be parsed as a DN; it matches no certificate"
                ),
            }
        }
        Ok(())
    }

    /// Creates an account and its default folders in one transaction.
    pub async fn create_account(&self, new: &NewAccount) -> Result<Account, StoreError> {
        let mut tx = self.pool().begin().await?;
        let created = self.now();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO accounts (address, domain, kind, display_name, profession, rpps, ins, \
             password_hash, cert_subject, disabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10) RETURNING id",
        )
        .bind(&new.address)
        .bind(&new.domain)
        .bind(new.kind.as_str())
        .bind(&new.display_name)
        .bind(&new.profession)
        .bind(&new.rpps)
        .bind(&new.ins)
        .bind(&new.password_hash)
        .bind(
            new.cert_subject
                .as_deref()
                .map(cert_subject_key)
                .transpose()?,
        )
        .bind(created)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("account {}", new.address))
            } else {
                e.into()
            }
        })?;
        for (i, (name, special)) in DEFAULT_MAILBOXES.iter().enumerate() {
            sqlx::query(
                "INSERT INTO mailboxes (account_id, name, special_use, uidvalidity) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(*name)
            .bind(special.map(str::to_string))
            .bind(uidvalidity_seed(created, i))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.account_by_address(&new.address)
            .await?
            .ok_or_else(|| StoreError::NotFound(new.address.clone()))
    }

    /// The account with this normalised address.
    pub async fn account_by_address(&self, address: &str) -> Result<Option<Account>, StoreError> {
        let row: Option<AccountRow> = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE address = $1"
        ))
        .bind(address)
        .fetch_optional(self.pool())
        .await?;
        row.map(Account::try_from).transpose()
    }

    /// The account at this address with its INBOX's id and its quota, in
    /// one query: the recipient lookup of every RCPT TO.
    pub async fn account_with_inbox(
        &self,
        address: &str,
    ) -> Result<Option<RecipientAccount>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct WithInbox {
            #[sqlx(flatten)]
            account: AccountRow,
            inbox: Option<i64>,
            #[sqlx(flatten)]
            quota: super::quota::QuotaRow,
        }
        let row: Option<WithInbox> = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS}, (SELECT m.id FROM mailboxes m \
             WHERE m.account_id = a.id AND m.name = 'INBOX') AS inbox, {} \
             FROM accounts a LEFT JOIN quotas q ON q.account_id = a.id WHERE a.address = $1",
            super::quota::QUOTA_COLUMNS
        ))
        .bind(address)
        .fetch_optional(&mut *self.hot_reader().await?)
        .await?;
        row.map(|r| {
            Ok(RecipientAccount {
                account: Account::try_from(r.account)?,
                inbox: r.inbox,
                quota: r.quota.into(),
            })
        })
        .transpose()
    }

    /// The account with this row id.
    pub async fn account_by_id(&self, id: i64) -> Result<Option<Account>, StoreError> {
        let row: Option<AccountRow> = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(Account::try_from).transpose()
    }

    /// The patient account with this INS matricule.
    pub async fn account_by_ins(&self, ins: &str) -> Result<Option<Account>, StoreError> {
        let row: Option<AccountRow> = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE ins = $1 AND kind = 'patient'"
        ))
        .bind(ins)
        .fetch_optional(self.pool())
        .await?;
        row.map(Account::try_from).transpose()
    }

    /// The enabled accounts mapped to a client certificate subject, given in
    /// any usual textual form (e.g. [`crate::tls::TlsInfo::peer_subject`]) and
    /// compared under the DN rule, by canonical key. A subject that cannot be
    /// parsed is mapped to no account.
    pub async fn accounts_by_cert_subject(
        &self,
        subject: &str,
    ) -> Result<Vec<Account>, StoreError> {
        let Some(key) = crate::pki::dn::key_of(subject) else {
            return Ok(Vec::new());
        };
        let rows: Vec<AccountRow> = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE cert_subject = $1 AND disabled = 0"
        ))
        .bind(key)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(Account::try_from).collect()
    }

    /// Every account, by address.
    pub async fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        let rows: Vec<AccountRow> = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY address"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(Account::try_from).collect()
    }

    /// Replaces the password hash of `address` and, in the same transaction,
    /// ends every session and API token of the account except `keep` (the
    /// token hash of the session that changed its own password, if any).
    pub async fn set_password(
        &self,
        address: &str,
        phc: &str,
        keep: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query("UPDATE accounts SET password_hash = $1 WHERE address = $2")
            .bind(phc)
            .bind(address)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("account {address}")));
        }
        end_sessions(&mut tx, address, keep).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets the establishment `address` acts for.
    pub async fn set_establishment(
        &self,
        address: &str,
        establishment: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE accounts SET establishment = $1 WHERE address = $2")
            .bind(establishment)
            .bind(address)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Accepts TOTP time step `step` for `address` once: false if it (or a later
    /// one) was already used.
    pub async fn take_totp_step(&self, address: &str, step: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE accounts SET totp_last_step = $1 WHERE address = $2 AND totp_last_step < $1",
        )
        .bind(step)
        .bind(address)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every stored TOTP secret, as (address, stored value).
    pub async fn totp_secrets(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT address, totp_secret FROM accounts WHERE totp_secret IS NOT NULL",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Sets (or removes) the TOTP secret of `address`, as the caller sealed
    /// it; every session and API token of the account ends in the same
    /// transaction.
    pub async fn set_totp_secret(
        &self,
        address: &str,
        secret: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE accounts SET totp_secret = $1 WHERE address = $2")
            .bind(secret)
            .bind(address)
            .execute(&mut *tx)
            .await?;
        end_sessions(&mut tx, address, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Maps a client certificate subject DN (any usual textual form; stored as
    /// its canonical key) to `address` (None removes the mapping).
    pub async fn set_cert_subject(
        &self,
        address: &str,
        dn: Option<&str>,
    ) -> Result<(), StoreError> {
        let key = dn.map(cert_subject_key).transpose()?;
        let done = sqlx::query("UPDATE accounts SET cert_subject = $1 WHERE address = $2")
            .bind(key)
            .bind(address)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("account {address}")));
        }
        Ok(())
    }

    /// Disables `address`: no login, no delivery; its mail is kept. Every
    /// session and API token of the account ends in the same transaction.
    pub async fn disable_account(&self, address: &str) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query("UPDATE accounts SET disabled = 1 WHERE address = $1")
            .bind(address)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("account {address}")));
        }
        end_sessions(&mut tx, address, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The id of `account_id`'s folder `name`.
    pub async fn mailbox_id(&self, account_id: i64, name: &str) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM mailboxes WHERE account_id = $1 AND name = $2")
                .bind(account_id)
                .bind(name)
                .fetch_optional(self.pool())
                .await?,
        )
    }
}

/// A UIDVALIDITY that differs between folders created in the same second.
pub(crate) fn uidvalidity_seed(created: i64, index: usize) -> i64 {
    (created & 0x7fff_ffff).saturating_add(index as i64) & 0xffff_ffff
}
