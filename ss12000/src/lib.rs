//! SS 12000 (SS 12000:2020, API version 2.1.0): the school administration system's
//! API, as Fiktiv reads it.
//!
//! - [`config`]: `[ss12000]` in the configuration file.
//! - [`model`]: the entities and fields Fiktiv acts on, typed; the rest kept as the
//!   hub wrote it.
//! - [`page`]: one page of a list answer, read under the rules for untrusted input
//!   (size, item count, shape, a marking on every person).
//! - [`marked`]: a marked person, held in wiping buffers until the vault seals it.
//! - [`reader`]: the hub reader (paging to the end and no further, loops refused,
//!   bearer token or OAuth 2.0 client credentials, TLS with a CA file).
//!
//! This crate writes nothing: what is kept of a read, and how a marked person is
//! linked to a case, is the routine's business (`fiktiv-routine`).

pub mod config;
pub mod marked;
pub mod model;
pub mod page;
pub mod reader;

pub use marked::MarkedPerson;
pub use model::{Deleted, Entity, Marking, Text};
pub use page::{Resource, WireError};
pub use reader::{HubAuth, HubConfig, HubError, HubReader, Progress, Snapshot};
