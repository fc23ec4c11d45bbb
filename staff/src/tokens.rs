//! API bearer tokens: `fiktiv tokens create --role ROLE [--unit UNIT] --name WHO`.
//!
//! A token is 32 random bytes, shown once as `fkt_<base64url>`. Only its SHA-256 is
//! stored, with the holder's name, roles, units, expiry and revocation. The principal
//! of a token is `staff:<name>`: two tokens of the same person are one person to the
//! authorizer, so nobody approves their own reveal request with a second token.
//! Creating and revoking a token is audited.

use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use fiktiv_policies::{Principal, Role};
use fiktiv_vault::audit::{NewEvent, Outcome};
use fiktiv_vault::db::Tx;
use fiktiv_vault::Vault;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::principal::NameOf;
use fiktiv_routine::ids::TokenId;
use fiktiv_routine::orders::parse_time;
use fiktiv_routine::staff_records::tokens as store;
use fiktiv_routine::{DomainError, DomainResult, FieldProblem};

const PREFIX: &str = "fkt_";

/// A token just created. The secret exists only here and is shown once.
pub struct NewToken {
    pub id: TokenId,
    pub secret: Zeroizing<String>,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NewToken({}, [secret])", self.id)
    }
}

/// A stored token, without its secret.
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
    pub units: Vec<String>,
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

async fn audit(vault: &Vault, tx: &mut Tx, actor: &str, action: &str) -> DomainResult<()> {
    vault
        .audit(
            tx,
            &NewEvent {
                actor,
                action,
                case_id: None,
                purpose: None,
                outcome: Outcome::Ok,
            },
        )
        .await?;
    Ok(())
}

/// Create a token. `actor` is who does it (`cli`).
pub async fn create(
    vault: &Vault,
    actor: &str,
    name: &str,
    roles: &[Role],
    units: &[String],
    expires_days: u32,
) -> DomainResult<NewToken> {
    let mut problems = crate::principal::check(name, NameOf::TokenHolder, roles, units);
    if expires_days == 0 || expires_days > 3650 {
        problems.push(FieldProblem::new(
            "expires_days",
            "token.expiry-invalid",
            "A token expires after 1 to 3650 days.",
        ));
    }
    if !problems.is_empty() {
        return Err(DomainError::Invalid(problems));
    }
    let mut raw = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(raw.as_mut());
    let secret = Zeroizing::new(format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_ref())
    ));
    let id = TokenId::new();
    let now = vault.now();
    let expires_at = now + TimeDelta::days(i64::from(expires_days));
    let mut role_names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    role_names.sort_unstable();
    role_names.dedup();
    let mut tx = vault.db().begin_write().await?;
    let token_id = id.to_string();
    let row = store::NewTokenRow {
        token_id: &token_id,
        name,
        roles: &role_names.join(","),
        units: &units.join(","),
        secret_hash: &hash(&secret),
        created_at: now,
        expires_at,
    };
    store::insert(&mut tx, &row).await?;
    audit(vault, &mut tx, actor, "tokens.create").await?;
    tx.commit().await?;
    Ok(NewToken {
        id,
        secret,
        expires_at,
    })
}

fn split(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Every token (no secrets).
pub async fn list(vault: &Vault) -> DomainResult<Vec<TokenInfo>> {
    Ok(store::all(vault)
        .await?
        .into_iter()
        .map(|r| TokenInfo {
            id: r.token_id,
            name: r.name,
            roles: split(&r.roles),
            units: split(&r.units),
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
        })
        .collect())
}

/// Revoke a token. `Ok(false)` when there is no such (unrevoked) token.
pub async fn revoke(vault: &Vault, actor: &str, id: &TokenId) -> DomainResult<bool> {
    let mut tx = vault.db().begin_write().await?;
    if !store::revoke(&mut tx, &id.to_string(), vault.now()).await? {
        return Ok(false);
    }
    audit(vault, &mut tx, actor, "tokens.revoke").await?;
    tx.commit().await?;
    Ok(true)
}

/// The principal of a bearer token, if it is known, unrevoked and unexpired.
pub async fn authenticate(vault: &Vault, token: &str) -> DomainResult<Option<Principal>> {
    if !token.starts_with(PREFIX) || token.len() > 128 {
        return Ok(None);
    }
    let Some(r) = store::by_hash(vault, &hash(token)).await? else {
        return Ok(None);
    };
    if r.revoked_at.is_some() {
        return Ok(None);
    }
    if vault.now() >= parse_time(&r.expires_at)? {
        return Ok(None);
    }
    let mut roles = Vec::new();
    for name in split(&r.roles) {
        // An unknown stored role gives no rights; never an error for the caller.
        if let Ok(role) = name.parse::<Role>() {
            roles.push(role);
        }
    }
    Ok(Some(crate::principal::principal(
        &r.name,
        roles,
        split(&r.units),
    )))
}
