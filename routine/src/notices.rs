//! The notification tables (migration 0016: `notify_prefs`, `notify_seen`,
//! `notifications`, `mail_outbox`) as far as the routine's own steps touch them. The
//! rounds that fill them are the service's `notify` (its store moves here, issue "one
//! room per layer").

use crate::DomainResult;

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
