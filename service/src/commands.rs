//! One function per CLI command. Each returns an error that prints as one line.

use std::sync::Arc;

use anyhow::Context as _;
use fiktiv_vault::{audit, backup, SharedClock, SystemClock};

use crate::cli::{AuditCommand, Cli, Command, KeysCommand, RetentionCommand, TokensCommand};
use fiktiv_app::config::Config;
use fiktiv_app::context::{init_data_dir, Context};

/// Run a parsed command line. Returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    let config = Config::load(cli.global.config.as_deref())?;
    crate::telemetry::init(&config.log);
    let clock: SharedClock = Arc::new(SystemClock);
    let data_dir = cli.global.data_dir;
    match cli.command {
        Command::Init { shares }
            if config.keys.provider != fiktiv_vault::custody::Provider::File =>
        {
            crate::commands_keys::init_custody(&data_dir, config, clock, &shares).await
        }
        Command::Unseal => crate::sealed::control::unseal_command(&data_dir).await,
        Command::Seal => crate::sealed::control::seal_command(&data_dir).await,
        Command::Serve { listen }
            if config.keys.provider == fiktiv_vault::custody::Provider::Shares =>
        {
            crate::sealed::serve(&data_dir, config, clock, listen).await
        }
        Command::Init { .. } => {
            let created = init_data_dir(&data_dir)?;
            let ctx = match Context::open(&data_dir, config, clock).await {
                Ok(ctx) => ctx,
                Err(e) => {
                    // A key made a moment ago for a database that was never written
                    // would only confuse the next attempt: take it back.
                    if created {
                        fiktiv_app::context::undo_new_key(&data_dir);
                    }
                    return Err(e.into());
                }
            };
            ctx.audit_system("system.init").await?;
            if created {
                eprintln!(
                    "created {} (root key, mode 0600) and the database; keep a copy of the key file somewhere safe",
                    data_dir.join(fiktiv_vault::keys::KEY_FILE_NAME).display()
                );
            } else {
                eprintln!(
                    "data directory {} is ready (existing key kept)",
                    data_dir.display()
                );
            }
            Ok(0)
        }
        Command::Serve { listen } => {
            if config.keys.provider == fiktiv_vault::custody::Provider::File
                && init_data_dir(&data_dir)?
            {
                tracing::info!("new data directory: root key created");
            }
            let ctx = Context::open(&data_dir, config, clock).await?;
            ctx.audit_system("system.start").await?;
            let addr = listen.unwrap_or(ctx.config.server.listen);
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            tracing::info!(%addr, "fiktiv listening");
            eprintln!("fiktiv listening on http://{addr}");
            let worker = crate::background::start(ctx.clone()).await;
            axum::serve(
                listener,
                crate::router::app(ctx)
                    .into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("server error")?;
            worker.stop().await;
            Ok(0)
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            let ctx = crate::commands_keys::open_cli(&data_dir, config, clock).await?;
            let report = audit::verify(ctx.vault.db().pool(), ctx.vault.keys().audit()).await?;
            match &report.first_problem {
                None => {
                    println_out(&format!(
                        "audit trail ok: {} events verified",
                        report.events
                    ));
                    Ok(0)
                }
                Some(f) => {
                    println_out(&format!("audit trail FAILED: {f}"));
                    Ok(1)
                }
            }
        }
        Command::Audit {
            command: AuditCommand::Export { from_seq, format },
        } => {
            let ctx = crate::commands_keys::open_cli(&data_dir, config, clock).await?;
            let crate::cli::ExportFormat::Jsonl = format;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let s = crate::audit_export::export_jsonl(&ctx.vault, from_seq, &mut out).await?;
            eprintln!(
                "exported {} events (from event {from_seq}); head is event {}",
                s.events, s.head_seq
            );
            Ok(0)
        }
        Command::Backup { out } => {
            let ctx = crate::commands_keys::open_cli(&data_dir, config, clock).await?;
            let now = audit::fmt_time(ctx.vault.now());
            let key = ctx.vault.keys().backup()?;
            let (archive, summary) = backup::create(ctx.vault.db(), &key, &now).await?;
            write_new_private(&out, &archive)
                .with_context(|| format!("cannot write {}", out.display()))?;
            ctx.audit_system("backup.create").await?;
            println_out(&format!(
                "backup written to {}: {} tables, {} rows, {} bytes",
                out.display(),
                summary.tables,
                summary.rows,
                summary.bytes
            ));
            Ok(0)
        }
        Command::Restore { from } => {
            let archive =
                std::fs::read(&from).with_context(|| format!("cannot read {}", from.display()))?;
            let ctx =
                crate::commands_keys::open_for_restore(&data_dir, config, clock, &archive).await?;
            let key = ctx.vault.keys().backup()?;
            let summary = backup::restore(ctx.vault.db(), &key, &archive).await?;
            let report = audit::verify(ctx.vault.db().pool(), ctx.vault.keys().audit()).await?;
            if let Some(f) = &report.first_problem {
                println_out(&format!(
                    "restored, but the audit trail FAILED verification: {f}"
                ));
                return Ok(1);
            }
            ctx.audit_system("backup.restore").await?;
            println_out(&format!(
                "restored {} rows in {} tables; audit trail ok: {} events verified",
                summary.rows, summary.tables, report.events
            ));
            Ok(0)
        }
        Command::Tokens { command } => {
            let ctx = crate::commands_keys::open_cli(&data_dir, config, clock).await?;
            tokens_command(&ctx, command).await
        }
        Command::Notify { command } => {
            crate::commands_notify::cli(&data_dir, config, clock, command).await
        }
        Command::Transfer {
            command: crate::cli::TransferCommand::Key,
        } => {
            let ctx = crate::commands_keys::open_cli(&data_dir, config, clock).await?;
            let key = fiktiv_routine::transfer::public_key(&ctx.vault)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println_out(&key);
            Ok(0)
        }
        Command::Retention {
            command: RetentionCommand::Run,
        } => {
            let ctx = crate::commands_keys::open_cli(&data_dir, config, clock).await?;
            let r = fiktiv_routine::end::run_retention(&ctx.vault, "cli")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println_out(&format!(
                "retention: {} identities, {} plans, {} record sets shredded",
                r.identities, r.plans, r.records
            ));
            Ok(0)
        }
        Command::Hub { command } => {
            let ctx = crate::commands_keys::open_cli(&data_dir, config, clock).await?;
            hub_command(&ctx, command).await
        }
        Command::Targets { command } => {
            let ctx = crate::commands_keys::open_cli(&data_dir, config, clock).await?;
            crate::commands_targets::targets_command(&ctx, command).await
        }
        Command::Sync { command } => {
            let ctx = crate::commands_keys::open_cli(&data_dir, config, clock).await?;
            crate::commands_targets::sync_command(&ctx, command).await
        }
        Command::Check { command } => {
            let ctx = crate::commands_keys::open_cli(&data_dir, config, clock).await?;
            crate::commands_targets::check_command(&ctx, command).await
        }
        Command::Users { command } => {
            let ctx = crate::commands_keys::open_cli(&data_dir, config, clock).await?;
            crate::commands_users::run(&ctx, command).await
        }
        Command::Openapi => {
            print_raw(&fiktiv_api::openapi_json());
            Ok(0)
        }
        Command::Keys {
            command: KeysCommand::Custody { shares },
        } => {
            crate::commands_keys::convert(&data_dir, config, clock, &shares).await?;
            Ok(0)
        }
        Command::Keys { command } => {
            let ctx = crate::commands_keys::open_cli(&data_dir, config, clock).await?;
            match command {
                KeysCommand::RotateRoot { shares } => {
                    crate::commands_keys::rotate_root(&ctx, &shares).await?;
                }
                KeysCommand::Custody { .. } => {}
                KeysCommand::Rotate => {
                    let r = ctx.vault.rotate("cli").await?;
                    println_out(&format!(
                        "rotated: key version {} active, {} data keys rewrapped, retired versions {:?}",
                        r.new_version, r.rewrapped, r.retired
                    ));
                }
                KeysCommand::Reindex => {
                    let n = ctx.vault.reindex("cli").await?;
                    println_out(&format!(
                        "re-indexed {n} identities: blind indexes and name-part tags rewritten"
                    ));
                }
                KeysCommand::Status => {
                    println_out(&crate::commands_keys::custody_status(&ctx).await?);
                    for k in ctx.vault.key_versions().await? {
                        println_out(&format!(
                            "version {}: {} ({} encryptions, {} data keys)",
                            k.version, k.state, k.encryptions, k.data_keys
                        ));
                    }
                }
            }
            Ok(0)
        }
    }
}

/// Write a new file readable by its owner only; refuse to overwrite.
fn write_new_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

async fn tokens_command(ctx: &Context, command: TokensCommand) -> anyhow::Result<i32> {
    use fiktiv_routine::DomainError;
    let one_line = |e: DomainError| match e {
        DomainError::Invalid(v) => anyhow::anyhow!(
            "{}",
            v.iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        e => anyhow::anyhow!("{e}"),
    };
    match command {
        TokensCommand::Create {
            roles,
            units,
            name,
            expires_days,
        } => {
            let roles = roles
                .iter()
                .map(|r| r.parse::<fiktiv_policies::Role>())
                .collect::<Result<Vec<_>, _>>()?;
            let days = expires_days.unwrap_or(ctx.config.tokens.default_expires_days);
            let t = fiktiv_staff::tokens::create(&ctx.vault, "cli", &name, &roles, &units, days)
                .await
                .map_err(one_line)?;
            eprintln!(
                "token {} for {name}, expires {}; it is shown once, store it now:",
                t.id,
                audit::fmt_time(t.expires_at)
            );
            println_out(&t.secret);
            Ok(0)
        }
        TokensCommand::List => {
            for t in fiktiv_staff::tokens::list(&ctx.vault)
                .await
                .map_err(one_line)?
            {
                println_out(&format!(
                    "{} {} roles={} units={} expires={}{}",
                    t.id,
                    t.name,
                    t.roles.join(","),
                    t.units.join(","),
                    t.expires_at,
                    t.revoked_at
                        .map(|r| format!(" revoked={r}"))
                        .unwrap_or_default()
                ));
            }
            Ok(0)
        }
        TokensCommand::Revoke { id } => {
            let id: fiktiv_routine::ids::TokenId =
                id.parse().map_err(|_| anyhow::anyhow!("not a token id"))?;
            if fiktiv_staff::tokens::revoke(&ctx.vault, "cli", &id)
                .await
                .map_err(one_line)?
            {
                println_out(&format!("token {id} revoked"));
                Ok(0)
            } else {
                eprintln!("error: no active token {id}");
                Ok(1)
            }
        }
    }
}

/// Print text as it is (it already ends with a newline).
#[allow(clippy::print_stdout)] // this is the CLI's output channel
fn print_raw(s: &str) {
    print!("{s}");
}

async fn hub_command(ctx: &Context, command: crate::cli::HubCommand) -> anyhow::Result<i32> {
    use crate::cli::HubCommand;
    match command {
        HubCommand::Read { full } => {
            let mut last = None;
            let mut progress = |p: fiktiv_ss12000::Progress| {
                // One line per resource and every tenth page: progress on a long read.
                if last != Some(p.resource) || p.pages.is_multiple_of(10) {
                    eprintln!(
                        "hub: {} page {}, {} read",
                        p.resource.path(),
                        p.pages,
                        p.items
                    );
                    last = Some(p.resource);
                }
            };
            match fiktiv_app::hub::read_now(ctx, full, &mut progress).await {
                Ok(r) => {
                    println_out(&format!(
                        "hub read: {} persons, {} marked, {} linked to cases, {} new intake items, \
                         {} quarantined, {} markings lifted",
                        r.persons, r.marked, r.linked, r.intake_new, r.quarantined, r.lifted
                    ));
                    Ok(0)
                }
                Err(e) => {
                    eprintln!("hub read failed ({}): {e}", e.code());
                    Ok(1)
                }
            }
        }
        HubCommand::Status => {
            let s = fiktiv_routine::hub::status(&ctx.vault)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println_out(&format!(
                "last good read: {}\nlast try: {}{}\npersons: {}, marked: {}, linked: {}, intake items: {}",
                s.last_good_at.as_deref().unwrap_or("never"),
                s.last_try_at.as_deref().unwrap_or("never"),
                s.last_error.map(|c| format!(" (failed: {c})")).unwrap_or_default(),
                s.persons,
                s.marked,
                s.linked,
                s.intake
            ));
            if let Some(r) = &s.running {
                println_out(&format!(
                    "running: {} read since {}, {}: {} pages, {} items (as of {})",
                    if r.full { "full" } else { "changes" },
                    r.since,
                    r.stage,
                    r.pages,
                    r.items,
                    r.seen_at
                ));
            }
            Ok(0)
        }
        HubCommand::Secret => {
            let mut line = zeroize::Zeroizing::new(String::new());
            std::io::stdin().read_line(&mut line)?;
            let secret = line.trim_end_matches(['\r', '\n']);
            fiktiv_routine::hub::set_secret(&ctx.vault, secret, "cli")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println_out("hub secret sealed and stored");
            Ok(0)
        }
        HubCommand::ConsumerAdd {
            name,
            endpoints,
            omit,
        } => {
            let mut resources = Vec::new();
            for e in &endpoints {
                match fiktiv_routine::feed::FeedResource::parse(e.trim()) {
                    Some(r) => resources.push(r),
                    None => {
                        eprintln!(
                            "unknown endpoint {e:?}: organisations, persons, groups, duties or activities"
                        );
                        return Ok(2);
                    }
                }
            }
            match fiktiv_routine::feed::add_consumer(&ctx.vault, &name, &resources, &omit, "cli")
                .await
            {
                Ok(token) => {
                    println_out(&format!(
                        "feed consumer {name} added; its bearer token (shown once):\n{token}"
                    ));
                    Ok(0)
                }
                Err(fiktiv_routine::DomainError::Invalid(p)) => {
                    for p in p {
                        eprintln!("{}: {}", p.field, p.message);
                    }
                    Ok(2)
                }
                Err(e) => Err(anyhow::anyhow!("{e}")),
            }
        }
        HubCommand::ConsumerRevoke { name } => {
            match fiktiv_routine::feed::revoke_consumer(&ctx.vault, &name, "cli").await {
                Ok(()) => {
                    println_out(&format!("feed consumer {name} revoked"));
                    Ok(0)
                }
                Err(fiktiv_routine::DomainError::NotFound) => {
                    eprintln!("no feed consumer {name} with a live token");
                    Ok(1)
                }
                Err(e) => Err(anyhow::anyhow!("{e}")),
            }
        }
        HubCommand::Consumers => {
            for c in fiktiv_routine::feed::consumers(&ctx.vault)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                println_out(&format!(
                    "{}\tendpoints {}\tomits {}\tsince {}{}",
                    c.name,
                    c.endpoints.join(","),
                    if c.omit.is_empty() {
                        "-".to_owned()
                    } else {
                        c.omit.join(",")
                    },
                    c.created_at,
                    c.revoked_at
                        .map(|r| format!("\trevoked {r}"))
                        .unwrap_or_default()
                ));
            }
            Ok(0)
        }
    }
}

/// Command output goes to stdout; logs go to stderr.
#[allow(clippy::print_stdout)] // this is the CLI's output channel
pub(crate) fn println_out(s: &str) {
    println!("{s}");
}

/// Stop on SIGINT (a terminal) or SIGTERM (systemd, `docker stop`), letting requests
/// in flight finish.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
