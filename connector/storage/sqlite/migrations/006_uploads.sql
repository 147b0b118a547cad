-- Multipart uploads an export started and has not completed or aborted yet: one left
-- behind by a killed process is found here and aborted later (its parts cost money).
CREATE TABLE uploads (
    upload_id  TEXT PRIMARY KEY,
    connection TEXT NOT NULL,
    goal       TEXT NOT NULL,
    bucket     TEXT NOT NULL,
    key        TEXT NOT NULL,
    started_at TEXT NOT NULL
);
CREATE INDEX uploads_by_connection ON uploads (connection, started_at);
