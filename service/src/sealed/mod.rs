//! A service that starts sealed (`[keys] provider = "shares"`).
//!
//! Until `threshold` holders have entered their key shares, the process holds no key:
//! `/healthz` answers (status "sealed"), `/readyz` is not ready, the unseal step
//! (`/unseal` in a browser, `POST /api/v1/unseal`, `fiktiv unseal` through the control
//! socket) takes one share at a time and forgets it once combined, and every other
//! route answers 503 with a clear text in the reader's language. When the shares open
//! the root key, the vault is opened, the unsealing is audited (which holders, how, how
//! many shares were refused before), the provisioning worker starts and the full
//! service answers. `fiktiv seal` stops the worker and drops every key (wiped on drop)
//! once requests in flight have ended.
//!
//! Several instances unseal independently: each process has its own state.

pub mod control;
mod pages;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use fiktiv_vault::custody::shares::ShareError;
use fiktiv_vault::custody::unseal::{Progress, UnsealError, Unsealing};
use fiktiv_vault::custody::{self, Provider};
use fiktiv_vault::{Db, SharedClock};
use tower::ServiceExt as _;

use crate::background::Background;
use fiktiv_app::config::Config;
use fiktiv_app::context::Context;

/// How a share came in (for the audit trail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Web,
    Api,
    ControlSocket,
    /// The process stopping (SIGTERM): it seals before it exits.
    Stop,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Web => "the unseal page",
            Via::Api => "the API",
            Via::ControlSocket => "the control socket (fiktiv unseal / fiktiv seal)",
            Via::Stop => "the service stopping",
        }
    }
}

/// The state after a share was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Sealed { entered: usize, threshold: usize },
    Open,
}

/// Why a share was refused, as a stable code (messages are per language).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NotAShare,
    OtherSet,
    Repeated,
    DoNotOpen,
    /// The shares opened the key but the vault could not be opened (database down...).
    Failed,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::NotAShare => "not-a-share",
            Refusal::OtherSet => "other-set",
            Refusal::Repeated => "repeated",
            Refusal::DoNotOpen => "do-not-open",
            Refusal::Failed => "failed",
        }
    }

    /// The English text (API, control socket). The web page uses its own language.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::NotAShare => "this is not a Fiktiv key share (a typing error?)",
            Refusal::OtherSet => {
                "this share belongs to another set of shares (an older one replaced by a rotation, or another installation)"
            }
            Refusal::Repeated => "this share has already been entered",
            Refusal::DoNotOpen => {
                "the shares entered do not open the key; they have all been forgotten, enter them again"
            }
            Refusal::Failed => {
                "the shares opened the key, but the service could not start; see its log, then enter the shares again"
            }
        }
    }
}

enum Phase {
    Sealed {
        unsealing: Unsealing,
        /// Shares refused since the last seal, reported in the audit event of the unseal.
        refused: u32,
    },
    Open {
        ctx: Box<Context>,
        worker: Background,
    },
}

/// The sealed-or-open gate in front of the service.
pub struct Gate {
    data_dir: PathBuf,
    config: Config,
    clock: SharedClock,
    db: Db,
    phase: tokio::sync::Mutex<Phase>,
    /// The full service's router while open; read on every request.
    open: std::sync::RwLock<Option<Router>>,
    pub(crate) catalog: Arc<fiktiv_app::i18n::Catalog>,
}

impl Gate {
    /// A sealed gate over the custody record stored in `db`.
    pub async fn sealed(
        data_dir: &Path,
        config: Config,
        clock: SharedClock,
        db: Db,
    ) -> anyhow::Result<Arc<Self>> {
        let record = custody::load_for(&db, Provider::Shares).await?;
        let catalog = fiktiv_app::i18n::Catalog::shared().map_err(|e| anyhow::anyhow!(e))?;
        Ok(Arc::new(Self {
            data_dir: data_dir.to_path_buf(),
            config,
            clock,
            db,
            phase: tokio::sync::Mutex::new(Phase::Sealed {
                unsealing: Unsealing::new(record)?,
                refused: 0,
            }),
            open: std::sync::RwLock::new(None),
            catalog,
        }))
    }

    fn router(&self) -> Option<Router> {
        self.open.read().ok().and_then(|g| g.clone())
    }

    fn set_router(&self, r: Option<Router>) {
        if let Ok(mut g) = self.open.write() {
            *g = r;
        }
    }

    /// Where unsealing stands.
    pub async fn status(&self) -> Status {
        match &*self.phase.lock().await {
            Phase::Sealed { unsealing, .. } => Status::Sealed {
                entered: unsealing.entered(),
                threshold: unsealing.threshold(),
            },
            Phase::Open { .. } => Status::Open,
        }
    }

    /// Take one share. The share's text is never logged or kept once combined.
    pub async fn enter(&self, share: &str, via: Via) -> Result<Status, Refusal> {
        let mut phase = self.phase.lock().await;
        let Phase::Sealed { unsealing, refused } = &mut *phase else {
            return Ok(Status::Open);
        };
        let (root, holders) = match unsealing.enter(share) {
            Ok(Progress::Need { entered, threshold }) => {
                tracing::info!(entered, threshold, "a key share was entered");
                return Ok(Status::Sealed { entered, threshold });
            }
            Ok(Progress::Open { root, holders }) => (root, holders),
            Err(e) => {
                *refused = refused.saturating_add(1);
                let r = match e {
                    UnsealError::Share(ShareError::OtherSet) => Refusal::OtherSet,
                    UnsealError::Share(ShareError::Repeated) => Refusal::Repeated,
                    UnsealError::DoNotOpen => Refusal::DoNotOpen,
                    UnsealError::Share(_) => Refusal::NotAShare,
                    UnsealError::Custody(_) => Refusal::Failed,
                };
                tracing::warn!(refusal = r.code(), "a key share was refused");
                return Err(r);
            }
        };
        let refused_before = *refused;
        let opened = Context::open_with_root(
            self.db.clone(),
            root,
            self.config.clone(),
            &self.data_dir,
            self.clock.clone(),
        )
        .await;
        let ctx = match opened {
            Ok(ctx) => ctx,
            Err(e) => {
                tracing::error!(error = %e, "the shares opened the key but the vault did not open");
                unsealing.reset();
                return Err(Refusal::Failed);
            }
        };
        let purpose = format!(
            "{}; {refused_before} share(s) refused before",
            crate::commands_keys::holders_purpose(&holders, via.as_str())
        );
        if let Err(e) = ctx.audit_system_with("system.unseal", &purpose).await {
            // No unsealing goes unrecorded: stay sealed.
            tracing::error!(error = %e, "cannot record the unsealing; staying sealed");
            unsealing.reset();
            return Err(Refusal::Failed);
        }
        let worker = crate::background::start(ctx.clone()).await;
        self.set_router(Some(crate::router::app(ctx.clone())));
        *phase = Phase::Open {
            ctx: Box::new(ctx),
            worker,
        };
        tracing::info!("unsealed");
        Ok(Status::Open)
    }

    /// Seal a running service: stop the worker, drop the keys. Returns false when it
    /// was sealed already.
    pub async fn seal(&self, via: Via) -> anyhow::Result<bool> {
        let mut phase = self.phase.lock().await;
        if matches!(&*phase, Phase::Sealed { .. }) {
            return Ok(false);
        }
        // The custody record may have been rotated while open: unseal with the new one.
        let record = custody::load_for(&self.db, Provider::Shares).await?;
        let unsealing = Unsealing::new(record)?;
        self.set_router(None);
        let old = std::mem::replace(
            &mut *phase,
            Phase::Sealed {
                unsealing,
                refused: 0,
            },
        );
        if let Phase::Open { ctx, worker } = old {
            let _ = ctx
                .audit_system_with("system.seal", &format!("via {}", via.as_str()))
                .await;
            worker.stop().await;
            drop(ctx);
        }
        tracing::info!("sealed: the keys are dropped");
        Ok(true)
    }
}

/// The gate and its sealed routes, built once.
#[derive(Clone)]
struct GateState {
    gate: Arc<Gate>,
    sealed: Router,
}

/// Every request: the full service when open, the sealed routes otherwise; the unseal
/// step always.
async fn dispatch(State(st): State<GateState>, req: Request) -> Response {
    // The unseal step answers in both states (open: "Fiktiv is open").
    let unseal_step = matches!(req.uri().path(), "/unseal" | "/api/v1/unseal");
    let router = match st.gate.router().filter(|_| !unseal_step) {
        Some(open) => open,
        None => st.sealed,
    };
    match router.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// The gate as one router.
pub fn gate_router(gate: Arc<Gate>) -> Router {
    let sealed = pages::sealed_router(gate.clone());
    Router::new()
        .fallback(dispatch)
        .with_state(GateState { gate, sealed })
}

/// `fiktiv serve` with the shares provider: listen at once, sealed.
pub async fn serve(
    data_dir: &Path,
    config: Config,
    clock: SharedClock,
    listen: Option<SocketAddr>,
) -> anyhow::Result<i32> {
    fiktiv_app::context::init_dir_only(data_dir)?;
    fiktiv_app::context::load_policies(&config)?;
    let db = Db::connect(&config.database_url(data_dir)).await?;
    let addr = listen.unwrap_or(config.server.listen);
    let gate = Gate::sealed(data_dir, config, clock, db).await?;
    let control = control::listen(data_dir, gate.clone())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(%addr, "fiktiv listening, sealed");
    eprintln!(
        "fiktiv listening on http://{addr}, SEALED: {} key holders must enter their shares \
         (`fiktiv unseal` on this machine, or http://{addr}/unseal)",
        match gate.status().await {
            Status::Sealed { threshold, .. } => threshold,
            Status::Open => 0,
        }
    );
    let served = axum::serve(
        listener,
        gate_router(gate.clone()).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(crate::commands::shutdown_signal())
    .await;
    control.stop();
    let _ = gate.seal(Via::Stop).await;
    served.context("server error")?;
    Ok(0)
}
