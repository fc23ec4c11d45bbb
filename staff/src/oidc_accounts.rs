//! The accounts behind OpenID Connect sign-ins (see [`crate::oidc`] for the flow):
//! the audit actor of a refusal, the account made or updated from mapped claims, the
//! session a sign-in opens, and the step-up that a fresh provider sign-in grants.

use fiktiv_vault::audit::Outcome;
use fiktiv_vault::db::Tx;
use fiktiv_vault::Vault;

use crate::accounts::{self, Account, AUTH_OIDC, UNKNOWN_ACTOR};
use crate::oidc::{Mapped, Purpose, Refusal, OK_PURPOSE};
use crate::principal::principal_id;
use crate::session::{self, NewSession};
use fiktiv_routine::staff_records::accounts as store;
use fiktiv_routine::DomainResult;

/// The audit actor for a refusal: the principal when an account has the mapped name,
/// else `web:unknown` (a person Fiktiv does not know is not written down).
pub async fn actor_for(vault: &Vault, name: Option<&str>) -> DomainResult<String> {
    match name {
        Some(n) => accounts::actor_for(vault, n).await,
        None => Ok(UNKNOWN_ACTOR.to_owned()),
    }
}

/// The audit actor of a step-up flow: the person of the session that started it (the
/// browser may come back from the provider's site without the `SameSite=Strict`
/// session cookie), or `web:unknown` when that session has ended.
pub async fn step_up_actor(vault: &Vault, session_hash: Option<&str>) -> DomainResult<String> {
    let Some(h) = session_hash else {
        return Ok(UNKNOWN_ACTOR.to_owned());
    };
    let mut conn = vault.db().pool().acquire().await?;
    Ok(match session::owner_of(&mut conn, h).await? {
        Some((_, name)) => principal_id(&name),
        None => UNKNOWN_ACTOR.to_owned(),
    })
}

/// Audit a refused OIDC sign-in or step-up.
pub async fn audit_refusal(
    vault: &Vault,
    actor: &str,
    purpose: Purpose,
    why: Refusal,
) -> DomainResult<()> {
    let tx = vault.db().begin_write().await?;
    commit_refusal(vault, tx, actor, purpose, why).await
}

/// Audits a refusal in `tx` and commits it, with whatever else `tx` changed.
async fn commit_refusal(
    vault: &Vault,
    mut tx: Tx,
    actor: &str,
    purpose: Purpose,
    why: Refusal,
) -> DomainResult<()> {
    accounts::audit(
        vault,
        &mut tx,
        actor,
        purpose.action(),
        Outcome::Denied,
        Some(why.code()),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A person the provider signed in but whose claims give no role. An OIDC account of
/// that name loses its roles and its sessions at once (the provider is the source of
/// truth); the refusal is audited.
pub async fn refuse_no_role(vault: &Vault, name: &str) -> DomainResult<()> {
    let mut tx = vault.db().begin_write().await?;
    let row = store::by_name(&mut tx, name).await?;
    let actor = match row {
        Some(r) => {
            if r.auth == AUTH_OIDC {
                store::set_roles(&mut tx, &r.user_id, "", "", vault.now()).await?;
                session::delete_all_of(&mut tx, &r.user_id).await?;
            }
            principal_id(name)
        }
        None => UNKNOWN_ACTOR.to_owned(),
    };
    commit_refusal(vault, tx, &actor, Purpose::SignIn, Refusal::NoRole).await
}

/// Sign in the mapped person: make or update their OIDC account (roles and units from
/// the claims), create a session and audit, all in one transaction.
pub async fn sign_in(
    vault: &Vault,
    m: &Mapped,
) -> DomainResult<Result<(Account, NewSession), Refusal>> {
    let now = vault.now();
    let mut roles: Vec<&str> = m.roles.iter().map(|r| r.as_str()).collect();
    roles.sort_unstable();
    let actor = principal_id(&m.name);
    let mut tx = vault.db().begin_write().await?;
    let row = store::by_name(&mut tx, &m.name).await?;
    let user_id = match row {
        Some(r) => {
            let why = if r.auth != AUTH_OIDC {
                Some(Refusal::LocalAccount)
            } else if r.disabled_at.is_some() {
                Some(Refusal::Disabled)
            } else {
                None
            };
            if let Some(why) = why {
                accounts::audit(
                    vault,
                    &mut tx,
                    &actor,
                    Purpose::SignIn.action(),
                    Outcome::Denied,
                    Some(why.code()),
                )
                .await?;
                tx.commit().await?;
                return Ok(Err(why));
            }
            store::set_roles(
                &mut tx,
                &r.user_id,
                &roles.join(","),
                &m.units.join(","),
                now,
            )
            .await?;
            r.user_id
        }
        None => {
            let user_id = uuid::Uuid::new_v4().to_string();
            // No password and no TOTP secret: the provider signs this person in.
            let (roles, units) = (roles.join(","), m.units.join(","));
            store::insert_oidc(&mut tx, &user_id, &m.name, &roles, &units, AUTH_OIDC, now).await?;
            user_id
        }
    };
    let new = session::insert(&mut tx, &user_id, now).await?;
    accounts::audit(
        vault,
        &mut tx,
        &actor,
        Purpose::SignIn.action(),
        Outcome::Ok,
        Some(OK_PURPOSE),
    )
    .await?;
    tx.commit().await?;
    Ok(Ok((
        Account {
            user_id,
            name: m.name.clone(),
            roles: m.roles.clone(),
            units: m.units.clone(),
            must_change_password: false,
            oidc: true,
        },
        new,
    )))
}

/// Finish a step-up: the session must still be live and belong to the person the
/// provider just authenticated. Marks the session and audits, in one transaction.
pub async fn step_up(
    vault: &Vault,
    session_hash: &str,
    name: &str,
) -> DomainResult<Result<(), Refusal>> {
    let mut tx = vault.db().begin_write().await?;
    let owner = session::owner_of(&mut tx, session_hash).await?;
    let Some((_, owner_name)) = owner else {
        drop(tx);
        audit_refusal(vault, UNKNOWN_ACTOR, Purpose::StepUp, Refusal::State).await?;
        return Ok(Err(Refusal::State));
    };
    let actor = principal_id(&owner_name);
    if owner_name != name {
        commit_refusal(vault, tx, &actor, Purpose::StepUp, Refusal::OtherPerson).await?;
        return Ok(Err(Refusal::OtherPerson));
    }
    session::mark_stepped_up_by_hash(&mut tx, session_hash, vault.now()).await?;
    accounts::audit(
        vault,
        &mut tx,
        &actor,
        Purpose::StepUp.action(),
        Outcome::Ok,
        Some(OK_PURPOSE),
    )
    .await?;
    tx.commit().await?;
    Ok(Ok(()))
}
