//! The SS 12000 reader against the project's test hub (`fiktiv_tests::TestHub`), whose
//! every answer is validated against the official specification with openapi-core.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod hostile;
mod pages;
mod reader;

use fiktiv_ss12000::{HubAuth, HubConfig, HubReader};
use fiktiv_tests::TestHub;

/// A reader of `hub` with its static bearer token and `page_size`.
pub fn reader(hub: &TestHub, page_size: u32) -> HubReader {
    let mut cfg = HubConfig::new(
        &hub.base_url(),
        HubAuth::Bearer(hub.token().to_owned().into()),
    );
    cfg.page_size = page_size;
    HubReader::new(cfg).expect("reader")
}

/// Progress is ignored.
pub fn quiet() -> impl FnMut(fiktiv_ss12000::Progress) + Send {
    |_| {}
}
