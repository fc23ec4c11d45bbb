//! Notifications: telling each person, in the app and by e-mail if they chose so, that
//! they have something new to do in Fiktiv.
//!
//! **What is new comes from the start page's own list.** Every `[notifications]
//! interval_secs` (once across the cluster, claimed like housekeeping), Fiktiv asks
//! [`crate::tasks::task_items`] what each active account has to do: orders waiting
//! (central administrator), accounts written and to check, and open alerts such as a
//! leak found or a write that failed (school), reveals to decide (approver), an
//! approved reveal (requester), reviews due within the reminder window and overdue
//! (school, approver). That list is made with permits from the one authorizer, so a
//! person is told exactly about what they may act on and nothing else. Each item's
//! digest is compared with what the person was told before ([`store::seen`]); a kind
//! with something new gets an in-app notice, and a person who chose e-mail gets one
//! mail, queued in an outbox and sent with retries.
//!
//! **What a mail says.** Only "you have something to do in Fiktiv" and a link to the
//! start page, in the person's language ([`mail`]): no name, no number, no case id, no
//! kind of task. The log names no address.

pub mod mail;
pub mod store;

use std::collections::BTreeSet;

use chrono::TimeDelta;
use sha2::{Digest, Sha256};

use crate::context::Context;
use crate::tasks::{self, TaskKind};
use fiktiv_routine::DomainResult;
use fiktiv_staff::accounts;

pub use mail::{check_address, Mailer, SendError};
pub use store::{Channel, Notice, Prefs};

/// The schedule (`schedules.name`) the look for new things to do is claimed under.
pub const SCHEDULE: &str = "notifications";
/// A mail is given up after this many attempts: with the back-off (1, 2, 4 ... minutes,
/// at most four hours apart) the last comes about 17 hours after the first.
pub const MAX_ATTEMPTS: i64 = 12;
/// At most this many mails are sent in one round, so that a relay that does not
/// answer cannot hold the worker's loop for long (each attempt has its timeout).
pub const MAILS_PER_ROUND: usize = 20;
/// Notices and sent mail are kept this long.
pub const KEEP: TimeDelta = TimeDelta::days(90);

/// What one round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// People who were told something new.
    pub people: usize,
    /// In-app notices written.
    pub notices: usize,
    pub mails_queued: usize,
    pub mails_sent: usize,
    pub mails_retried: usize,
    pub mails_given_up: usize,
}

/// A person's own drafts are on their start page; nobody is told about them.
fn is_told(kind: TaskKind) -> bool {
    kind != TaskKind::PlanDrafts
}

/// The digest of one item of one kind: what `notify_seen` keeps.
fn digest(kind: TaskKind, key: &str) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_str().as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    hex::encode(h.finalize().get(..16).unwrap_or_default())
}

/// Looks at what every active account has to do, records notices for what is new and
/// queues mail for those who chose it (when `mail_on`).
pub async fn look(ctx: &Context, mail_on: bool) -> DomainResult<Report> {
    let vault = &ctx.vault;
    let mut report = Report::default();
    for account in accounts::active(vault).await? {
        let principal = account.principal();
        let items = tasks::task_items(ctx, &ctx.authz, &principal).await?;
        let seen = store::seen(vault, &account.user_id).await?;
        let mut current = BTreeSet::new();
        let mut new = Vec::new();
        for t in items.into_iter().filter(|t| is_told(t.kind)) {
            let mut fresh = 0;
            for key in &t.keys {
                let d = digest(t.kind, key);
                if !seen.contains(&d) {
                    fresh += 1;
                }
                current.insert(d);
            }
            if fresh > 0 {
                new.push((t.kind, fresh));
            }
        }
        if new.is_empty() && current == seen {
            continue;
        }
        let prefs = store::prefs(vault, &account.user_id).await?;
        let wants_mail = mail_on && prefs.channel == Channel::Email && prefs.email.is_some();
        if store::record(vault, &account.user_id, &current, &new, wants_mail).await? {
            report.mails_queued += 1;
        }
        if !new.is_empty() {
            report.people += 1;
            report.notices += new.len();
        }
    }
    Ok(report)
}

/// Sends the mail that is due. A person who has since chosen the app only, removed
/// their address or been disabled is not sent anything.
pub async fn send_due(ctx: &Context, mailer: &Mailer, report: &mut Report) -> DomainResult<()> {
    let vault = &ctx.vault;
    let active: BTreeSet<String> = accounts::active(vault)
        .await?
        .into_iter()
        .map(|a| a.user_id)
        .collect();
    for m in store::due_mail(vault, vault.now())
        .await?
        .into_iter()
        .take(MAILS_PER_ROUND)
    {
        // Claimed first (its next attempt moved on), so that a round of another
        // instance, or `fiktiv notify run` beside `serve`, does not send it too.
        if !store::claim_mail(vault, &m).await? {
            continue;
        }
        let prefs = store::prefs(vault, &m.user_id).await?;
        let to = match (&prefs.email, prefs.channel) {
            (Some(to), Channel::Email) if active.contains(&m.user_id) => to.clone(),
            _ => {
                store::mail_done(vault, &m.mail_id, store::MailOutcome::GivenUp).await?;
                report.mails_given_up += 1;
                continue;
            }
        };
        let outcome = match mailer.send(&to, prefs.lang).await {
            Ok(()) => {
                tracing::info!("notification mail sent");
                report.mails_sent += 1;
                store::MailOutcome::Sent
            }
            Err(e @ (SendError::Refused | SendError::BadAddress)) => {
                tracing::warn!(error = %e, "notification mail given up");
                report.mails_given_up += 1;
                store::MailOutcome::GivenUp
            }
            Err(e) if m.attempts + 1 >= MAX_ATTEMPTS => {
                tracing::warn!(error = %e, attempts = m.attempts + 1, "notification mail given up");
                report.mails_given_up += 1;
                store::MailOutcome::GivenUp
            }
            Err(e) => {
                // 1, 2, 4 ... minutes, at most four hours.
                let wait =
                    TimeDelta::minutes(1_i64 << m.attempts.clamp(0, 8)).min(TimeDelta::hours(4));
                tracing::warn!(error = %e, attempts = m.attempts + 1, "notification mail will be tried again");
                report.mails_retried += 1;
                store::MailOutcome::Retry(vault.now() + wait)
            }
        };
        store::mail_done(vault, &m.mail_id, outcome).await?;
    }
    Ok(())
}

/// One round: look, then send. Run by housekeeping under [`SCHEDULE`]. A relay whose
/// settings cannot be read now (a password file gone) stops only the sending: the
/// notices are still written and the mail waits in the outbox.
pub async fn round(ctx: &Context) -> DomainResult<Report> {
    let mail_on = ctx.config.notifications.smtp.is_some();
    let mut report = look(ctx, mail_on).await?;
    match Mailer::from_config(&ctx.config.notifications) {
        Ok(Some(m)) => send_due(ctx, &m, &mut report).await?,
        Ok(None) => {}
        Err(e) => {
            tracing::error!(error = %e, "notification mail not sent: the relay settings cannot be used")
        }
    }
    store::prune(&ctx.vault, KEEP).await?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn digests_differ_by_kind_and_key_and_hold_neither() {
        let a = digest(TaskKind::OrdersWaiting, "order-1");
        assert_ne!(a, digest(TaskKind::OrdersWaiting, "order-2"));
        assert_ne!(a, digest(TaskKind::AlertsOpen, "order-1"));
        assert_eq!(a.len(), 32);
        assert!(!a.contains("order"));
    }

    #[test]
    fn drafts_are_not_told() {
        assert!(!is_told(TaskKind::PlanDrafts));
        assert!(is_told(TaskKind::OrdersWaiting));
        assert!(is_told(TaskKind::AccountsToCheck));
    }

    #[test]
    fn addresses_are_checked() {
        assert!(check_address("rektor@skola.kommun.se").is_ok());
        for bad in [
            "",
            "no-at",
            "a b@c.se",
            "a@b.se\r\nBcc: x@y.se",
            &"x".repeat(300),
        ] {
            assert_eq!(
                check_address(bad).unwrap_err(),
                SendError::BadAddress,
                "{bad:?}"
            );
        }
    }
}
