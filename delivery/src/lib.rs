//! Delivering the fictitious pupils to the targets: the targets in force (file, API,
//! embedded default), the desired state derived from the routine, the outbox and its
//! worker, plan/apply, reconciliation, and the two checks (account check, leak scan)
//! with their alerts.
//!
//! The `fiktiv-provisioning` crate does the work on one target (LDAP, SCIM, OneRoster,
//! SS 12000 scan) and knows no database; this crate decides *what* should be where,
//! records it in the database and drives it there reliably. The HTTP API, the web UI
//! and the command line (the `fiktiv` crate) call it; it knows none of them.
//!
//! | module | what |
//! |---|---|
//! | [`config`] | `[[targets]]`, `[provisioning]`, the target shapes of the API, building targets |
//! | [`targets`] | the set of targets in force (file, API, embedded default); list, put, delete, test |
//! | `fiktiv_routine::desired` | the fictitious persons of each case and their desired state, derived from the routine's tables |
//! | [`jobs`] | the outbox: one job per (person, target), claimed with `FOR UPDATE SKIP LOCKED` / `BEGIN IMMEDIATE` |
//! | [`worker`] | the worker pool started by `fiktiv serve`; one job = one guarded, idempotent operation |
//! | [`sync`] | plan, apply (removal safety, two-stage deletion) and reconciliation |
//! | [`checks`] | account checks, leak scans and their runs with progress; alerts |
//!
//! Nothing here handles a real identity (`tests/tests/suite/layers.rs` checks the
//! source). Persons are built from the fictitious columns of the routine's tables;
//! every value bound for a target passes the egress guard built from the vault's
//! blind-index set. Errors, job reasons and alerts name targets, operations, codes and
//! opaque ids, never a value.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use fiktiv_policies::Authorizer;
use fiktiv_routine::{DomainResult, Rules};
use fiktiv_vault::Vault;
use tokio::sync::Notify;

pub mod checks;
pub mod config;
pub mod jobs;
pub mod sync;
pub mod targets;
pub mod worker;

use config::{ProvisioningConfig, TargetSpec};
use targets::TargetSet;

/// How long a built set of targets is reused before it is built again (to pick up
/// targets changed by another instance, and the school year).
const TARGET_CACHE: Duration = Duration::from_secs(30);

/// What every delivery function works with: the vault, the one authorizer, the
/// routine's rules and the delivery runtime. The `fiktiv` crate builds it once at
/// start-up beside its own context (the same vault, authorizer and rules).
#[derive(Clone, Debug)]
pub struct Delivery {
    pub vault: Vault,
    pub authz: Arc<Authorizer>,
    pub rules: Arc<Rules>,
    pub runtime: Arc<Runtime>,
}

/// Delivery state shared by the HTTP handlers, the CLI and the worker.
pub struct Runtime {
    settings: ProvisioningConfig,
    /// `[limits] concurrent_runs`: account checks and leak scans running at once.
    concurrent_runs: u32,
    file_targets: Vec<TargetSpec>,
    embedded: bool,
    data_dir: PathBuf,
    cache: Mutex<Option<(Instant, Arc<TargetSet>)>>,
    wake: Notify,
    /// A target became free in this process (job workers only).
    freed: Notify,
    /// One lock per target: jobs on one target run one at a time (group memberships
    /// are read-modify-write on SCIM and in the roster files), different targets in
    /// parallel.
    locks: Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// This instance's random id: the holder of its leases in the database
    /// (`fiktiv_routine::cluster`).
    instance: String,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("settings", &self.settings)
            .field(
                "file_targets",
                &self
                    .file_targets
                    .iter()
                    .map(TargetSpec::name)
                    .collect::<Vec<_>>(),
            )
            .field("embedded", &self.embedded)
            .field("instance", &self.instance)
            .finish()
    }
}

impl Runtime {
    /// Checks `[provisioning]` and `[[targets]]`; each problem is one line.
    /// `concurrent_runs` is `[limits] concurrent_runs` (at least one run is allowed).
    pub fn new(
        settings: &ProvisioningConfig,
        file_targets: &[TargetSpec],
        concurrent_runs: u32,
        data_dir: &Path,
    ) -> Result<Self, String> {
        settings.validate()?;
        let mut names = std::collections::BTreeSet::new();
        for t in file_targets {
            t.validate(false)
                .map_err(|e| format!("[[targets]] {}: {e}", t.name()))?;
            if !names.insert(t.name().to_owned()) {
                return Err(format!("[[targets]] {}: the name is used twice", t.name()));
            }
        }
        let embedded = file_targets.is_empty() && settings.embedded_default;
        Ok(Self {
            settings: settings.clone(),
            concurrent_runs: concurrent_runs.max(1),
            file_targets: file_targets.to_vec(),
            embedded,
            data_dir: data_dir.to_path_buf(),
            cache: Mutex::new(None),
            wake: Notify::new(),
            freed: Notify::new(),
            locks: Mutex::new(std::collections::HashMap::new()),
            instance: uuid::Uuid::new_v4().simple().to_string(),
        })
    }

    /// This instance's id, the holder of its leases (random, new at every start).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn settings(&self) -> &ProvisioningConfig {
        &self.settings
    }

    /// Account checks and leak scans that may run at once (`[limits] concurrent_runs`).
    pub fn concurrent_runs(&self) -> u32 {
        self.concurrent_runs
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Wakes the worker (new jobs were armed).
    pub fn wake(&self) {
        self.wake.notify_waiters();
        self.wake.notify_one();
    }

    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.wake.notified()
    }

    /// Tells idle job workers that a target is free again.
    pub(crate) fn target_freed(&self) {
        self.freed.notify_waiters();
    }

    pub(crate) fn freed(&self) -> tokio::sync::futures::Notified<'_> {
        self.freed.notified()
    }

    /// The lock of one target's jobs.
    pub(crate) fn target_lock(&self, target: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(target.to_owned())
            .or_default()
            .clone()
    }

    /// Targets on which this process runs a job now.
    pub(crate) fn busy_targets(&self) -> Vec<String> {
        self.locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, l)| l.try_lock().is_err())
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Forget the built targets (after a change through the API).
    pub fn invalidate(&self) {
        *self.cache.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The targets in force: the file's (or the embedded default) and the API's.
    pub async fn targets(&self, vault: &Vault) -> DomainResult<Arc<TargetSet>> {
        if let Some((at, set)) = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            if at.elapsed() < TARGET_CACHE {
                return Ok(set.clone());
            }
        }
        let set = Arc::new(
            targets::build_set(vault, &self.file_targets, self.embedded, &self.data_dir).await?,
        );
        *self.cache.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), set.clone()));
        Ok(set)
    }
}
