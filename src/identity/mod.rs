//! Who is who: account kinds (as stored: `store::kinds`), INS, passwords and SASL
//! authentication.

pub mod activation;
pub mod auth;
pub mod author;
pub mod ins;
pub mod password;
pub mod sasl;
pub mod secret_box;
pub mod throttle;
pub mod totp;

pub use crate::store::kinds::{AccountKind, DomainKind, UnknownKind};
