-- SS 12000, second step: a linked pupil's school year, the progress of a running read, and
-- targets of kind 'ss12000'.

-- A linked pupil's school year (årskurs) as the hub gives it, in plaintext like the
-- names of its groups beside it: the targets' rosters carry it as they carry any
-- pupil's, so that nothing marks the fictitious pupil out.
ALTER TABLE hub_links ADD COLUMN school_year BIGINT;

-- The read running now and how far it has come, written by the instance that reads
-- (about once a second): `fiktiv hub status`, the API and the web UI show the progress
-- of a long read. A row whose `running_seen_at` is old belongs to a read cut off by a
-- restart; the status does not show it as running.
ALTER TABLE hub_state ADD COLUMN running_since TEXT;
ALTER TABLE hub_state ADD COLUMN running_full BIGINT;
ALTER TABLE hub_state ADD COLUMN running_resource TEXT;
ALTER TABLE hub_state ADD COLUMN running_pages BIGINT;
ALTER TABLE hub_state ADD COLUMN running_items BIGINT;
ALTER TABLE hub_state ADD COLUMN running_seen_at TEXT;

-- A target of kind 'ss12000' (an SS 12000 API the leak scan reads; nothing is written
-- there) may be made through the API like the others. SQLite cannot change a CHECK, so
-- the table is made again with the same rows.
CREATE TABLE prov_targets_new (
    name           TEXT   PRIMARY KEY,
    kind           TEXT   NOT NULL CHECK (kind IN ('ldap', 'scim', 'oneroster', 'ss12000')),
    settings_json  TEXT   NOT NULL,
    secret_sealed  BLOB,
    updated_by     TEXT   NOT NULL,
    updated_at     TEXT   NOT NULL
);
INSERT INTO prov_targets_new (name, kind, settings_json, secret_sealed, updated_by, updated_at)
    SELECT name, kind, settings_json, secret_sealed, updated_by, updated_at FROM prov_targets;
DROP TABLE prov_targets;
ALTER TABLE prov_targets_new RENAME TO prov_targets;
