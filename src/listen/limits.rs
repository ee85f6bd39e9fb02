//! Connection limits, in all and per client IP address; each slot taken is
//! also an open session in the metrics (`mes_sessions_open`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts open connections; [`ConnectionLimits::acquire`] refuses past the limits.
#[derive(Debug)]
pub struct ConnectionLimits {
    protocol: &'static str,
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// An open connection; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnectionGuard {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
    _session: crate::metrics::SessionGauge,
}

impl ConnectionLimits {
    /// Limits of `max_total` connections, `max_per_ip` from one address, for
    /// the listeners of `protocol` (`smtp`, `imap`, `https`: the metrics label).
    pub fn new(
        protocol: &'static str,
        max_total: usize,
        max_per_ip: usize,
    ) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits {
            protocol,
            max_total,
            max_per_ip,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    /// Takes a slot for `ip`, or None when a limit is reached.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionGuard> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let per_ip = open.1.get(&ip).copied().unwrap_or(0);
        if open.0 >= self.max_total || per_ip >= self.max_per_ip {
            return None;
        }
        open.0 += 1;
        open.1.insert(ip, per_ip + 1);
        Some(ConnectionGuard {
            limits: self.clone(),
            ip,
            _session: crate::metrics::session_opened(self.protocol),
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).0
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|p| p.into_inner());
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_and_total_limits() {
        let l = ConnectionLimits::new("smtp", 3, 2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let g1 = l.acquire(a).unwrap();
        let _g2 = l.acquire(a).unwrap();
        assert!(l.acquire(a).is_none());
        let _g3 = l.acquire(b).unwrap();
        assert!(l.acquire(b).is_none());
        drop(g1);
        let _g4 = l.acquire(a).expect("a slot was freed");
        assert_eq!(l.open(), 3);
    }
}
