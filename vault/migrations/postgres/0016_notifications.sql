-- Notifications (service/src/notify): what each person is told, and how.
--
-- notify_prefs: one row per staff account that chose something; without a row a
-- person is told in the app only. The address is the person's work address; nothing
-- of a protected person is ever in these tables.
CREATE TABLE notify_prefs (
    user_id    TEXT NOT NULL PRIMARY KEY,
    channel    TEXT NOT NULL CHECK (channel IN ('email', 'in-app')),
    email      TEXT,
    lang       TEXT NOT NULL CHECK (lang IN ('sv', 'nb', 'en')),
    updated_at TEXT NOT NULL
);

-- The things to do a person has already been told about: a digest of the task kind and
-- the item (an order, an alert, a review's due date ...), never the item itself.
CREATE TABLE notify_seen (
    user_id TEXT NOT NULL,
    item    TEXT NOT NULL,
    PRIMARY KEY (user_id, item)
);

-- In-app notices: "N new things of this kind to do", read or not.
CREATE TABLE notifications (
    notification_id TEXT NOT NULL PRIMARY KEY,
    user_id         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    count           BIGINT NOT NULL,
    created_at      TEXT NOT NULL,
    read_at         TEXT
);
CREATE INDEX notifications_user ON notifications (user_id, created_at);

-- Mails to send: only whom to tell (the address and the language are read from the
-- person's choice when sending); the text is always the same "you have something to
-- do in Fiktiv".
CREATE TABLE mail_outbox (
    mail_id         TEXT NOT NULL PRIMARY KEY,
    user_id         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    sent_at         TEXT,
    failed_at       TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (sent_at, failed_at, next_attempt_at);

-- An approved reveal waits [reveal] open_within_hours for the requester (who is
-- notified); opening it starts the read window of [reveal] ttl_minutes.
ALTER TABLE reveal_requests ADD COLUMN opened_at TEXT;
