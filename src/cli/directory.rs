//! `mes directory import FILE` and `mes bench directory`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::audit::{self, AuditEntry};
use crate::config::Config;
use crate::directory::import;
use crate::store::Store;

/// `mes directory …`
#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Replace the directory with an Extraction_Correspondance_MSSante extract
    /// (the .zip as published, or its .txt); malformed lines are reported on
    /// stderr and skipped.
    Import {
        /// The extract.
        file: PathBuf,
    },
}

/// `mes bench directory`.
#[derive(Debug, Args)]
pub struct BenchDirectoryArgs {
    /// Entries to generate.
    #[arg(long, default_value_t = 1_000_000)]
    pub count: u64,
    /// Write the extract to this file instead of importing it.
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
}

async fn open(config: &Config) -> anyhow::Result<Store> {
    Store::open(&config.database_url, 2)
        .await
        .context("opening the store")
}

/// Runs `mes directory …`.
pub(super) async fn run(config: &Config, cmd: DirectoryCommand) -> anyhow::Result<()> {
    let DirectoryCommand::Import { file } = cmd;
    let store = open(config).await?;
    let summary = import_reporting(&store, &file).await?;
    audit::append(
        &store,
        &AuditEntry::new(
            "operator",
            "directory.import",
            "directory",
            &format!(
                "{} entries, {} malformed lines",
                summary.entries, summary.malformed
            ),
        ),
    )
    .await?;
    println!(
        "imported {} entries from {} lines ({} malformed)",
        summary.entries, summary.lines, summary.malformed
    );
    store.close().await;
    Ok(())
}

async fn import_reporting(
    store: &Store,
    file: &std::path::Path,
) -> anyhow::Result<import::Summary> {
    let mut stderr = std::io::stderr().lock();
    let mut report = |line: u64, e: &crate::directory::LineError| {
        let _ = writeln!(stderr, "line {line}: {e}");
    };
    import::import_file(store, file, &mut report)
        .await
        .with_context(|| format!("{}", file.display()))
}

/// The header of the extract (31 columns).
const HEADER: &str = "Type de BAL|Adresse BAL|Type Identifiant PP|Identifiant PP|Identification nationale PP|Type identifiant structure|Identification Structure|Service de rattachement|Civilité d'exercice|Nom d'exercice|Prénom d'exercice|Catégorie profession|Libellé de catégorie profession|Code Profession|Libellé Profession|Code savoir-faire|Libellé savoir-faire|Dématérialisation|Raison Sociale structure BAL|Enseigne commerciale structure BAL|L2COMPLEMENTLOCALISATION|L3COMPLEMENTDISTRIBUTION|L4NUMEROVOIE|L4COMPLEMENTNUMEROVOIE|NL4TYPEVOIE|L4LIBELLEVOIE|L5LIEUDITMENTION|L6LIGNEACHEMINEMENT|Code postal|Département|Pays\n";

/// A generated line: a person's mailbox with the usual fields filled.
fn generated_line(n: u64) -> String {
    format!(
        "PER|prenom{n}.nom{n}@hopital{}.mssante.fr|8|8{n:010}|8{n:010}|1|R{}|Service|DR|NOM{n}|Prenom{n}|C|Civil|10|Médecin|SM54|Médecine générale|O|Hôpital {}|Hôpital|||{}|||rue de la Paix||75013 PARIS|75013|75|FRANCE\n",
        n % 500,
        n % 500,
        n % 500,
        n % 100
    )
}

/// Runs `mes bench directory`.
pub(super) async fn bench(config: &Config, args: BenchDirectoryArgs) -> anyhow::Result<()> {
    let path = match &args.write {
        Some(p) => p.clone(),
        None => config.data_dir.join("bench-directory.txt"),
    };
    {
        std::fs::create_dir_all(path.parent().unwrap_or(std::path::Path::new(".")))?;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path)?);
        w.write_all(HEADER.as_bytes())?;
        for n in 0..args.count {
            w.write_all(generated_line(n).as_bytes())?;
        }
        w.flush()?;
    }
    if args.write.is_some() {
        println!("{} entries written to {}", args.count, path.display());
        return Ok(());
    }
    let store = open(config).await?;
    let started = std::time::Instant::now();
    let summary = import_reporting(&store, &path).await?;
    let elapsed = started.elapsed();
    std::fs::remove_file(&path)?;
    println!(
        "imported {} entries in {:.1} s ({:.0} entries/s)",
        summary.entries,
        elapsed.as_secs_f64(),
        summary.entries as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    store.close().await;
    Ok(())
}
