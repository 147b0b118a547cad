-- The members of each export goal's segment at its last completed export, so an incremental
-- export can tell who left since (exits). `export_members_next` holds what a running export
-- finds; the transaction that moves the goal's watermark makes it the new `export_members`,
-- so a killed export leaves the previous members in place and its re-run finds the same exits.
CREATE TABLE export_members (
    connection TEXT NOT NULL,
    goal       TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    PRIMARY KEY (connection, goal, profile_id)
) WITHOUT ROWID;

CREATE TABLE export_members_next (
    connection TEXT NOT NULL,
    goal       TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    PRIMARY KEY (connection, goal, profile_id)
) WITHOUT ROWID;
