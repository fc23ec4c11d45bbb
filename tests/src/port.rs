//! Free loopback ports.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Mutex, OnceLock};

use anyhow::{bail, Context as _};

/// Ports this process already handed out, so two peers of one test binary never get
/// the same one even if the kernel offers it twice.
fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is found by binding `127.0.0.1:0` and closing the socket again, so another
/// process may in principle take it before the peer binds it; the peers' start-up
/// retries on a fresh port when their log says the address is in use.
pub fn free_port() -> anyhow::Result<u16> {
    for _ in 0..64 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .context("binding 127.0.0.1:0 to find a free port")?;
        let port = listener
            .local_addr()
            .context("reading the port of a bound socket")?
            .port();
        drop(listener);
        let mut ports = handed_out()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if ports.insert(port) {
            return Ok(port);
        }
    }
    bail!("no free port on 127.0.0.1 after 64 tries")
}
