//! What the API and the web UI share, below both and above the domain: the
//! configuration (`config`), the context built from it at start-up (keys, database,
//! vault, authorizer, rules, delivery: `context`), the one handler state (`state`), and
//! what a signed-in person is shown whichever way they come: their tasks (`tasks`),
//! notifications (`notify`), the SS 12000 hub reads (`hub`), `/metrics` (`metrics`),
//! the API's rate limits (`limits`) and the messages in Swedish, Norwegian and English
//! (`i18n`). No transport lives here: no router, no handler, no template, and no SQL
//! (that is the vault's and the routine's).

pub mod cluster;
pub mod config;
pub mod context;
pub mod hub;
pub mod i18n;
pub mod limits;
pub mod metrics;
pub mod notify;
pub mod state;
pub mod tasks;

pub use state::AppState;
