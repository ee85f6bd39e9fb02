//! `mes provision FILE`, `mes oppose INS`, `mes close INS`, `mes reopen
//! INS`, `mes representative` and `mes bench provision`: parse, call
//! `lifecycle/`, print.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::config::Config;
use crate::identity::DomainKind;
use crate::lifecycle::close::{self, Closed, Closer, Disposal};
use crate::lifecycle::input::{self, Format};
use crate::lifecycle::provision::{self, Options};
use crate::lifecycle::{self, Opponent, Opposed, representation};
use crate::store::Store;

/// `mes provision` arguments.
#[derive(Debug, clap::Args)]
pub struct ProvisionArgs {
    /// The beneficiaries: CSV with a header line (`.csv`) or NDJSON
    /// (`.ndjson`, `.jsonl`); see schemas/lifecycle/beneficiary.schema.json.
    pub file: PathBuf,
    /// The patient domain of the addresses [default: the only patient domain hosted].
    #[arg(long)]
    pub domain: Option<String>,
    /// Lines not taken, with line number and reason [default: FILE.report.csv].
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Letters for the print provider (postal-only contacts) [default: FILE.print.csv].
    #[arg(long, value_name = "FILE")]
    pub print_export: Option<PathBuf>,
}

/// `mes bench provision` arguments.
#[derive(Debug, clap::Args)]
pub struct BenchProvisionArgs {
    /// Beneficiaries to generate (valid INS and traits).
    #[arg(long, default_value_t = 100_000)]
    pub count: u64,
    /// Write them to this CSV file instead of provisioning them.
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// Then open them: move the clock past the opposition window and time
    /// the opening task's pass.
    #[arg(long, conflicts_with = "write")]
    pub open: bool,
}

/// The store, with the configuration's domains hosted (as `mes user`).
async fn open(config: &Config) -> anyhow::Result<Store> {
    let store = Store::open(&config.database_url, 2)
        .await
        .context("opening the store")?;
    super::init::seed_domains(config, &store).await?;
    Ok(store)
}

fn with_suffix(file: &Path, suffix: &str) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

async fn patient_domain(store: &Store, given: Option<String>) -> anyhow::Result<String> {
    let patient: Vec<String> = store
        .list_domains()
        .await?
        .into_iter()
        .filter(|d| d.kind == DomainKind::Patient)
        .map(|d| d.name)
        .collect();
    match given {
        Some(d) => {
            let d = crate::address::normalize_domain(&d)?;
            if !patient.contains(&d) {
                bail!("{d} is not a hosted patient domain");
            }
            Ok(d)
        }
        None => match patient.as_slice() {
            [one] => Ok(one.clone()),
            [] => bail!("no patient domain is hosted (mes domain add DOMAIN --kind patient)"),
            _ => bail!("several patient domains are hosted: choose one with --domain"),
        },
    }
}

/// `mes provision FILE`.
pub(super) async fn provision(config: &Config, args: ProvisionArgs) -> anyhow::Result<()> {
    let format = Format::of(&args.file).with_context(|| {
        format!(
            "{}: the name must end in .csv or .ndjson/.jsonl",
            args.file.display()
        )
    })?;
    let reader = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let store = open(config).await?;
    let domain = patient_domain(&store, args.domain).await?;
    let opts = Options {
        domain,
        opposition_days: config.lifecycle.opposition_days,
        report: args
            .report
            .unwrap_or_else(|| with_suffix(&args.file, ".report.csv")),
        print_export: args
            .print_export
            .unwrap_or_else(|| with_suffix(&args.file, ".print.csv")),
        progress: std::io::stderr().is_terminal(),
    };
    let sender = crate::threads::notify::NoticeSender::new(&config.notify)?;
    let records = input::records(std::io::BufReader::with_capacity(1 << 16, reader), format);
    let summary = provision::provision(&store, records, &opts, sender.as_ref()).await;
    store.close().await;
    let summary = summary?;
    println!("{summary}");
    println!("report: {}", opts.report.display());
    println!("print export: {}", opts.print_export.display());
    Ok(())
}

/// `mes oppose INS`: before opening, an opposition; afterwards, a closure.
pub(super) async fn oppose(config: &Config, ins: &str) -> anyhow::Result<()> {
    let store = Store::open(&config.database_url, 1).await?;
    let outcome = lifecycle::oppose(
        &store,
        ins,
        None,
        Opponent::Operator,
        config.lifecycle.archive_years,
    )
    .await;
    store.close().await;
    match outcome? {
        Opposed::Done => println!(
            "opposition recorded: the space will never be opened, its data is deleted \
             (only a hash of the INS is kept so that provisioning does not recreate it)"
        ),
        Opposed::Closed(at) => println!(
            "the space was open: opposing closed it; its content is archived until {} \
             (mes reopen INS until then), then purged",
            day(at)
        ),
        Opposed::Already => println!("already opposed: nothing to do"),
    }
    Ok(())
}

/// A Unix time as its UTC day.
fn day(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| at.to_string())
}

/// `mes close INS [--destroy]`.
pub(super) async fn close(config: &Config, ins: &str, destroy: bool) -> anyhow::Result<()> {
    let store = Store::open(&config.database_url, 1).await?;
    let disposal = if destroy {
        Disposal::Destroy
    } else {
        Disposal::Archive
    };
    let outcome = close::close(
        &store,
        ins,
        disposal,
        &Closer::Operator,
        config.lifecycle.archive_years,
    )
    .await;
    store.close().await;
    match outcome? {
        Closed::Archived(at) => println!(
            "space closed: its content is archived until {} (mes reopen INS until then), \
             then purged",
            day(at)
        ),
        Closed::Destroyed => {
            println!(
                "space closed and destroyed: only a hash of the INS and the audit trail remain"
            )
        }
    }
    Ok(())
}

/// `mes reopen INS`.
pub(super) async fn reopen(config: &Config, ins: &str) -> anyhow::Result<()> {
    let store = Store::open(&config.database_url, 1).await?;
    let outcome = close::reopen(&store, ins).await;
    store.close().await;
    outcome?;
    println!("space reopened: login and mail work again");
    Ok(())
}

/// `mes representative add|remove CHILD_INS PARENT_ADDRESS`.
pub(super) async fn representative(
    config: &Config,
    add: bool,
    child: &str,
    parent: &str,
) -> anyhow::Result<()> {
    let store = Store::open(&config.database_url, 1).await?;
    let parent = crate::address::Address::parse(parent)?.to_string();
    let outcome = if add {
        representation::add(&store, child, &parent)
            .await
            .map(|new| {
                if new {
                    "representative added"
                } else {
                    "already a representative: nothing to do"
                }
            })
    } else {
        representation::remove(&store, child, &parent)
            .await
            .map(|()| "representative removed")
    };
    store.close().await;
    println!("{}", outcome?);
    Ok(())
}

/// `mes export INS FILE`: the archive of the space into FILE (written
/// beside it, then renamed, so a failed export leaves no partial file).
pub(super) async fn export(config: &Config, ins: &str, file: &Path) -> anyhow::Result<()> {
    use crate::lifecycle::export::{self, Exporter, Output};
    let store = Store::open(&config.database_url, 2).await?;
    let outcome = async {
        let account = export::patient_by_ins(&store, ins).await?;
        let partial = with_suffix(file, ".partial");
        let f = tokio::fs::File::create(&partial)
            .await
            .with_context(|| format!("creating {}", partial.display()))?;
        let out = Output::new(tokio::io::BufWriter::with_capacity(1 << 16, f));
        let out = export::write(&store, &account, out).await?;
        let size = out.produced();
        if let Some(mut w) = out.finish().await? {
            use tokio::io::AsyncWriteExt;
            w.flush().await?;
            w.into_inner().sync_all().await?;
        }
        tokio::fs::rename(&partial, file)
            .await
            .with_context(|| format!("renaming to {}", file.display()))?;
        export::record(&store, &account, Exporter::Operator).await?;
        anyhow::Ok(size)
    }
    .await;
    store.close().await;
    let size = outcome?;
    println!("exported: {} ({size} bytes)", file.display());
    Ok(())
}

/// A valid INS for `n`, distinct for every `n` (each part of the NIR is a
/// digit of `n` in a mixed radix): sex, year, month, department, commune,
/// order number, then the key.
fn generated_ins(n: u64) -> String {
    let mut m = n;
    let mut take = |radix: u64| {
        let d = m % radix;
        m /= radix;
        d
    };
    let sex = 1 + take(2);
    let order = 1 + take(999);
    let year = take(100);
    let month = 1 + take(12);
    let dept = match 1 + take(95) {
        20 => 96,
        d => d,
    };
    let commune = 1 + take(990);
    let nir = format!("{sex}{year:02}{month:02}{dept:02}{commune:03}{order:03}");
    let value: u64 = nir.parse().unwrap_or_default();
    format!("{nir}{:02}", 97 - value % 97)
}

/// One generated beneficiary line (CSV).
fn generated_line(n: u64) -> String {
    let ins = generated_ins(n);
    let sex = if ins.starts_with('1') { "M" } else { "F" };
    let year = 1900 + ins[1..3].parse::<u32>().unwrap_or(50);
    let month = &ins[3..5];
    let place = &ins[5..10];
    if n.is_multiple_of(5) {
        format!(
            "{ins},NOM{n},Prenom,{year}-{month}-15,{sex},{place},,{n} rue du Test 75001 Paris,\n"
        )
    } else {
        format!("{ins},NOM{n},Prenom,{year}-{month}-15,{sex},{place},p{n}@example.test,,\n")
    }
}

const HEADER: &str =
    "ins,birth_name,first_names,birth_date,sex,birth_place,email,postal,representatives\n";

/// `mes bench provision --count N`: generates N beneficiaries (one in five
/// postal-only) and provisions them (no e-mail is sent: the smarthost is
/// not used), or writes them to a file; prints the rate.
pub(super) async fn bench(config: &Config, args: BenchProvisionArgs) -> anyhow::Result<()> {
    if let Some(path) = args.write {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path)?);
        w.write_all(HEADER.as_bytes())?;
        for n in 0..args.count {
            w.write_all(generated_line(n).as_bytes())?;
        }
        w.flush()?;
        println!("{} beneficiaries written to {}", args.count, path.display());
        return Ok(());
    }
    let store = open(config).await?;
    let domain = patient_domain(&store, None).await?;
    let dir = tempdir_in(&config.data_dir)?;
    let opts = Options {
        domain,
        opposition_days: config.lifecycle.opposition_days,
        report: dir.join("bench.report.csv"),
        print_export: dir.join("bench.print.csv"),
        progress: std::io::stderr().is_terminal(),
    };
    let count = args.count;
    let text = std::io::Cursor::new(HEADER.as_bytes().to_vec()).chain_lines(count);
    let records = input::records(text, Format::Csv);
    let started = std::time::Instant::now();
    let summary = provision::provision(&store, records, &opts, None).await;
    let elapsed = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    let summary = match summary {
        Ok(summary) => summary,
        Err(e) => {
            store.close().await;
            return Err(e.into());
        }
    };
    println!("{summary}");
    println!(
        "{count} beneficiaries in {elapsed:.1} s ({:.0} per second)",
        count as f64 / elapsed.max(0.001)
    );
    if !args.open {
        store.close().await;
        return Ok(());
    }
    let window = (i64::from(config.lifecycle.opposition_days) + 1) * 86_400;
    let later = std::sync::Arc::new(crate::clock::ManualClock::new(store.now() + window));
    let store = store.with_clock(later);
    let started = std::time::Instant::now();
    let opened = crate::lifecycle::open::open_due(&store).await;
    let elapsed = started.elapsed().as_secs_f64();
    store.close().await;
    let opened = opened?;
    println!(
        "{opened} spaces opened in {elapsed:.1} s ({:.0} per second)",
        opened as f64 / elapsed.max(0.001)
    );
    Ok(())
}

fn tempdir_in(base: &Path) -> anyhow::Result<PathBuf> {
    let dir = base.join(format!("bench-provision-{}", std::process::id()));
    crate::store::create_private_dir(&dir)?;
    Ok(dir)
}

/// The generated file as a reader, produced as it is read (bounded memory).
trait ChainLines {
    fn chain_lines(self, count: u64) -> Generated;
}

impl ChainLines for std::io::Cursor<Vec<u8>> {
    fn chain_lines(self, count: u64) -> Generated {
        Generated {
            head: self,
            next: 0,
            count,
            buf: Vec::new(),
            at: 0,
        }
    }
}

/// A `BufRead` over the header then `count` generated lines.
struct Generated {
    head: std::io::Cursor<Vec<u8>>,
    next: u64,
    count: u64,
    buf: Vec<u8>,
    at: usize,
}

impl std::io::Read for Generated {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        use std::io::BufRead;
        let n = {
            let data = self.fill_buf()?;
            let n = data.len().min(out.len());
            out[..n].copy_from_slice(&data[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl std::io::BufRead for Generated {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if (self.head.position() as usize) < self.head.get_ref().len() {
            return self.head.fill_buf();
        }
        if self.at >= self.buf.len() {
            self.buf.clear();
            self.at = 0;
            while self.buf.len() < 64 * 1024 && self.next < self.count {
                self.buf
                    .extend_from_slice(generated_line(self.next).as_bytes());
                self.next += 1;
            }
        }
        Ok(&self.buf[self.at..])
    }

    fn consume(&mut self, amt: usize) {
        if (self.head.position() as usize) < self.head.get_ref().len() {
            self.head.consume(amt);
        } else {
            self.at += amt;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ins_are_valid_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for n in 0..20_000 {
            let ins = generated_ins(n);
            assert!(crate::identity::ins::Ins::parse(&ins).is_ok(), "{ins}");
            assert!(seen.insert(ins), "duplicate at {n}");
        }
    }
}
