//! The leak scan's own LDAP connection ([`crate::ldap_wire`]): TCP, then TLS with
//! rustls (`ldaps://`, or StartTLS before the bind), a simple bind, paged subtree
//! searches whose entries are decoded straight into [`ScannedEntry`]s, unbind.
//!
//! Same transport rules as the `ldap3` connection the other operations use: the same
//! certificate roots (the CA file, or the system's), the same timeout for connecting
//! and for every wait on the server, plain LDAP to loopback only (checked when the
//! target is made).

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use secrecy::ExposeSecret as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::LdapTarget;
use crate::ldap::config::LdapSecurity;
use crate::ldap_wire::{
    bind_request, frame_len, parse_message, search_request, starttls_request, unbind_request,
    Response,
};
use crate::scan_page::{wipe, LdapEntries};
use crate::target::{ParseError, TargetError};

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Bytes read from the server per read call, at most.
const READ_CHUNK: usize = 256 << 10;

/// A page of entries is handed over once it holds this many bytes.
const HANDOVER_BYTES: usize = 256 << 10;

/// The first buffer of a page: what is handed over, and room for the entry that crosses
/// [`HANDOVER_BYTES`] (a group of a thousand members is about 50 KiB), so that most
/// pages never grow.
const PAGE_BYTES: usize = HANDOVER_BYTES + (64 << 10);

/// A bound connection for the scan.
pub(super) struct ScanConn<'t> {
    target: &'t LdapTarget,
    io: Box<dyn Io>,
    /// Received bytes; `buf[start..]` is not yet consumed.
    buf: Vec<u8>,
    start: usize,
    next_id: i64,
    /// Entries received so far (numbers those without `entryUUID`).
    entries: usize,
    timeout: Duration,
}

impl Drop for ScanConn<'_> {
    /// The buffer held entries of the target, which may hold a real identity.
    fn drop(&mut self) {
        // Its spare capacity holds nothing: wiped before the buffer shrinks.
        wipe(&mut self.buf);
    }
}

/// `(scheme, host, port)` of an `ldap://` or `ldaps://` URL.
pub(crate) fn host_port(url: &str) -> Option<(&str, &str, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let hostport = rest.split('/').next()?;
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let (host, after) = h.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let default = match scheme {
        "ldap" => 389,
        "ldaps" => 636,
        _ => return None,
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default,
    };
    (!host.is_empty()).then_some((scheme, host, port))
}

impl<'t> ScanConn<'t> {
    /// Connects (and secures) as configured, and binds.
    pub(super) async fn open(target: &'t LdapTarget) -> Result<Self, TargetError> {
        let cfg = &target.cfg;
        let (_, host, port) = host_port(&cfg.url)
            .ok_or_else(|| target.config("the URL is not ldap:// or ldaps://"))?;
        let tcp = tokio::time::timeout(cfg.timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| target.transport("connect", "timeout"))?
            .map_err(|_| target.transport("connect", "I/O"))?;
        let _ = tcp.set_nodelay(true);
        let mut conn = Self {
            target,
            io: Box::new(tcp),
            buf: Vec::new(),
            start: 0,
            next_id: 1,
            entries: 0,
            timeout: cfg.timeout,
        };
        match cfg.security {
            LdapSecurity::Plain => {}
            LdapSecurity::Ldaps => conn.tls(host).await?,
            LdapSecurity::StartTls => {
                let id = conn
                    .send(&starttls_request(conn.next_id), "connect")
                    .await?;
                match conn.receive(id, "connect").await? {
                    Response::Extended { rc: 0 } => {}
                    Response::Extended { rc } => return Err(target.rc("connect", rc)),
                    _ => return Err(target.transport("connect", "protocol")),
                }
                if conn.start != conn.buf.len() {
                    // Bytes after the StartTLS response, before the handshake: refused
                    // (they would be read as if they had come over TLS).
                    return Err(target.transport("connect", "protocol"));
                }
                conn.tls(host).await?;
            }
        }
        let bind = bind_request(
            conn.next_id,
            &cfg.bind_dn,
            cfg.bind_password.expose_secret(),
        );
        let id = conn.send(&bind, "bind").await?;
        drop(bind);
        match conn.receive(id, "bind").await? {
            Response::Bind { rc: 0 } => Ok(conn),
            Response::Bind { rc } => Err(target.rc("bind", rc)),
            _ => Err(target.transport("bind", "protocol")),
        }
    }

    async fn tls(&mut self, host: &str) -> Result<(), TargetError> {
        let t = self.target;
        let config = t.client_tls_config()?;
        let name =
            ServerName::try_from(host.to_string()).map_err(|_| t.transport("connect", "TLS"))?;
        let io = std::mem::replace(&mut self.io, Box::new(tokio::io::empty()));
        let tls = tokio::time::timeout(
            self.timeout,
            tokio_rustls::TlsConnector::from(config).connect(name, io),
        )
        .await
        .map_err(|_| t.transport("connect", "timeout"))?
        .map_err(|_| t.transport("connect", "TLS"))?;
        self.io = Box::new(tls);
        Ok(())
    }

    /// Sends a request built for the next message id; returns that id.
    async fn send(&mut self, msg: &[u8], op: &'static str) -> Result<i64, TargetError> {
        let id = self.next_id;
        self.next_id += 1;
        tokio::time::timeout(self.timeout, async {
            self.io.write_all(msg).await?;
            self.io.flush().await
        })
        .await
        .map_err(|_| self.target.transport(op, "timeout"))?
        .map_err(|_| self.target.transport(op, "I/O"))?;
        Ok(id)
    }

    /// The length of the next whole message in the buffer, reading as needed.
    async fn next_frame(&mut self, op: &'static str) -> Result<usize, TargetError> {
        loop {
            let pending = self.buf.get(self.start..).unwrap_or(&[]);
            if let Some(len) = frame_len(pending).map_err(|e| self.target.parse(op, e))? {
                return Ok(len);
            }
            if self.start > 0 {
                // Move the unread bytes to the front, and wipe what they leave behind.
                let left = self.buf.len() - self.start;
                self.buf.copy_within(self.start.., 0);
                if let Some(tail) = self.buf.get_mut(left..) {
                    wipe(tail);
                }
                self.buf.truncate(left);
                self.start = 0;
            }
            // Into spare capacity (not zero-filled first). Grown by hand, so that the
            // old allocation is wiped before it is freed.
            if self.buf.capacity() - self.buf.len() < READ_CHUNK {
                let room = (self.buf.len() + READ_CHUNK).max(self.buf.capacity() * 2);
                let mut bigger = Vec::with_capacity(room);
                bigger.extend_from_slice(&self.buf);
                wipe(&mut self.buf);
                self.buf = bigger;
            }
            let n = tokio::time::timeout(self.timeout, self.io.read_buf(&mut self.buf))
                .await
                .map_err(|_| self.target.transport(op, "timeout"))?
                .map_err(|_| self.target.transport(op, "I/O"))?;
            if n == 0 {
                return Err(self.target.transport(op, "I/O"));
            }
        }
    }

    /// The response to request `id` (other than search entries).
    async fn receive(
        &mut self,
        id: i64,
        op: &'static str,
    ) -> Result<Response<'static>, TargetError> {
        let len = self.next_frame(op).await?;
        let at = self.start;
        self.start += len;
        let msg = self.buf.get(at..at + len).unwrap_or(&[]);
        let (got, resp) = parse_message(msg).map_err(|e| self.target.parse(op, e))?;
        if got != id {
            // Id 0 is a notice of disconnection; anything else is not ours.
            return Err(self.target.transport(op, "protocol"));
        }
        Ok(match resp {
            Response::Bind { rc } => Response::Bind { rc },
            Response::Extended { rc } => Response::Extended { rc },
            Response::Done { rc, cookie } => Response::Done { rc, cookie },
            Response::Skipped | Response::Entry(_) => {
                return Err(self.target.transport(op, "protocol"))
            }
        })
    }

    /// Every entry under `base` (a subtree search, in pages), handed to `page` in
    /// parts: at the end of each search page, and whenever a part holds
    /// [`HANDOVER_BYTES`]. A base that does not exist gives no entries.
    pub(super) async fn read_base(
        &mut self,
        base: &str,
        page: &mut (dyn FnMut(LdapEntries) + Send),
    ) -> Result<(), TargetError> {
        let t = self.target;
        let mut cookie: Vec<u8> = Vec::new();
        loop {
            let req = search_request(self.next_id, base, t.cfg.page_size, &cookie);
            let id = self.send(&req, "search").await?;
            let mut out = LdapEntries::with_capacity(t.cfg.name.clone(), PAGE_BYTES);
            let (rc, next) = loop {
                let len = self.next_frame("search").await?;
                let at = self.start;
                self.start += len;
                let msg = self.buf.get(at..at + len).unwrap_or(&[]);
                let (got, resp) = parse_message(msg).map_err(|e| t.parse("search", e))?;
                if got != id {
                    return Err(t.transport("search", "protocol"));
                }
                match resp {
                    Response::Entry(body) => {
                        out.push(body, self.entries)
                            .map_err(|e| t.parse("search", e))?;
                        self.entries += 1;
                        // Handed over in parts of about HANDOVER_BYTES, whatever the
                        // search's page size: the matching starts sooner, and the
                        // threads share a run of large entries (groups) at the end.
                        if out.bytes() >= HANDOVER_BYTES {
                            page(std::mem::replace(
                                &mut out,
                                LdapEntries::with_capacity(t.cfg.name.clone(), PAGE_BYTES),
                            ));
                        }
                    }
                    Response::Skipped => {}
                    Response::Done { rc, cookie } => break (rc, cookie),
                    Response::Bind { .. } | Response::Extended { .. } => {
                        return Err(t.transport("search", "protocol"))
                    }
                }
            };
            match rc {
                0 if out.is_empty() => {}
                0 => page(out),
                // noSuchObject: the base does not exist (yet).
                32 => return Ok(()),
                rc => return Err(t.rc("search", rc)),
            }
            match next {
                Some(c) if !c.is_empty() => cookie = c,
                _ => return Ok(()),
            }
        }
    }

    /// Says goodbye (best effort: the scan's result does not depend on it).
    pub(super) async fn unbind(mut self) {
        let req = unbind_request(self.next_id);
        let _ = self.send(&req, "unbind").await;
        let _ = tokio::time::timeout(self.timeout, self.io.shutdown()).await;
    }
}

impl LdapTarget {
    fn transport(&self, op: &'static str, kind: &'static str) -> TargetError {
        TargetError::Transport {
            target: self.cfg.name.clone(),
            op,
            kind,
        }
    }

    pub(super) fn parse(&self, op: &'static str, source: ParseError) -> TargetError {
        TargetError::Parse {
            target: self.cfg.name.clone(),
            op,
            source,
        }
    }

    /// The TLS settings: the configured CA file's certificates, or the system's roots
    /// (what `ldap3` uses without a CA file).
    pub(super) fn client_tls_config(&self) -> Result<Arc<rustls::ClientConfig>, TargetError> {
        if let Some(ca) = &self.cfg.ca_file {
            return Ok(Arc::new(self.tls_config(ca)?));
        }
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(c);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|_| self.config("no usable TLS versions"))?
                .with_root_certificates(roots)
                .with_no_client_auth(),
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::host_port;

    #[test]
    fn urls_give_host_and_port() {
        assert_eq!(
            host_port("ldap://127.0.0.1:3899/"),
            Some(("ldap", "127.0.0.1", 3899))
        );
        assert_eq!(
            host_port("ldaps://dir.example.org"),
            Some(("ldaps", "dir.example.org", 636))
        );
        assert_eq!(
            host_port("ldap://[::1]:10389"),
            Some(("ldap", "::1", 10389))
        );
        assert_eq!(host_port("ldap://[::1]"), Some(("ldap", "::1", 389)));
        assert_eq!(host_port("ldap://h:x/"), None);
        assert_eq!(host_port("http://h/"), None);
        assert_eq!(host_port("ldap:///"), None);
    }
}
