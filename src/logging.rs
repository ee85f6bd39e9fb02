//! Logging with tracing: text by default, JSON for collectors. Callers log
//! addresses and identifiers, never message content or passwords.
//!
//! In JSON, each line is one object with `timestamp`, `level`, `target`,
//! the event's fields at the top level (`message` included), and `spans`:
//! the connection's span (`smtp`, `imap` or `https`, with `session`, `peer`
//! and the SMTP `listener`), so a collector filters by protocol, session or
//! remote address. The lines `mes serve` prints on standard output for
//! supervisors (listening addresses, ready) are JSON objects too then.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Whether the configured format is JSON (for [`announce`]).
static JSON: AtomicBool = AtomicBool::new(false);

/// Installs the global subscriber (RUST_LOG overrides the configured level).
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => {
            JSON.store(true, Ordering::Relaxed);
            builder
                .with_ansi(false)
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(true)
                .try_init()
        }
    };
}

/// Prints a line for supervisors and tests on standard output: `mes: WHAT
/// DETAIL…` in text, `{"mes":"WHAT","name":…,"address":…}` in JSON.
pub fn announce(what: &str, listener: Option<(&str, std::net::SocketAddr)>) {
    if JSON.load(Ordering::Relaxed) {
        let line = match listener {
            Some((name, addr)) => serde_json::json!({
                "mes": what,
                "listener": name,
                "address": addr.to_string(),
            }),
            None => serde_json::json!({ "mes": what }),
        };
        println!("{line}");
    } else {
        match listener {
            Some((name, addr)) => println!("mes: {what} {name} {addr}"),
            None => println!("mes: {what}"),
        }
    }
}
