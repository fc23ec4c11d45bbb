//! What `fiktiv serve` runs beside the HTTP server: the delivery worker
//! (`fiktiv_delivery::worker`: the provisioning cycle and the job tasks), the
//! housekeeping (review reminders, retention, notifications) and, when `[ss12000]` is
//! set, the reads of the school-data hub. Each of the last two is claimed through the
//! `schedules` table, so with several instances exactly one runs it when due.

use std::time::Duration;

use fiktiv_delivery::worker::WorkerHandle;
use tokio::sync::watch;
use tokio::task::JoinSet;

use fiktiv_app::context::Context;

/// How often the hub task looks whether a read is due.
const HUB_POLL: Duration = Duration::from_secs(30);

/// The running background work.
pub struct Background {
    worker: WorkerHandle,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Background {
    /// Stops everything; work in flight gets a few seconds to finish (a job cut off is
    /// claimed again when its lease runs out; a schedule claimed is run again when due).
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        let wait = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .is_err()
        {
            self.tasks.abort_all();
        }
        self.worker.stop().await;
    }
}

/// Waits for a stop, a wake-up of the worker (new jobs were armed), or `poll`.
async fn pause(ctx: &Context, stop: &mut watch::Receiver<bool>, poll: Duration) {
    tokio::select! {
        _ = stop.changed() => {}
        _ = ctx.delivery.runtime.notified() => {}
        _ = tokio::time::sleep(poll) => {}
    }
}

/// Starts the delivery worker, the housekeeping and the hub's reads.
pub async fn start(ctx: Context) -> Background {
    let worker = fiktiv_delivery::worker::start(ctx.delivery.clone()).await;
    let (tx, rx) = watch::channel(false);
    let poll = Duration::from_millis(ctx.delivery.runtime.settings().poll_interval_ms);
    let mut tasks = JoinSet::new();
    {
        let ctx = ctx.clone();
        let mut stop = rx.clone();
        tasks.spawn(async move {
            loop {
                if *stop.borrow() {
                    break;
                }
                // Review reminders, retention and notifications, when due.
                if let Err(e) = crate::housekeeping::run_due(&ctx).await {
                    tracing::error!(error = %e, "housekeeping failed");
                }
                pause(&ctx, &mut stop, poll).await;
            }
        });
    }
    if ctx.config.ss12000.is_some() {
        // The SS 12000 hub, read when due, on its own task so that a long read holds up
        // neither provisioning nor housekeeping.
        let ctx = ctx.clone();
        let mut stop = rx.clone();
        tasks.spawn(async move {
            loop {
                if *stop.borrow() {
                    break;
                }
                // A failed read is logged and recorded by `read_now` itself.
                let _ = fiktiv_app::hub::run_due(&ctx).await;
                pause(&ctx, &mut stop, HUB_POLL).await;
            }
        });
    }
    Background {
        worker,
        stop: tx,
        tasks,
    }
}
