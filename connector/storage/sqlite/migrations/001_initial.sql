-- Profiles keep their properties as one JSON object {name: [values]}: a profile
-- is read and written whole, in batches, which is what imports and exports do.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('change_seq', '0');

CREATE TABLE profiles (
    id          TEXT PRIMARY KEY,
    properties  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    change_seq  INTEGER NOT NULL
);
CREATE INDEX profiles_by_change ON profiles (change_seq, id);

CREATE TABLE unique_properties (
    name TEXT PRIMARY KEY
) WITHOUT ROWID;

CREATE TABLE identifiers (
    property   TEXT NOT NULL,
    value      TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    PRIMARY KEY (property, value)
) WITHOUT ROWID;
CREATE INDEX identifiers_by_profile ON identifiers (profile_id);

CREATE TABLE groups (
    type        TEXT NOT NULL,
    id          TEXT NOT NULL,
    properties  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    change_seq  INTEGER NOT NULL,
    PRIMARY KEY (type, id)
) WITHOUT ROWID;

CREATE TABLE group_members (
    type       TEXT NOT NULL,
    group_id   TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    PRIMARY KEY (type, group_id, profile_id)
) WITHOUT ROWID;
CREATE INDEX group_members_by_profile ON group_members (profile_id, type);

CREATE TABLE ledger (
    connection         TEXT NOT NULL,
    goal               TEXT NOT NULL,
    key                TEXT NOT NULL,
    etag               TEXT NOT NULL,
    config_fingerprint TEXT NOT NULL,
    rows               INTEGER NOT NULL,
    imported_at        TEXT NOT NULL,
    run_id             INTEGER,
    PRIMARY KEY (connection, goal, key)
) WITHOUT ROWID;

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    connection  TEXT NOT NULL,
    goal        TEXT,
    trigger     TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    dry_run     INTEGER NOT NULL DEFAULT 0,
    counts      TEXT NOT NULL DEFAULT '{}',
    error       TEXT
);
CREATE INDEX runs_by_connection ON runs (connection, id);

CREATE TABLE run_rejects (
    run_id  INTEGER NOT NULL REFERENCES runs (id),
    file    TEXT NOT NULL,
    line    INTEGER NOT NULL,
    column_name TEXT,
    reason  TEXT NOT NULL
);
CREATE INDEX run_rejects_by_run ON run_rejects (run_id);

CREATE TABLE run_locks (
    connection  TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    acquired_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE export_watermarks (
    connection  TEXT NOT NULL,
    goal        TEXT NOT NULL,
    change_seq  INTEGER NOT NULL,
    exported_at TEXT NOT NULL,
    PRIMARY KEY (connection, goal)
) WITHOUT ROWID;
