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

    /// An audit event's purpose in the user's language: the purposes Fiktiv writes
    /// itself (fixed texts, codes and the few texts it composes) translated, a
    /// purpose typed by a person (a reveal's reason, a consumer's name) as written.
    /// The composed texts are read only in the events of the `action`s that write them,
    /// so a person's words that happen to look like one ("via telefon …") are kept.
    pub fn audit_purpose(&self, action: &str, p: &str) -> String {
        match audit_purpose_message(action, p) {
            Some((key, args)) => {
                let args: Vec<(&str, String)> = args
                    .into_iter()
                    .map(|(n, v)| match v {
                        PurposeArg::Text(t) => (n, t),
                        PurposeArg::Purpose(inner) => (n, self.audit_purpose(action, &inner)),
                        PurposeArg::Key(k) => (n, self.t(k).to_owned()),
                    })
                    .collect();
                let borrowed: Vec<(&str, &str)> =
                    args.iter().map(|(n, v)| (*n, v.as_str())).collect();
                fill(self.t(key), &borrowed)
            }
            None => self.access_purpose(p).to_owned(),
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

/// A value of a translated audit purpose: as written, another purpose (translated in
/// its turn), or a message key.
enum PurposeArg {
    Text(String),
    Purpose(String),
    Key(&'static str),
}

/// The purposes Fiktiv writes as fixed texts or codes, with their message keys. The
/// texts are the ones stored since they were first written (old rows keep them).
const AUDIT_PURPOSES: &[(&str, &str)] = &[
    ("refused: password", "audit-purpose.refused-password"),
    ("refused: second-factor", "audit-purpose.refused-second-factor"),
    ("refused: locked", "audit-purpose.refused-locked"),
    ("refused: disabled", "audit-purpose.refused-disabled"),
    ("refused: rate-limited", "audit-purpose.refused-rate-limited"),
    ("refused: unknown-name", "audit-purpose.refused-unknown-name"),
    ("refused: oidc-account", "audit-purpose.refused-oidc-account"),
    ("refused: oidc-state", "audit-purpose.refused-oidc-state"),
    (
        "refused: oidc-provider-error",
        "audit-purpose.refused-oidc-provider-error",
    ),
    ("refused: oidc-unavailable", "audit-purpose.refused-oidc-unavailable"),
    ("refused: oidc-token", "audit-purpose.refused-oidc-token"),
    ("refused: oidc-subject", "audit-purpose.refused-oidc-subject"),
    ("refused: oidc-no-role", "audit-purpose.refused-oidc-no-role"),
    (
        "refused: oidc-local-account",
        "audit-purpose.refused-oidc-local-account",
    ),
    ("refused: oidc-acr", "audit-purpose.refused-oidc-acr"),
    ("refused: oidc-not-fresh", "audit-purpose.refused-oidc-not-fresh"),
    (
        "refused: oidc-other-person",
        "audit-purpose.refused-oidc-other-person",
    ),
    ("first-change", "audit-purpose.first-change"),
    ("fictitious change asked", "audit-purpose.fictitious-change-asked"),
    (
        "fictitious change registered",
        "audit-purpose.fictitious-change-registered",
    ),
    ("guardian registered", "audit-purpose.guardian-registered"),
    ("oidc", "audit-purpose.oidc"),
    (
        "a later leak scan of every target was clean",
        "audit-purpose.leak-clean-later",
    ),
    ("email", "audit-purpose.channel-email"),
    ("in-app", "audit-purpose.channel-in-app"),
    ("due-soon", "review.status-due-soon"),
    ("overdue", "review.status-overdue"),
    ("earlier-case-ended", "audit-purpose.earlier-case-ended"),
    ("duplicate-identity", "audit-purpose.duplicate-identity"),
    ("requests-rate-limited", "audit-purpose.requests-rate-limited"),
    ("no-case", "audit-purpose.no-case"),
    ("case-already-here", "audit-purpose.case-already-here"),
    ("request-pending", "audit-purpose.request-pending"),
    ("transfer-format", "audit-purpose.transfer-format"),
    ("transfer-not-for-us", "audit-purpose.transfer-not-for-us"),
    ("transfer-sender-unknown", "audit-purpose.transfer-sender-unknown"),
    ("transfer-tampered", "audit-purpose.transfer-tampered"),
    ("transfer-malformed", "audit-purpose.transfer-malformed"),
    ("transfer-consent-scope", "audit-purpose.transfer-consent-scope"),
    ("transfer-replayed", "audit-purpose.transfer-replayed"),
    (
        "fictitious name refused: the real name of this case's person, or a part of it",
        "audit-purpose.name-refused-own",
    ),
    (
        "fictitious name refused: a real identity in the vault (another case's, or this case's in another spelling)",
        "audit-purpose.name-refused-vault",
    ),
    // The rules of the egress guard (`feed.blocked`).
    ("personal-number", "leak.rule-personal-number"),
    ("name-birth", "leak.rule-name-birth"),
    ("full-name", "leak.rule-full-name"),
    // How a service was unsealed or sealed (`via …`, `holders: …; via …`).
    ("the unseal page", "audit-purpose.via-web"),
    ("the API", "audit-purpose.via-api"),
    (
        "the control socket (fiktiv unseal / fiktiv seal)",
        "audit-purpose.via-control-socket",
    ),
    ("the service stopping", "audit-purpose.via-stop"),
    ("command line", "audit-purpose.via-command-line"),
    ("command line (restore)", "audit-purpose.via-command-line-restore"),
];

/// The codes of a failed read of the school administration system (`hub.read`,
/// outcome `failed`), each with the key of its reason.
const HUB_FAILURES: &[(&str, &str)] = &[
    ("hub.not-configured", "audit-purpose.hub-not-configured"),
    ("hub.no-secret", "audit-purpose.hub-no-secret"),
    ("hub.store", "audit-purpose.hub-store"),
    ("hub.config", "audit-purpose.hub-config"),
    ("hub.unreachable", "audit-purpose.hub-unreachable"),
    ("hub.refused", "audit-purpose.hub-refused"),
    ("hub.status", "audit-purpose.hub-status"),
    ("hub.token", "audit-purpose.hub-token"),
    ("hub.no-marking", "audit-purpose.hub-no-marking"),
    ("hub.malformed", "audit-purpose.hub-malformed"),
    ("hub.page-loop", "audit-purpose.hub-page-loop"),
    ("hub.too-many-pages", "audit-purpose.hub-too-many-pages"),
    ("hub.duplicate", "audit-purpose.hub-duplicate"),
];

/// Whether events of `action` carry a purpose Fiktiv composes (an unsealing's holders,
/// a sealing's way, a transfer package, a hub read's counts). Every other action's
/// purpose is a fixed text or a person's words.
fn composes_purpose(action: &str) -> bool {
    // `case.transfer-in`/`-out`, written in two parts: a quoted dotted literal reads as
    // a message key to the key check (service/tests/suite/web_i18n.rs).
    let transfer = action
        .strip_prefix("case.")
        .is_some_and(|a| a.starts_with("transfer-"));
    action.starts_with("system.") || transfer || action == "hub.read"
}

/// The message of a purpose Fiktiv wrote itself, with its values; `None` for a
/// purpose a person typed (and the six reads of a real identity, which
/// [`Base::access_purpose`] names).
fn audit_purpose_message(
    action: &str,
    p: &str,
) -> Option<(&'static str, Vec<(&'static str, PurposeArg)>)> {
    if let Some((_, key)) = AUDIT_PURPOSES.iter().find(|(text, _)| *text == p) {
        return Some((key, Vec::new()));
    }
    if let Some((_, key)) = HUB_FAILURES.iter().find(|(code, _)| *code == p) {
        return Some((
            "audit-purpose.hub-failed",
            vec![("reason", PurposeArg::Key(key))],
        ));
    }
    if !composes_purpose(action) {
        return None;
    }
    // `<purpose>; N share(s) refused before` (an unsealing).
    if let Some((purpose, n)) = p
        .strip_suffix(" share(s) refused before")
        .and_then(|r| r.rsplit_once("; "))
    {
        return Some((
            "audit-purpose.shares-refused-before",
            vec![
                ("purpose", PurposeArg::Purpose(purpose.to_owned())),
                ("n", PurposeArg::Text(n.to_owned())),
            ],
        ));
    }
    // `holders: a, b; via <how>`.
    if let Some((holders, via)) = p
        .strip_prefix("holders: ")
        .and_then(|r| r.rsplit_once("; via "))
    {
        return Some((
            "audit-purpose.holders",
            vec![
                ("holders", PurposeArg::Text(holders.to_owned())),
                ("via", PurposeArg::Purpose(via.to_owned())),
            ],
        ));
    }
    if let Some(via) = p.strip_prefix("via ") {
        return Some((
            "audit-purpose.via",
            vec![("via", PurposeArg::Purpose(via.to_owned()))],
        ));
    }
    // `transfer package <id>[ from <sender>]` (the prefix is the routine's).
    if let Some(rest) = p.strip_prefix(fiktiv_routine::transfer::PACKAGE_PURPOSE_PREFIX) {
        return Some(match rest.split_once(" from ") {
            Some((id, sender)) => (
                "audit-purpose.transfer-package-from",
                vec![
                    ("id", PurposeArg::Text(id.to_owned())),
                    ("sender", PurposeArg::Text(sender.to_owned())),
                ],
            ),
            None => (
                "audit-purpose.transfer-package",
                vec![("id", PurposeArg::Text(rest.to_owned()))],
            ),
        });
    }
    hub_read_message(p)
}

/// `full read: N persons, N marked, N linked, N new intake items, N quarantined, N
/// lifted` (or `changes read: …`), as the hub's read writes it.
fn hub_read_message(p: &str) -> Option<(&'static str, Vec<(&'static str, PurposeArg)>)> {
    let (key, rest) = if let Some(r) = p.strip_prefix("full read: ") {
        ("audit-purpose.hub-read-full", r)
    } else {
        (
            "audit-purpose.hub-read-changes",
            p.strip_prefix("changes read: ")?,
        )
    };
    let names = [
        ("persons", " persons"),
        ("marked", " marked"),
        ("linked", " linked"),
        ("intake", " new intake items"),
        ("quarantined", " quarantined"),
        ("lifted", " lifted"),
    ];
    let parts: Vec<&str> = rest.split(", ").collect();
    if parts.len() != names.len() {
        return None;
    }
    let mut args = Vec::new();
    for (part, (name, suffix)) in parts.iter().zip(names) {
        let n = part.strip_suffix(suffix)?;
        args.push((name, PurposeArg::Text(n.to_owned())));
    }
    Some((key, args))
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
        let mut codes: Vec<(String, String)> = fiktiv_policies::Action::ALL
            .iter()
            .map(|a| (a.as_str().to_owned(), "the policies".to_owned()))
            .collect();
        codes.extend(written_action_codes());
        for lang in Lang::ALL {
            let b = Base::new(c.tr(lang), "home.title", String::new(), "/");
            let unknown = b.t("label.unknown").to_owned();
            for (code, at) in &codes {
                let name = b.audit_action(code);
                assert!(
                    name != unknown && !name.contains("audit-action."),
                    "{code} (written in {at}) has no {lang:?} name"
                );
            }
        }
        // And the list the page names covers at least what was found.
        for (code, at) in &codes {
            assert!(
                fiktiv_routine::audit_actions::CODES.contains(&code.as_str()),
                "{code} (written in {at}) is not in audit_actions::CODES"
            );
        }
    }

    /// The codes of every `detail!("code", ...)` in every crate of the workspace,
    /// found by reading the source (the macro's first argument), and `error`.
    fn target_detail_codes() -> Vec<String> {
        use crate::source_scan as scan;
        let mut out = vec!["error".to_owned()];
        for f in scan::product_sources() {
            let t = &f.toks;
            for i in 0..t.len() {
                if t[i].ident() == Some("detail")
                    && t.get(i + 1).is_some_and(|x| x.is('!'))
                    && t.get(i + 2).is_some_and(|x| x.is('('))
                {
                    if let Some(code) = t.get(i + 3).and_then(scan::Tok::str) {
                        out.push(code.to_owned());
                    }
                }
            }
        }
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
        // Read from every crate that gives one: provisioning, and delivery's time limit.
        assert!(codes.iter().any(|c| c == "test-timeout"), "{codes:?}");
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

    /// The action codes Fiktiv writes, found by reading the product source of every
    /// crate of the workspace ([`crate::source_scan`]): the quoted dotted codes (and the
    /// string constants) passed to a function or closure with an `action: &str`
    /// parameter (`audit_system`, `system_event`, `accounts::audit`, …), given as an
    /// `action:` field (`NewEvent`, `ReadContext`), or returned by a method
    /// `fn …action…(&self) -> &'static str`.
    fn written_action_codes() -> Vec<(String, String)> {
        use crate::source_scan as scan;
        let files = scan::product_sources();
        let writers = scan::functions_taking(&files, "action");
        let mut out = Vec::new();
        for f in &files {
            let consts = scan::str_consts(&f.toks);
            let mut names = writers.clone();
            names.extend(scan::closures_taking(&f.toks, "action"));
            let mut spans = scan::call_args(&f.toks, &names);
            spans.extend(scan::field_values(&f.toks, "action"));
            spans.extend(scan::str_method_bodies(&f.toks, "action"));
            for span in spans {
                for lit in scan::literals(span, &consts) {
                    if is_action_code(&lit) {
                        out.push((lit, f.path.display().to_string()));
                    }
                }
            }
        }
        out.sort();
        out.dedup_by(|a, b| a.0 == b.0);
        out
    }

    /// `area.verb-noun`: lowercase words and hyphens, joined by dots.
    fn is_action_code(s: &str) -> bool {
        s.contains('.')
            && s.split('.').all(|w| {
                w.starts_with(|c: char| c.is_ascii_lowercase())
                    && w.chars().all(|c| c.is_ascii_lowercase() || c == '-')
            })
    }

    /// The reading finds the codes of every way an event is written (so that the test
    /// above cannot pass because the reading found nothing), and every code the page
    /// names is either found or an action of the policies.
    #[test]
    fn the_source_reading_finds_every_kind_of_audit_write() {
        let found = written_action_codes();
        let codes: Vec<&str> = found.iter().map(|(c, _)| c.as_str()).collect();
        for (code, how) in [
            ("system.seal", "audit_system_with in the service"),
            ("backup.create", "audit_system in the service"),
            ("provisioning.leak-found", "NewEvent in delivery"),
            ("provisioning.reconcile", "a method returning the code"),
            ("provisioning.blocked", "a closure with an action parameter"),
            ("keys.reindex", "ReadContext in the vault"),
            ("keys.rotate", "NewEvent in the vault"),
            ("web.password-change", "a constant"),
            ("reveal.refuse", "an if expression in a field"),
            ("retention.shred-plan", "system_event with an actor"),
            ("hub.intake", "system_event of the hub"),
            ("feed.consumer-add", "the feed's event"),
            ("tokens.create", "staff's audit"),
            ("users.add", "staff's accounts::audit"),
        ] {
            assert!(codes.contains(&code), "{code} ({how}) not found: {codes:?}");
        }
        let policies: Vec<&str> = fiktiv_policies::Action::ALL
            .iter()
            .map(|a| a.as_str())
            .collect();
        for code in fiktiv_routine::audit_actions::CODES {
            assert!(
                codes.contains(code) || policies.contains(code),
                "{code} is named but neither written nor a policy action"
            );
        }
    }

    /// Old rows and new ones read the same: stored English texts are translated, a
    /// person's words are kept.
    #[test]
    fn audit_purposes_are_translated_and_a_persons_words_kept() {
        let c = Arc::new(Catalog::load().unwrap());
        let sv = Base::new(c.tr(Lang::Sv), "home.title", String::new(), "/");
        assert_eq!(
            sv.audit_purpose("web.signin", "refused: password"),
            "Fel lösenord"
        );
        assert_eq!(
            sv.audit_purpose(
                "system.unseal",
                "holders: anna, bo; via the unseal page; 1 share(s) refused before"
            ),
            "Andelsinnehavare: anna, bo; via upplåsningssidan; 1 andel(ar) nekade dessförinnan"
        );
        assert_eq!(sv.audit_purpose("system.seal", "via the API"), "Via API:t");
        // A person's reason that looks like a composed text is kept as written.
        assert_eq!(
            sv.audit_purpose("reveal.request", "via telefon med rektor"),
            "via telefon med rektor"
        );
        assert_eq!(
            sv.audit_purpose("reveal.request", "holders: anna; via telefon"),
            "holders: anna; via telefon"
        );
        assert_eq!(
            sv.audit_purpose("hub.read", "full read: 3 persons, 1 marked, 1 linked, 0 new intake items, 0 quarantined, 0 lifted"),
            "Fullständig läsning: 3 personer, 1 markerade, 1 kopplade, 0 nya att ta emot, 0 i karantän, 0 markeringar hävda"
        );
        assert_eq!(
            sv.audit_purpose("hub.read", "hub.unreachable"),
            "Läsningen misslyckades: systemet gick inte att nå"
        );
        assert_eq!(
            sv.audit_purpose("case.read-identity", "school case page"),
            sv.t("access.action-case-page")
        );
        let nb = Base::new(c.tr(Lang::Nb), "home.title", String::new(), "/");
        assert_eq!(
            nb.audit_purpose("case.transfer-in", "transfer package p-1 from Bodø"),
            "Overføringspakke p-1 fra Bodø"
        );
        assert_eq!(
            nb.audit_purpose("reveal.request", "Samtale med foresatte om skolebytte"),
            "Samtale med foresatte om skolebytte"
        );
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
