//! Failed-login throttling, shared by SMTP, IMAP, the patient space and the
//! professionals' token: counted in the database (`store/throttle.rs`), so
//! every node of a cluster sees the same counts and a restart forgets nothing.
//!
//! Two counters per attempt: the account *from this IP address* (locked after
//! `smtp.auth_failures_before_lockout`) and the IP address whatever the account
//! (after `smtp.auth_ip_failures_before_lockout`). Failures from one address
//! never lock the account for another address, so a stranger cannot lock a
//! professional out. IPv6 addresses count per /64 (one host usually holds a
//! whole /64). Keys are stored as SHA-256: no address or login in clear.
//! Rows older than `smtp.auth_lockout_secs` are deleted (at most once a minute
//! per node, on a failure).

use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::store::{Store, StoreError};

/// Seconds between two purges of old rows by one node.
const PURGE_EVERY: i64 = 60;

/// The counters one attempt is throttled on (hashed keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    ip: String,
    pair: String,
}

/// Counts failures per (account, IP) and per IP, and locks them out for a while.
#[derive(Debug)]
pub struct Throttle {
    store: Store,
    pair_max: u32,
    ip_max: u32,
    lockout: Duration,
    last_purge: AtomicI64,
}

/// The address a per-IP counter is kept for: IPv4 as is (IPv4-mapped IPv6
/// too), IPv6 by its /64 prefix.
pub fn ip_bucket(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

fn hash(key: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

impl Throttle {
    /// Locks an (account, IP) pair after `pair_max` failures and an IP after
    /// `ip_max` failures, each counted over `lockout` and locked for `lockout`.
    pub fn new(store: Store, pair_max: u32, ip_max: u32, lockout: Duration) -> Throttle {
        Throttle {
            store,
            pair_max: pair_max.max(1),
            ip_max: ip_max.max(1),
            lockout,
            last_purge: AtomicI64::new(0),
        }
    }

    /// The keys of an attempt on `account` (a normalised address, or what was
    /// typed) from `ip`; `scope` separates logins from activation codes.
    pub fn keys(scope: &str, account: &str, ip: IpAddr) -> Keys {
        let ip = ip_bucket(ip);
        Keys {
            pair: hash(&format!("{scope}:{account}|{ip}")),
            ip: hash(&format!("ip:{ip}")),
        }
    }

    fn window(&self) -> i64 {
        self.lockout.as_secs().max(1) as i64
    }

    /// True while the pair or the IP address of `keys` is locked out.
    pub async fn is_locked(&self, keys: &Keys) -> Result<bool, StoreError> {
        self.store.throttle_locked(&[&keys.pair, &keys.ip]).await
    }

    /// Records a failure; returns true if the pair or the address is now
    /// locked out. A store failure is logged and counts as not locked.
    pub async fn failure(&self, keys: &Keys) -> bool {
        let window = self.window();
        let pair = self
            .store
            .throttle_failure(&keys.pair, i64::from(self.pair_max), window)
            .await;
        let ip = self
            .store
            .throttle_failure(&keys.ip, i64::from(self.ip_max), window)
            .await;
        self.purge_now_and_then().await;
        match (pair, ip) {
            (Ok(a), Ok(b)) => a || b,
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "login failure not counted");
                false
            }
        }
    }

    /// Forgets the pair's failures after a successful login (the address's
    /// count stays: one good password does not excuse guessing others).
    pub async fn success(&self, keys: &Keys) {
        if let Err(e) = self.store.throttle_forget(&keys.pair).await {
            tracing::warn!(error = %e, "login failures not forgotten");
        }
    }

    async fn purge_now_and_then(&self) {
        let t = self.store.now();
        let last = self.last_purge.load(Ordering::Relaxed);
        if t - last < PURGE_EVERY
            || self
                .last_purge
                .compare_exchange(last, t, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        match self.store.throttle_purge(self.window()).await {
            Ok(n) if n > 0 => tracing::debug!(rows = n, "old login failures deleted"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "login failures not purged"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_bucket(a), ip_bucket(b));
        assert_ne!(ip_bucket(a), ip_bucket(c));
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        assert_eq!(ip_bucket(mapped), "127.0.0.2");
    }

    #[test]
    fn keys_separate_addresses_accounts_and_scopes() {
        let one: IpAddr = "127.0.0.1".parse().unwrap();
        let two: IpAddr = "127.0.0.2".parse().unwrap();
        let k = Throttle::keys("login", "jean@a.test", one);
        assert_ne!(k.pair, Throttle::keys("login", "jean@a.test", two).pair);
        assert_ne!(k.pair, Throttle::keys("login", "marie@a.test", one).pair);
        assert_ne!(
            k.pair,
            Throttle::keys("activation", "jean@a.test", one).pair
        );
        assert_eq!(k.ip, Throttle::keys("activation", "marie@a.test", one).ip);
        assert!(!k.pair.contains("jean"), "hashed");
    }

    /// Lockout and its window follow the store's clock: tested by moving a
    /// manual clock, not by sleeping.
    #[tokio::test]
    async fn lockout_ends_and_counts_restart_by_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let clock = std::sync::Arc::new(crate::clock::ManualClock::new(1_800_000_000));
        let store = Store::open(&url, 2)
            .await
            .unwrap()
            .with_clock(clock.clone());
        let throttle = Throttle::new(store, 3, 100, Duration::from_secs(300));
        let keys = Throttle::keys("login", "jean@a.test", "127.0.0.1".parse().unwrap());
        assert!(!throttle.failure(&keys).await);
        assert!(!throttle.failure(&keys).await);
        assert!(throttle.failure(&keys).await, "third failure locks");
        clock.advance(299);
        assert!(throttle.is_locked(&keys).await.unwrap());
        clock.advance(2);
        assert!(!throttle.is_locked(&keys).await.unwrap(), "lockout over");
        // Failures older than the window no longer count.
        clock.advance(301);
        assert!(!throttle.failure(&keys).await);
        assert!(!throttle.failure(&keys).await);
        clock.advance(301);
        assert!(!throttle.failure(&keys).await, "the count restarted");
        assert!(!throttle.is_locked(&keys).await.unwrap());
    }
}
