//! Key custody on the command line: `init` with shares or an HSM, `keys rotate-root`,
//! `keys custody` (key file to shares or HSM), and opening the keys for any other
//! command when they are kept in shares (the holders type them in).

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Context as _};
use fiktiv_vault::custody::unseal::open_with_shares;
use fiktiv_vault::custody::{self, shares::Share, CustodyRecord, Provider};
use fiktiv_vault::{audit, Db, RootKey, SharedClock};
use zeroize::Zeroizing;

use crate::cli::SharesArgs;
use fiktiv_app::config::Config;
use fiktiv_app::context::{hsm_settings, Context, StartupError};

/// The holders of a new set: `--holder` names, or "holder 1".."holder N" for `--shares N`.
fn holders(
    args: &SharesArgs,
    current: Option<&CustodyRecord>,
) -> anyhow::Result<(u8, Vec<String>)> {
    let mut names = args.holders.clone();
    if names.is_empty() {
        match (args.shares, current) {
            (Some(n), _) => names = (1..=n).map(|i| format!("holder {i}")).collect(),
            (None, Some(r)) if r.provider == Provider::Shares => names = r.holders.clone(),
            _ => bail!("name the holders with --holder NAME (one per share), or give --shares N"),
        }
    } else if let Some(n) = args.shares {
        if n != names.len() {
            bail!("--shares {n} but {} --holder names", names.len());
        }
    }
    let threshold = match (args.threshold, current) {
        (Some(k), _) => k,
        (None, Some(r)) if r.provider == Provider::Shares => r.threshold,
        _ => bail!("give --threshold K: how many shares open the key"),
    };
    custody::shares::check_holders(threshold, &names)?;
    Ok((threshold, names))
}

/// Read one line that holds a secret: from the terminal without echo, or from stdin.
pub fn read_secret_line(prompt: &str) -> anyhow::Result<Zeroizing<String>> {
    if std::io::stdin().is_terminal() {
        return Ok(Zeroizing::new(
            rpassword::prompt_password(prompt).context("reading from the terminal")?,
        ));
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading standard input")?;
    Ok(line)
}

/// Print a new set of shares, one line per holder, on stdout (shown once).
#[allow(clippy::print_stdout)] // the shares are the command's output
fn print_shares(record: &CustodyRecord, set: &[Share]) {
    eprintln!(
        "{} shares follow, {} of which open the key. Each is shown this once: give each \
         holder their own share now, on paper or in their own safe; never store them together.",
        set.len(),
        record.threshold
    );
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for s in set {
        let holder = record
            .holders
            .get(usize::from(s.index()) - 1)
            .map(String::as_str)
            .unwrap_or("?");
        let _ = writeln!(
            out,
            "share {} of {} (set {}, generation {}) for {holder}: {}",
            s.index(),
            set.len(),
            record.set_id,
            record.generation,
            s.encode().as_str()
        );
    }
    let _ = out.flush();
}

/// Open the vault for a CLI command: with shares, ask for them on the terminal/stdin.
pub async fn open_cli(
    data_dir: &Path,
    config: Config,
    clock: SharedClock,
) -> anyhow::Result<Context> {
    if config.keys.provider != Provider::Shares {
        return Ok(Context::open(data_dir, config, clock).await?);
    }
    let db = Db::connect(&config.database_url(data_dir)).await?;
    let record = custody::load_for(&db, Provider::Shares).await?;
    let (root, holders) = read_shares_and_open(&record)?;
    let ctx = Context::open_with_root(db, root, config, data_dir, clock).await?;
    ctx.audit_system_with(
        "keys.shares-entered",
        &holders_purpose(&holders, "command line"),
    )
    .await?;
    Ok(ctx)
}

/// Open the vault to restore `archive` into it. On a new machine the database holds no
/// custody record yet: the archive's own record is opened with the holders' shares (or
/// the HSM), so that nothing but the archive, the configuration and the shares is needed.
pub async fn open_for_restore(
    data_dir: &Path,
    config: Config,
    clock: SharedClock,
    archive: &[u8],
) -> anyhow::Result<Context> {
    let provider = config.keys.provider;
    if provider == Provider::File {
        return Ok(Context::open(data_dir, config, clock).await?);
    }
    fiktiv_app::context::init_dir_only(data_dir)?;
    let db = Db::connect(&config.database_url(data_dir)).await?;
    let record = match custody::load(&db).await? {
        Some(r) => r,
        None => fiktiv_vault::backup::peek_custody(archive)?.ok_or_else(|| {
            anyhow::anyhow!(
                "the archive names no key custody: it was made with the file provider; \
                 restore it with [keys] provider = \"file\" and its root.key"
            )
        })?,
    };
    if record.provider != provider {
        return Err(custody::CustodyError::ProviderMismatch {
            configured: provider,
            stored: record.provider.to_string(),
        }
        .into());
    }
    let (root, via) = if provider == Provider::Shares {
        let (root, holders) = read_shares_and_open(&record)?;
        (root, holders_purpose(&holders, "command line (restore)"))
    } else {
        let settings = hsm_settings(&config)?;
        let r2 = record.clone();
        let root =
            tokio::task::spawn_blocking(move || custody::hsm_open_root(&settings, &r2)).await??;
        (root, format!("HSM key {}", record.set_id))
    };
    let ctx = Context::open_with_root(db, root, config, data_dir, clock).await?;
    tracing::info!(opened = %via, "keys opened for a restore");
    Ok(ctx)
}

fn read_shares_and_open(record: &CustodyRecord) -> anyhow::Result<(RootKey, Vec<String>)> {
    eprintln!(
        "the keys are kept in shares: {} holders enter their shares, one at a time",
        record.threshold
    );
    let mut lines = Vec::new();
    for i in 1..=record.threshold {
        let line = read_secret_line(&format!("share {i} of {}: ", record.threshold))?;
        if line.trim().is_empty() {
            bail!("no share given; nothing was changed");
        }
        lines.push(line);
    }
    Ok(open_with_shares(record, lines.iter().map(|l| l.as_str()))?)
}

/// The audit purpose of an unsealing: which holders, and how.
pub fn holders_purpose(holders: &[String], via: &str) -> String {
    format!("holders: {}; via {via}", holders.join(", "))
}

/// `fiktiv init` with the shares or pkcs11 provider: a new root key kept only there.
pub async fn init_custody(
    data_dir: &Path,
    config: Config,
    clock: SharedClock,
    args: &SharesArgs,
) -> anyhow::Result<i32> {
    let provider = config.keys.provider;
    fiktiv_app::context::init_dir_only(data_dir)?;
    let key_file = data_dir.join(fiktiv_vault::keys::KEY_FILE_NAME);
    if key_file.exists() {
        bail!(
            "{} exists: this data directory keeps its key in a file; convert it with \
             `fiktiv keys custody` instead",
            key_file.display()
        );
    }
    let db = Db::connect(&config.database_url(data_dir)).await?;
    if let Some(r) = custody::load(&db).await? {
        eprintln!(
            "data directory {} is ready (keys kept by {}, generation {})",
            data_dir.display(),
            r.provider,
            r.generation
        );
        return Ok(0);
    }
    if fiktiv_app::context::database_has_data(&db).await? {
        return Err(StartupError::Keys(
            "this database already holds data but records no key custody; refusing to make a new root key".into(),
        )
        .into());
    }
    let (threshold, names) = if provider == Provider::Shares {
        holders(args, None)?
    } else {
        (0, Vec::new())
    };
    let root = RootKey::generate();
    let now = audit::fmt_time(clock.now());
    let made = match provider {
        Provider::Shares => {
            let (record, set) = custody::split_root(&root, threshold, &names, 1, &now)?;
            (record, Some(set))
        }
        Provider::Pkcs11 => {
            let settings = hsm_settings(&config)?;
            let r2 = root.clone();
            let now2 = now.clone();
            let record = tokio::task::spawn_blocking(move || {
                custody::hsm_wrap_root(&settings, &r2, 1, &now2)
            })
            .await??;
            (record, None)
        }
        Provider::File => bail!("the file provider keeps the key in root.key"),
    };
    let ctx = Context::open_with_root(db, root, config, data_dir, clock).await?;
    custody::store(ctx.vault.db(), &made.0).await?;
    ctx.audit_system("system.init").await?;
    ctx.audit_system_with(
        "keys.custody-created",
        &format!(
            "provider {}, generation 1{}",
            provider,
            holders_suffix(&made.0)
        ),
    )
    .await?;
    if let Some(set) = &made.1 {
        print_shares(&made.0, set);
    } else {
        eprintln!(
            "created the database; the root key is wrapped under key {:?} in the HSM",
            made.0.set_id
        );
    }
    Ok(0)
}

fn holders_suffix(r: &CustodyRecord) -> String {
    if r.provider == Provider::Shares {
        format!(
            ", {} of {}: {}",
            r.threshold,
            r.holders.len(),
            r.holders.join(", ")
        )
    } else {
        format!(", HSM key {}", r.set_id)
    }
}

/// `fiktiv keys rotate-root`: the same root key under a new custody key.
pub async fn rotate_root(ctx: &Context, args: &SharesArgs) -> anyhow::Result<()> {
    let db = ctx.vault.db();
    let Some(current) = custody::load(db).await? else {
        bail!(
            "the file provider keeps the root key itself in root.key; rotate-root needs the \
             shares or pkcs11 provider (convert with `fiktiv keys custody`)"
        );
    };
    let root = current_root(ctx)?;
    let generation = current.generation + 1;
    let now = audit::fmt_time(ctx.vault.now());
    match current.provider {
        Provider::Shares => {
            let (threshold, names) = holders(args, Some(&current))?;
            let (record, set) = custody::split_root(&root, threshold, &names, generation, &now)?;
            custody::store(db, &record).await?;
            ctx.audit_system_with(
                "keys.rotate-root",
                &format!(
                    "provider shares, generation {generation}{}",
                    holders_suffix(&record)
                ),
            )
            .await?;
            print_shares(&record, &set);
        }
        Provider::Pkcs11 => {
            let settings = hsm_settings(&ctx.config)?;
            let (s2, n2) = (settings.clone(), now.clone());
            let record = tokio::task::spawn_blocking(move || {
                custody::hsm_wrap_root(&s2, &root, generation, &n2)
            })
            .await??;
            custody::store(db, &record).await?;
            let old = current.set_id.clone();
            tokio::task::spawn_blocking(move || custody::hsm::destroy_key(&settings, &old))
                .await??;
            ctx.audit_system_with(
                "keys.rotate-root",
                &format!(
                    "provider pkcs11, generation {generation}, HSM key {}",
                    record.set_id
                ),
            )
            .await?;
            eprintln!(
                "the root key is now wrapped under HSM key {:?}; key {:?} was destroyed",
                record.set_id, current.set_id
            );
        }
        Provider::File => bail!("the file provider has no custody key to rotate"),
    }
    Ok(())
}

/// `fiktiv keys custody`: move the root key from root.key into the configured provider.
/// The configuration names the provider to move to; the key file is read one last time.
pub async fn convert(
    data_dir: &Path,
    config: Config,
    clock: SharedClock,
    args: &SharesArgs,
) -> anyhow::Result<()> {
    let target = config.keys.provider;
    if target == Provider::File {
        bail!(
            "set [keys] provider to \"shares\" or \"pkcs11\" in the configuration, then run this again"
        );
    }
    let mut as_file = config;
    as_file.keys.provider = Provider::File;
    let ctx = &Context::open(data_dir, as_file, clock).await?;
    let mut ctx = ctx.clone();
    ctx.config.keys.provider = target;
    let ctx = &ctx;
    let root = current_root(ctx)?;
    let now = audit::fmt_time(ctx.vault.now());
    let (record, set) = match target {
        Provider::File => bail!("the file provider keeps the key in root.key"),
        Provider::Shares => {
            let (threshold, names) = holders(args, None)?;
            let (r, s) = custody::split_root(&root, threshold, &names, 1, &now)?;
            (r, Some(s))
        }
        Provider::Pkcs11 => {
            let settings = hsm_settings(&ctx.config)?;
            let n2 = now.clone();
            let r = tokio::task::spawn_blocking(move || {
                custody::hsm_wrap_root(&settings, &root, 1, &n2)
            })
            .await??;
            (r, None)
        }
    };
    custody::store(ctx.vault.db(), &record).await?;
    ctx.audit_system_with(
        "keys.custody-created",
        &format!("provider {target}, generation 1{}", holders_suffix(&record)),
    )
    .await?;
    let key_file = ctx.data_dir.join(fiktiv_vault::keys::KEY_FILE_NAME);
    if key_file.exists() {
        std::fs::remove_file(&key_file).with_context(|| {
            format!(
                "the key is kept by {target} now; delete {} by hand",
                key_file.display()
            )
        })?;
        eprintln!(
            "deleted {}; remove every copy of it, in backups too",
            key_file.display()
        );
    }
    if let Some(set) = &set {
        print_shares(&record, set);
    }
    Ok(())
}

/// A copy of the open root key (to wrap it again).
fn current_root(ctx: &Context) -> anyhow::Result<RootKey> {
    Ok(ctx.vault.keys().root_copy())
}

/// One line on who keeps the root key (`fiktiv keys status`).
pub async fn custody_status(ctx: &Context) -> anyhow::Result<String> {
    Ok(match custody::load(ctx.vault.db()).await? {
        None => "custody: file (the root key is in root.key or FIKTIV_ROOT_KEY)".to_string(),
        Some(r) if r.provider == Provider::Shares => format!(
            "custody: shares, generation {}, set {}, {} of {}: {}",
            r.generation,
            r.set_id,
            r.threshold,
            r.holders.len(),
            r.holders.join(", ")
        ),
        Some(r) => {
            let settings = hsm_settings(&ctx.config)?;
            let label = r.set_id.clone();
            let token = settings.token_label.clone();
            let exposed = tokio::task::spawn_blocking(move || {
                custody::hsm::key_is_extractable(&settings, &label)
            })
            .await??;
            format!(
                "custody: pkcs11, generation {}, HSM key {} in token {}: {}",
                r.generation,
                r.set_id,
                token,
                if exposed {
                    "EXTRACTABLE OR NOT SENSITIVE: the key can leave the HSM"
                } else {
                    "sensitive, not extractable"
                }
            )
        }
    })
}
