-- What the latest applied version of each file contributed to each profile, for goals with
-- `on_change: replace`: a corrected version takes its earlier sums and added values back first.
CREATE TABLE contributions (
    connection text COLLATE "C" NOT NULL,
    goal       text COLLATE "C" NOT NULL,
    key        text COLLATE "C" NOT NULL,
    profile_id text COLLATE "C" NOT NULL,
    property   text COLLATE "C" NOT NULL,
    kind       text NOT NULL,
    value      text COLLATE "C" NOT NULL,
    added      boolean NOT NULL
);
CREATE INDEX contributions_by_file ON contributions (connection, goal, key);
CREATE INDEX contributions_by_value ON contributions (profile_id, property, value);
