//! The store of staff identity (`fiktiv-staff`): one module per group of tables. Staff
//! decides (passwords, TOTP, sessions' timeouts, tokens' secrets, OpenID Connect
//! flows); the rows are read and written here. Nothing here holds a secret in the
//! clear: tokens and session cookies are stored as their SHA-256, TOTP secrets sealed.

pub mod accounts;
pub mod oidc_flows;
pub mod sessions;
pub mod tokens;
