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
-- there) may be made through the API like the others.
ALTER TABLE prov_targets DROP CONSTRAINT prov_targets_kind_check;
ALTER TABLE prov_targets ADD CONSTRAINT prov_targets_kind_check
    CHECK (kind IN ('ldap', 'scim', 'oneroster', 'ss12000'));
