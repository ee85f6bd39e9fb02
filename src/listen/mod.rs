//! What the SMTP, IMAP and HTTPS listeners share, below all of them: the
//! accept loop with its TLS-handshake deadline (`accept.rs`) and the
//! connection limits in all and per client address (`limits.rs`), the PROXY
//! protocol header of a load balancer (`proxy.rs`).

pub mod accept;
pub mod limits;
pub mod proxy;
