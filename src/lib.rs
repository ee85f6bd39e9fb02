//! MES: a secure health messaging server for an MSSanté-style trust space.
//!
//! The module tree follows the architecture (see ARCHITECTURE.md): listeners and
//! protocol sessions (`smtp`), policy (`trust`, `identity`), the one delivery path
//! (`delivery`), and storage (`store`).

pub mod access;
pub mod address;
pub mod agenda;
pub mod audit;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cpu_pool;
pub mod delivery;
pub mod directory;
pub mod dossier;
pub mod identity;
pub mod imap;
pub mod keyfile;
pub mod lifecycle;
pub mod listen;
pub mod logging;
pub mod metrics;
pub mod mime;
pub mod pki;
pub mod relay;
pub mod server;
pub mod services;
pub mod smtp;
pub mod store;
pub mod threads;
pub mod tls;
pub mod trust;
pub mod web;
pub mod xml;
