//! The targets in force and their management: the file's `[[targets]]` (or the
//! embedded OneRoster default), plus targets made through the API, whose credential is
//! sealed in `prov_targets` under the target-secrets key. A name in the file wins over
//! the same name in the database, and cannot be changed through the API.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use fiktiv_policies::{Action, Country, Permit};
use fiktiv_provisioning::{Diagnosis, EgressGuard, FictitiousNumber, Problem, Target, TargetName};
use fiktiv_vault::audit::{NewEvent, Outcome};
use fiktiv_vault::db::Tx;
use fiktiv_vault::Vault;
use serde::Serialize;
use utoipa::ToSchema;

use super::config::{embedded_target, env_credential, Credential, TargetSpec};
use crate::Delivery;
use fiktiv_routine::target_records::{self, StoredTarget};
use fiktiv_routine::{DomainError, DomainResult, FieldProblem};

/// The sealing purpose of a target credential (bound with the target's name).
const SEAL_PURPOSE: &str = "target-credential";

/// Where a target's settings come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `[[targets]]` in the configuration file.
    File,
    /// Made through the API (`PUT /api/v1/targets/{name}`).
    Api,
    /// The OneRoster folder in the data directory, used when the file names no target.
    Embedded,
}

/// One target in force.
pub struct TargetEntry {
    pub name: TargetName,
    /// The settings, without the credential.
    pub spec: TargetSpec,
    pub source: Source,
    pub has_credential: bool,
    /// The built target, or why it cannot be used (fixed text, no value).
    pub target: Result<Arc<dyn Target>, String>,
}

impl TargetEntry {
    /// Does a pupil whose order names these platforms get an account here? A target
    /// with no `platforms` receives every registered pupil; otherwise one of the
    /// order's platforms must equal one of the target's platforms or its name (case
    /// and surrounding space ignored).
    /// Does this target stand for the ordered platform `platform`: named so, or listing
    /// it in `platforms` (case and surrounding space ignored)? A target with no
    /// `platforms` receives every pupil but stands for no platform but its own name.
    pub fn serves(&self, platform: &str) -> bool {
        if self.spec.scan_only() {
            return false;
        }
        let p = platform.trim();
        self.name.as_str().eq_ignore_ascii_case(p)
            || self
                .spec
                .platforms()
                .iter()
                .any(|m| m.trim().eq_ignore_ascii_case(p))
    }

    /// A scan-only target (SS 12000) receives nobody.
    pub fn receives(&self, platforms: &[String]) -> bool {
        if self.spec.scan_only() {
            return false;
        }
        let mine = self.spec.platforms();
        mine.is_empty()
            || platforms.iter().any(|p| {
                let p = p.trim();
                self.name.as_str().eq_ignore_ascii_case(p)
                    || mine.iter().any(|m| m.trim().eq_ignore_ascii_case(p))
            })
    }
}

/// Every target in force, by name.
#[derive(Default)]
pub struct TargetSet {
    pub entries: BTreeMap<TargetName, TargetEntry>,
}

impl TargetSet {
    pub fn get(&self, name: &str) -> Option<&TargetEntry> {
        self.entries
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, e)| e)
    }
}

/// The egress guard over the vault's blind-index set, read now (so a real identity
/// stored a moment ago is already refused).
pub async fn egress_guard(vault: &Vault) -> DomainResult<EgressGuard> {
    let set = vault.blind_index_set().await?;
    Ok(EgressGuard::new(vault.keys().blind().clone(), set))
}

fn open_sealed(vault: &Vault, name: &str, sealed: &[u8]) -> Result<Credential, String> {
    let key = vault
        .keys()
        .target_secrets()
        .map_err(|_| "the target-secrets key cannot be derived".to_string())?;
    let plain = key
        .open(SEAL_PURPOSE, name, sealed)
        .map_err(|_| "the stored credential cannot be opened".to_string())?;
    let s = String::from_utf8(plain.to_vec())
        .map_err(|_| "the stored credential is not text".to_string())?;
    Ok(Credential::new(s))
}

fn entry(
    spec: &TargetSpec,
    source: Source,
    credential: Option<Credential>,
    data_dir: &Path,
    today: chrono::NaiveDate,
) -> Option<TargetEntry> {
    let name = TargetName::new(spec.name()).ok()?;
    let has_credential = credential.is_some();
    let target = spec.build(data_dir, credential.as_ref(), today);
    if let Err(e) = &target {
        tracing::warn!(target_name = %name, problem = %e, "target cannot be used");
    }
    Some(TargetEntry {
        name,
        spec: spec.without_credential(),
        source,
        has_credential,
        target,
    })
}

/// Builds the set of targets in force.
pub(super) async fn build_set(
    vault: &Vault,
    file: &[TargetSpec],
    embedded: bool,
    data_dir: &Path,
) -> DomainResult<TargetSet> {
    let today = vault.now().date_naive();
    let mut set = TargetSet::default();
    let mut file_specs: Vec<(TargetSpec, Source)> =
        file.iter().map(|s| (s.clone(), Source::File)).collect();
    if embedded {
        file_specs.push((embedded_target(), Source::Embedded));
    }
    for (spec, source) in &file_specs {
        let cred = env_credential(spec.name(), spec.kind()).or_else(|| spec.credential().cloned());
        if let Some(e) = entry(spec, *source, cred, data_dir, today) {
            set.entries.insert(e.name.clone(), e);
        }
    }
    for stored in target_records::all(vault).await? {
        let name = stored.name;
        if set.get(&name).is_some() {
            continue;
        }
        let json = stored.settings_json;
        let sealed = stored.secret_sealed;
        let Ok(spec) = serde_json::from_str::<TargetSpec>(&json) else {
            tracing::error!(target_name = %name, "stored target settings cannot be read");
            continue;
        };
        let cred = match env_credential(&name, spec.kind()) {
            Some(c) => Some(c),
            None => match sealed.as_deref().map(|s| open_sealed(vault, &name, s)) {
                Some(Ok(c)) => Some(c),
                Some(Err(e)) => {
                    tracing::error!(target_name = %name, problem = %e, "target credential");
                    None
                }
                None => None,
            },
        };
        if let Some(e) = entry(&spec, Source::Api, cred, data_dir, today) {
            set.entries.insert(e.name.clone(), e);
        }
    }
    Ok(set)
}

/// A target as listed: settings without the credential.
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetView {
    pub name: String,
    pub kind: String,
    pub source: Source,
    /// Whether a credential is set (file, environment or sealed in the database).
    pub has_credential: bool,
    /// False when the settings cannot be used; `problem` says why.
    pub usable: bool,
    pub problem: Option<String>,
    pub settings: TargetSpec,
}

fn view(e: &TargetEntry) -> TargetView {
    TargetView {
        name: e.name.to_string(),
        kind: e.spec.kind().to_owned(),
        source: e.source,
        has_credential: e.has_credential,
        usable: e.target.is_ok(),
        problem: e.target.as_ref().err().cloned(),
        settings: e.spec.clone(),
    }
}

/// Every target in force.
pub async fn list(ctx: &Delivery) -> DomainResult<Vec<TargetView>> {
    let set = ctx.runtime.targets(&ctx.vault).await?;
    Ok(set.entries.values().map(view).collect())
}

/// List the targets. Permit: `targets.manage`.
pub async fn list_permitted(ctx: &Delivery, permit: &Permit) -> DomainResult<Vec<TargetView>> {
    permit.require(Action::TargetsManage)?;
    list(ctx).await
}

fn file_conflict() -> DomainError {
    DomainError::conflict(
        "target-in-file",
        "This target is configured in the configuration file (or is the embedded default); change it there.",
    )
}

/// Create or replace a target made through the API. The credential, if given, is
/// sealed; if not given, the stored one is kept. Permit: `targets.manage`.
pub async fn put(
    ctx: &Delivery,
    permit: &Permit,
    name: &str,
    spec: TargetSpec,
) -> DomainResult<TargetView> {
    permit.require(Action::TargetsManage)?;
    put_as(ctx, permit.principal_id(), name, spec).await
}

pub async fn put_as(
    ctx: &Delivery,
    actor: &str,
    name: &str,
    spec: TargetSpec,
) -> DomainResult<TargetView> {
    let target_name = spec.validate(true).map_err(|m| invalid_settings(&m))?;
    if target_name.as_str() != name {
        return Err(DomainError::invalid(
            "name",
            "target.name-mismatch",
            "The name in the body differs from the name in the path.",
        ));
    }
    let set = ctx.runtime.targets(&ctx.vault).await?;
    if set.get(name).is_some_and(|e| e.source != Source::Api) {
        return Err(file_conflict());
    }
    let vault = &ctx.vault;
    let mut tx = vault.db().begin_write().await?;
    let existing = target_records::sealed_secret(&mut tx, name).await?;
    let sealed = match spec.credential() {
        Some(c) => Some(
            vault
                .keys()
                .target_secrets()
                .map_err(|e| DomainError::Internal(e.to_string()))?
                .seal(SEAL_PURPOSE, name, c.expose().as_bytes())
                .map_err(|_| DomainError::Internal("sealing a target credential failed".into()))?,
        ),
        None => existing.clone().flatten(),
    };
    if spec.needs_credential() && sealed.is_none() && env_credential(name, spec.kind()).is_none() {
        return Err(DomainError::invalid(
            if spec.kind() == "ldap" {
                "bind_password"
            } else {
                "token"
            },
            "target.credential-required",
            "A new target needs its credential (bind password or bearer token).",
        ));
    }
    let json = serde_json::to_string(&spec.without_credential())
        .map_err(|e| DomainError::Internal(e.to_string()))?;
    let stored = StoredTarget {
        name: name.to_owned(),
        settings_json: json,
        secret_sealed: sealed,
    };
    target_records::write(&mut tx, spec.kind(), &stored, actor, vault.now()).await?;
    audit(vault, &mut tx, actor, Action::TargetsManage.as_str()).await?;
    tx.commit().await?;
    ctx.runtime.invalidate();
    ctx.runtime.wake();
    let set = ctx.runtime.targets(vault).await?;
    set.get(name)
        .map(view)
        .ok_or_else(|| DomainError::Internal("the stored target is not in force".into()))
}

fn invalid_settings(message: &str) -> DomainError {
    // The message is built from field names and limits only, never from a value.
    DomainError::Invalid(vec![FieldProblem::new(
        "settings",
        "target.invalid",
        message,
    )])
}

/// Remove a target made through the API; its open jobs fail with a clear reason.
/// Permit: `targets.manage`.
pub async fn delete(ctx: &Delivery, permit: &Permit, name: &str) -> DomainResult<()> {
    permit.require(Action::TargetsManage)?;
    let set = ctx.runtime.targets(&ctx.vault).await?;
    if set.get(name).is_some_and(|e| e.source != Source::Api) {
        return Err(file_conflict());
    }
    let vault = &ctx.vault;
    let mut tx = vault.db().begin_write().await?;
    if !target_records::remove(&mut tx, name, vault.now()).await? {
        return Err(DomainError::NotFound);
    }
    audit(
        vault,
        &mut tx,
        permit.principal_id(),
        Action::TargetsManage.as_str(),
    )
    .await?;
    tx.commit().await?;
    ctx.runtime.invalidate();
    Ok(())
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

/// Test a target: connectivity, TLS, credentials, bases, schema (and write permission
/// for LDAP). `None` when there is no such target.
pub async fn test(ctx: &Delivery, name: &str) -> DomainResult<Option<Diagnosis>> {
    let set = ctx.runtime.targets(&ctx.vault).await?;
    let Some(e) = set.get(name) else {
        return Ok(None);
    };
    let target = match &e.target {
        Ok(t) => t.clone(),
        Err(problem) => {
            let mut d = Diagnosis::new(e.name.clone());
            let p = if problem.starts_with("no bind password")
                || problem.starts_with("no bearer token")
            {
                Problem::BadCredentials
            } else {
                Problem::Configuration
            };
            d.fail(
                "settings",
                p,
                fiktiv_provisioning::diagnose::Detail::error(problem),
            );
            return Ok(Some(d));
        }
    };
    let guard = egress_guard(&ctx.vault).await?;
    let now = ctx.vault.now();
    // Each step has the target's own timeout; this bounds the whole test.
    let limit = ctx.runtime.settings().job_timeout();
    match tokio::time::timeout(limit, target.diagnose(&guard, now)).await {
        Ok(mut d) => {
            // Does the target take a number of the scheme in force (a check digit that
            // fails, letters)? Only when everything else passed: a probe entry is
            // written.
            if d.ok() {
                for country in [Country::Se, Country::No] {
                    let sample =
                        fiktiv_routine::registration::sample_number(&ctx.rules.numbers, country)
                            .and_then(|n| {
                                FictitiousNumber::new(
                                    match country {
                                        Country::Se => fiktiv_vault::ids::Country::Se,
                                        Country::No => fiktiv_vault::ids::Country::No,
                                    },
                                    &n,
                                )
                                .ok()
                            });
                    if let Some(n) = sample {
                        let _ =
                            tokio::time::timeout(limit, target.probe_number(&guard, &n, &mut d))
                                .await;
                    }
                }
            }
            Ok(Some(d))
        }
        Err(_) => {
            let mut d = Diagnosis::new(e.name.clone());
            d.fail(
                "connect",
                Problem::Unreachable,
                fiktiv_provisioning::detail!(
                    "test-timeout",
                    "the test did not finish within {secs} s",
                    secs = limit.as_secs()
                ),
            );
            Ok(Some(d))
        }
    }
}

/// Test a target. Permit: `targets.manage`.
pub async fn test_permitted(
    ctx: &Delivery,
    permit: &Permit,
    name: &str,
) -> DomainResult<Option<Diagnosis>> {
    permit.require(Action::TargetsManage)?;
    test(ctx, name).await
}

/// One step of a target test.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProbeView {
    pub step: String,
    pub ok: bool,
    /// `unreachable`, `tls`, `bad-credentials`, `missing-base`, `missing-schema`,
    /// `permission-denied`, `configuration` or `unexpected`.
    pub problem: Option<String>,
    /// What to do about the problem.
    pub advice: Option<String>,
    /// Fixed text with codes and configuration values only, in English.
    pub detail: String,
    /// The detail's stable code; the web UI shows `target-detail.<code>` in the
    /// user's language.
    pub code: String,
    /// The detail's named values (configuration values, result codes, counts).
    pub args: std::collections::BTreeMap<String, String>,
}

/// The result of `fiktiv targets test NAME` / `POST /api/v1/targets/{target}/test`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TestReport {
    pub target: String,
    pub ok: bool,
    pub probes: Vec<ProbeView>,
}

impl From<Diagnosis> for TestReport {
    fn from(d: Diagnosis) -> Self {
        Self {
            target: d.target.to_string(),
            ok: d.ok(),
            probes: d
                .probes
                .into_iter()
                .map(|p| ProbeView {
                    step: p.step,
                    ok: p.ok,
                    problem: p.problem.map(|x| x.as_str().to_owned()),
                    advice: p.problem.map(|x| x.advice().to_owned()),
                    detail: p.detail,
                    code: p.code,
                    args: p.args,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use fiktiv_vault::{KeyRing, RootKey};

    use super::SEAL_PURPOSE;

    #[test]
    fn target_credentials_have_a_key_of_their_own() {
        let ring = KeyRing::new(RootKey::generate()).unwrap();
        let sealed = ring
            .target_secrets()
            .unwrap()
            .seal(SEAL_PURPOSE, "ldap-main", b"bind-password")
            .unwrap();
        assert!(!sealed.windows(8).any(|w| w == b"bind-pas"));
        let key = ring.target_secrets().unwrap();
        assert_eq!(
            key.open(SEAL_PURPOSE, "ldap-main", &sealed)
                .unwrap()
                .as_slice(),
            b"bind-password"
        );
        // Bound to the target's name; the staff-secrets key cannot open it.
        assert!(key.open(SEAL_PURPOSE, "other", &sealed).is_err());
        assert!(ring
            .staff_secrets()
            .unwrap()
            .open(SEAL_PURPOSE, "ldap-main", &sealed)
            .is_err());
    }
}
