//! SMTP: the session state machine (bytes in, replies out, no sockets), the
//! inbound policy it consults, and the listeners that move bytes.
//!
//! Three listeners share this code: MX (other operators and relaying hospital
//! systems, mutual TLS), submission with STARTTLS and submission over implicit TLS.

pub mod listener;
pub mod policy;
pub mod reply;
pub mod session;

pub use reply::Reply;
pub use session::{Action, Session, SessionConfig};

/// Which listener a session belongs to: it decides authentication and recipients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Port 25: peers identified by client certificate; local recipients only.
    Mx,
    /// Ports 587/465: accounts authenticate; local or remote trust-space recipients.
    Submission,
}

impl Mode {
    /// The name used in logs and in the stored message's origin.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Mx => "mx",
            Mode::Submission => "submission",
        }
    }
}
