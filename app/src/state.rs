//! The state every request handler of the API and the web UI is given: one type for
//! both, so that both reach the domain through the same context (its vault, its one
//! authorizer, its rules).

use std::sync::Arc;

use crate::context::Context;
use crate::limits::ApiLimits;
use crate::metrics::{HttpMetrics, MetricsState};

/// Shared state of every handler.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The vault, the one authorizer (`ctx.authz`) and the rules (`ctx.rules`).
    pub ctx: Arc<Context>,
    /// `/metrics`: its access rules and this process's request latencies.
    pub metrics: Arc<MetricsState>,
    /// Rate limits on bad bearer tokens (`[limits]`); the other limits are the domain's.
    pub limits: Arc<ApiLimits>,
}

impl AppState {
    /// The state of a running service, from its context.
    pub fn new(ctx: Context) -> Self {
        let metrics = Arc::new(MetricsState {
            http: HttpMetrics::default(),
            // Checked at startup (Context); a problem here disables /metrics.
            access: ctx.config.metrics.access().unwrap_or_default(),
        });
        Self {
            metrics,
            limits: Arc::new(ApiLimits::new(&ctx.config.limits)),
            ctx: Arc::new(ctx),
        }
    }
}
