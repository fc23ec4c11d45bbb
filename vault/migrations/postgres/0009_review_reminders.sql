-- Review reminders: one row per case, review due date and status (due-soon, then
-- overdue), written by the hourly housekeeping schedule so a reminder is given once
-- across the cluster. Holds ids and dates only.
CREATE TABLE review_reminders (
    case_id      TEXT NOT NULL,
    unit         TEXT NOT NULL,
    due_on       TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('due-soon', 'overdue')),
    reminded_at  TEXT NOT NULL,
    PRIMARY KEY (case_id, due_on, status)
);
CREATE INDEX review_reminders_unit ON review_reminders (unit);
