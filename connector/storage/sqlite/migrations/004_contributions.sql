-- What the latest applied version of each file contributed to each profile, for goals with
-- `on_change: replace`: a corrected version takes its earlier sums and added values back first.
CREATE TABLE contributions (
    connection TEXT NOT NULL,
    goal       TEXT NOT NULL,
    key        TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    property   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    added      INTEGER NOT NULL
);
CREATE INDEX contributions_by_file ON contributions (connection, goal, key);
CREATE INDEX contributions_by_value ON contributions (profile_id, property, value);
