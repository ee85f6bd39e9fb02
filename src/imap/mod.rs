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
//! CHILDREN, SPECIAL-USE, ESEARCH (with CONDSTORE, the MODSEQ of the messages
//! MIN/MAX report, RFC 7162 §3.1.5), LIST-EXTENDED (several patterns,
//! SUBSCRIBED, REMOTE, RECURSIVEMATCH with CHILDINFO, SPECIAL-USE; RETURN
//! SUBSCRIBED, CHILDREN, SPECIAL-USE, STATUS), MOVE, UIDPLUS, UNSELECT,
//! NAMESPACE, ENABLE, IDLE, SASL-IR and LITERAL+ (which covers LITERAL-).
//! CONDSTORE: the first enabling command (FETCH MODSEQ or CHANGEDSINCE, SEARCH
//! MODSEQ, STORE UNCHANGEDSINCE, STATUS HIGHESTMODSEQ, ENABLE) with a mailbox
//! selected carries `[HIGHESTMODSEQ n]` in its tagged OK (untagged when the
//! tagged OK holds `[MODIFIED]`; Dovecot always sends it untagged).
//!
//! After login, COMPRESS=DEFLATE (RFC 4978): `COMPRESS DEFLATE` is answered
//! OK once per connection (then `NO [COMPRESSIONACTIVE]`); the OK goes out
//! uncompressed and everything after it, both ways, is raw DEFLATE. The
//! session only says when ([`session::Action::Compress`]) and hands back the
//! input it had not read; the listener compresses and inflates (`compress.rs`),
//! each response burst ending in a sync flush, the inflated input bounded as
//! uncompressed input is.
//!
//! UTF8=ACCEPT (RFC 6855) after `ENABLE UTF8=ACCEPT`: mailbox names are UTF-8
//! on the wire both ways, as after `ENABLE IMAP4rev2` (without its other
//! changes), and APPEND takes the `UTF8 (~{n}…)` data item (rewritten in
//! `extend.rs`; BAD before the ENABLE). Messages are stored and served as
//! they came, UTF-8 header fields included, to every session (no downgrade
//! for sessions that did not enable it).
//! SORT with SORT=DISPLAY (RFC 5256, RFC 5957), THREAD=ORDEREDSUBJECT and
//! THREAD=REFERENCES (RFC 5256), ESORT and CONTEXT=SEARCH (RFC 5267: RETURN
//! MIN/MAX/ALL/COUNT/PARTIAL/SAVE/UPDATE on SEARCH and SORT, ADDTO and
//! REMOVEFROM, CANCELUPDATE), as Dovecot 2.3 answers them (`sort/`,
//! `op/sort.rs`, `op/context.rs`). CONTEXT=SORT is not announced: as in
//! Dovecot, updates of a sorted result give no position (always 0). SORT and
//! THREAD compare strings with i;unicode-casemap, as Dovecot does (it
//! announces I18NLEVEL=1); we do not announce I18NLEVEL, whose rules also
//! cover SEARCH, which matches by Unicode lower case. On ASCII, this is the
//! i;ascii-casemap RFC 5256 names.
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
//! * Names are not normalised to NFC. `SEARCH CHARSET …` is still accepted
//!   after `ENABLE UTF8=ACCEPT`, where RFC 6855 §3 says the server SHOULD
//!   answer BAD (kept lenient for clients that send `CHARSET UTF-8`).
//! * RECENT/NEW/OLD search keys and STATUS RECENT, gone from IMAP4rev2, are
//!   still answered (from the session's \Recent set) rather than refused.
//! * Subscriptions live on mailbox rows, so a subscribed name always has its
//!   mailbox. A level of the hierarchy whose mailbox was deleted (children
//!   outlive their parent) is listed `\Noselect \HasChildren`, or
//!   `\NonExistent` with the extended LIST syntax (RFC 5258 §3.4); LSUB gives
//!   an unsubscribed level above a subscribed mailbox as `\Noselect`.
//! * The extended LIST syntax takes no literal (imap-codec parses no extended
//!   LIST: `extend.rs` rewrites the line, which it does not do with literals).

pub mod compress;
pub mod extend;
pub mod hierarchy;
pub mod line;
pub mod listener;
pub mod listing;
pub mod names;
mod op;
pub mod sequence;
pub mod services;
pub mod session;
pub mod sort;
pub mod storage;
pub mod url;
pub mod utf7;
pub mod wire;

use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::extensions::compress::CompressionAlgorithm;
use imap_codec::imap_types::extensions::utf8::Utf8Kind;
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
        caps.push(Capability::Compress {
            algorithm: CompressionAlgorithm::Deflate,
        });
        caps.push(Capability::Utf8(Utf8Kind::Accept));
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
            "SORT",
            "SORT=DISPLAY",
            "THREAD=ORDEREDSUBJECT",
            "THREAD=REFERENCES",
            "ESORT",
            "CONTEXT=SEARCH",
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
