//! Failed-login throttling, per IP address and per account, shared by SMTP and IMAP.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys remembered; older entries are dropped first when full.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// Counts failures per key (`ip:…`, `account:…`) and locks a key out for a while.
#[derive(Debug)]
pub struct Throttle {
    max_failures: u32,
    lockout: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Throttle {
    /// Locks a key for `lockout` after `max_failures` failures within that time.
    pub fn new(max_failures: u32, lockout: Duration) -> Throttle {
        Throttle {
            max_failures: max_failures.max(1),
            lockout,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// True while `key` is locked out.
    pub fn is_locked(&self, key: &str) -> bool {
        let now = Instant::now();
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .and_then(|e| e.locked_until)
            .is_some_and(|until| until > now)
    }

    /// Records a failure; returns true if `key` is now locked out.
    pub fn failure(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            let lockout = self.lockout;
            map.retain(|_, e| now.duration_since(e.last) < lockout);
            if map.len() >= MAX_KEYS {
                // Full of recent keys: forget the ones not locked, never a lockout.
                map.retain(|_, e| e.locked_until.is_some_and(|until| until > now));
            }
        }
        let e = map.entry(key.to_string()).or_insert(Entry {
            failures: 0,
            last: now,
            locked_until: None,
        });
        if now.duration_since(e.last) > self.lockout {
            e.failures = 0;
            e.locked_until = None;
        }
        e.failures += 1;
        e.last = now;
        if e.failures >= self.max_failures {
            e.locked_until = Some(now + self.lockout);
            true
        } else {
            false
        }
    }

    /// Forgets the failures of `key` after a successful login.
    pub fn success(&self, key: &str) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures_and_success_resets() {
        let t = Throttle::new(3, Duration::from_secs(60));
        assert!(!t.failure("ip:1"));
        assert!(!t.failure("ip:1"));
        assert!(!t.is_locked("ip:1"));
        assert!(t.failure("ip:1"));
        assert!(t.is_locked("ip:1"));
        assert!(!t.is_locked("ip:2"));
        t.success("ip:1");
        assert!(!t.is_locked("ip:1"));
    }
}
