//! Display helpers of the page shell: stored codes and times as people read them. Each
//! code maps to a fixed message key (so a test can see that every key exists); an
//! unknown code shows as a neutral "unknown".

use chrono::DateTime;

use super::views::Base;
use fiktiv_app::tasks::{Task, TaskKind};
use fiktiv_delivery::checks::{AlertFacts, AlertView};
use fiktiv_routine::cases::{CaseState, CountryCode};
use fiktiv_routine::reveal::RevealState;
use fiktiv_routine::reviews::{DueStatus, ReviewOutcome};

/// A message with `{name}` placeholders filled in, each once, in one pass (a value
/// that holds `{…}` itself is not filled again).
pub fn fill(message: &str, args: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(message.len() + 32);
    let mut rest = message;
    while let Some(open) = rest.find('{') {
        let (before, from) = rest.split_at(open);
        out.push_str(before);
        let close = from.find('}');
        let arg = close.and_then(|c| {
            let name = from.get(1..c)?;
            args.iter().find(|(n, _)| *n == name).map(|(_, v)| (c, *v))
        });
        match arg {
            Some((c, v)) => {
                out.push_str(v);
                rest = from.get(c + 1..).unwrap_or("");
            }
            None => {
                out.push('{');
                rest = from.get(1..).unwrap_or("");
            }
        }
    }
    out.push_str(rest);
    out
}

/// The time zone times are shown in. Sweden and Norway share their offsets.
const SHOWN_TZ: chrono_tz::Tz = chrono_tz::Europe::Stockholm;

impl Base {
    /// The number of unread notices on the start page.
    pub fn unread_text(&self, n: &i64) -> String {
        fill(self.t("home.unread"), &[("n", &n.to_string())])
    }

    /// A stored RFC 3339 time as local time, `YYYY-MM-DD HH:MM`.
    pub fn when(&self, s: &str) -> String {
        match DateTime::parse_from_rfc3339(s) {
            Ok(t) => t
                .with_timezone(&SHOWN_TZ)
                .format("%Y-%m-%d %H:%M")
                .to_string(),
            Err(_) => s.to_owned(),
        }
    }

    pub fn when_opt(&self, s: &Option<String>) -> String {
        s.as_deref().map(|s| self.when(s)).unwrap_or_default()
    }

    /// The first eight characters of an opaque id, to tell items apart in a list.
    pub fn short<'a>(&self, id: &'a str) -> &'a str {
        id.get(..8).unwrap_or(id)
    }

    /// A principal id as a name: `staff:anna.svensson` is shown as `anna.svensson`.
    pub fn who(&self, s: &str) -> String {
        s.strip_prefix("staff:").unwrap_or(s).to_owned()
    }

    pub fn who_opt(&self, s: &Option<String>) -> String {
        s.as_deref().map(|s| self.who(s)).unwrap_or_default()
    }

    /// Whole minutes as days, hours and minutes (`2 d 3 h 5 min`).
    pub fn waited(&self, minutes: &i64) -> String {
        let m = (*minutes).max(0);
        let (d, h, min) = (m / 1440, (m % 1440) / 60, m % 60);
        let mut parts = Vec::new();
        if d > 0 {
            parts.push(format!("{d} {}", self.t("unit.days")));
        }
        if d > 0 || h > 0 {
            parts.push(format!("{h} {}", self.t("unit.hours")));
        }
        parts.push(format!("{min} {}", self.t("unit.minutes")));
        parts.join(" ")
    }

    pub fn case_state(&self, s: &CaseState) -> &str {
        self.t(match s {
            CaseState::Open => "state.open",
            CaseState::Ordered => "state.ordered",
            CaseState::Registered => "state.registered",
            CaseState::Ended => "state.ended",
        })
    }

    pub fn country(&self, c: &CountryCode) -> &str {
        self.t(match c {
            CountryCode::Se => "country.se",
            CountryCode::No => "country.no",
        })
    }

    pub fn decision(&self, d: &Option<String>) -> &str {
        self.t(match d.as_deref() {
            Some("fictitious-user") => "decision.fictitious-user",
            Some("no-digital-login") => "decision.no-digital-login",
            Some(_) => "label.unknown",
            None => "label.not-yet",
        })
    }

    pub fn outcome(&self, o: &ReviewOutcome) -> &str {
        self.t(match o {
            ReviewOutcome::Continue => "review.outcome-continue",
            ReviewOutcome::PlanChanged => "review.outcome-plan-changed",
            ReviewOutcome::EndProtection => "review.outcome-end-protection",
        })
    }

    pub fn due(&self, s: &DueStatus) -> &str {
        self.t(match s {
            DueStatus::Ok => "review.status-ok",
            DueStatus::DueSoon => "review.status-due-soon",
            DueStatus::Overdue => "review.status-overdue",
        })
    }

    pub fn due_opt(&self, s: &Option<DueStatus>) -> &str {
        match s {
            Some(s) => self.due(s),
            None => self.t("review.status-none"),
        }
    }

    /// The CSS class of a status badge.
    pub fn due_class(&self, s: &DueStatus) -> &'static str {
        match s {
            DueStatus::Ok => "badge ok",
            DueStatus::DueSoon => "badge warn",
            DueStatus::Overdue => "badge bad",
        }
    }

    pub fn reveal_state(&self, s: &RevealState) -> &str {
        self.t(match s {
            RevealState::Pending => "reveal.state-pending",
            RevealState::Approved => "reveal.state-approved",
            RevealState::Refused => "reveal.state-refused",
            RevealState::Read => "reveal.state-read",
            RevealState::Expired => "reveal.state-expired",
        })
    }

    /// `pupil` or `guardian-N`.
    pub fn subject(&self, s: &str) -> String {
        if let Some(rest) = s.strip_prefix("former-guardian-") {
            let n = rest.split('-').next().unwrap_or("");
            return format!("{} {n}", self.t("label.former-guardian"));
        }
        match s.strip_prefix("guardian-") {
            Some(n) => format!("{} {n}", self.t("label.guardian")),
            None if s == "pupil" => self.t("label.pupil").to_owned(),
            None => self.t("label.unknown").to_owned(),
        }
    }

    pub fn subject_opt(&self, s: &Option<String>) -> String {
        s.as_deref().map(|s| self.subject(s)).unwrap_or_default()
    }

    /// A job's or a run's state.
    pub fn run_state(&self, s: &str) -> &str {
        self.t(match s {
            "pending" => "job.state-pending",
            "running" => "job.state-running",
            "done" => "job.state-done",
            "failed" => "job.state-failed",
            _ => "label.unknown",
        })
    }

    pub fn op(&self, s: &str) -> &str {
        self.t(match s {
            "upsert" => "job.op-upsert",
            "disable" => "job.op-disable",
            "delete" => "job.op-delete",
            _ => "label.unknown",
        })
    }

    pub fn desired(&self, s: &str) -> &str {
        self.t(match s {
            "present" => "check.desired-present",
            "disabled" => "check.desired-disabled",
            "absent" => "check.desired-absent",
            _ => "label.unknown",
        })
    }

    pub fn leak_status(&self, s: &str) -> &str {
        self.t(match s {
            "clean" => "leak.status-clean",
            "unverified" => "leak.status-unverified",
            "suspect" => "leak.status-suspect",
            "found" => "leak.status-found",
            _ => "label.unknown",
        })
    }

    /// The kind of a provisioning alert in the user's language.
    pub fn alert_kind(&self, kind: &str) -> &str {
        self.t(match kind {
            "leak-found" => "provisioning.alert-leak-found",
            "egress-blocked" => "provisioning.alert-egress-blocked",
            "job-failed" => "provisioning.alert-job-failed",
            _ => "label.unknown",
        })
    }

    /// What an alert says, in the user's language: from its facts, with the rule's
    /// name translated; the English detail for an alert raised before alerts had facts.
    /// Holds rule and attribute names, targets and locators, never a value.
    pub fn alert_detail(&self, a: &AlertView) -> String {
        let Some(facts) = &a.facts else {
            return a.detail.clone();
        };
        match facts {
            AlertFacts::LeakFound {
                suspect,
                entries,
                at,
            } => {
                let mut places = at.join(", ");
                if *entries > at.len() {
                    places.push_str(", …");
                }
                fill(
                    self.t(if *suspect {
                        "provisioning.alert-detail-leak-suspect"
                    } else {
                        "provisioning.alert-detail-leak-found"
                    }),
                    &[("n", &entries.to_string()), ("at", &places)],
                )
            }
            AlertFacts::EgressBlocked { rule, attributes } => fill(
                self.t("provisioning.alert-detail-egress-blocked"),
                &[
                    ("rule", self.leak_rule(rule)),
                    ("attributes", &attributes.join(", ")),
                ],
            ),
            AlertFacts::JobFailed { attempts, error } => match attempts {
                Some(n) => fill(
                    self.t("provisioning.alert-detail-job-failed"),
                    &[("n", &n.to_string()), ("error", error)],
                ),
                None => fill(
                    self.t("provisioning.alert-detail-job-failed-once"),
                    &[("error", error)],
                ),
            },
        }
    }

    /// An action that read a real identity, as the access report names it.
    pub fn access_action(&self, a: &str) -> &str {
        use fiktiv_policies::Action;
        self.t(match a.parse::<Action>() {
            Ok(Action::CaseReadIdentity) => "access.action-case-page",
            Ok(Action::CaseAccessReport) => "access.action-report",
            Ok(Action::RevealRead) => "access.action-reveal",
            Ok(Action::FictitiousIdentityWrite) => "access.action-fictitious-check",
            Ok(Action::CaseCorrectIdentity) => "access.action-correction",
            Ok(Action::CaseTransferOut) => "access.action-transfer",
            _ if a == "keys.reindex" => "access.action-reindex",
            _ => "label.unknown",
        })
    }

    /// An audit event's action in the user's language (the code stays beside it on the
    /// audit page, for exports and searches).
    pub fn audit_action(&self, a: &str) -> &str {
        self.t(fiktiv_routine::audit_actions::message_key(a).unwrap_or("label.unknown"))
    }

    /// A target test's step in the user's language (a SCIM endpoint keeps its path).
    pub fn target_step(&self, step: &str) -> String {
        if step.starts_with('/') {
            return fill(self.t("targets.step-endpoint"), &[("path", step)]);
        }
        let key = match step {
            "connect" => "targets.step-connect",
            "bind" => "targets.step-bind",
            "people base" => "targets.step-people-base",
            "groups base" => "targets.step-groups-base",
            "disabled base" => "targets.step-disabled-base",
            "schema" => "targets.step-schema",
            "write" => "targets.step-write",
            "read" => "targets.step-read",
            "token" => "targets.step-token",
            "folder" => "targets.step-folder",
            "files" => "targets.step-files",
            "number" => "targets.step-number",
            "settings" => "targets.step-settings",
            _ => return step.to_owned(),
        };
        self.t(key).to_owned()
    }

    /// A target test's detail in the user's language (`target-detail.<code>` with its
    /// values filled in); the English text for a code without a message.
    pub fn target_detail(&self, p: &fiktiv_delivery::targets::ProbeView) -> String {
        let key = format!("target-detail.{}", p.code);
        match self.tr.get(&key) {
            Some(m) => {
                let args: Vec<(&str, &str)> = p
                    .args
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                fill(m, &args)
            }
            None => p.detail.clone(),
        }
    }

    /// Where suggested names come from, in the user's language.
    pub fn name_source<'a>(&'a self, source: &'a str) -> &'a str {
        match source {
            "Statistics Sweden (SCB), Namnstatistik" => self.t("fictitious.source-scb"),
            "Statistics Norway (SSB), Navn" => self.t("fictitious.source-ssb"),
            other => other,
        }
    }

    /// The purpose recorded with a read of a real identity: Fiktiv's own purposes in
    /// the user's language, a requester's own words as written.
    pub fn access_purpose<'a>(&'a self, p: &'a str) -> &'a str {
        match p {
            "school case page" => self.t("access.action-case-page"),
            fiktiv_routine::access_report::REPORT_PURPOSE => self.t("access.action-report"),
            "check the fictitious identity against the real one" => {
                self.t("access.action-fictitious-check")
            }
            "reindex" => self.t("access.action-reindex"),
            fiktiv_routine::corrections::OLD_IDENTITY_PURPOSE => self.t("access.action-correction"),
            fiktiv_routine::transfer::EXPORT_PURPOSE => self.t("access.action-transfer"),
            other => other,
        }
    }

    /// A transfer package to or from another municipality, in the user's language.
    pub fn transfer_text(&self, x: &fiktiv_routine::access_report::MunicipalityTransfer) -> String {
        if x.direction == "in" {
            fill(
                self.t("access.transfer-in"),
                &[
                    ("sender", x.sender.as_deref().unwrap_or("")),
                    ("id", &x.package_id),
                ],
            )
        } else {
            fill(self.t("access.transfer-out"), &[("id", &x.package_id)])
        }
    }

    /// Why a case ended, in the user's language.
    pub fn end_reason(&self, r: &str) -> &str {
        self.t(match r {
            "left-municipality" => "end.left-municipality",
            "left-school" => "end.left-school",
            "protection-lifted" => "end.protection-lifted",
            "pupil-left" => "end.pupil-left",
            _ => "label.unknown",
        })
    }

    /// A task of the start page in the user's language, with its count.
    pub fn task_text(&self, t: &Task) -> String {
        fill(self.t(task_key(t.kind)), &[("n", &t.count.to_string())])
    }

    /// An in-app notice: what kind of thing is new, and how many.
    pub fn notice_text(&self, n: &fiktiv_app::notify::Notice) -> String {
        match TaskKind::from_code(&n.kind) {
            Some(k) => fill(self.t(notice_key(k)), &[("n", &n.count.to_string())]),
            None => self.t("label.unknown").to_owned(),
        }
    }

    /// Where a notice leads: the page where that kind of thing is done.
    pub fn notice_href(&self, n: &fiktiv_app::notify::Notice) -> &'static str {
        TaskKind::from_code(&n.kind).map_or("/", TaskKind::href)
    }

    /// A task's kind as its stable code (for the page's `data-kind`).
    pub fn task_kind(&self, t: &Task) -> &'static str {
        t.kind.as_str()
    }

    /// The name of a leak-scan rule in the user's language.
    pub fn leak_rule(&self, rule: &str) -> &str {
        self.t(match rule {
            "personal-number" => "leak.rule-personal-number",
            "name-birth" => "leak.rule-name-birth",
            "full-name" => "leak.rule-full-name",
            "unverifiable" => "leak.rule-unverifiable",
            _ => "label.unknown",
        })
    }

    pub fn leak_class(&self, s: &str) -> &'static str {
        match s {
            "clean" => "badge ok",
            "unverified" => "badge warn",
            _ => "badge bad",
        }
    }

    pub fn source(&self, s: &str) -> &str {
        self.t(match s {
            "file" => "target.source-file",
            "api" => "target.source-api",
            "embedded" => "target.source-embedded",
            _ => "label.unknown",
        })
    }

    /// A target test's problem code.
    pub fn test_problem(&self, s: &Option<String>) -> &str {
        self.t(match s.as_deref() {
            None => "label.none",
            Some("unreachable") => "target.problem-unreachable",
            Some("tls") => "target.problem-tls",
            Some("bad-credentials") => "target.problem-bad-credentials",
            Some("missing-base") => "target.problem-missing-base",
            Some("missing-schema") => "target.problem-missing-schema",
            Some("permission-denied") => "target.problem-permission-denied",
            Some("configuration") => "target.problem-configuration",
            Some(_) => "target.problem-unexpected",
        })
    }

    pub fn yes_no(&self, b: &bool) -> &str {
        self.t(if *b { "label.yes" } else { "label.no" })
    }

    pub fn ok_class(&self, b: &bool) -> &'static str {
        if *b {
            "badge ok"
        } else {
            "badge bad"
        }
    }

    pub fn ok_text(&self, b: &bool) -> &str {
        self.t(if *b { "label.ok" } else { "label.not-ok" })
    }
}

/// The message key of a notice of a task kind (`{n}` is how many are new).
fn notice_key(k: TaskKind) -> &'static str {
    match k {
        TaskKind::OrdersWaiting => "notify.new-orders-waiting",
        TaskKind::AlertsOpen => "notify.new-alerts-open",
        TaskKind::CaseAlertsOpen => "notify.new-case-alerts-open",
        TaskKind::RevealsToDecide => "notify.new-reveals-to-decide",
        TaskKind::RevealsApproved => "notify.new-reveals-approved",
        TaskKind::ReviewsOverdue => "notify.new-reviews-overdue",
        TaskKind::ReviewsDueSoon => "notify.new-reviews-due-soon",
        TaskKind::PlanDrafts => "notify.new-plan-drafts",
        TaskKind::AccountsToCheck => "notify.new-accounts-to-check",
        TaskKind::CaseRequestsToDecide => "notify.new-case-requests-to-decide",
        TaskKind::IntakeWaiting => "notify.new-intake-waiting",
    }
}

/// The message key of a task kind (start page; `{n}` is the count).
fn task_key(k: TaskKind) -> &'static str {
    match k {
        TaskKind::OrdersWaiting => "home.task-orders-waiting",
        TaskKind::AlertsOpen => "home.task-alerts-open",
        TaskKind::CaseAlertsOpen => "home.task-case-alerts-open",
        TaskKind::RevealsToDecide => "home.task-reveals-to-decide",
        TaskKind::RevealsApproved => "home.task-reveals-approved",
        TaskKind::ReviewsOverdue => "home.task-reviews-overdue",
        TaskKind::ReviewsDueSoon => "home.task-reviews-due-soon",
        TaskKind::PlanDrafts => "home.task-plan-drafts",
        TaskKind::AccountsToCheck => "home.task-accounts-to-check",
        TaskKind::CaseRequestsToDecide => "home.task-case-requests-to-decide",
        TaskKind::IntakeWaiting => "home.task-intake-waiting",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use std::sync::Arc;

    use super::*;
    use crate::i18n::{Catalog, Lang};

    /// Every audit action Fiktiv writes has a name in every language: each action of
    /// the policies, and every other action code written in the source (found by
    /// reading it, so that a new one cannot be added without a name).
    #[test]
    fn every_audit_action_has_a_name_in_every_language() {
        let c = Arc::new(Catalog::load().unwrap());
        let mut codes: Vec<String> = fiktiv_policies::Action::ALL
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect();
        codes.extend(written_action_codes());
        for lang in Lang::ALL {
            let b = Base::new(c.tr(lang), "home.title", String::new(), "/");
            let unknown = b.t("label.unknown").to_owned();
            for code in &codes {
                let name = b.audit_action(code);
                assert!(
                    name != unknown && !name.contains("audit-action."),
                    "{code} has no {lang:?} name"
                );
            }
        }
        // And the list the page names covers at least what was found.
        for code in &codes {
            assert!(
                fiktiv_routine::audit_actions::CODES.contains(&code.as_str()),
                "{code} is not in AUDIT_ACTIONS"
            );
        }
    }

    /// The action codes the service writes as string literals: `action: "..."`,
    /// `audit_system("...")`, `audit_system_with("...")`, the web accounts' `audit(...)`,
    /// and the provisioning and retention events.
    /// The codes of every `detail!("code", ...)` in the provisioning crate and the
    /// service, found by reading the source (the macro's first argument), and `error`.
    fn target_detail_codes() -> Vec<String> {
        let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut out = vec!["error".to_owned()];
        let mut stack = vec![
            manifest.join("src"),
            manifest.join("../routine/src"),
            manifest.join("../provisioning/src"),
        ];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    for (i, part) in text.split("detail!(").enumerate() {
                        if i == 0 {
                            continue;
                        }
                        let code = part
                            .trim_start()
                            .strip_prefix('"')
                            .and_then(|r| r.split('"').next());
                        if let Some(code) = code.filter(|c| {
                            !c.is_empty()
                                && c.chars().all(|x| {
                                    x.is_ascii_lowercase() || x.is_ascii_digit() || x == '-'
                                })
                        }) {
                            out.push(code.to_owned());
                        }
                    }
                }
            }
        }
        // The macro's own documentation example.
        out.retain(|c| c != "code");
        out.sort();
        out.dedup();
        out
    }

    /// Every target test detail has a message in every language, with the same named
    /// values as the English text (issue: daily use, point 7).
    #[test]
    fn every_target_detail_has_a_message_in_every_language() {
        let c = Arc::new(Catalog::load().unwrap());
        let codes = target_detail_codes();
        assert!(codes.len() > 40, "{codes:?}");
        let en = c.tr(Lang::En);
        for code in &codes {
            let key = format!("target-detail.{code}");
            let english = en
                .get(&key)
                .unwrap_or_else(|| panic!("no en message {key}"));
            let names = |m: &str| -> Vec<String> {
                let mut v: Vec<String> = m
                    .split('{')
                    .skip(1)
                    .filter_map(|p| p.split('}').next().map(str::to_owned))
                    .collect();
                v.sort();
                v
            };
            for lang in [Lang::Sv, Lang::Nb] {
                let tr = c.tr(lang);
                let m = tr
                    .get(&key)
                    .unwrap_or_else(|| panic!("no {lang:?} message {key}"));
                assert_eq!(names(m), names(english), "{key} in {lang:?}");
            }
        }
    }

    fn written_action_codes() -> Vec<String> {
        // The service and the crates below it that write audit events.
        let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut out = Vec::new();
        let mut stack = vec![
            manifest.join("src"),
            manifest.join("../routine/src"),
            manifest.join("../staff/src"),
        ];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    for line in text.lines() {
                        let t = line.trim();
                        let hit = t.starts_with("action: \"")
                            || t.contains("audit_system(\"")
                            || t.contains("audit_system_with(\"")
                            || t.contains("Outcome::Ok, None).await")
                            || t.contains("system_event(vault, &mut tx, actor, \"");
                        if !hit {
                            continue;
                        }
                        for (i, part) in t.split('"').enumerate() {
                            if i % 2 == 1
                                && part.starts_with(|c: char| c.is_ascii_lowercase())
                                && part.contains('.')
                                && part
                                    .chars()
                                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '-')
                            {
                                out.push(part.to_owned());
                            }
                        }
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    #[test]
    fn times_and_durations() {
        let c = Arc::new(Catalog::load().unwrap());
        let b = Base::new(c.tr(Lang::En), "home.title", String::new(), "/");
        assert_eq!(b.when("2026-08-14T22:30:00Z"), "2026-08-15 00:30");
        assert_eq!(b.when("2026-12-01T08:00:00.123Z"), "2026-12-01 09:00");
        assert_eq!(b.who("staff:anna"), "anna");
        assert_eq!(b.waited(&0), "0 min");
        assert_eq!(b.waited(&(2 * 1440 + 3 * 60 + 5)), "2 d 3 h 5 min");
        assert_eq!(b.subject("guardian-2"), "Guardian 2");
    }

    #[test]
    fn fill_replaces_each_placeholder_once_and_keeps_the_rest() {
        assert_eq!(
            fill("{n} poster: {at}", &[("n", "2"), ("at", "a, b")]),
            "2 poster: a, b"
        );
        // A value holding a placeholder is not filled again; unknown names stay.
        assert_eq!(fill("{at} {n}", &[("at", "{n}"), ("n", "3")]), "{n} 3");
        assert_eq!(fill("{x} {", &[("n", "1")]), "{x} {");
    }
}
