//! `mes provision FILE`: spaces for a whole population, by opt-out.
//!
//! Records are read one at a time (`input.rs`) and written in batches of
//! [`BATCH`]: per batch one read of the known rows and one multi-row upsert
//! in one transaction (`Store::upsert_spaces`), so memory is bounded by the
//! batch (plus 16 octets per beneficiary for duplicate detection) and the
//! database sees a few statements per thousand rows. Re-running a file
//! changes nothing but contacts that changed; an opposed INS is never
//! recreated. After each batch's commit, the new spaces' information notices
//! go out: an e-mail through the smarthost, or a line of the print export
//! for a postal-only contact. Every line that is not taken is in the report
//! with its line number and reason (never its content).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::input::{Beneficiary, Record};
use super::{code_hash, ins_hash, new_code};
use crate::store::spaces::SpaceRow;
use crate::store::{Store, StoreError};
use crate::threads::notify::NoticeSender;

/// Beneficiaries per transaction. Large, because the key is a hash: each
/// row dirties its own index page, and a page written once per transaction
/// for many rows is the run's main saving (1,000 rows per commit wrote 14 GB
/// for a million). Memory stays bounded: about 10 MB of rows.
pub const BATCH: usize = 20_000;

/// The information notice (French: it goes to the patient; no health data).
pub const INFORMATION_SUBJECT: &str = "Création de votre espace santé";

/// The notice's body: the opening date and the personal opposition code.
pub fn information_body(opens_on: &str, code: &str) -> String {
    format!(
        "Bonjour,\r\n\r\n\
         Votre espace santé sera créé le {opens_on}. Il vous permettra d'échanger en toute \
         sécurité avec les professionnels qui vous soignent et de conserver vos documents de santé.\r\n\r\n\
         Si vous ne souhaitez pas qu'il soit créé, vous pouvez vous y opposer avant cette date sur \
         la page « Opposition à la création de l'espace santé » (adresse /opposition du service), \
         avec votre numéro de sécurité sociale (INS) et votre code personnel d'opposition :\r\n\r\n\
         {code}\r\n\r\n\
         Sans réponse de votre part, l'espace sera ouvert à cette date. Vous pourrez le fermer à \
         tout moment.\r\n\r\n\
         Ce message est envoyé automatiquement, merci de ne pas y répondre.\r\n"
    )
}

/// How a run is done.
#[derive(Debug, Clone)]
pub struct Options {
    /// The patient domain of the new addresses.
    pub domain: String,
    /// Length of the opposition window.
    pub opposition_days: u32,
    /// Where the lines not taken are listed.
    pub report: PathBuf,
    /// Where the postal notices for the print provider go.
    pub print_export: PathBuf,
    /// A progress line on standard error.
    pub progress: bool,
}

/// What a run did (the final summary).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Lines read (records, header excluded).
    pub lines: u64,
    /// New spaces, informed.
    pub created: u64,
    /// Known spaces whose contact changed.
    pub updated: u64,
    /// Known spaces, nothing changed.
    pub unchanged: u64,
    /// Beneficiaries who opposed: not recreated.
    pub opposed: u64,
    /// An INS already met earlier in the file.
    pub duplicate: u64,
    /// Lines refused (see the report).
    pub invalid: u64,
    /// Information e-mails sent.
    pub emails: u64,
    /// Information e-mails that failed (the space stays informed).
    pub emails_failed: u64,
    /// Letters in the print export.
    pub letters: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lines: {}\ncreated: {}\nupdated: {}\nunchanged: {}\nopposed: {}\nduplicate: {}\ninvalid: {}\n\
             notices: {} e-mails sent, {} failed, {} letters to print",
            self.lines,
            self.created,
            self.updated,
            self.unchanged,
            self.opposed,
            self.duplicate,
            self.invalid,
            self.emails,
            self.emails_failed,
            self.letters
        )
    }
}

/// Why a run stopped (a bad line never does).
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The report or export file could not be written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A file of personal data: created (truncated) readable by its owner only.
fn private_file(path: &Path) -> Result<std::io::BufWriter<std::fs::File>, ProvisionError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map(std::io::BufWriter::new)
        .map_err(|source| ProvisionError::File {
            path: path.to_path_buf(),
            source,
        })
}

/// A CSV field, quoted when it needs to be.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A new space waiting for its notice after the batch's commit.
struct Notice {
    email: Option<String>,
    postal: Option<String>,
    birth_name: String,
    first_names: String,
    code: String,
}

struct Run<'a> {
    store: &'a Store,
    opts: &'a Options,
    sender: Option<&'a NoticeSender>,
    summary: Summary,
    report: std::io::BufWriter<std::fs::File>,
    export: std::io::BufWriter<std::fs::File>,
    /// First line of each INS met (by the first 8 octets of its hash).
    seen: HashMap<u64, u64>,
    opens_at: i64,
    opens_on: String,
}

impl Run<'_> {
    fn write(&mut self, to_export: bool, line: String) -> Result<(), ProvisionError> {
        let (w, path) = if to_export {
            (&mut self.export, &self.opts.print_export)
        } else {
            (&mut self.report, &self.opts.report)
        };
        w.write_all(line.as_bytes())
            .map_err(|source| ProvisionError::File {
                path: path.clone(),
                source,
            })
    }

    fn refuse(&mut self, line: u64, outcome: &str, reason: &str) -> Result<(), ProvisionError> {
        self.write(false, format!("{line},{outcome},{}\n", field(reason)))
    }

    async fn batch(&mut self, batch: Vec<(u64, Beneficiary)>) -> Result<(), ProvisionError> {
        if batch.is_empty() {
            return Ok(());
        }
        let hashes: Vec<String> = batch
            .iter()
            .map(|(_, b)| ins_hash(b.ins.as_str()))
            .collect();
        let known: HashMap<String, crate::store::spaces::KnownSpace> = self
            .store
            .known_spaces(&hashes)
            .await?
            .into_iter()
            .map(|k| (k.ins_hash.clone(), k))
            .collect();
        let mut new = Vec::new();
        let mut changed = Vec::new();
        let mut notices = Vec::new();
        for ((line, b), key) in batch.into_iter().zip(hashes) {
            let code = new_code();
            let row = SpaceRow {
                opposition_code_hash: code_hash(&key, &code),
                ins_hash: key,
                ins: b.ins.as_str().to_string(),
                domain: self.opts.domain.clone(),
                birth_name: b.birth_name.clone(),
                first_names: b.first_names.clone(),
                birth_date: b.birth_date,
                sex: b.sex,
                birth_place: b.birth_place,
                email: b.email.clone(),
                postal: b.postal.clone(),
                representatives: b
                    .representatives
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            };
            match known.get(&row.ins_hash) {
                None => {
                    notices.push(Notice {
                        email: b.email,
                        postal: b.postal,
                        birth_name: b.birth_name,
                        first_names: b.first_names,
                        code,
                    });
                    new.push(row);
                }
                Some(k) if k.state == "opposed" => {
                    self.summary.opposed += 1;
                    self.refuse(line, "opposed", "the beneficiary opposed: not recreated")?;
                }
                Some(k) if k.state == "purged" => {
                    self.summary.opposed += 1;
                    self.refuse(
                        line,
                        "purged",
                        "the space was closed and purged: not recreated",
                    )?;
                }
                Some(k)
                    if k.email != row.email.clone().unwrap_or_default()
                        || k.postal != row.postal.clone().unwrap_or_default() =>
                {
                    changed.push(row)
                }
                Some(_) => self.summary.unchanged += 1,
            }
        }
        self.store
            .upsert_spaces(&new, &changed, self.opens_at)
            .await?;
        self.summary.created += new.len() as u64;
        self.summary.updated += changed.len() as u64;
        for n in notices {
            self.notice(n).await?;
        }
        Ok(())
    }

    async fn notice(&mut self, n: Notice) -> Result<(), ProvisionError> {
        if let (Some(email), Some(sender)) = (&n.email, self.sender) {
            let body = information_body(&self.opens_on, &n.code);
            match sender.send(email, INFORMATION_SUBJECT, &body).await {
                Ok(()) => self.summary.emails += 1,
                Err(e) => {
                    // The address is personal data: not logged.
                    tracing::warn!(error = %e, "information notice not sent");
                    self.summary.emails_failed += 1;
                }
            }
            return Ok(());
        }
        if n.email.is_none()
            && let Some(postal) = &n.postal
        {
            let line = format!(
                "{},{},{},{},{}\n",
                field(&n.birth_name),
                field(&n.first_names),
                field(postal),
                n.code,
                self.opens_on
            );
            self.write(true, line)?;
            self.summary.letters += 1;
            return Ok(());
        }
        // An e-mail contact without a smarthost: nothing can be sent.
        self.summary.emails_failed += 1;
        Ok(())
    }
}

/// Runs a provisioning over `records`; returns the summary (also when lines
/// were refused: they are in the report).
pub async fn provision(
    store: &Store,
    records: impl Iterator<Item = Record>,
    opts: &Options,
    sender: Option<&NoticeSender>,
) -> Result<Summary, ProvisionError> {
    let opens_at = store.now() + i64::from(opts.opposition_days) * 86_400;
    let opens_on = chrono::DateTime::from_timestamp(opens_at, 0)
        .map(|d| d.format("%d/%m/%Y").to_string())
        .unwrap_or_default();
    let mut report = private_file(&opts.report)?;
    let mut export = private_file(&opts.print_export)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ProvisionError::File { path, source }
    };
    report
        .write_all(b"line,outcome,reason\n")
        .map_err(io(&opts.report))?;
    export
        .write_all(b"nom,prenoms,adresse,code_opposition,date_ouverture\n")
        .map_err(io(&opts.print_export))?;
    let mut run = Run {
        store,
        opts,
        sender,
        summary: Summary::default(),
        report,
        export,
        seen: HashMap::new(),
        opens_at,
        opens_on,
    };
    let started = std::time::Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    for (line, record) in records {
        run.summary.lines += 1;
        match record {
            Err(invalid) => {
                run.summary.invalid += 1;
                run.refuse(line, "invalid", &invalid.to_string())?;
            }
            Ok(b) => {
                let key = ins_hash(b.ins.as_str());
                let short = u64::from_str_radix(&key[..16], 16).unwrap_or_default();
                if let Some(first) = run.seen.get(&short) {
                    run.summary.duplicate += 1;
                    let reason = format!("same INS as line {first}");
                    run.refuse(line, "duplicate", &reason)?;
                    continue;
                }
                run.seen.insert(short, line);
                batch.push((line, b));
                if batch.len() == BATCH {
                    run.batch(std::mem::take(&mut batch)).await?;
                    if opts.progress {
                        progress(&run.summary, started);
                    }
                }
            }
        }
    }
    run.batch(batch).await?;
    if opts.progress {
        progress(&run.summary, started);
        eprintln!();
    }
    for (w, path) in [
        (&mut run.report, &opts.report),
        (&mut run.export, &opts.print_export),
    ] {
        w.flush().map_err(io(path))?;
    }
    let s = &run.summary;
    crate::audit::append(
        store,
        &crate::store::audit::AuditEntry::new(
            "operator",
            "space.provision",
            "patient_spaces",
            &format!(
                "created {}, updated {}, unchanged {}, opposed {}, duplicate {}, invalid {}",
                s.created, s.updated, s.unchanged, s.opposed, s.duplicate, s.invalid
            ),
        ),
    )
    .await?;
    Ok(run.summary)
}

/// One progress line, rewritten in place (`\r`).
fn progress(s: &Summary, started: std::time::Instant) {
    let secs = started.elapsed().as_secs_f64().max(0.001);
    eprint!(
        "\r{} lines, {} created, {} updated, {} refused ({:.0} lines/s)   ",
        s.lines,
        s.created,
        s.updated,
        s.invalid + s.duplicate + s.opposed,
        s.lines as f64 / secs
    );
}
