//! IMAP: the mailbox server professionals' mail clients use (RFC 3501, parts of
//! RFC 9051 and extensions). imap-next turns bytes into commands and responses
//! into bytes (literals, continuation requests, IDLE, AUTHENTICATE); the
//! [`session::ImapSession`] decides, over the shared store; the listener only
//! moves bytes and does TLS.

pub mod extend;
pub mod fetch;
pub mod line;
pub mod listener;
pub mod mailbox;
pub mod message;
pub mod names;
pub mod search;
pub mod sequence;
pub mod session;
pub mod structure;

use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::response::Capability;

use crate::delivery::Deliverer;
use crate::identity::auth::Authenticator;
use crate::store::Store;

/// What every IMAP session of the server shares.
#[derive(Debug)]
pub struct ImapServices {
    /// Our host name (greeting).
    pub hostname: String,
    /// The store.
    pub store: Store,
    /// Password and certificate logins.
    pub auth: Authenticator,
    /// The delivery path (APPEND stores through it).
    pub deliverer: Deliverer,
    /// Largest literal (message) accepted: APPENDLIMIT.
    pub max_message_size: usize,
    /// Longest command line outside literals, CRLF included.
    pub max_command_line: usize,
}

/// The capabilities announced in the current state.
pub fn capabilities(
    tls: bool,
    authenticated: bool,
    external: bool,
    max_message_size: usize,
) -> Vec1<Capability<'static>> {
    let mut caps = vec![Capability::Imap4Rev1];
    let other = |s: &str| Capability::try_from(s.to_string()).ok();
    if !tls {
        caps.push(Capability::StartTls);
        caps.push(Capability::LoginDisabled);
    } else if !authenticated {
        caps.push(Capability::Auth(AuthMechanism::Plain));
        if external && let Ok(m) = AuthMechanism::try_from("EXTERNAL") {
            caps.push(Capability::Auth(m));
        }
        caps.push(Capability::SaslIr);
    }
    caps.extend([
        Capability::LiteralPlus,
        Capability::Idle,
        Capability::Enable,
        Capability::Unselect,
        Capability::UidPlus,
        Capability::Move,
        Capability::Namespace,
        Capability::Id,
        Capability::Binary,
    ]);
    if authenticated {
        caps.push(Capability::CondStore);
    }
    caps.extend(
        ["SPECIAL-USE", "CHILDREN", "ESEARCH", "LIST-EXTENDED"]
            .into_iter()
            .filter_map(other),
    );
    caps.extend(other(&format!("APPENDLIMIT={max_message_size}")));
    Vec1::try_from(caps).unwrap_or_else(|_| Vec1::from(Capability::Imap4Rev1))
}
