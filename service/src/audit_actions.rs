//! The audit trail's action codes and the message key that names each in the web UI
//! (`i18n/*.toml`, section `[audit-action]`). Kept outside `web/` because the codes look
//! like message keys to the web UI's key checker. `web::labels` has the test that every
//! code the service writes has a name in every language.

/// Every action code Fiktiv writes, with its message key.
const TABLE: &[(&str, &str)] = &[
    ("case.open", "audit-action.case-open"),
    ("case.list", "audit-action.case-list"),
    ("case.read", "audit-action.case-read"),
    ("case.read-identity", "audit-action.case-read-identity"),
    ("plan.write", "audit-action.plan-write"),
    ("plan.read", "audit-action.plan-read"),
    ("plan.draft-kept", "audit-action.plan-draft-kept"),
    ("login-decision.write", "audit-action.login-decision-write"),
    (
        "fictitious-identity.write",
        "audit-action.fictitious-identity-write",
    ),
    ("guardian.write", "audit-action.guardian-write"),
    ("order.send", "audit-action.order-send"),
    ("order-queue.read", "audit-action.order-queue-read"),
    ("order.register", "audit-action.order-register"),
    ("staff-told.write", "audit-action.staff-told-write"),
    ("staff-told.read", "audit-action.staff-told-read"),
    ("reviews.list", "audit-action.reviews-list"),
    ("reviews.list-all", "audit-action.reviews-list-all"),
    ("review.record", "audit-action.review-record"),
    ("review.read", "audit-action.review-read"),
    ("review.reminder", "audit-action.review-reminder"),
    ("reveal.request", "audit-action.reveal-request"),
    ("reveal.approve", "audit-action.reveal-approve"),
    ("reveal.refuse", "audit-action.reveal-refuse"),
    ("reveal.read", "audit-action.reveal-read"),
    ("reveal.list-pending", "audit-action.reveal-list-pending"),
    ("reveal.list-own", "audit-action.reveal-list-own"),
    ("case.end", "audit-action.case-end"),
    ("case.label", "audit-action.case-label"),
    ("case.access-report", "audit-action.case-access-report"),
    ("audit.read", "audit-action.audit-read"),
    ("audit.verify", "audit-action.audit-verify"),
    ("targets.manage", "audit-action.targets-manage"),
    ("sync.plan", "audit-action.sync-plan"),
    ("sync.apply", "audit-action.sync-apply"),
    ("account.check", "audit-action.account-check"),
    ("leak.scan", "audit-action.leak-scan"),
    (
        "provisioning-status.read",
        "audit-action.provisioning-status-read",
    ),
    ("tokens.manage", "audit-action.tokens-manage"),
    ("users.manage", "audit-action.users-manage"),
    ("tokens.create", "audit-action.tokens-create"),
    ("tokens.revoke", "audit-action.tokens-revoke"),
    ("users.add", "audit-action.users-add"),
    ("users.disable", "audit-action.users-disable"),
    ("users.enable", "audit-action.users-enable"),
    ("users.reset", "audit-action.users-reset"),
    ("web.signin", "audit-action.web-signin"),
    ("web.step-up", "audit-action.web-step-up"),
    ("web.lockout", "audit-action.web-lockout"),
    ("web.password-change", "audit-action.web-password-change"),
    (
        "provisioning.alert-acknowledge",
        "audit-action.provisioning-alert-acknowledge",
    ),
    (
        "provisioning.alert-closed",
        "audit-action.provisioning-alert-closed",
    ),
    (
        "provisioning.deprovisioned",
        "audit-action.provisioning-deprovisioned",
    ),
    (
        "provisioning.leak-found",
        "audit-action.provisioning-leak-found",
    ),
    ("provisioning.blocked", "audit-action.provisioning-blocked"),
    (
        "provisioning.job-failed",
        "audit-action.provisioning-job-failed",
    ),
    (
        "provisioning.reconcile",
        "audit-action.provisioning-reconcile",
    ),
    (
        "retention.shred-identity",
        "audit-action.retention-shred-identity",
    ),
    ("retention.shred-plan", "audit-action.retention-shred-plan"),
    (
        "retention.shred-records",
        "audit-action.retention-shred-records",
    ),
    ("keys.rotate", "audit-action.keys-rotate"),
    ("keys.reindex", "audit-action.keys-reindex"),
    ("keys.rotate-root", "audit-action.keys-rotate-root"),
    ("keys.custody-created", "audit-action.keys-custody-created"),
    ("keys.shares-entered", "audit-action.keys-shares-entered"),
    ("system.init", "audit-action.system-init"),
    ("system.start", "audit-action.system-start"),
    ("system.unseal", "audit-action.system-unseal"),
    ("system.seal", "audit-action.system-seal"),
    ("backup.create", "audit-action.backup-create"),
    ("backup.restore", "audit-action.backup-restore"),
];

/// Every action code with a name.
pub const CODES: &[&str] = &[
    "case.open",
    "case.list",
    "case.read",
    "case.read-identity",
    "plan.write",
    "plan.read",
    "plan.draft-kept",
    "login-decision.write",
    "fictitious-identity.write",
    "guardian.write",
    "order.send",
    "order-queue.read",
    "order.register",
    "staff-told.write",
    "staff-told.read",
    "reviews.list",
    "reviews.list-all",
    "review.record",
    "review.read",
    "review.reminder",
    "reveal.request",
    "reveal.approve",
    "reveal.refuse",
    "reveal.read",
    "reveal.list-pending",
    "reveal.list-own",
    "case.end",
    "case.label",
    "case.access-report",
    "audit.read",
    "audit.verify",
    "targets.manage",
    "sync.plan",
    "sync.apply",
    "account.check",
    "leak.scan",
    "provisioning-status.read",
    "tokens.manage",
    "users.manage",
    "tokens.create",
    "tokens.revoke",
    "users.add",
    "users.disable",
    "users.enable",
    "users.reset",
    "web.signin",
    "web.step-up",
    "web.lockout",
    "web.password-change",
    "provisioning.alert-acknowledge",
    "provisioning.alert-closed",
    "provisioning.deprovisioned",
    "provisioning.leak-found",
    "provisioning.blocked",
    "provisioning.job-failed",
    "provisioning.reconcile",
    "retention.shred-identity",
    "retention.shred-plan",
    "retention.shred-records",
    "keys.rotate",
    "keys.reindex",
    "keys.rotate-root",
    "keys.custody-created",
    "keys.shares-entered",
    "system.init",
    "system.start",
    "system.unseal",
    "system.seal",
    "backup.create",
    "backup.restore",
];

/// The message key naming `code`, if it has one.
pub fn message_key(code: &str) -> Option<&'static str> {
    TABLE.iter().find(|(c, _)| *c == code).map(|(_, k)| *k)
}

#[cfg(test)]
mod tests {
    #[test]
    fn codes_and_table_agree() {
        assert_eq!(super::CODES.len(), super::TABLE.len());
        for (c, k) in super::TABLE {
            assert!(super::CODES.contains(c));
            assert_eq!(*k, format!("audit-action.{}", c.replace('.', "-")));
        }
    }
}
