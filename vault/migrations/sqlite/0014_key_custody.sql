-- Key custody (shares or an HSM): the root key wrapped (AES-256-GCM) under a custody
-- key that is never stored: split into shares held by named people, or a key inside an
-- HSM. Not secret: opening it needs `threshold` shares or the HSM. One row; replaced
-- when the custody key is rotated (generation + 1), so that older shares stop working.
-- No row: the file provider (root.key or FIKTIV_ROOT_KEY).
CREATE TABLE key_custody (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    provider TEXT NOT NULL,
    generation INTEGER NOT NULL,
    set_id TEXT NOT NULL,
    threshold INTEGER NOT NULL,
    holders TEXT NOT NULL,
    wrapped TEXT NOT NULL,
    created_at TEXT NOT NULL
);
