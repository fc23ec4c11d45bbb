//! Housekeeping that `fiktiv serve` runs on a schedule, once across the cluster: review
//! reminders, shredding after the retention period, and notifications
//! ([`fiktiv_app::notify`]).
//!
//! Each task has a row in `schedules` and is claimed with
//! [`fiktiv_app::cluster::claim_schedule`], so with several instances exactly one runs it per
//! interval. Both tasks are idempotent: a reminder is given once per case, due date and
//! status; shredding only ever shreds what is due. `fiktiv retention run` does the
//! retention part by hand.

use chrono::TimeDelta;

use fiktiv_app::context::Context;
use fiktiv_routine::end::{run_retention, RetentionReport};
use fiktiv_routine::reviews::{remind, Reminded};
use fiktiv_routine::DomainResult;

/// The review reminders' schedule.
pub const REVIEW_REMINDERS: &str = "review-reminders";
/// The retention schedule.
pub const RETENTION: &str = "retention";
/// How often each task runs (at most; a claimed run moves the due time this far).
pub const INTERVAL: TimeDelta = TimeDelta::hours(1);

/// What one [`run_due`] did: `None` for a task that was not due here (not yet, or
/// another instance claimed it).
#[derive(Debug, Default)]
pub struct Housekept {
    pub reminders: Option<Reminded>,
    pub retention: Option<RetentionReport>,
    pub notifications: Option<fiktiv_app::notify::Report>,
}

/// Runs each housekeeping task that is due and that this instance claims.
pub async fn run_due(ctx: &Context) -> DomainResult<Housekept> {
    let vault = &ctx.vault;
    let me = ctx.delivery.runtime.instance();
    let mut out = Housekept::default();
    if fiktiv_app::cluster::claim_schedule(vault, REVIEW_REMINDERS, me, INTERVAL).await? {
        let r = remind(vault, &ctx.rules).await?;
        if r.due_soon + r.overdue > 0 {
            tracing::info!(
                due_soon = r.due_soon,
                overdue = r.overdue,
                "review reminders given"
            );
        }
        out.reminders = Some(r);
    }
    if fiktiv_app::cluster::claim_schedule(vault, RETENTION, me, INTERVAL).await? {
        out.retention = Some(run_retention(vault, "system").await?);
    }
    let every =
        TimeDelta::seconds(i64::try_from(ctx.config.notifications.interval_secs).unwrap_or(60));
    if fiktiv_app::cluster::claim_schedule(vault, fiktiv_app::notify::SCHEDULE, me, every).await? {
        let r = fiktiv_app::notify::round(ctx).await?;
        if r.people + r.mails_sent + r.mails_given_up > 0 {
            tracing::info!(
                people = r.people,
                notices = r.notices,
                mails_sent = r.mails_sent,
                mails_retried = r.mails_retried,
                mails_given_up = r.mails_given_up,
                "notifications"
            );
        }
        out.notifications = Some(r);
    }
    Ok(out)
}
