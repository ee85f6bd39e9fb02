//! IMAP: the mailbox server professionals' mail clients use (RFC 3501, parts of
//! RFC 9051 and extensions). imap-next turns bytes into commands and responses
//! into bytes (literals, continuation requests, IDLE, AUTHENTICATE); the
//! [`session::ImapSession`] decides, asking storage and login of a
//! [`storage::Mailstore`] ([`ImapServices`] for real sessions, an in-memory
//! fake in the session's tests); the listener only moves bytes and does TLS.
//!
//! # IMAP4rev2
//!
//! The server announces `IMAP4rev1 IMAP4rev2`; a session is IMAP4rev1 until
//! the client sends `ENABLE IMAP4rev2` (RFC 9051 §2.3, Appendix E). Then:
//!
//! * no `\Recent` in FLAGS, no `* n RECENT` (SELECT, NOOP, IDLE), no
//!   `[UNSEEN n]` in SELECT;
//! * SEARCH is answered with ESEARCH (`ALL` when no RETURN is given), with
//!   `MODSEQ` when a MODSEQ key was used;
//! * SELECT/EXAMINE gives the mailbox's LIST response;
//! * mailbox names are UTF-8 on the wire in both directions (RFC 9051 §5.1,
//!   Appendix E; `names.rs`), quoted when they are not atoms, instead of
//!   modified UTF-7; an IMAP4rev1 session sees the same mailboxes in modified
//!   UTF-7, and UTF-8 from it stays a syntax error (BAD). Names with control
//!   characters are refused. When CREATE or RENAME normalises the name given
//!   (trailing delimiter, INBOX's case), the session gets the mailbox's LIST
//!   response with `OLDNAME` (RFC 9051 §6.3.4, §6.3.6).
//!
//! QRESYNC (RFC 7162) after `ENABLE QRESYNC`: VANISHED instead of EXPUNGE,
//! `SELECT … (QRESYNC (uidvalidity modseq [known-uids]))` and `UID FETCH …
//! (CHANGEDSINCE m VANISHED)`. Expunged UIDs are kept per mailbox
//! (`imap_vanished`, written in the expunge's transaction) for as long as the
//! mailbox exists, so any MODSEQ a client kept can be answered exactly; the
//! optional sequence-match data of SELECT is accepted and not used (RFC 7162
//! lets the server ignore it). Every session gets `[CLOSED]` when a SELECT
//! leaves a mailbox (RFC 7162 §3.2.11, as the server announces CONDSTORE).
//!
//! For every session: BINARY (RFC 3516), STATUS DELETED, DELETED-STORAGE and
//! SIZE (RFC 8438), LIST-STATUS (RFC 5819), SEARCHRES (RFC 5182: `$` is
//! rewritten into the saved numbers before imap-codec parses the command),
//! CHILDREN, SPECIAL-USE, ESEARCH, LIST-EXTENDED, MOVE,
//! UIDPLUS, UNSELECT, NAMESPACE, ENABLE, IDLE, SASL-IR and LITERAL+ (which
//! covers LITERAL-).
//!
//! QUOTA (RFC 9208, `op/quota.rs`): one root `""` per account with the
//! STORAGE and MESSAGE resources it is limited in (`[quota]`, `mes user
//! quota`); GETQUOTAROOT and GETQUOTA, SETQUOTA refused (no QUOTASET);
//! `NO [OVERQUOTA]` for an APPEND or COPY the quota cannot take.
//! MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469, `op/catenate.rs`, URLs
//! to the account's own messages: `url.rs`), parsed around imap-codec
//! (`extend/append.rs`); all the messages of one APPEND are stored together
//! or not at all. A MULTIAPPEND command is bounded as a whole by imap-next's
//! command limit (APPENDLIMIT plus `imap.max_command_line`).
//!
//! Not done, so an IMAP4rev2 client may meet IMAP4rev1 behaviour there:
//!
//! * `UTF8=ACCEPT` (RFC 6855) is neither announced nor enabled: imap-codec
//!   does not parse APPEND's `UTF8 (literal8)` data item, which it requires.
//!   Names are not normalised to NFC.
//! * RECENT/NEW/OLD search keys and STATUS RECENT, gone from IMAP4rev2, are
//!   still answered (from the session's \Recent set) rather than refused.
//! * `\NonExistent` is never returned: subscriptions live on mailbox rows, so
//!   LIST never has a name without its mailbox (the root of `LIST "" ""` is
//!   `\Noselect`).

pub mod extend;
pub mod line;
pub mod listener;
pub mod listing;
pub mod names;
mod op;
pub mod sequence;
pub mod services;
pub mod session;
pub mod storage;
pub mod url;
pub mod utf7;
pub mod wire;

use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::response::Capability;

pub use services::ImapServices;

/// Settings every IMAP session of the server shares (from `[imap]` and
/// `[smtp]` of the configuration file): what the session needs besides its
/// [`storage::Mailstore`].
#[derive(Debug, Clone)]
pub struct ImapConfig {
    /// Our host name (greeting).
    pub hostname: String,
    /// Largest literal (message) accepted: APPENDLIMIT.
    pub max_message_size: usize,
    /// Longest command line outside literals, CRLF included.
    pub max_command_line: usize,
    /// Time from connection to login (`imap.login_timeout_secs`).
    pub login_timeout: std::time::Duration,
    /// Time between two checks of a logged-in session's account, and of an
    /// idling session's folder (`imap.recheck_secs`).
    pub recheck: std::time::Duration,
}

/// The capabilities announced in the current state.
pub fn capabilities(
    tls: bool,
    authenticated: bool,
    external: bool,
    max_message_size: usize,
) -> Vec1<Capability<'static>> {
    let other = |s: &str| Capability::try_from(s.to_string()).ok();
    // IMAP4rev2 is for sessions that ENABLE it (RFC 9051 §2.3); others stay IMAP4rev1.
    let mut caps: Vec<Capability<'static>> = std::iter::once(Capability::Imap4Rev1)
        .chain(other("IMAP4rev2"))
        .collect();
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
        caps.push(Capability::QResync);
    }
    caps.extend(
        [
            "SPECIAL-USE",
            "CHILDREN",
            "ESEARCH",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "SEARCHRES",
            "STATUS=SIZE",
            "MULTIAPPEND",
            "CATENATE",
            "QUOTA",
            "QUOTA=RES-STORAGE",
            "QUOTA=RES-MESSAGE",
        ]
        .into_iter()
        .filter_map(other),
    );
    caps.extend(other(&format!("APPENDLIMIT={max_message_size}")));
    Vec1::try_from(caps).unwrap_or_else(|_| Vec1::from(Capability::Imap4Rev1))
}
