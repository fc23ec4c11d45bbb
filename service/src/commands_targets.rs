//! The provisioning commands: `fiktiv targets`, `fiktiv sync`, `fiktiv check`. Each
//! acts as `cli` in the audit trail. Output goes to stdout, one line per item; `--json`
//! prints the same data as the API returns.

use std::io::IsTerminal as _;

use anyhow::anyhow;
use fiktiv_vault::CaseId;

use crate::cli::{CheckCommand, SyncCommand, TargetsCommand};
use fiktiv_app::context::Context;
use fiktiv_delivery::checks::{self, RunScope};
use fiktiv_delivery::jobs::{self, JobFilter};
use fiktiv_delivery::sync::{self, SyncPlan, TargetPlanView};
use fiktiv_delivery::{targets, worker};
use fiktiv_routine::DomainError;

const ACTOR: &str = "cli";

#[allow(clippy::print_stdout)] // the CLI's output channel
fn out(s: &str) {
    println!("{s}");
}

fn err(e: DomainError) -> anyhow::Error {
    match e {
        DomainError::Invalid(v) => anyhow!(
            "{}",
            v.iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        DomainError::Conflict { message, .. } => anyhow!("{message}"),
        DomainError::NotFound => anyhow!("not found"),
        e => anyhow!("{e}"),
    }
}

fn json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    out(&serde_json::to_string_pretty(v)?);
    Ok(())
}

/// `fiktiv targets …`
pub async fn targets_command(ctx: &Context, command: TargetsCommand) -> anyhow::Result<i32> {
    match command {
        TargetsCommand::List { json: as_json } => {
            let list = targets::list(&ctx.delivery).await.map_err(err)?;
            if as_json {
                json(&list)?;
                return Ok(0);
            }
            for t in list {
                out(&format!(
                    "{} kind={} source={:?} credential={} {}",
                    t.name,
                    t.kind,
                    t.source,
                    if t.has_credential { "set" } else { "none" },
                    match &t.problem {
                        None => "usable".to_owned(),
                        Some(p) => format!("NOT USABLE: {p}"),
                    }
                ));
            }
            Ok(0)
        }
        TargetsCommand::Test {
            name,
            json: as_json,
        } => {
            let Some(d) = targets::test(&ctx.delivery, &name).await.map_err(err)? else {
                return Err(anyhow!(
                    "no target named {name} (see `fiktiv targets list`)"
                ));
            };
            let report: targets::TestReport = d.into();
            if as_json {
                json(&report)?;
            } else {
                for p in &report.probes {
                    if p.ok {
                        out(&format!("ok    {:<14} {}", p.step, p.detail));
                    } else {
                        out(&format!(
                            "FAIL  {:<14} {}: {}",
                            p.step,
                            p.problem.as_deref().unwrap_or("problem"),
                            p.detail
                        ));
                        if let Some(a) = &p.advice {
                            out(&format!("      {:<14} -> {a}", ""));
                        }
                    }
                }
                out(&format!(
                    "target {}: {}",
                    report.target,
                    if report.ok { "OK" } else { "FAILED" }
                ));
            }
            Ok(if report.ok { 0 } else { 1 })
        }
    }
}

fn print_target_plan(t: &TargetPlanView) {
    out(&format!(
        "target {}: {} managed, {} desired{}",
        t.target,
        t.managed,
        t.desired,
        match &t.error {
            Some(e) => format!(" -- NOT READ: {e}"),
            None => String::new(),
        }
    ));
    for (what, items) in [
        ("create", &t.create),
        ("update", &t.update),
        ("disable", &t.disable),
        ("delete", &t.delete),
        ("waiting", &t.waiting),
    ] {
        for i in items {
            let mut line = format!(
                "  {what:<8} person {} case {} {}",
                i.person_id,
                i.case_id.as_deref().unwrap_or("-"),
                i.subject.as_deref().unwrap_or("-")
            );
            if !i.drift.is_empty() {
                line.push_str(&format!(" drift: {}", i.drift.join(", ")));
            }
            if let Some(a) = &i.delete_after {
                line.push_str(&format!(" delete after {a}"));
            }
            out(&line);
        }
    }
    if let Some(r) = &t.refused {
        out(&format!(
            "  REFUSED  {} removals of {} managed accounts exceed the share {}; use --force",
            r.removals, r.managed, r.max_share
        ));
    }
    if t.unknown > 0 {
        out(&format!(
            "  unknown  {} accounts carry an id Fiktiv does not know (left alone)",
            t.unknown
        ));
    }
    if t.duplicates > 0 {
        out(&format!(
            "  duplicate {} extra accounts of persons with more than one (left alone)",
            t.duplicates
        ));
    }
}

fn print_plan(p: &SyncPlan) {
    for t in &p.targets {
        print_target_plan(t);
    }
    out(&format!("{} changes", p.changes()));
}

async fn drain(ctx: &Context) -> anyhow::Result<()> {
    let ran = worker::run_until_idle(&ctx.delivery, 1000)
        .await
        .map_err(err)?;
    let all = jobs::list(&ctx.vault, &JobFilter::default())
        .await
        .map_err(err)?;
    let count = |s: &str| all.iter().filter(|j| j.state == s).count();
    out(&format!(
        "{ran} jobs run; jobs now: {} done, {} pending, {} failed",
        count("done"),
        count("pending") + count("running"),
        count("failed")
    ));
    for j in all.iter().filter(|j| j.state == "failed") {
        out(&format!(
            "  failed job {} {} on {}: {}",
            j.job_id,
            j.op.as_str(),
            j.target,
            j.last_error.as_deref().unwrap_or("-")
        ));
    }
    Ok(())
}

/// `fiktiv sync …`
pub async fn sync_command(ctx: &Context, command: SyncCommand) -> anyhow::Result<i32> {
    match command {
        SyncCommand::Plan {
            force,
            json: as_json,
        } => {
            let (plan, _) = sync::compute(&ctx.delivery, force, None)
                .await
                .map_err(err)?;
            if as_json {
                json(&plan)?;
            } else {
                print_plan(&plan);
            }
            Ok(0)
        }
        SyncCommand::Apply { force, no_wait } => {
            let r = sync::apply_as(&ctx.delivery, ACTOR, force)
                .await
                .map_err(err)?;
            print_plan(&r.plan);
            out(&format!("{} jobs queued", r.jobs_armed));
            if !no_wait {
                drain(ctx).await?;
            }
            let refused = r.plan.targets.iter().any(|t| t.refused.is_some());
            Ok(if refused { 1 } else { 0 })
        }
        SyncCommand::Reconcile => {
            let run = checks::start(&ctx.delivery, ACTOR, RunScope::Reconcile, false)
                .await
                .map_err(err)?;
            if let Some(r) = &run.result {
                json(&r["plan"])?;
            }
            out(&format!(
                "reconciliation {}: {} drift items, state {}",
                run.run_id, run.progress.findings, run.state
            ));
            drain(ctx).await?;
            Ok(if run.state == "done" { 0 } else { 1 })
        }
        SyncCommand::Run => {
            drain(ctx).await?;
            Ok(0)
        }
        SyncCommand::Jobs { state, target } => {
            let list = jobs::list(
                &ctx.vault,
                &JobFilter {
                    state,
                    target,
                    case_id: None,
                },
            )
            .await
            .map_err(err)?;
            for j in list {
                out(&format!(
                    "{} {} {} on {} person {} attempts={} next={}{}",
                    j.job_id,
                    j.state,
                    j.op.as_str(),
                    j.target,
                    j.person_id,
                    j.attempts,
                    j.next_attempt_at,
                    j.last_error
                        .map(|e| format!(" error: {e}"))
                        .unwrap_or_default()
                ));
            }
            Ok(0)
        }
        SyncCommand::Retry { job_id } => {
            let j = jobs::retry_as(&ctx.delivery, ACTOR, &job_id)
                .await
                .map_err(err)?;
            out(&format!("job {} is {} again", j.job_id, j.state));
            Ok(0)
        }
    }
}

/// Runs a check in the background and shows its progress on stderr (a terminal) until
/// it ends: one line, rewritten in place.
async fn with_progress(ctx: &Context, scope: RunScope) -> anyhow::Result<checks::RunView> {
    use std::io::Write as _;
    let started = checks::start(&ctx.delivery, ACTOR, scope, true)
        .await
        .map_err(err)?;
    let mut stderr = std::io::stderr();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let run = checks::load_run(&ctx.vault, &started.run_id)
            .await
            .map_err(err)?
            .ok_or_else(|| anyhow!("the run {} disappeared", started.run_id))?;
        let p = &run.progress;
        let _ = write!(
            stderr,
            "\r{}: targets {}/{}, {} entries read, {} findings ",
            run.kind, p.targets_done, p.targets_total, p.items_done, p.findings
        );
        let _ = stderr.flush();
        if run.state != "running" {
            let _ = writeln!(stderr, "- {}", run.state);
            return Ok(run);
        }
    }
}

/// `fiktiv check …`
pub async fn check_command(ctx: &Context, command: CheckCommand) -> anyhow::Result<i32> {
    let parse_case = |s: &str| -> anyhow::Result<(CaseId, String)> {
        let c: CaseId = s.parse().map_err(|_| anyhow!("not a case id"))?;
        Ok((c, String::new()))
    };
    let scope = match command {
        CheckCommand::Accounts { case: Some(c), .. } => {
            let (case, _) = parse_case(&c)?;
            let unit = fiktiv_routine::cases::unit_of(&ctx.vault, &case)
                .await
                .map_err(err)?;
            RunScope::AccountCheckCase { case, unit }
        }
        CheckCommand::Accounts {
            case: None,
            target: Some(t),
        } => RunScope::AccountCheckTarget { target: t },
        CheckCommand::Accounts {
            case: None,
            target: None,
        } => return Err(anyhow!("give --case ID or --target NAME")),
        CheckCommand::Leaks { case: Some(c) } => {
            let (case, _) = parse_case(&c)?;
            let unit = fiktiv_routine::cases::unit_of(&ctx.vault, &case)
                .await
                .map_err(err)?;
            RunScope::LeakScanCase { case, unit }
        }
        CheckCommand::Leaks { case: None } => RunScope::LeakScanAll,
    };
    let run = if std::io::stderr().is_terminal() {
        with_progress(ctx, scope).await?
    } else {
        checks::start(&ctx.delivery, ACTOR, scope, false)
            .await
            .map_err(err)?
    };
    match &run.result {
        Some(r) => json(r)?,
        None => out(&format!(
            "run {} {}: {}",
            run.run_id,
            run.state,
            run.error.as_deref().unwrap_or("-")
        )),
    }
    let clean = run.state == "done" && run.progress.findings == 0;
    Ok(if clean { 0 } else { 1 })
}
