//! The catalogue of referenced health services (issue 22): the fixed list of
//! scopes and their French wording for the consent screen (`scope.rs`), what
//! a service entry must be to be referenced (`catalogue.rs`), PKCE and token
//! values (`pkce.rs`), the periodic connected-services notice
//! (`notice.rs`) and the notifications services send (`notify.rs`). The OAuth endpoints and the data API are in `web/`; the
//! rows in `store/services.rs`.

pub mod catalogue;
pub mod notice;
pub mod notify;
pub mod pkce;
pub mod scope;

/// Seconds an authorization code lives.
pub const CODE_SECS: i64 = 60;
/// Seconds an access token lives.
pub const ACCESS_SECS: i64 = 3600;
/// Seconds a refresh token lives (rotated at each use).
pub const REFRESH_SECS: i64 = 30 * 24 * 3600;
