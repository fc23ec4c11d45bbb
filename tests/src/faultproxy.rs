//! A fault-injecting proxy in front of a peer: connection drops, cut responses, slow
//! responses, refused connections and (for HTTP peers) injected 5xx and 429 answers.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use fiktiv_tests::{Fault, FaultProxy, ScimServer, Slapd};
//! let slapd = Slapd::start()?;
//! let ldap = FaultProxy::for_slapd(&slapd)?;     // plain TCP
//! ldap.url_for("ldap");                          // ldap://127.0.0.1:PORT
//! ldap.set(Fault::DropConnections)?;             // also closes open connections
//! ldap.clear()?;
//!
//! let scim = ScimServer::start()?;
//! let http = FaultProxy::for_scim(&scim)?;       // HTTP/1.1-aware
//! http.set_times(Fault::status(503), 2)?;        // the next 2 requests get 503
//! http.set(Fault::too_many_requests(3))?;        // every request: 429 + Retry-After: 3
//! let _wire: Vec<u8> = http.recorded_to_upstream(); // what the client sent
//! # Ok(()) }
//! ```
//!
//! The proxy listens on a free port of 127.0.0.1 and runs on its own thread with its
//! own single-threaded tokio runtime, so it works the same from sync tests and from
//! inside `#[tokio::test]`. Dropping it closes the port and every connection and ends
//! the thread.
//!
//! The fault is read at every step (accept, each request, each chunk), so changing it
//! affects connections that are already open, such as a client's pooled connections.
//! [`FaultProxy::set`] is synchronous: when it returns, the new fault is in force (for
//! [`Fault::DropConnections`] and [`Fault::Refuse`], open connections are closed and,
//! for `Refuse`, the port no longer listens).
//!
//! The port is never given up, not even while refusing: the listening socket is
//! replaced by a socket that is bound but does not listen, so the kernel refuses
//! connections and [`FaultProxy::clear`] listens again on the same port.
//!
//! Every byte is recorded (up to 256 MiB, see [`FaultProxy::recording_truncated`]),
//! grouped per connection and direction, so anything a client sent in one stream is
//! contiguous in [`FaultProxy::recorded_to_upstream`] even when connections interleave.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::os::fd::AsFd as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite,
    AsyncWriteExt as _, BufReader,
};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::{ScimServer, Slapd};

/// The longest [`Fault::Delay`] accepted: a stuck test should fail, not hang.
pub const MAX_DELAY: Duration = Duration::from_secs(120);

/// How many bytes [`FaultProxy`] records at most, both directions together.
pub const RECORDING_CAP: usize = 256 << 20;

/// How long a connection to the upstream may take before the client is dropped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`FaultProxy::set`] waits for the proxy thread to close or reopen its port.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest HTTP request head (request line and headers) the proxy parses.
const MAX_HEAD: u64 = 64 * 1024;

/// The size of the read buffer of each direction of a connection.
const CHUNK: usize = 16 * 1024;

/// A fault the proxy injects. See [`FaultProxy::set`] and [`FaultProxy::set_times`].
///
/// "One injection" is the unit [`ProxyStats::faults_injected`] counts and
/// [`FaultProxy::set_times`] limits; it is given for each variant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Fault {
    /// Forward everything unchanged.
    #[default]
    None,
    /// Accept each connection and close it at once, before anything is forwarded.
    /// Setting it also closes every open connection (counted in
    /// [`ProxyStats::connections_cut`]). One injection: one new connection closed.
    DropConnections,
    /// Forward at most this many bytes of the upstream's answer, then close the
    /// connection (both sides) when more arrives. Plain TCP: counted per connection
    /// from when the fault was set or the connection opened, whichever is later. HTTP:
    /// counted from each request, so it cuts each response that is longer. The
    /// upstream did get (and act on) the request. One injection: one cut.
    DropAfterBytes(u64),
    /// Hold the upstream's answer back this long (at most [`MAX_DELAY`]). Plain TCP:
    /// every chunk the upstream sends is held (one injection each). HTTP: the start
    /// of each response is held (one injection per request); setting or clearing the
    /// fault releases the responses held so far at once, so a test can hold a peer's
    /// answers for as long as it needs and no longer.
    Delay(Duration),
    /// Stop listening: connections are refused (`ECONNREFUSED`), and open connections
    /// are closed ([`ProxyStats::connections_cut`]), as if the peer went down. The port
    /// stays reserved; [`FaultProxy::clear`] or any other fault listens again on the same
    /// port. Refused connections never reach the proxy, so they are not counted. Not
    /// allowed with `set_times`.
    Refuse,
    /// HTTP proxies only: answer every `every_nth` request (the n-th, 2n-th, ... since
    /// the fault was set; 1 means every request) with `status` (400..=599) and a SCIM
    /// error body, without forwarding it, then close the connection
    /// (`Connection: close`). `retry_after` adds `Retry-After: <seconds>`. The request
    /// is still read in full (and recorded). One injection: one answered request.
    HttpStatus {
        status: u16,
        every_nth: u32,
        retry_after: Option<u32>,
    },
}

impl Fault {
    /// Every request answered with `status` (e.g. 500, 502, 503), no `Retry-After`.
    pub fn status(status: u16) -> Self {
        Fault::HttpStatus {
            status,
            every_nth: 1,
            retry_after: None,
        }
    }

    /// Every request answered with 429 Too Many Requests and `Retry-After: seconds`.
    pub fn too_many_requests(retry_after_seconds: u32) -> Self {
        Fault::HttpStatus {
            status: 429,
            every_nth: 1,
            retry_after: Some(retry_after_seconds),
        }
    }
}

/// Counters of a [`FaultProxy`] since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProxyStats {
    /// TCP connections accepted from clients (dropped ones included).
    pub connections_accepted: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// HTTP requests whose head was read (HTTP proxies only; injected ones included).
    pub requests_seen: u64,
    /// Faults the proxy injected into traffic (see each [`Fault`] for the unit).
    pub faults_injected: u64,
    /// Open connections closed because [`Fault::DropConnections`] or [`Fault::Refuse`]
    /// was set. Kept apart from `faults_injected` because it can include a connection
    /// whose client was closing it anyway at that moment.
    pub connections_cut: u64,
    /// Connections dropped because the upstream did not accept a connection (within
    /// 10 s). Not an injected fault: the upstream itself was down.
    pub upstream_connect_failures: u64,
}

/// Whether the proxy understands HTTP/1.1 requests or forwards opaque bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Tcp,
    Http,
}

/// A fault-injecting proxy on 127.0.0.1 in front of one upstream. See the module docs.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    commands: tokio::sync::mpsc::UnboundedSender<Command>,
    /// Serialises [`FaultProxy::set`] calls (listener changes and state together).
    control: Mutex<()>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .field("protocol", &self.shared.protocol)
            .field("fault", &self.fault())
            .field("stats", &self.stats())
            .finish()
    }
}

impl FaultProxy {
    /// A proxy that forwards opaque bytes to `upstream` (LDAP, or anything on TCP).
    pub fn tcp(upstream: SocketAddr) -> anyhow::Result<Self> {
        Self::start(upstream, Protocol::Tcp)
    }

    /// A proxy that understands HTTP/1.1 requests to `upstream`, so that it can count
    /// them and answer some itself ([`Fault::HttpStatus`]).
    pub fn http(upstream: SocketAddr) -> anyhow::Result<Self> {
        Self::start(upstream, Protocol::Http)
    }

    /// A TCP proxy in front of `slapd`.
    pub fn for_slapd(slapd: &Slapd) -> anyhow::Result<Self> {
        Self::tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, slapd.port())))
    }

    /// An HTTP proxy in front of `scim`. Its SCIM base URL is
    /// `format!("{}/v2", proxy.url_for("http"))`.
    pub fn for_scim(scim: &ScimServer) -> anyhow::Result<Self> {
        Self::http(SocketAddr::from((Ipv4Addr::LOCALHOST, scim.port())))
    }

    fn start(upstream: SocketAddr, protocol: Protocol) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared::new(upstream, protocol));
        let (commands, command_rx) = tokio::sync::mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread_shared = Arc::clone(&shared);
        let mut thread = Some(
            std::thread::Builder::new()
                .name("fiktiv-faultproxy".to_owned())
                .spawn(move || run(thread_shared, command_rx, ready_tx))
                .context("spawning the fault proxy thread")?,
        );
        let addr = match ready_rx.recv_timeout(CONTROL_TIMEOUT) {
            Ok(Ok(addr)) => addr,
            failed => {
                // The thread ends by itself once `commands` is gone; wait for it only if
                // it said something (otherwise it may be stuck, and is left behind).
                drop(commands);
                if let (Ok(_), Some(thread)) = (&failed, thread.take()) {
                    let _ = thread.join();
                }
                return Err(match failed {
                    Ok(Err(e)) => e.context("starting the fault proxy"),
                    _ => anyhow!("the fault proxy thread did not start"),
                });
            }
        };
        Ok(FaultProxy {
            addr,
            shared,
            commands,
            control: Mutex::new(()),
            thread,
        })
    }

    /// The address clients connect to: 127.0.0.1 and the proxy's port.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's port on 127.0.0.1 (the same for the proxy's whole life).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address the proxy forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// `SCHEME://127.0.0.1:PORT`, with no trailing slash: `url_for("ldap")`,
    /// `url_for("http") + "/v2"`.
    pub fn url_for(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.addr)
    }

    /// The fault in force now ([`Fault::None`] once a [`Self::set_times`] budget is used).
    pub fn fault(&self) -> Fault {
        lock(&self.shared.state).fault.clone()
    }

    /// Injects `fault` until it is changed. When this returns, it is in force.
    ///
    /// Errors if the fault does not fit this proxy ([`Fault::HttpStatus`] on a TCP
    /// proxy, a status outside 400..=599, `every_nth` 0, a delay over [`MAX_DELAY`]) or
    /// if the port could not be closed or reopened.
    pub fn set(&self, fault: Fault) -> anyhow::Result<()> {
        self.apply(fault, None)
    }

    /// Injects `fault` for its next `times` injections (see [`Fault`] for the unit),
    /// then goes back to [`Fault::None`] by itself. For example
    /// `set_times(Fault::status(503), 2)` answers the next two requests with 503.
    pub fn set_times(&self, fault: Fault, times: u32) -> anyhow::Result<()> {
        if times == 0 {
            bail!("set_times needs at least 1 (use clear() for none)");
        }
        if fault == Fault::Refuse {
            bail!("Fault::Refuse has no count: set(Fault::Refuse) and clear() it");
        }
        self.apply(fault, Some(times))
    }

    /// Back to [`Fault::None`]: everything is forwarded, and the port listens again.
    pub fn clear(&self) -> anyhow::Result<()> {
        self.apply(Fault::None, None)
    }

    fn apply(&self, fault: Fault, times: Option<u32>) -> anyhow::Result<()> {
        self.validate(&fault)?;
        let _control = lock(&self.control);
        let refusing = lock(&self.shared.state).fault == Fault::Refuse;
        let refuse = fault == Fault::Refuse;
        if refusing && !refuse {
            // Listen first: if the port cannot be reopened, the fault stays Refuse.
            self.command(Command::Listen)
                .context("listening again on the fault proxy's port")?;
        }
        {
            let mut state = lock(&self.shared.state);
            state.fault = fault.clone();
            state.remaining = times;
            state.epoch += 1;
            state.requests = 0;
        }
        self.shared.released.send_modify(|n| *n += 1);
        if refuse && !refusing {
            // The state says Refuse first, so a connection accepted meanwhile is dropped.
            self.command(Command::Refuse)
                .context("closing the fault proxy's listener")?;
        }
        if matches!(fault, Fault::DropConnections | Fault::Refuse) {
            let closed = self.shared.kill_all();
            self.shared
                .connections_cut
                .fetch_add(closed, Ordering::SeqCst);
        }
        Ok(())
    }

    fn validate(&self, fault: &Fault) -> anyhow::Result<()> {
        match fault {
            Fault::Delay(d) if *d > MAX_DELAY => {
                bail!("a delay of {d:?} is over the bound of {MAX_DELAY:?}")
            }
            Fault::HttpStatus { .. } if self.shared.protocol != Protocol::Http => {
                bail!("Fault::HttpStatus needs an HTTP proxy (FaultProxy::http), not a TCP one")
            }
            Fault::HttpStatus { status, .. } if !(400..=599).contains(status) => {
                bail!("Fault::HttpStatus status {status} is not an error status (400..=599)")
            }
            Fault::HttpStatus { every_nth: 0, .. } => {
                bail!("Fault::HttpStatus every_nth must be at least 1")
            }
            _ => Ok(()),
        }
    }

    /// Sends a listener command to the proxy thread and waits for its answer.
    fn command(&self, make: fn(mpsc::Sender<io::Result<()>>) -> Command) -> anyhow::Result<()> {
        let (ack, answer) = mpsc::channel();
        self.commands
            .send(make(ack))
            .map_err(|_| anyhow!("the fault proxy thread has stopped"))?;
        match answer.recv_timeout(CONTROL_TIMEOUT) {
            Ok(result) => Ok(result?),
            Err(_) => bail!("the fault proxy thread did not answer"),
        }
    }

    /// The counters now.
    pub fn stats(&self) -> ProxyStats {
        let s = &self.shared;
        ProxyStats {
            connections_accepted: s.connections_accepted.load(Ordering::SeqCst),
            connections_open: lock(&s.conns).len() as u64,
            requests_seen: s.requests_seen.load(Ordering::SeqCst),
            faults_injected: s.faults_injected.load(Ordering::SeqCst),
            connections_cut: s.connections_cut.load(Ordering::SeqCst),
            upstream_connect_failures: s.upstream_connect_failures.load(Ordering::SeqCst),
        }
    }

    /// Every recorded byte: for each connection in the order they were accepted, what
    /// the client sent, then what the upstream sent.
    pub fn recorded(&self) -> Vec<u8> {
        self.collect(|(to, from)| [to.as_slice(), from.as_slice()])
    }

    /// Everything clients sent towards the upstream, per connection in order. This
    /// includes requests the proxy answered itself ([`Fault::HttpStatus`]) or dropped:
    /// they were on the wire to the target.
    pub fn recorded_to_upstream(&self) -> Vec<u8> {
        self.collect(|(to, _)| [to.as_slice(), &[]])
    }

    /// Everything the upstream sent, per connection in order (including bytes that a
    /// [`Fault::DropAfterBytes`] cut kept from the client). Injected answers are not in it.
    pub fn recorded_from_upstream(&self) -> Vec<u8> {
        self.collect(|(_, from)| [&[], from.as_slice()])
    }

    fn collect(&self, parts: impl Fn(&(Vec<u8>, Vec<u8>)) -> [&[u8]; 2]) -> Vec<u8> {
        let recording = lock(&self.shared.recording);
        let mut out = Vec::new();
        for conn in recording.conns.values() {
            for part in parts(conn) {
                out.extend_from_slice(part);
            }
        }
        out
    }

    /// Whether some bytes were not recorded because the [`RECORDING_CAP`] was reached.
    /// A leak scan of the recording must check this is `false`.
    pub fn recording_truncated(&self) -> bool {
        lock(&self.shared.recording).truncated
    }

    /// Forgets everything recorded so far (and the truncation flag).
    pub fn reset_recording(&self) {
        *lock(&self.shared.recording) = Recording::default();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
        self.shared.kill_all();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                eprintln!(
                    "fiktiv-tests: the fault proxy thread on {} failed",
                    self.addr
                );
            }
        }
    }
}

/// A request to the proxy thread about its listening socket.
enum Command {
    /// Close the listener, keep the port bound; answer when done.
    Refuse(mpsc::Sender<io::Result<()>>),
    /// Listen again on the same port; answer when done.
    Listen(mpsc::Sender<io::Result<()>>),
    Shutdown,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The fault and how far along it is.
#[derive(Debug, Default)]
struct FaultState {
    fault: Fault,
    /// Injections left before the fault reverts to `None`; `None` means unlimited.
    remaining: Option<u32>,
    /// Bumped whenever the fault changes, so that a pending cut of an old fault is void.
    epoch: u64,
    /// HTTP requests seen since the fault was set (for `every_nth`).
    requests: u64,
}

#[derive(Debug, Default)]
struct Recording {
    /// Per connection id: (client to upstream, upstream to client).
    conns: BTreeMap<u64, (Vec<u8>, Vec<u8>)>,
    total: usize,
    truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    ToUpstream,
    FromUpstream,
}

/// State shared by the handle and the proxy thread.
struct Shared {
    upstream: SocketAddr,
    protocol: Protocol,
    state: Mutex<FaultState>,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next_conn: AtomicU64,
    connections_accepted: AtomicU64,
    requests_seen: AtomicU64,
    faults_injected: AtomicU64,
    connections_cut: AtomicU64,
    upstream_connect_failures: AtomicU64,
    recording: Mutex<Recording>,
    /// Bumped by every `set`/`clear`: HTTP responses held under an earlier `Delay` go.
    released: tokio::sync::watch::Sender<u64>,
}

/// What to do with one HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestAction {
    Forward {
        delay: Option<HeldFor>,
        cut: Option<Budget>,
    },
    Answer {
        status: u16,
        retry_after: Option<u32>,
    },
    Drop,
}

/// HTTP: how long one response is held, unless the fault is set or cleared first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HeldFor {
    delay: Duration,
    /// `Shared::released` when the request was seen.
    release: u64,
}

/// How many more upstream bytes a connection may pass before it is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Budget {
    remaining: u64,
    epoch: u64,
}

impl Shared {
    fn new(upstream: SocketAddr, protocol: Protocol) -> Self {
        Shared {
            upstream,
            protocol,
            state: Mutex::new(FaultState::default()),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(0),
            connections_accepted: AtomicU64::new(0),
            requests_seen: AtomicU64::new(0),
            faults_injected: AtomicU64::new(0),
            connections_cut: AtomicU64::new(0),
            upstream_connect_failures: AtomicU64::new(0),
            recording: Mutex::new(Recording::default()),
            released: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Counts one injection and uses up one of a `set_times` budget.
    fn inject(&self, state: &mut FaultState) {
        self.faults_injected.fetch_add(1, Ordering::SeqCst);
        if let Some(remaining) = state.remaining.as_mut() {
            *remaining = remaining.saturating_sub(1);
            if *remaining == 0 {
                state.fault = Fault::None;
                state.remaining = None;
                state.epoch += 1;
                state.requests = 0;
            }
        }
    }

    /// Whether a newly accepted connection is to be closed at once.
    fn drop_on_accept(&self) -> bool {
        let mut state = lock(&self.state);
        match state.fault {
            Fault::DropConnections => {
                self.inject(&mut state);
                true
            }
            // Accepted in the instant before the listener closed.
            Fault::Refuse => {
                self.faults_injected.fetch_add(1, Ordering::SeqCst);
                true
            }
            _ => false,
        }
    }

    /// Counts an HTTP request and decides what happens to it.
    fn on_request(&self) -> RequestAction {
        self.requests_seen.fetch_add(1, Ordering::SeqCst);
        let mut state = lock(&self.state);
        state.requests += 1;
        let forward = RequestAction::Forward {
            delay: None,
            cut: None,
        };
        match state.fault.clone() {
            Fault::None => forward,
            Fault::HttpStatus {
                status,
                every_nth,
                retry_after,
            } => {
                // `is_multiple_of` needs Rust 1.87; the workspace's rust-version is 1.85.
                #[allow(clippy::manual_is_multiple_of)]
                let due = state.requests % u64::from(every_nth.max(1)) == 0;
                if due {
                    self.inject(&mut state);
                    RequestAction::Answer {
                        status,
                        retry_after,
                    }
                } else {
                    forward
                }
            }
            Fault::Delay(d) => {
                self.inject(&mut state);
                RequestAction::Forward {
                    delay: Some(HeldFor {
                        delay: d,
                        release: *self.released.borrow(),
                    }),
                    cut: None,
                }
            }
            Fault::DropAfterBytes(n) => RequestAction::Forward {
                delay: None,
                cut: Some(Budget {
                    remaining: n,
                    epoch: state.epoch,
                }),
            },
            Fault::DropConnections => {
                self.inject(&mut state);
                RequestAction::Drop
            }
            Fault::Refuse => {
                self.faults_injected.fetch_add(1, Ordering::SeqCst);
                RequestAction::Drop
            }
        }
    }

    /// Plain TCP, before a chunk from the upstream is forwarded: the delay to hold it
    /// for; also starts the connection's byte budget under `DropAfterBytes`.
    fn on_tcp_chunk(&self, conn: &Conn) -> Option<Duration> {
        let mut state = lock(&self.state);
        match state.fault {
            Fault::Delay(d) => {
                self.inject(&mut state);
                Some(d)
            }
            Fault::DropAfterBytes(n) => {
                let mut budget = lock(&conn.budget);
                if budget.is_none_or(|b| b.epoch != state.epoch) {
                    *budget = Some(Budget {
                        remaining: n,
                        epoch: state.epoch,
                    });
                }
                None
            }
            _ => None,
        }
    }

    /// How many of `len` upstream bytes may pass, and whether to cut after them.
    fn admit(&self, conn: &Conn, len: usize) -> (usize, bool) {
        let (left, epoch) = {
            let mut budget = lock(&conn.budget);
            let Some(b) = budget.as_mut() else {
                return (len, false);
            };
            if len as u64 <= b.remaining {
                b.remaining -= len as u64;
                return (len, false);
            }
            let over = (b.remaining, b.epoch);
            *budget = None;
            over
        };
        // Over budget: cut only if that fault is still the one in force.
        let mut state = lock(&self.state);
        if matches!(state.fault, Fault::DropAfterBytes(_)) && state.epoch == epoch {
            self.inject(&mut state);
            // `left` < `len`, so it fits in usize.
            (usize::try_from(left).unwrap_or(0), true)
        } else {
            (len, false)
        }
    }

    fn record(&self, conn: u64, direction: Direction, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut recording = lock(&self.recording);
        if recording.total.saturating_add(bytes.len()) > RECORDING_CAP {
            recording.truncated = true;
            return;
        }
        recording.total += bytes.len();
        let (to, from) = recording.conns.entry(conn).or_default();
        match direction {
            Direction::ToUpstream => to.extend_from_slice(bytes),
            Direction::FromUpstream => from.extend_from_slice(bytes),
        }
    }

    /// Closes every open connection; returns how many were not closed already.
    fn kill_all(&self) -> u64 {
        let conns: Vec<Arc<Conn>> = lock(&self.conns).values().cloned().collect();
        conns.iter().filter(|c| c.kill()).count() as u64
    }
}

/// One client connection and its upstream connection.
struct Conn {
    id: u64,
    killed: AtomicBool,
    /// Duplicates of both sockets' descriptors, so [`Conn::kill`] can shut them down
    /// from any thread, at once.
    sockets: Mutex<Vec<std::net::TcpStream>>,
    /// Bytes the upstream may still send before the connection is cut.
    budget: Mutex<Option<Budget>>,
    /// HTTP: how long to hold the next response back.
    delay: Mutex<Option<HeldFor>>,
}

impl Conn {
    fn new(id: u64) -> Self {
        Conn {
            id,
            killed: AtomicBool::new(false),
            sockets: Mutex::new(Vec::new()),
            budget: Mutex::new(None),
            delay: Mutex::new(None),
        }
    }

    fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// Shuts both sockets down (the client sees end of stream) and stops forwarding.
    /// Returns whether this call killed it.
    fn kill(&self) -> bool {
        let first = !self.killed.swap(true, Ordering::SeqCst);
        for socket in lock(&self.sockets).iter() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        first
    }

    /// Keeps a duplicate of `stream`'s descriptor for [`Conn::kill`].
    fn track(&self, stream: &TcpStream) -> io::Result<()> {
        let dup = std::net::TcpStream::from(stream.as_fd().try_clone_to_owned()?);
        let mut sockets = lock(&self.sockets);
        // Checked under the lock that kill() takes after setting the flag: either kill
        // sees this socket, or this sees the flag.
        if self.is_killed() {
            let _ = dup.shutdown(Shutdown::Both);
        }
        sockets.push(dup);
        Ok(())
    }
}

/// Removes a connection from the open set when its task ends.
struct Registration {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.shared.conns).remove(&self.id);
    }
}

/// The proxy thread: its own runtime, the accept loop, and on return every task dropped.
fn run(
    shared: Arc<Shared>,
    commands: tokio::sync::mpsc::UnboundedReceiver<Command>,
    ready: mpsc::Sender<anyhow::Result<SocketAddr>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(anyhow!(e).context("building the fault proxy's runtime")));
            return;
        }
    };
    runtime.block_on(async move {
        // Port 0: the kernel picks a port nobody holds, and the proxy never lets it go
        // until it is dropped, so no other peer can be handed it meanwhile.
        let bound = bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).and_then(|socket| {
            let addr = socket.local_addr()?;
            Ok((socket.listen(1024)?, addr))
        });
        let (listener, addr) = match bound {
            Ok(bound) => bound,
            Err(e) => {
                let _ = ready.send(Err(anyhow!(e).context("listening on 127.0.0.1:0")));
                return;
            }
        };
        let _ = ready.send(Ok(addr));
        accept_loop(listener, addr, shared, commands).await;
    });
    // Dropping the runtime drops every connection task, closing its sockets.
    drop(runtime);
}

async fn accept(listener: Option<&TcpListener>) -> io::Result<TcpStream> {
    match listener {
        Some(listener) => listener.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}

/// A socket bound to `addr`, not listening yet.
///
/// `SO_REUSEPORT` (the same user may bind a port twice) lets the proxy bind the socket
/// that keeps the port while refusing *before* it closes the listener, so the port is
/// never free, not even for an instant in which a client's `connect()` could pick it
/// as its local port. A socket that is bound but does not listen holds the port while
/// the kernel refuses connections to it. Automatic port choices (`bind` to port 0,
/// `connect`) never share a port with these sockets.
fn bind(addr: SocketAddr) -> io::Result<TcpSocket> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    mut commands: tokio::sync::mpsc::UnboundedReceiver<Command>,
) {
    let mut listener = Some(listener);
    let mut reserved: Option<TcpSocket> = None;
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                None | Some(Command::Shutdown) => return,
                Some(Command::Refuse(ack)) => {
                    let mut result = Ok(());
                    if listener.is_some() {
                        // Reserve the port first, then stop listening.
                        match bind(addr) {
                            Ok(socket) => reserved = Some(socket),
                            // Refusing anyway; Listen binds again.
                            Err(e) => result = Err(e),
                        }
                        listener = None;
                    }
                    let _ = ack.send(result);
                }
                Some(Command::Listen(ack)) => {
                    let mut result = Ok(());
                    if listener.is_none() {
                        let socket = match reserved.take() {
                            Some(socket) => Ok(socket),
                            None => bind(addr),
                        };
                        match socket.and_then(|s| s.listen(1024)) {
                            Ok(l) => listener = Some(l),
                            Err(e) => result = Err(e),
                        }
                    }
                    let _ = ack.send(result);
                }
            },
            accepted = accept(listener.as_ref()) => match accepted {
                Ok(stream) => {
                    tokio::spawn(serve(Arc::clone(&shared), stream));
                }
                // Out of descriptors or the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

/// One client connection, from accept to close.
async fn serve(shared: Arc<Shared>, client: TcpStream) {
    shared.connections_accepted.fetch_add(1, Ordering::SeqCst);
    let id = shared.next_conn.fetch_add(1, Ordering::SeqCst);
    let conn = Arc::new(Conn::new(id));
    // Registered before the fault is looked at, so a concurrent set() sees it.
    lock(&shared.conns).insert(id, Arc::clone(&conn));
    let _registration = Registration {
        shared: Arc::clone(&shared),
        id,
    };
    // A connection that cannot be tracked could not be killed: refuse to carry it.
    if conn.track(&client).is_err() || shared.drop_on_accept() {
        conn.kill();
        return;
    }
    let upstream =
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(shared.upstream)).await {
            Ok(Ok(upstream)) => upstream,
            _ => {
                shared
                    .upstream_connect_failures
                    .fetch_add(1, Ordering::SeqCst);
                conn.kill();
                return;
            }
        };
    if conn.track(&upstream).is_err() {
        conn.kill();
        return;
    }
    // Small LDAP messages and delays must not wait for Nagle.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_rd, client_wr) = client.into_split();
    let (upstream_rd, upstream_wr) = upstream.into_split();
    let client_wr = tokio::sync::Mutex::new(client_wr);
    let requests = async {
        match shared.protocol {
            Protocol::Tcp => pump_raw(&shared, &conn, client_rd, upstream_wr).await,
            Protocol::Http => {
                pump_http_requests(
                    &shared,
                    &conn,
                    BufReader::new(client_rd),
                    upstream_wr,
                    &client_wr,
                )
                .await
            }
        }
    };
    let responses = pump_responses(&shared, &conn, upstream_rd, &client_wr);
    tokio::join!(requests, responses);
}

/// Client to upstream, bytes as they come; half-closes the upstream at the end.
async fn pump_raw(
    shared: &Shared,
    conn: &Conn,
    mut from: impl AsyncRead + Unpin,
    mut to: OwnedWriteHalf,
) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) => {
                conn.kill();
                return;
            }
        };
        shared.record(conn.id, Direction::ToUpstream, &buf[..n]);
        if conn.is_killed() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            conn.kill();
            return;
        }
    }
    let _ = to.shutdown().await;
}

/// Upstream to client, with `Delay` and `DropAfterBytes` applied.
async fn pump_responses(
    shared: &Shared,
    conn: &Conn,
    mut from: OwnedReadHalf,
    to: &tokio::sync::Mutex<OwnedWriteHalf>,
) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) => {
                conn.kill();
                return;
            }
        };
        shared.record(conn.id, Direction::FromUpstream, &buf[..n]);
        if conn.is_killed() {
            return;
        }
        match shared.protocol {
            Protocol::Tcp => {
                if let Some(delay) = shared.on_tcp_chunk(conn) {
                    tokio::time::sleep(delay).await;
                }
            }
            Protocol::Http => {
                let held = lock(&conn.delay).take();
                if let Some(held) = held {
                    let mut released = shared.released.subscribe();
                    if *released.borrow_and_update() == held.release {
                        tokio::select! {
                            () = tokio::time::sleep(held.delay) => {}
                            _ = released.changed() => {}
                        }
                    }
                }
            }
        }
        if conn.is_killed() {
            return;
        }
        let (pass, cut) = shared.admit(conn, n);
        let written = to.lock().await.write_all(&buf[..pass]).await;
        if written.is_err() || cut {
            conn.kill();
            return;
        }
    }
    let _ = to.lock().await.shutdown().await;
}

/// Client to upstream for HTTP/1.1: request by request, each counted and either
/// forwarded or answered by the proxy.
async fn pump_http_requests(
    shared: &Shared,
    conn: &Conn,
    mut from: BufReader<OwnedReadHalf>,
    mut to: OwnedWriteHalf,
    client: &tokio::sync::Mutex<OwnedWriteHalf>,
) {
    let mut seen = |bytes: &[u8]| shared.record(conn.id, Direction::ToUpstream, bytes);
    loop {
        let head = match read_head(&mut from).await {
            Ok(Some(head)) => head,
            Ok(None) => break,
            Err(_) => {
                conn.kill();
                return;
            }
        };
        seen(&head.raw);
        if conn.is_killed() {
            return;
        }
        if !head.complete {
            // End of stream inside a head: pass on what came, then end.
            let _ = to.write_all(&head.raw).await;
            break;
        }
        match shared.on_request() {
            RequestAction::Drop => {
                conn.kill();
                return;
            }
            RequestAction::Answer {
                status,
                retry_after,
            } => {
                // Read the body, so that closing does not reset the connection under the
                // answer; a client waiting for 100 Continue sends none.
                if !head.expect_continue {
                    let _ =
                        copy_body(head.framing, &mut from, &mut tokio::io::sink(), &mut seen).await;
                }
                let answer = injected_response(status, retry_after);
                let mut writer = client.lock().await;
                let _ = writer.write_all(&answer).await;
                let _ = writer.flush().await;
                drop(writer);
                conn.kill();
                return;
            }
            RequestAction::Forward { delay, cut } => {
                *lock(&conn.delay) = delay;
                *lock(&conn.budget) = cut;
                if to.write_all(&head.raw).await.is_err() {
                    conn.kill();
                    return;
                }
                if head.framing == Framing::Raw {
                    // A body the proxy cannot delimit: carry the rest of the connection
                    // as opaque bytes (no more requests are counted on it).
                    return pump_raw(shared, conn, from, to).await;
                }
                if copy_body(head.framing, &mut from, &mut to, &mut seen)
                    .await
                    .is_err()
                {
                    conn.kill();
                    return;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

/// The answer to a request under [`Fault::HttpStatus`].
fn injected_response(status: u16, retry_after: Option<u32>) -> Vec<u8> {
    let reason = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Injected Fault",
    };
    let body = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": status.to_string(),
        "detail": "fault injected by the fiktiv-tests fault proxy",
    })
    .to_string();
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\n\
         Content-Type: application/scim+json\r\n\
         Content-Length: {}\r\n\
         Connection: close\r\n\
         X-Fiktiv-Fault: injected\r\n",
        body.len()
    );
    if let Some(seconds) = retry_after {
        head.push_str(&format!("Retry-After: {seconds}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

/// How an HTTP request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Not delimitable (a transfer coding other than chunked last, a bad length).
    Raw,
}

/// An HTTP request head as read: the raw bytes and what the proxy needs from them.
#[derive(Debug)]
struct Head {
    raw: Vec<u8>,
    framing: Framing,
    expect_continue: bool,
    /// False when the stream ended inside the head.
    complete: bool,
}

/// Reads one request head (empty lines before it included, as RFC 9112 allows).
/// `None` at a clean end of stream.
async fn read_head<R: AsyncBufRead + Unpin>(from: &mut R) -> io::Result<Option<Head>> {
    let mut raw = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    loop {
        let start = raw.len();
        let limit = MAX_HEAD.saturating_sub(start as u64);
        if limit == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "HTTP request head over 64 KiB",
            ));
        }
        let n = (&mut *from).take(limit).read_until(b'\n', &mut raw).await?;
        if n == 0 {
            if raw.is_empty() {
                return Ok(None);
            }
            return Ok(Some(Head {
                raw,
                framing: Framing::Raw,
                expect_continue: false,
                complete: false,
            }));
        }
        let line = &raw[start..];
        if !line.ends_with(b"\n") {
            // The limit or the end of stream: the next round tells which.
            continue;
        }
        let text = String::from_utf8_lossy(line)
            .trim_end_matches(['\r', '\n'])
            .to_owned();
        if text.is_empty() {
            if lines.is_empty() {
                continue;
            }
            break;
        }
        lines.push(text);
    }
    let mut transfer_encoding: Option<&str> = None;
    let mut content_length: Option<&str> = None;
    let mut expect_continue = false;
    for line in lines.iter().skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = Some(value);
        } else if name.eq_ignore_ascii_case("content-length") && content_length.is_none() {
            content_length = Some(value);
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue = value.eq_ignore_ascii_case("100-continue");
        }
    }
    let framing = if let Some(codings) = transfer_encoding {
        // Transfer-Encoding overrides Content-Length (RFC 9112, section 6.3).
        let last = codings.rsplit(',').next().unwrap_or_default().trim();
        if last.eq_ignore_ascii_case("chunked") {
            Framing::Chunked
        } else {
            Framing::Raw
        }
    } else if let Some(length) = content_length {
        match length.parse::<u64>() {
            Ok(0) => Framing::Empty,
            Ok(n) => Framing::Length(n),
            Err(_) => Framing::Raw,
        }
    } else {
        Framing::Empty
    };
    Ok(Some(Head {
        raw,
        framing,
        expect_continue,
        complete: true,
    }))
}

/// Copies one request body from `from` to `to`, passing every byte to `seen`.
async fn copy_body<R, W>(
    framing: Framing,
    from: &mut R,
    to: &mut W,
    seen: &mut impl FnMut(&[u8]),
) -> io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    match framing {
        Framing::Empty | Framing::Raw => Ok(()),
        Framing::Length(n) => copy_exact(from, to, n, seen).await,
        Framing::Chunked => loop {
            let line = read_line(from, 4096).await?;
            seen(&line);
            to.write_all(&line).await?;
            let text = String::from_utf8_lossy(&line);
            let size_hex = text.split(';').next().unwrap_or_default().trim();
            let size = u64::from_str_radix(size_hex, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size line"))?;
            if size == 0 {
                // Trailer fields up to the empty line.
                loop {
                    let line = read_line(from, MAX_HEAD).await?;
                    seen(&line);
                    to.write_all(&line).await?;
                    if line == b"\r\n" || line == b"\n" {
                        return Ok(());
                    }
                }
            }
            copy_exact(from, to, size, seen).await?;
            let end = read_line(from, 16).await?;
            seen(&end);
            to.write_all(&end).await?;
        },
    }
}

/// Copies exactly `n` bytes.
async fn copy_exact<R, W>(
    from: &mut R,
    to: &mut W,
    n: u64,
    seen: &mut impl FnMut(&[u8]),
) -> io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut left = n;
    while left > 0 {
        let buf = from.fill_buf().await?;
        if buf.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let take = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        seen(&buf[..take]);
        to.write_all(&buf[..take]).await?;
        from.consume(take);
        left -= take as u64;
    }
    Ok(())
}

/// One line including its `\n`, at most `max` bytes; an error at end of stream.
async fn read_line<R: AsyncBufRead + Unpin>(from: &mut R, max: u64) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    (&mut *from).take(max).read_until(b'\n', &mut line).await?;
    if line.is_empty() {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if !line.ends_with(b"\n") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "line too long or cut off",
        ));
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Splits a keep-alive byte stream into requests the way the proxy does.
    fn split_requests(stream: &[u8]) -> Vec<(Vec<u8>, Framing)> {
        block_on(async {
            let mut from = BufReader::new(stream);
            let mut out = Vec::new();
            while let Some(head) = read_head(&mut from).await.unwrap() {
                assert!(head.complete);
                let mut request = head.raw.clone();
                copy_body(head.framing, &mut from, &mut request, &mut |_| {})
                    .await
                    .unwrap();
                out.push((request, head.framing));
                if head.framing == Framing::Raw {
                    break; // the proxy forwards the rest as opaque bytes
                }
            }
            out
        })
    }

    #[test]
    fn requests_are_delimited_by_length_and_chunks() {
        let a = b"GET /v2/Users HTTP/1.1\r\nHost: x\r\n\r\n".as_slice();
        let b = b"POST /v2/Users HTTP/1.1\r\ncontent-length: 5\r\n\r\nhello".as_slice();
        let c = b"\r\nPUT /v2/Users/1 HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
                  3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: t\r\n\r\n"
            .as_slice();
        let d = b"DELETE /v2/Users/1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n".as_slice();
        let all = [a, b, c, d].concat();
        let requests = split_requests(&all);
        let framings: Vec<Framing> = requests.iter().map(|r| r.1).collect();
        assert_eq!(
            framings,
            [
                Framing::Empty,
                Framing::Length(5),
                Framing::Chunked,
                Framing::Empty
            ]
        );
        let bytes: Vec<&[u8]> = requests.iter().map(|r| r.0.as_slice()).collect();
        assert_eq!(bytes, [a, b, c, d]);
    }

    #[test]
    fn odd_requests() {
        let requests =
            split_requests(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nzzz".as_slice());
        assert_eq!(requests[0].1, Framing::Raw);
        let requests =
            split_requests(b"POST / HTTP/1.1\r\nContent-Length: nope\r\n\r\n".as_slice());
        assert_eq!(requests[0].1, Framing::Raw);
        // Cut inside the head: handed on as incomplete.
        let head = block_on(async {
            read_head(&mut BufReader::new(b"GET / HTTP/1.1\r\nHo".as_slice())).await
        })
        .unwrap()
        .unwrap();
        assert!(!head.complete);
        assert_eq!(head.raw, b"GET / HTTP/1.1\r\nHo");
        // A body shorter than its Content-Length is an error.
        let err = block_on(async {
            let mut from = BufReader::new(b"abc".as_slice());
            copy_body(Framing::Length(5), &mut from, &mut Vec::new(), &mut |_| {}).await
        });
        assert!(err.is_err());
        // A head over the bound is an error, not an allocation without end.
        let big = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 70_000]].concat();
        let err = block_on(async { read_head(&mut BufReader::new(big.as_slice())).await });
        assert!(err.is_err());
    }

    #[test]
    fn injected_answer_is_a_complete_http_response() {
        let bytes = injected_response(429, Some(7));
        let text = String::from_utf8(bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nRetry-After: 7"), "{head}");
        assert!(head.contains("\r\nConnection: close"), "{head}");
        assert!(head.contains(&format!("\r\nContent-Length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["status"], "429");
        assert!(!injected_response(503, None)
            .windows(11)
            .any(|w| w == b"Retry-After"));
    }

    #[test]
    fn faults_that_do_not_fit_are_refused() {
        // Nothing listens on the discard port; no connection is made here.
        let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, 9));
        let tcp = FaultProxy::tcp(upstream).unwrap();
        assert!(tcp.set(Fault::status(503)).is_err());
        assert!(tcp
            .set(Fault::Delay(MAX_DELAY + Duration::from_secs(1)))
            .is_err());
        assert!(tcp.set_times(Fault::Refuse, 1).is_err());
        assert!(tcp.set_times(Fault::DropConnections, 0).is_err());
        assert_eq!(tcp.fault(), Fault::None);
        let http = FaultProxy::http(upstream).unwrap();
        assert!(http.set(Fault::status(200)).is_err());
        assert!(http
            .set(Fault::HttpStatus {
                status: 500,
                every_nth: 0,
                retry_after: None
            })
            .is_err());
        http.set(Fault::status(503)).unwrap();
        assert_eq!(http.fault(), Fault::status(503));
        fn shareable<T: Send + Sync>(_: &T) {}
        shareable(&http);
        assert_eq!(http.url_for("http"), format!("http://{}", http.addr()));
    }
}
