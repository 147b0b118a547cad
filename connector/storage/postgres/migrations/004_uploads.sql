-- Multipart uploads an export started and has not completed or aborted yet: one left
-- behind by a killed process is found here and aborted later (its parts cost money).
CREATE TABLE uploads (
    upload_id  text COLLATE "C" PRIMARY KEY,
    connection text COLLATE "C" NOT NULL,
    goal       text COLLATE "C" NOT NULL,
    bucket     text COLLATE "C" NOT NULL,
    key        text COLLATE "C" NOT NULL,
    started_at timestamptz NOT NULL
);
CREATE INDEX uploads_by_connection ON uploads (connection, started_at);
