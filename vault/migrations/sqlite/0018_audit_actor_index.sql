-- Per-person limits counted from the audit trail (requests to move or reopen a case:
-- `[cases] requests_per_person_per_day`) read one person's recent events of one action.
CREATE INDEX audit_events_actor ON audit_events(actor, action, at);
