//! The SS 12000 hub, read on a schedule (once across instances) and on demand.
//!
//! A read of changes every `[ss12000] read_every_minutes` (from the last good read's
//! time, with an overlap of [`OVERLAP`] for clocks that differ), a full read every
//! `full_read_every_hours`, each claimed with [`crate::cluster::claim_schedule`] so
//! that one instance reads. A read is applied in one transaction
//! ([`fiktiv_routine::hub::apply`]): a read cut off by a restart leaves nothing half
//! done, and the next read starts from the last good one. A failed read records its
//! code (never a value from the hub) and is audited.

use chrono::TimeDelta;
use fiktiv_routine::hub::{self, ReadReport};
use fiktiv_routine::DomainError;
use fiktiv_ss12000::config::SECRET_ENV;
use fiktiv_ss12000::{HubError, HubReader, Progress};
use secrecy::SecretString;

use crate::context::Context;

/// The schedule of reads of changes.
pub const SCHEDULE_CHANGES: &str = "hub-read";
/// The schedule of full reads.
pub const SCHEDULE_FULL: &str = "hub-full-read";
/// A read of changes asks from this long before the last good read started.
pub const OVERLAP: TimeDelta = TimeDelta::minutes(5);

/// Why a read did not happen or failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("no [ss12000] section in the configuration: Fiktiv reads no hub")]
    NotConfigured,
    #[error("no hub secret: set {SECRET_ENV} or run `fiktiv hub secret`")]
    NoSecret,
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error(transparent)]
    Domain(#[from] DomainError),
}

impl ReadError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotConfigured => "hub.not-configured",
            Self::NoSecret => "hub.no-secret",
            Self::Hub(e) => e.code(),
            Self::Domain(_) => "hub.store",
        }
    }
}

async fn secret(ctx: &Context) -> Result<SecretString, ReadError> {
    if let Ok(s) = std::env::var(SECRET_ENV) {
        if !s.is_empty() {
            return Ok(SecretString::from(s));
        }
    }
    match hub::secret(&ctx.vault).await? {
        Some(s) => Ok(SecretString::from(s.as_str().to_owned())),
        None => Err(ReadError::NoSecret),
    }
}

/// Reads the hub now: everything (`full`, or when no read has succeeded yet) or what
/// changed since the last good read, and applies it.
pub async fn read_now(
    ctx: &Context,
    full: bool,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<ReadReport, ReadError> {
    let cfg = ctx
        .config
        .ss12000
        .as_ref()
        .ok_or(ReadError::NotConfigured)?;
    let started = ctx.vault.now();
    let result = async {
        let reader = HubReader::new(cfg.reader(secret(ctx).await?))?;
        let since = if full {
            None
        } else {
            hub::status(&ctx.vault)
                .await?
                .changes_after
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&chrono::Utc))
        };
        let full = since.is_none();
        // The progress is written to the store (about once a second, by a task of its
        // own) so that every instance's status shows it; the caller's sink (the CLI's
        // lines) gets every step.
        let (tell, seen) = tokio::sync::watch::channel(None::<Progress>);
        let writer = tokio::spawn(write_progress(ctx.vault.clone(), started, full, seen));
        let mut both = |p: Progress| {
            tell.send_replace(Some(p));
            progress(p);
        };
        let read = reader.read(since, &mut both).await;
        drop(tell);
        // The writer ends once the sender is gone: its last write is done before the
        // read is applied (which clears the progress in its transaction).
        let _ = writer.await;
        let snap = read?;
        hub::record_progress(&ctx.vault, started, full, "applying", 0, snap.persons.len()).await?;
        Ok::<_, ReadError>(
            hub::apply(
                &ctx.vault,
                snap,
                since.is_none(),
                cfg.unit_code_from,
                started - OVERLAP,
            )
            .await?,
        )
    }
    .await;
    if let Err(e) = &result {
        tracing::warn!(code = e.code(), error = %e, "hub read failed");
        if !matches!(e, ReadError::NotConfigured) {
            hub::record_failure(&ctx.vault, e.code()).await?;
        }
    }
    result
}

/// Writes the latest progress of a read to the store until the read ends (its sender
/// is dropped): at once, then at most about once a second. A failed write is logged and
/// the read goes on (progress is for the eye; the read's result is what counts).
async fn write_progress(
    vault: fiktiv_vault::Vault,
    started: chrono::DateTime<chrono::Utc>,
    full: bool,
    mut seen: tokio::sync::watch::Receiver<Option<Progress>>,
) {
    let first = hub::record_progress(&vault, started, full, "organisations", 0, 0).await;
    if let Err(e) = first {
        tracing::warn!(error = %e, "the progress of a hub read could not be recorded");
    }
    while seen.changed().await.is_ok() {
        let latest = *seen.borrow_and_update();
        if let Some(p) = latest {
            let stage = p.resource.path().trim_start_matches('/');
            if let Err(e) =
                hub::record_progress(&vault, started, full, stage, p.pages, p.items).await
            {
                tracing::warn!(error = %e, "the progress of a hub read could not be recorded");
            }
        }
        // At most about one write a second: pages come faster than anyone reads them.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Runs a read if one is due and this instance claims it: a full read first, else a
/// read of changes. `None`: nothing was due here.
pub async fn run_due(ctx: &Context) -> Result<Option<ReadReport>, ReadError> {
    let Some(cfg) = &ctx.config.ss12000 else {
        return Ok(None);
    };
    let me = ctx.delivery.runtime.instance();
    let full_every = TimeDelta::hours(i64::try_from(cfg.full_read_every_hours).unwrap_or(24));
    if crate::cluster::claim_schedule(&ctx.vault, SCHEDULE_FULL, me, full_every).await? {
        return read_now(ctx, true, &mut |_| {}).await.map(Some);
    }
    if cfg.read_every_minutes == 0 {
        return Ok(None);
    }
    let every = TimeDelta::minutes(i64::try_from(cfg.read_every_minutes).unwrap_or(15));
    if crate::cluster::claim_schedule(&ctx.vault, SCHEDULE_CHANGES, me, every).await? {
        return read_now(ctx, false, &mut |_| {}).await.map(Some);
    }
    Ok(None)
}

/// Asks for a full read now: the full read's schedule becomes due, and this instance
/// tries it at once in the background (once across instances, as scheduled reads).
pub async fn request_full_read(ctx: std::sync::Arc<Context>) -> Result<(), ReadError> {
    if ctx.config.ss12000.is_none() {
        return Err(ReadError::NotConfigured);
    }
    crate::cluster::make_due(&ctx.vault, SCHEDULE_FULL).await?;
    tokio::spawn(async move {
        // A failed read is logged and recorded by `read_now` itself.
        let _ = run_due(&ctx).await;
    });
    Ok(())
}

/// The feed's readers, one per hub configuration and secret (by a digest of both), so
/// that the check on every feed request does not build an HTTP client each time.
type Readers = std::sync::Mutex<Vec<(String, std::sync::Arc<HubReader>)>>;
static READERS: Readers = std::sync::Mutex::new(Vec::new());

/// The reader the feed's check uses: kept while the configuration and the secret stay
/// the same (a new secret makes a new one).
async fn probe_reader(ctx: &Context) -> Option<std::sync::Arc<HubReader>> {
    use secrecy::ExposeSecret as _;
    use sha2::Digest as _;
    let cfg = ctx.config.ss12000.as_ref()?;
    let secret = secret(ctx).await.ok()?;
    let key = hex::encode(sha2::Sha256::digest(
        format!("{cfg:?}\0{}", secret.expose_secret()).as_bytes(),
    ));
    let mut readers = READERS.lock().ok()?;
    if let Some((_, r)) = readers.iter().find(|(k, _)| *k == key) {
        return Some(r.clone());
    }
    let reader = std::sync::Arc::new(HubReader::new(cfg.reader(secret)).ok()?);
    // A handful of configurations at most (tests run several hubs in one process).
    if readers.len() >= 16 {
        readers.remove(0);
    }
    readers.push((key, reader.clone()));
    Some(reader)
}

/// The hubs (by base URL) a read started by the feed's check is running for.
static IN_FLIGHT: std::sync::Mutex<std::collections::BTreeSet<String>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Whether a person may have been marked since the last good read: the hub is asked
/// for any person changed after that read started (one item). `true` makes the feed
/// answer 503 and a read of changes run at once. A hub that does not answer cannot say;
/// then `false`, and the feed's age limit decides. Asked on every request of the feed
/// (one item of one page): a cached "no" would serve a newly marked pupil for as long
/// as the cache lasts.
pub async fn changed_since_last_read(ctx: &std::sync::Arc<Context>) -> bool {
    let Some(cfg) = ctx.config.ss12000.as_ref() else {
        return false;
    };
    let Ok(status) = hub::status(&ctx.vault).await else {
        return false;
    };
    let Some(started) = status
        .changes_after
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc) + OVERLAP)
    else {
        return false;
    };
    let changed = match probe_reader(ctx).await {
        Some(r) => r.persons_changed_since(started).await.unwrap_or(false),
        None => false,
    };
    if changed {
        // One read at a time per hub from this process; others wait for it.
        let first = IN_FLIGHT
            .lock()
            .map(|mut f| f.insert(cfg.base_url.clone()))
            .unwrap_or(false);
        if first {
            tracing::info!(
                "feed: the hub has changes since the last read; a read of changes runs now"
            );
            let ctx = ctx.clone();
            let base = cfg.base_url.clone();
            tokio::spawn(async move {
                if crate::cluster::make_due(&ctx.vault, SCHEDULE_CHANGES)
                    .await
                    .is_ok()
                {
                    let me = ctx.delivery.runtime.instance().to_owned();
                    let every = TimeDelta::minutes(1);
                    if crate::cluster::claim_schedule(&ctx.vault, SCHEDULE_CHANGES, &me, every)
                        .await
                        .unwrap_or(false)
                    {
                        // A failed read is logged and recorded by `read_now` itself.
                        let _ = read_now(&ctx, false, &mut |_| {}).await;
                    }
                }
                if let Ok(mut f) = IN_FLIGHT.lock() {
                    f.remove(&base);
                }
            });
        }
    }
    changed
}
