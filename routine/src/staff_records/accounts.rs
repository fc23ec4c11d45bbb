//! Staff accounts (`staff_users`): name, roles, units, the Argon2id hash, the sealed
//! TOTP secret and its last used step, failures, lockout and disabling. The hash and
//! the sealed secret are read only by `fiktiv-staff`'s checks.

use chrono::{DateTime, Utc};
use fiktiv_vault::audit::fmt_time;
use fiktiv_vault::Vault;
use sqlx::AnyConnection;

use crate::{DomainError, DomainResult};

/// An account's row.
#[derive(Clone, sqlx::FromRow)]
pub struct UserRow {
    pub user_id: String,
    pub name: String,
    /// Role names, comma-separated.
    pub roles: String,
    /// Unit codes, comma-separated.
    pub units: String,
    pub must_change_password: i64,
    /// `local` or `oidc`.
    pub auth: String,
    pub password_hash: String,
    pub totp_sealed: Vec<u8>,
    pub locked_until: Option<String>,
    pub disabled_at: Option<String>,
    pub created_at: String,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UserRow({}, [secrets])", self.user_id)
    }
}

const COLUMNS: &str = "user_id, name, roles, units, must_change_password, auth, password_hash, \
     totp_sealed, locked_until, disabled_at, created_at";

/// A local account to store (its one-time password's hash and sealed TOTP secret).
#[derive(Clone, Copy)]
pub struct NewUser<'a> {
    pub user_id: &'a str,
    pub name: &'a str,
    pub roles: &'a str,
    pub units: &'a str,
    pub password_hash: &'a str,
    pub totp_sealed: &'a [u8],
    pub now: DateTime<Utc>,
}

/// Stores a new local account that must change its password, in the caller's
/// transaction. False when an account has that name already.
pub async fn insert(conn: &mut AnyConnection, u: &NewUser<'_>) -> DomainResult<bool> {
    let now = fmt_time(u.now);
    let inserted = sqlx::query(
        "INSERT INTO staff_users (user_id, name, roles, units, password_hash, must_change_password, \
         totp_sealed, totp_last_step, failed_count, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 1, $6, 0, 0, $7, $7)",
    )
    .bind(u.user_id)
    .bind(u.name)
    .bind(u.roles)
    .bind(u.units)
    .bind(u.password_hash)
    .bind(u.totp_sealed)
    .bind(&now)
    .execute(&mut *conn)
    .await;
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if crate::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The account with this name.
pub async fn by_name(conn: &mut AnyConnection, name: &str) -> DomainResult<Option<UserRow>> {
    Ok(sqlx::query_as::<_, UserRow>(&format!(
        "SELECT {COLUMNS} FROM staff_users WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?)
}

/// The account with this id.
pub async fn by_id(conn: &mut AnyConnection, user_id: &str) -> DomainResult<Option<UserRow>> {
    Ok(sqlx::query_as::<_, UserRow>(&format!(
        "SELECT {COLUMNS} FROM staff_users WHERE user_id = $1"
    ))
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// The id of the account with this name.
pub async fn id_of(conn: &mut AnyConnection, name: &str) -> DomainResult<Option<String>> {
    Ok(
        sqlx::query_scalar::<_, String>("SELECT user_id FROM staff_users WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Every account by name; with `active_only`, those not disabled.
pub async fn all(vault: &Vault, active_only: bool) -> DomainResult<Vec<UserRow>> {
    Ok(sqlx::query_as::<_, UserRow>(&format!(
        "SELECT {COLUMNS} FROM staff_users WHERE ($1 = 0 OR disabled_at IS NULL) ORDER BY name"
    ))
    .bind(i64::from(active_only))
    .fetch_all(vault.db().pool())
    .await?)
}

/// How many accounts there are.
pub async fn count(vault: &Vault) -> DomainResult<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM staff_users")
        .fetch_one(vault.db().pool())
        .await?)
}

/// Disables an active account, in the caller's transaction. False when it is not
/// active.
pub async fn disable(
    conn: &mut AnyConnection,
    user_id: &str,
    now: DateTime<Utc>,
) -> DomainResult<bool> {
    let done = sqlx::query(
        "UPDATE staff_users SET disabled_at = $1, updated_at = $1 \
         WHERE user_id = $2 AND disabled_at IS NULL",
    )
    .bind(fmt_time(now))
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Enables a disabled account by name, in the caller's transaction. False when there
/// is no such disabled account.
pub async fn enable(
    conn: &mut AnyConnection,
    name: &str,
    now: DateTime<Utc>,
) -> DomainResult<bool> {
    let done = sqlx::query(
        "UPDATE staff_users SET disabled_at = NULL, updated_at = $1 \
         WHERE name = $2 AND disabled_at IS NOT NULL",
    )
    .bind(fmt_time(now))
    .bind(name)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// New one-time password hash and TOTP secret, the lockout and failures cleared, in
/// the caller's transaction. False when there is no such account.
pub async fn reset_credentials(
    conn: &mut AnyConnection,
    user_id: &str,
    password_hash: &str,
    totp_sealed: &[u8],
    now: DateTime<Utc>,
) -> DomainResult<bool> {
    let done = sqlx::query(
        "UPDATE staff_users SET password_hash = $1, must_change_password = 1, totp_sealed = $2, \
         totp_last_step = 0, failed_count = 0, locked_until = NULL, updated_at = $3 \
         WHERE user_id = $4",
    )
    .bind(password_hash)
    .bind(totp_sealed)
    .bind(fmt_time(now))
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A chosen password stored, the forced change and the failures cleared, in the
/// caller's transaction. False when the account is gone or disabled.
pub async fn set_password(
    conn: &mut AnyConnection,
    user_id: &str,
    password_hash: &str,
    now: DateTime<Utc>,
) -> DomainResult<bool> {
    let done = sqlx::query(
        "UPDATE staff_users SET password_hash = $1, must_change_password = 0, \
         failed_count = 0, updated_at = $2 WHERE user_id = $3 AND disabled_at IS NULL",
    )
    .bind(password_hash)
    .bind(fmt_time(now))
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records `step` as the last used TOTP step; false when it (or a later one) was used
/// before (a replay).
pub async fn claim_step(conn: &mut AnyConnection, user_id: &str, step: u64) -> DomainResult<bool> {
    let step = i64::try_from(step).map_err(|_| DomainError::Internal("time step".into()))?;
    let done = sqlx::query(
        "UPDATE staff_users SET totp_last_step = $1 WHERE user_id = $2 AND totp_last_step < $1",
    )
    .bind(step)
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Clears the failure count; with `unlock`, also the lockout.
pub async fn clear_failures(
    conn: &mut AnyConnection,
    user_id: &str,
    unlock: bool,
) -> DomainResult<()> {
    let sql = if unlock {
        "UPDATE staff_users SET failed_count = 0, locked_until = NULL WHERE user_id = $1"
    } else {
        "UPDATE staff_users SET failed_count = 0 WHERE user_id = $1"
    };
    sqlx::query(sql).bind(user_id).execute(&mut *conn).await?;
    Ok(())
}

/// Counts a failure; returns the count now.
pub async fn count_failure(conn: &mut AnyConnection, user_id: &str) -> DomainResult<i64> {
    Ok(sqlx::query_scalar(
        "UPDATE staff_users SET failed_count = failed_count + 1 WHERE user_id = $1 \
         RETURNING failed_count",
    )
    .bind(user_id)
    .fetch_one(&mut *conn)
    .await?)
}

/// Locks the account until `until`, the failure count cleared.
pub async fn lock(
    conn: &mut AnyConnection,
    user_id: &str,
    until: DateTime<Utc>,
) -> DomainResult<()> {
    sqlx::query("UPDATE staff_users SET failed_count = 0, locked_until = $1 WHERE user_id = $2")
        .bind(fmt_time(until))
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Sets an account's roles and units (comma-separated), the failures and lockout
/// cleared: an OpenID Connect account at each sign-in (the provider's claims are the
/// source of truth), or emptied when the claims give no role.
pub async fn set_roles(
    conn: &mut AnyConnection,
    user_id: &str,
    roles: &str,
    units: &str,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    sqlx::query(
        "UPDATE staff_users SET roles = $1, units = $2, failed_count = 0, \
         locked_until = NULL, updated_at = $3 WHERE user_id = $4",
    )
    .bind(roles)
    .bind(units)
    .bind(fmt_time(now))
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Stores a new account that signs in through OpenID Connect (`auth = oidc`): no
/// password (the stored hash is not a PHC string, so nothing verifies against it) and
/// no TOTP secret (an empty value no key opens).
pub async fn insert_oidc(
    conn: &mut AnyConnection,
    user_id: &str,
    name: &str,
    roles: &str,
    units: &str,
    auth: &str,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    let now = fmt_time(now);
    sqlx::query(
        "INSERT INTO staff_users (user_id, name, roles, units, password_hash, \
         must_change_password, totp_sealed, totp_last_step, failed_count, created_at, \
         updated_at, auth) VALUES ($1, $2, $3, $4, '!oidc', 0, $5, 0, 0, $6, $6, $7)",
    )
    .bind(user_id)
    .bind(name)
    .bind(roles)
    .bind(units)
    .bind(Vec::<u8>::new())
    .bind(&now)
    .bind(auth)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
