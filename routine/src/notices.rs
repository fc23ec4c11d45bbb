//! The notification tables (migration 0016: `notify_prefs`, `notify_seen`,
//! `notifications`, `mail_outbox`): preferences, what each person has been told, in-app
//! notices and the mail outbox. The rounds that fill them are the service's `notify`;
//! the rows are read and written here. Only work addresses of staff and digests of task
//! items; nothing of a protected person.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use fiktiv_vault::audit::fmt_time;
use fiktiv_vault::Vault;
use serde::Serialize;
use sqlx::Row;

use crate::{DomainError, DomainResult};

/// Forgets a person's notification choice, work address and notices (their account was
/// disabled), in the caller's transaction. Mail already sent stays as the record of it.
pub async fn forget(conn: &mut sqlx::AnyConnection, user_id: &str) -> DomainResult<()> {
    for table in ["notify_prefs", "notify_seen", "notifications"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("DELETE FROM mail_outbox WHERE user_id = $1 AND sent_at IS NULL")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// How a person wants to be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// In Fiktiv and by e-mail.
    Email,
    /// In Fiktiv only (the default).
    InApp,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::InApp => "in-app",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "email" => Some(Channel::Email),
            "in-app" => Some(Channel::InApp),
            _ => None,
        }
    }
}

/// A person's stored choice: the channel, the work address, the language code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefsRow {
    pub channel: Channel,
    pub email: Option<String>,
    /// `sv`, `nb` or `en`.
    pub lang: String,
}

/// A person's stored choice; `None` when they never chose.
pub async fn prefs(vault: &Vault, user_id: &str) -> DomainResult<Option<PrefsRow>> {
    let row = sqlx::query_as::<_, (String, Option<String>, String)>(
        "SELECT channel, email, lang FROM notify_prefs WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(vault.db().pool())
    .await?;
    let Some((channel, email, lang)) = row else {
        return Ok(None);
    };
    let channel = Channel::parse(&channel)
        .ok_or_else(|| DomainError::Internal("stored notification choice is malformed".into()))?;
    Ok(Some(PrefsRow {
        channel,
        email,
        lang,
    }))
}

/// Stores a person's choice, audited (`notify.prefs`, the address is not in the trail).
pub async fn save_prefs(
    vault: &Vault,
    actor: &str,
    user_id: &str,
    p: &PrefsRow,
) -> DomainResult<()> {
    let mut tx = vault.db().begin_write().await?;
    sqlx::query("DELETE FROM notify_prefs WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO notify_prefs (user_id, channel, email, lang, updated_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(user_id)
    .bind(p.channel.as_str())
    .bind(p.email.clone())
    .bind(p.lang.as_str())
    .bind(fmt_time(vault.now()))
    .execute(&mut *tx)
    .await?;
    if p.channel == Channel::InApp {
        // Mail not yet sent is not sent after the person chose the app only.
        sqlx::query(
            "UPDATE mail_outbox SET failed_at = $1 WHERE user_id = $2 AND sent_at IS NULL \
             AND failed_at IS NULL",
        )
        .bind(fmt_time(vault.now()))
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    }
    vault
        .audit(
            &mut tx,
            &fiktiv_vault::audit::NewEvent {
                actor,
                action: "notify.prefs",
                case_id: None,
                purpose: Some(p.channel.as_str()),
                outcome: fiktiv_vault::audit::Outcome::Ok,
            },
        )
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The digests of the items a person has been told about.
pub async fn seen(vault: &Vault, user_id: &str) -> DomainResult<BTreeSet<String>> {
    let rows = sqlx::query("SELECT item FROM notify_seen WHERE user_id = $1")
        .bind(user_id)
        .fetch_all(vault.db().pool())
        .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>("item")?))
        .collect()
}

/// In one transaction: the person's items are now `current`; a notice per kind with
/// something new; and, when `mail`, one mail in the outbox unless one is waiting
/// already (a mail says only "you have something to do", so one is enough).
/// Returns whether a mail was queued.
pub async fn record(
    vault: &Vault,
    user_id: &str,
    current: &BTreeSet<String>,
    new: &[(&str, usize)],
    mail: bool,
) -> DomainResult<bool> {
    let now = fmt_time(vault.now());
    let mut tx = vault.db().begin_write().await?;
    sqlx::query("DELETE FROM notify_seen WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    for item in current {
        sqlx::query("INSERT INTO notify_seen (user_id, item) VALUES ($1, $2)")
            .bind(user_id)
            .bind(item)
            .execute(&mut *tx)
            .await?;
    }
    for (kind, count) in new {
        sqlx::query(
            "INSERT INTO notifications (notification_id, user_id, kind, count, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(user_id)
        .bind(*kind)
        .bind(i64::try_from(*count).unwrap_or(i64::MAX))
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    }
    let mut queued = false;
    if mail && !new.is_empty() {
        let waiting: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM mail_outbox WHERE user_id = $1 AND sent_at IS NULL \
             AND failed_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        if waiting == 0 {
            sqlx::query(
                "INSERT INTO mail_outbox (mail_id, user_id, created_at, attempts, next_attempt_at) \
                 VALUES ($1, $2, $3, 0, $3)",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(user_id)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            queued = true;
        }
    }
    tx.commit().await?;
    Ok(queued)
}

/// An in-app notice.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    pub notification_id: String,
    /// The task kind's code (`orders-waiting` ...).
    pub kind: String,
    /// How many new items of that kind there were.
    pub count: i64,
    pub created_at: String,
    pub read_at: Option<String>,
}

/// The person's latest notices (newest first), at most `limit`.
pub async fn notices(vault: &Vault, user_id: &str, limit: i64) -> DomainResult<Vec<Notice>> {
    let rows = sqlx::query(
        "SELECT notification_id, kind, count, created_at, read_at FROM notifications \
         WHERE user_id = $1 ORDER BY created_at DESC, notification_id LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(vault.db().pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Notice {
                notification_id: r.try_get("notification_id")?,
                kind: r.try_get("kind")?,
                count: r.try_get("count")?,
                created_at: r.try_get("created_at")?,
                read_at: r.try_get("read_at")?,
            })
        })
        .collect()
}

/// How many of the person's notices are unread.
pub async fn unread(vault: &Vault, user_id: &str) -> DomainResult<i64> {
    Ok(sqlx::query(
        "SELECT COUNT(*) AS n FROM notifications WHERE user_id = $1 AND read_at IS NULL",
    )
    .bind(user_id)
    .fetch_one(vault.db().pool())
    .await?
    .try_get("n")?)
}

/// Marks all the person's notices read.
pub async fn mark_read(vault: &Vault, user_id: &str) -> DomainResult<u64> {
    let mut tx = vault.db().begin_write().await?;
    let n =
        sqlx::query("UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL")
            .bind(fmt_time(vault.now()))
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    tx.commit().await?;
    Ok(n)
}

/// Notices older than `keep` are removed (housekeeping).
pub async fn prune(vault: &Vault, keep: TimeDelta) -> DomainResult<u64> {
    let cutoff = fmt_time(vault.now() - keep);
    let mut tx = vault.db().begin_write().await?;
    let mut n = sqlx::query("DELETE FROM notifications WHERE created_at < $1")
        .bind(&cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    n += sqlx::query(
        "DELETE FROM mail_outbox WHERE created_at < $1 AND (sent_at IS NOT NULL OR failed_at IS NOT NULL)",
    )
    .bind(&cutoff)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(n)
}

/// A mail due to be sent.
#[derive(Debug, Clone)]
pub struct DueMail {
    pub mail_id: String,
    pub user_id: String,
    pub attempts: i64,
    pub next_attempt_at: String,
}

pub async fn due_mail(vault: &Vault, now: DateTime<Utc>) -> DomainResult<Vec<DueMail>> {
    let rows = sqlx::query(
        "SELECT mail_id, user_id, attempts, next_attempt_at FROM mail_outbox WHERE sent_at IS NULL \
         AND failed_at IS NULL AND next_attempt_at <= $1 ORDER BY created_at LIMIT 100",
    )
    .bind(fmt_time(now))
    .fetch_all(vault.db().pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DueMail {
                mail_id: r.try_get("mail_id")?,
                user_id: r.try_get("user_id")?,
                attempts: r.try_get("attempts")?,
                next_attempt_at: r.try_get("next_attempt_at")?,
            })
        })
        .collect()
}

/// Takes a due mail for this sender: its next attempt moves ten minutes on, unless
/// another sender has taken it since it was read. Returns whether it is ours.
pub async fn claim_mail(vault: &Vault, m: &DueMail) -> DomainResult<bool> {
    let mut tx = vault.db().begin_write().await?;
    let n = sqlx::query(
        "UPDATE mail_outbox SET next_attempt_at = $1 WHERE mail_id = $2 \
         AND next_attempt_at = $3 AND sent_at IS NULL AND failed_at IS NULL",
    )
    .bind(fmt_time(vault.now() + TimeDelta::minutes(10)))
    .bind(&m.mail_id)
    .bind(&m.next_attempt_at)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(n == 1)
}

/// What became of one attempt to send a mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailOutcome {
    Sent,
    /// Try again at this time.
    Retry(DateTime<Utc>),
    /// Given up (a permanent refusal, too many attempts, or nobody to send to).
    GivenUp,
}

pub async fn mail_done(vault: &Vault, mail_id: &str, outcome: MailOutcome) -> DomainResult<()> {
    let now = fmt_time(vault.now());
    let mut tx = vault.db().begin_write().await?;
    let q = match outcome {
        MailOutcome::Sent => sqlx::query(
            "UPDATE mail_outbox SET sent_at = $1, attempts = attempts + 1 WHERE mail_id = $2",
        )
        .bind(now)
        .bind(mail_id),
        MailOutcome::GivenUp => sqlx::query(
            "UPDATE mail_outbox SET failed_at = $1, attempts = attempts + 1 WHERE mail_id = $2",
        )
        .bind(now)
        .bind(mail_id),
        MailOutcome::Retry(at) => sqlx::query(
            "UPDATE mail_outbox SET next_attempt_at = $1, attempts = attempts + 1 \
             WHERE mail_id = $2",
        )
        .bind(fmt_time(at))
        .bind(mail_id),
    };
    q.execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Mail waiting and mail given up (tests and operators' queries).
pub async fn outbox_counts(vault: &Vault) -> DomainResult<(i64, i64)> {
    let r = sqlx::query(
        "SELECT SUM(CASE WHEN sent_at IS NULL AND failed_at IS NULL THEN 1 ELSE 0 END) AS waiting, \
         SUM(CASE WHEN failed_at IS NOT NULL THEN 1 ELSE 0 END) AS failed FROM mail_outbox",
    )
    .fetch_one(vault.db().pool())
    .await?;
    Ok((
        r.try_get::<Option<i64>, _>("waiting")?.unwrap_or(0),
        r.try_get::<Option<i64>, _>("failed")?.unwrap_or(0),
    ))
}
