//! Connections held outside the pool for the hottest statements (SMTP's
//! per-message lookups, IMAP's per-command folder state and changes, the
//! writers' connection), on SQLite only.
//!
//! A pooled statement costs more than the statement: sqlx 0.8 pings every
//! connection when it comes back to the pool (`PoolConnection` drop), and on
//! SQLite each round trip is two thread hops to the connection's own
//! thread. A connection kept here is lent behind a mutex and comes back
//! with no round trip. A SQLite connection is a local file that does not go
//! stale, so nothing needs testing; on PostgreSQL (a network peer that can
//! go away) the pool and its checks are used instead.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::AnyConnection;
use sqlx::any::AnyConnectOptions;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, ConnectOptions};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use super::StoreError;

/// A few connections lent one statement (or transaction) at a time.
#[derive(Debug)]
pub(super) struct Direct {
    slots: Vec<Mutex<Option<AnyConnection>>>,
    next: AtomicUsize,
    options: AnyConnectOptions,
    setup: String,
}

/// A connection from [`Direct`] or, without one, from the pool.
pub(super) enum Lent<'a> {
    /// Held outside the pool: back with no round trip.
    Direct(MappedMutexGuard<'a, AnyConnection>),
    /// The pool's (PostgreSQL): tested on return as usual.
    Pooled(PoolConnection<Any>),
}

impl Direct {
    /// `slots` connections made on first use with `options`, each set up
    /// with `setup` (the pragmas every connection of the pool gets).
    pub(super) fn new(options: AnyConnectOptions, setup: String, slots: usize) -> Direct {
        Direct {
            slots: (0..slots.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            options,
            setup,
        }
    }

    /// A free connection, or the next one in turn once it is free.
    pub(super) async fn lend(&self) -> Result<MappedMutexGuard<'_, AnyConnection>, StoreError> {
        let mut guard = match self.slots.iter().find_map(|s| s.try_lock().ok()) {
            Some(guard) => guard,
            None => {
                let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
                self.slots[i].lock().await
            }
        };
        if guard.is_none() {
            let mut conn = self.options.connect().await?;
            sqlx::Executor::execute(&mut conn, self.setup.as_str()).await?;
            *guard = Some(conn);
        }
        MutexGuard::try_map(guard, Option::as_mut)
            .map_err(|_| StoreError::Corrupt("direct connection slot empty".into()))
    }

    /// Closes every connection (SQLite checkpoints its WAL on the last close).
    pub(super) async fn close(&self) {
        for slot in &self.slots {
            if let Some(conn) = slot.lock().await.take() {
                let _ = sqlx::Connection::close(conn).await;
            }
        }
    }
}

impl Lent<'_> {
    /// From `direct` when there is one, else from `pool`.
    pub(super) async fn from<'a>(
        direct: Option<&'a Direct>,
        pool: &AnyPool,
        use_: &'static str,
    ) -> Result<Lent<'a>, StoreError> {
        let started = std::time::Instant::now();
        let lent = match direct {
            Some(d) => Lent::Direct(d.lend().await?),
            None => Lent::Pooled(pool.acquire().await?),
        };
        crate::metrics::db_acquired(use_, started.elapsed());
        Ok(lent)
    }
}

impl Deref for Lent<'_> {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match self {
            Lent::Direct(c) => c,
            Lent::Pooled(c) => c,
        }
    }
}

impl DerefMut for Lent<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Lent::Direct(c) => c,
            Lent::Pooled(c) => c,
        }
    }
}
