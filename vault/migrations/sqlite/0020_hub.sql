-- SS 12000: what Fiktiv keeps of its reads of the school administration system (the
-- hub). Nothing of a marked person is kept in plaintext: a link to a case and an
-- intake item hold the blind index of the hub's person id (to find them again without
-- opening anything) and what the case needs, sealed.

-- The hub's entities as it wrote them, for the feed: organisations, unmarked persons,
-- groups, duties and activities. A marked person is never written here; a person whose marking
-- appears is removed from here in the same transaction.
CREATE TABLE hub_entities (
    resource     TEXT   NOT NULL CHECK (resource IN ('organisations', 'persons', 'groups', 'duties', 'activities')),
    id           TEXT   NOT NULL,
    modified     TEXT   NOT NULL,
    raw          TEXT   NOT NULL,
    PRIMARY KEY (resource, id)
);

-- A marked pupil linked to its case: the hub person id sealed with the case's key,
-- and the unit, school year and groups the hub gives (sealed JSON).
CREATE TABLE hub_links (
    case_id            TEXT    PRIMARY KEY,
    person_idx         TEXT    NOT NULL UNIQUE,
    person_sealed      BLOB    NOT NULL,
    person_dk_version  BIGINT  NOT NULL,
    facts_sealed       BLOB    NOT NULL,
    facts_dk_version   BIGINT  NOT NULL,
    marking            TEXT    NOT NULL,
    linked_at          TEXT    NOT NULL,
    marking_lifted_at  TEXT,
    -- The fictitious pupil's person id in the feed (random, stable for the link).
    fict_person_id     TEXT    NOT NULL UNIQUE,
    -- The names of the hub's groups of the pupil (classes first), as the order's
    -- groups are kept: the targets put the fictitious pupil in these.
    groups_json        TEXT    NOT NULL DEFAULT '[]'
);

-- A marked pupil enrolled at a unit with no case: "open a case". The identity is
-- sealed with the item's own data key (case_keys, under the item's id), shredded
-- when the item is closed.
CREATE TABLE hub_intake (
    intake_id          TEXT    PRIMARY KEY,
    person_idx         TEXT    NOT NULL UNIQUE,
    -- Blind indexes of the pupil's number and of name with birth date: a case opened
    -- later is found without opening the item.
    pnr_idx            TEXT,
    name_birth_idx     TEXT,
    unit               TEXT    NOT NULL,
    marking            TEXT    NOT NULL,
    identity_sealed    BLOB    NOT NULL,
    dk_version         BIGINT  NOT NULL,
    created_at         TEXT    NOT NULL,
    marking_lifted_at  TEXT
);
CREATE INDEX hub_intake_unit ON hub_intake (unit);

-- The last read: when it finished, from when the next read of changes asks, and how
-- it went (the feed is served only while the last good read is young enough).
CREATE TABLE hub_state (
    id              BIGINT  PRIMARY KEY CHECK (id = 1),
    last_good_at    TEXT,
    changes_after   TEXT,
    last_try_at     TEXT,
    last_error      TEXT,
    persons         BIGINT  NOT NULL DEFAULT 0,
    marked          BIGINT  NOT NULL DEFAULT 0,
    linked          BIGINT  NOT NULL DEFAULT 0,
    intake          BIGINT  NOT NULL DEFAULT 0
);

-- Every hub person Fiktiv has seen marked, by blind index of the hub person id: such a
-- person is kept out of hub_entities, and out of every group's memberships and every
-- person's responsibles kept there, until the school acts on a lifted marking.
CREATE TABLE hub_marked (
    person_idx   TEXT   PRIMARY KEY,
    seen_at      TEXT   NOT NULL
);

-- The hub secret (bearer token or OAuth client secret) set with `fiktiv hub secret`,
-- sealed with the target-secrets key like a target's credential.
CREATE TABLE hub_credentials (
    id             BIGINT  PRIMARY KEY CHECK (id = 1),
    secret_sealed  BLOB    NOT NULL,
    set_by         TEXT    NOT NULL,
    set_at         TEXT    NOT NULL
);

-- The feed's consumers (the platforms reading /ss12000/v2): a bearer token stored as its
-- SHA-256 only, the endpoints it may read and the person fields left out for it.
CREATE TABLE feed_consumers (
    name            TEXT    PRIMARY KEY,
    token_sha256    TEXT    NOT NULL UNIQUE,
    endpoints_json  TEXT    NOT NULL,
    omit_json       TEXT    NOT NULL,
    created_by      TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    revoked_at      TEXT
);

-- What the feed answers in /deletedEntities: removed by the hub, or taken out of the
-- feed (a person newly marked, a fictitious pupil whose case ended). The id is sealed:
-- a newly marked person's hub id is not kept in plaintext.
CREATE TABLE feed_deleted (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    resource       TEXT    NOT NULL,
    id_sealed      BLOB    NOT NULL,
    deleted_at     TEXT    NOT NULL
);
CREATE INDEX feed_deleted_at ON feed_deleted (deleted_at);
