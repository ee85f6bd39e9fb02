//! Storage on sqlx: one pool over SQLite (embedded default) or PostgreSQL (several nodes).
//!
//! Both backends run the same SQL through sqlx's `Any` driver: `$N` placeholders,
//! BIGINT integers, Unix-second timestamps. The few differences (migrations,
//! SQLite pragmas) are handled here and nowhere else. One file per aggregate.

pub mod access;
pub mod accounts;
pub mod activation;
pub mod agenda;
pub mod audit;
pub mod changes;
pub mod checkpoint;
pub mod closure;
mod direct;
pub mod directory;
pub mod domains;
pub mod dossier;
pub mod entries;
pub mod export;
pub mod folder_read;
pub mod folders;
mod group_commit;
pub mod kinds;
pub mod messages;
pub mod queue;
pub mod quota;
pub mod representatives;
pub mod services;
pub mod spaces;
pub mod threads;
pub mod throttle;
pub mod whitelist;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One file, WAL, synchronous=FULL.
    Sqlite,
    /// A PostgreSQL server, possibly shared by several nodes.
    Postgres,
}

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or refused.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Schema migration failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL is neither SQLite nor PostgreSQL.
    #[error("unsupported database URL (sqlite:// or postgres:// expected)")]
    Url,
    /// A row that should exist does not.
    #[error("{0} not found")]
    NotFound(String),
    /// A row already exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// A stored value does not parse.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A certificate subject DN that cannot be parsed (see `pki::dn`).
    #[error("invalid certificate subject DN: {0}")]
    InvalidDn(String),
}

/// How much of the SQLite file every connection reads through a memory map
/// rather than `read(2)`: a folder scan (SELECT, STATUS, SEARCH) then costs no
/// copy into each connection's own page cache. Reads only: writes still go
/// through the WAL and its fsync.
const SQLITE_MMAP_BYTES: u64 = 1 << 30;

/// Connections kept for the hottest reads on SQLite (see `direct.rs`).
const HOT_READERS: usize = 4;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./schemas/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./schemas/postgres");

/// The shared handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// SQLite only: connections for the hottest reads, outside the pool.
    readers: Option<std::sync::Arc<direct::Direct>>,
    /// SQLite only: the group-commit writer's connection, outside the pool.
    writer: Option<std::sync::Arc<direct::Direct>>,
    backend: Backend,
    changes: changes::ChangeBus,
    /// SQLite only: the background WAL checkpoint task.
    checkpointer: Option<checkpoint::Checkpointer>,
    /// The time every row is stamped with and every expiry is read against.
    clock: std::sync::Arc<dyn crate::clock::Clock>,
    /// SQLite only: the database file, whose disappearance open connections
    /// would not notice (readiness checks it).
    file: Option<std::path::PathBuf>,
}

/// Creates `dir` (and its parents) if missing; a directory this creates is
/// readable by its owner only (0700), whatever the umask.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if dir.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // `mode` is filtered by the umask: set it again.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Makes the SQLite database file (created now if missing) readable by its
/// owner only (0600), whatever the umask; SQLite gives its WAL and
/// shared-memory files the database file's mode.
fn private_file(file: &std::path::Path) {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if file.as_os_str().is_empty() || file.to_str().is_some_and(|f| f.contains(":memory:")) {
        return;
    }
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(file);
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        let path = std::path::Path::new(&name);
        if path.exists() {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
    }
}

impl Store {
    /// Connects (creating a SQLite file if needed) and brings the schema up to date.
    pub async fn open(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let mut db_file = None;
        let (backend, url) = if let Some(path) = url.strip_prefix("sqlite://") {
            let file = std::path::Path::new(path.split('?').next().unwrap_or(path));
            if !path.contains(":memory:") && !file.as_os_str().is_empty() {
                db_file = Some(file.to_path_buf());
            }
            if let Some(parent) = file.parent()
                && !parent.as_os_str().is_empty()
            {
                let _ = create_private_dir(parent);
            }
            private_file(file);
            let url = if url.contains('?') {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            };
            (Backend::Sqlite, url)
        } else if url.starts_with("sqlite:") {
            (Backend::Sqlite, url.to_string())
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::Url);
        };
        let options = AnyConnectOptions::from_str(&url)?;
        // Durability first: a committed delivery must survive power loss.
        let sqlite_setup = format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
             PRAGMA wal_autocheckpoint = {}; PRAGMA mmap_size = {};",
            checkpoint::BACKSTOP_PAGES,
            SQLITE_MMAP_BYTES
        );
        let setup = sqlite_setup.clone();
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            // A SQLite connection is a local file: it does not go stale, and the
            // test costs a round trip to the connection's thread at every query.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _meta| {
                let setup = setup.clone();
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(setup.as_str()).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await?;
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        let changes = changes::ChangeBus::default();
        if backend == Backend::Postgres {
            // Other nodes on this database announce their changes with NOTIFY.
            changes::bridge_postgres(&url, changes.clone()).await?;
        }
        let checkpointer =
            (backend == Backend::Sqlite).then(|| checkpoint::Checkpointer::start(pool.clone()));
        let direct = |slots| {
            (backend == Backend::Sqlite).then(|| {
                std::sync::Arc::new(direct::Direct::new(
                    options.clone(),
                    sqlite_setup.clone(),
                    slots,
                ))
            })
        };
        let store = Store {
            pool,
            readers: direct(HOT_READERS),
            writer: direct(1),
            backend,
            changes,
            checkpointer,
            clock: std::sync::Arc::new(crate::clock::SystemClock),
            file: db_file,
        };
        store.canonicalize_cert_subjects().await?;
        Ok(store)
    }

    /// The same store reading time from `clock` (tests of expiry and retries).
    pub fn with_clock(mut self, clock: std::sync::Arc<dyn crate::clock::Clock>) -> Store {
        self.clock = clock;
        self
    }

    /// Seconds since the Unix epoch, by the store's clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The connection pool, for the aggregate modules.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A connection for one of the hottest reads (SMTP's lookups at MAIL
    /// and RCPT; IMAP's per-command look at a folder and its changes):
    /// outside the pool on SQLite (`direct.rs`). Only for short, indexed
    /// statements: a few such connections serve every session.
    async fn hot_reader(&self) -> Result<direct::Lent<'_>, StoreError> {
        direct::Lent::from(self.readers.as_deref(), &self.pool, "reader").await
    }

    /// On SQLite, `relaxed` lets the next commits on the writers' connection
    /// return before the disk has them (`synchronous = NORMAL` in WAL mode:
    /// a crash of the process, SIGKILL included, loses nothing; a power loss
    /// may lose the last ones), and `!relaxed` puts back the durable setting
    /// (`FULL`) every other write relies on. Only for changes whose loss is
    /// harmless, as Dovecot's `mail_fsync = optimized` does not flush its
    /// index for them: flags and \Recent, never a message or an expunge.
    async fn relax_commits(
        &self,
        conn: &mut sqlx::AnyConnection,
        relaxed: bool,
    ) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            let pragma = if relaxed {
                "PRAGMA synchronous = NORMAL"
            } else {
                "PRAGMA synchronous = FULL"
            };
            conn.execute(pragma).await?;
        }
        Ok(())
    }

    /// The writers' connection: outside the pool on SQLite, where it is
    /// the only one that writes on the hot paths (the group-commit writer,
    /// IMAP's flag, \Recent, copy, move and expunge changes), so that they
    /// take turns behind a mutex rather than in SQLite's busy handler, which
    /// sleeps 1, 2, 5… ms between tries. Never held across another write.
    async fn writer_connection(&self) -> Result<direct::Lent<'_>, StoreError> {
        direct::Lent::from(self.writer.as_deref(), &self.pool, "writer").await
    }

    /// Announces a change of `folder_id` (after its commit) here and, on PostgreSQL, to other nodes.
    pub async fn announce_folder(&self, folder_id: i64) {
        self.changes.publish(folder_id);
        self.notify_nodes(&format!("f{folder_id}")).await;
    }

    /// Announces new queue rows here and to other nodes.
    pub async fn announce_queue(&self) {
        self.changes.publish_queue();
        self.notify_nodes("q").await;
    }

    async fn notify_nodes(&self, payload: &str) {
        if self.backend != Backend::Postgres {
            return;
        }
        // In the background: the commit's caller (an SMTP 250) must not wait for it.
        let pool = self.pool.clone();
        let payload = payload.to_string();
        tokio::spawn(async move {
            if let Err(e) = sqlx::query("SELECT pg_notify('mes_changes', $1)")
                .bind(payload)
                .execute(&pool)
                .await
            {
                tracing::warn!(error = %e, "change notification to other nodes failed");
            }
        });
    }

    /// After a large commit (deliveries): lets SQLite's WAL be checkpointed
    /// soon, off the writer's path.
    pub(crate) fn wrote(&self) {
        if let Some(c) = &self.checkpointer {
            c.wrote();
        }
    }

    /// The folder change bus of this process.
    pub fn changes(&self) -> &changes::ChangeBus {
        &self.changes
    }

    /// Whether the database answers and every migration this binary knows
    /// is applied (`/readyz`); the reason otherwise, short and without secrets.
    pub async fn readiness(&self) -> Result<(), &'static str> {
        if let Some(file) = &self.file
            && tokio::fs::File::open(file).await.is_err()
        {
            return Err("database file missing or unreadable");
        }
        let applied: Result<i64, sqlx::Error> =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_one(&self.pool)
                .await;
        let known = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.iter().count(),
            Backend::Postgres => POSTGRES_MIGRATIONS.iter().count(),
        };
        match applied {
            Err(_) => Err("database unreachable"),
            Ok(n) if (n as usize) < known => Err("migrations not applied"),
            Ok(_) => Ok(()),
        }
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Waits for in-flight queries and closes every connection (SQLite checkpoints its WAL).
    pub async fn close(&self) {
        for direct in [&self.readers, &self.writer].into_iter().flatten() {
            direct.close().await;
        }
        self.pool.close().await;
    }
}

/// True when `e` is a unique-constraint violation (on either backend).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}
