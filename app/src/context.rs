//! Opening the data directory: keys, database and vault, with one clear error per
//! startup problem.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fiktiv_policies::number_ranges::NumberPolicy;
use fiktiv_policies::retention::RetentionPolicy;
use fiktiv_policies::Authorizer;

use fiktiv_vault::audit::{NewEvent, Outcome};
use fiktiv_vault::custody::{self, Provider};
use fiktiv_vault::keys::{KeyError, KEY_FILE_NAME, ROOT_KEY_ENV};
use fiktiv_vault::Db;
use fiktiv_vault::{KeyRing, RootKey, SharedClock, Vault};

use crate::config::Config;
use fiktiv_delivery::{Delivery, Runtime};
use fiktiv_routine::Rules;

/// A startup problem. Each prints as one line.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("data directory {0}: {1}")]
    DataDir(String, #[source] std::io::Error),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Db(#[from] fiktiv_vault::DbError),
    #[error(transparent)]
    Vault(#[from] fiktiv_vault::VaultError),
    #[error(
        "the data directory has a database but no key file ({0}); refusing to create a new key \
         (restore the key file or set {ROOT_KEY_ENV})"
    )]
    KeyLost(String),
    #[error("authorization policies: {0}")]
    Policies(#[from] fiktiv_policies::PolicyLoadError),
    #[error("{0}")]
    Rules(String),
    #[error(transparent)]
    Custody(#[from] fiktiv_vault::custody::CustodyError),
    #[error(transparent)]
    Unseal(#[from] fiktiv_vault::custody::unseal::UnsealError),
    #[error("{0}")]
    Keys(String),
}

/// Everything a command needs.
#[derive(Clone, Debug)]
pub struct Context {
    pub vault: Vault,
    pub config: Config,
    pub data_dir: PathBuf,
    /// The one authorizer, built at startup from the configured (or built-in) policies.
    pub authz: Arc<Authorizer>,
    /// Number ranges, retention, review and identity rules, reveal window.
    pub rules: Arc<Rules>,
    /// Delivery to the targets (`fiktiv_delivery`): the same vault, authorizer and
    /// rules, with the targets, the worker's settings and its wake-up.
    pub delivery: Delivery,
}

fn read_file(path: &Path) -> Result<String, StartupError> {
    std::fs::read_to_string(path)
        .map_err(|e| StartupError::Rules(format!("cannot read {}: {e}", path.display())))
}

/// Load the authorizer and the rules from configuration. Each problem is one line.
pub fn load_policies(config: &Config) -> Result<(Authorizer, Rules), StartupError> {
    let authz = match &config.policies.dir {
        Some(dir) => Authorizer::from_dir(dir)?,
        None => Authorizer::embedded()?,
    };
    // A TOML error spans several lines (the source line, a caret): flattened to one,
    // naming the file.
    let bad_file = |p: &Path, e: &dyn std::fmt::Display| {
        StartupError::Rules(format!(
            "{}: {}",
            p.display(),
            crate::config::one_line(&e.to_string())
        ))
    };
    let mut numbers = match &config.policies.number_ranges {
        Some(p) => NumberPolicy::from_toml(&read_file(p)?).map_err(|e| bad_file(p, &e))?,
        None => NumberPolicy::default_policy().map_err(|e| StartupError::Rules(e.to_string()))?,
    };
    // The tax agency's test numbers, when that scheme is in force: read and checked now.
    if numbers.se.check_digit
        == fiktiv_policies::number_ranges::CheckDigitRule::TaxAgencyTestNumbers
    {
        let Some(file) = numbers.se.test_numbers_file.clone() else {
            return Err(StartupError::Rules(
                "number_ranges: check_digit = \"tax-agency-test-numbers\" needs \
                 test_numbers_file"
                    .into(),
            ));
        };
        // Relative to the number-range file's folder.
        let file = match (&config.policies.number_ranges, file.is_relative()) {
            (Some(p), true) => p.parent().unwrap_or(Path::new(".")).join(file),
            _ => file,
        };
        numbers
            .load_test_numbers(&read_file(&file)?)
            .map_err(|e| bad_file(&file, &e))?;
    }
    let retention = match &config.policies.retention {
        Some(p) => RetentionPolicy::from_toml(&read_file(p)?).map_err(|e| bad_file(p, &e))?,
        None => {
            RetentionPolicy::default_policy().map_err(|e| StartupError::Rules(e.to_string()))?
        }
    };
    for c in [fiktiv_policies::Country::Se, fiktiv_policies::Country::No] {
        config
            .review
            .policy_for(c)
            .map_err(|e| StartupError::Rules(format!("[review] {e}")))?;
    }
    config.metrics.access().map_err(StartupError::Rules)?;
    if let Some(oidc) = &config.web.oidc {
        fiktiv_staff::oidc::Settings::from_config(oidc).map_err(StartupError::Rules)?;
    }
    crate::notify::Mailer::from_config(&config.notifications).map_err(StartupError::Rules)?;
    if let Some(hub) = &config.ss12000 {
        hub.validate().map_err(StartupError::Rules)?;
    }
    if config.reveal.open_within_hours == 0 || config.reveal.open_within_hours > 720 {
        return Err(StartupError::Rules(
            "[reveal] open_within_hours must be 1 to 720".into(),
        ));
    }
    if config.reveal.ttl_minutes == 0 || config.reveal.ttl_minutes > 24 * 60 {
        return Err(StartupError::Rules(
            "[reveal] ttl_minutes must be 1 to 1440".into(),
        ));
    }
    if config.cases.request_valid_days == 0 || config.cases.request_valid_days > 90 {
        return Err(StartupError::Rules(
            "[cases] request_valid_days must be 1 to 90".into(),
        ));
    }
    if !(1..=1000).contains(&config.cases.requests_per_person_per_day) {
        return Err(StartupError::Rules(
            "[cases] requests_per_person_per_day must be 1 to 1000".into(),
        ));
    }
    let rules = Rules {
        numbers,
        retention,
        review: config.review,
        identity: config.identity,
        reveal_ttl: chrono::TimeDelta::minutes(i64::from(config.reveal.ttl_minutes)),
        reveal_open_within: chrono::TimeDelta::hours(i64::from(config.reveal.open_within_hours)),
        case_request_valid: chrono::TimeDelta::days(i64::from(config.cases.request_valid_days)),
        case_requests_per_day: config.cases.requests_per_person_per_day,
    };
    Ok((authz, rules))
}

fn delivery_runtime(config: &Config, data_dir: &Path) -> Result<Arc<Runtime>, StartupError> {
    Runtime::new(
        &config.provisioning,
        &config.targets,
        config.limits.concurrent_runs,
        data_dir,
    )
    .map(Arc::new)
    .map_err(StartupError::Rules)
}

/// The context, with the delivery functions' around the same vault, authorizer and
/// rules and the delivery runtime built (and its settings checked) once.
fn context_of(
    vault: Vault,
    config: Config,
    data_dir: &Path,
    (authz, rules): (Authorizer, Rules),
    runtime: Arc<Runtime>,
) -> Context {
    let authz = Arc::new(authz);
    let rules = Arc::new(rules);
    let delivery = Delivery {
        vault: vault.clone(),
        authz: authz.clone(),
        rules: rules.clone(),
        runtime,
    };
    Context {
        vault,
        config,
        data_dir: data_dir.to_path_buf(),
        authz,
        rules,
        delivery,
    }
}

fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE_NAME)
}

/// Remove a key file that `init_data_dir` just created, with the empty embedded
/// database beside it, after the first open failed (for example a bad config).
pub fn undo_new_key(data_dir: &Path) {
    let _ = std::fs::remove_file(key_path(data_dir));
    for f in ["fiktiv.db", "fiktiv.db-wal", "fiktiv.db-shm"] {
        let _ = std::fs::remove_file(data_dir.join(f));
    }
}

/// The HSM settings of `[keys.pkcs11]`, with the PIN read from its file.
pub fn hsm_settings(config: &Config) -> Result<custody::hsm::HsmSettings, StartupError> {
    config
        .keys
        .pkcs11
        .as_ref()
        .ok_or_else(|| {
            StartupError::Keys("[keys] provider = \"pkcs11\" needs a [keys.pkcs11] table".into())
        })?
        .settings()
        .map_err(StartupError::Keys)
}

/// Open the root key through the HSM (a blocking PKCS#11 call, off the runtime's threads).
pub async fn open_with_hsm(config: &Config, db: &Db) -> Result<RootKey, StartupError> {
    let settings = hsm_settings(config)?;
    let record = custody::load_for(db, Provider::Pkcs11).await?;
    tokio::task::spawn_blocking(move || custody::hsm_open_root(&settings, &record))
        .await
        .map_err(|e| StartupError::Keys(format!("the HSM call stopped: {e}")))?
        .map_err(StartupError::from)
}

/// Create the data directory (mode 0700), with no key file (shares, HSM).
pub fn init_dir_only(data_dir: &Path) -> Result<(), StartupError> {
    let shown = data_dir.display().to_string();
    std::fs::create_dir_all(data_dir).map_err(|e| StartupError::DataDir(shown.clone(), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| StartupError::DataDir(shown.clone(), e))?;
    }
    Ok(())
}

/// Whether the database already holds audit events (it was written with some key).
pub async fn database_has_data(db: &Db) -> Result<bool, StartupError> {
    fiktiv_vault::audit::any_events(db.pool())
        .await
        .map_err(|e| StartupError::Db(fiktiv_vault::DbError::Query(e)))
}

/// Create the data directory (mode 0700) and the root key, unless they exist.
/// Returns whether a key was created.
pub fn init_data_dir(data_dir: &Path) -> Result<bool, StartupError> {
    let shown = data_dir.display().to_string();
    std::fs::create_dir_all(data_dir).map_err(|e| StartupError::DataDir(shown.clone(), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| StartupError::DataDir(shown.clone(), e))?;
    }
    if std::env::var(ROOT_KEY_ENV).is_ok() || key_path(data_dir).exists() {
        return Ok(false);
    }
    if data_dir.join("fiktiv.db").exists() {
        return Err(StartupError::KeyLost(
            key_path(data_dir).display().to_string(),
        ));
    }
    RootKey::generate().write_new(&key_path(data_dir))?;
    Ok(true)
}

impl Context {
    /// The per-person limit on reveal requests (`[limits]`), for the domain.
    pub fn reveal_limit(&self) -> fiktiv_routine::reveal::RequestLimit {
        fiktiv_routine::reveal::RequestLimit {
            max: self.config.limits.reveal_requests_per_person,
            window_secs: self.config.limits.reveal_request_window_secs,
        }
    }
}

impl Context {
    /// Open keys, database and vault. Does not create anything but the database schema.
    /// The root key comes from the configured provider: the key file, or the HSM.
    /// With `shares`, use [`Context::open_with_root`] after the shares have opened it.
    pub async fn open(
        data_dir: &Path,
        config: Config,
        clock: SharedClock,
    ) -> Result<Self, StartupError> {
        // The policies first: a bad configuration is reported before anything is opened.
        let policies = load_policies(&config)?;
        let db = Db::connect(&config.database_url(data_dir)).await?;
        let root = match config.keys.provider {
            Provider::File => {
                // A database whose key is kept otherwise is never opened with a key file.
                if let Some(r) = custody::load(&db).await? {
                    return Err(custody::CustodyError::ProviderMismatch {
                        configured: Provider::File,
                        stored: r.provider.to_string(),
                    }
                    .into());
                }
                RootKey::load(data_dir)?
            }
            Provider::Pkcs11 => open_with_hsm(&config, &db).await?,
            Provider::Shares => {
                return Err(StartupError::Keys(
                    "the keys are kept in shares: this needs the holders' shares".into(),
                ))
            }
        };
        Self::build(db, root, config, data_dir, clock, policies).await
    }

    /// Open the vault with a root key the caller has opened (shares), on a connected
    /// database. Checks that the key is this database's.
    pub async fn open_with_root(
        db: Db,
        root: RootKey,
        config: Config,
        data_dir: &Path,
        clock: SharedClock,
    ) -> Result<Self, StartupError> {
        let policies = load_policies(&config)?;
        Self::build(db, root, config, data_dir, clock, policies).await
    }

    async fn build(
        db: Db,
        root: RootKey,
        config: Config,
        data_dir: &Path,
        clock: SharedClock,
        policies: (Authorizer, Rules),
    ) -> Result<Self, StartupError> {
        let keys = KeyRing::new(root)?;
        // The delivery settings are checked before the vault is opened.
        let runtime = delivery_runtime(&config, data_dir)?;
        let vault = Vault::new(db, keys, clock);
        // Refuse a root key this database was not written with (one line, no new chain).
        vault.check_key().await?;
        Ok(context_of(vault, config, data_dir, policies, runtime))
    }

    /// A context around an already open vault (tests, embedding): loads the policies and
    /// rules from `config` like [`Context::open`].
    pub fn with_vault(vault: Vault, config: Config, data_dir: &Path) -> Result<Self, StartupError> {
        let policies = load_policies(&config)?;
        let runtime = delivery_runtime(&config, data_dir)?;
        Ok(context_of(vault, config, data_dir, policies, runtime))
    }

    /// Record a system event (init, startup) in the audit trail.
    pub async fn audit_system(&self, action: &str) -> Result<(), StartupError> {
        self.audit_system_event(action, None).await
    }

    /// Record a system event with a purpose text (who unsealed, which provider).
    pub async fn audit_system_with(&self, action: &str, purpose: &str) -> Result<(), StartupError> {
        self.audit_system_event(action, Some(purpose)).await
    }

    async fn audit_system_event(
        &self,
        action: &str,
        purpose: Option<&str>,
    ) -> Result<(), StartupError> {
        let mut tx = self.vault.db().begin_write().await?;
        self.vault
            .audit(
                &mut tx,
                &NewEvent {
                    actor: "system",
                    action,
                    case_id: None,
                    purpose,
                    outcome: Outcome::Ok,
                },
            )
            .await?;
        tx.commit()
            .await
            .map_err(|e| StartupError::Db(fiktiv_vault::DbError::Query(e)))?;
        Ok(())
    }
}
