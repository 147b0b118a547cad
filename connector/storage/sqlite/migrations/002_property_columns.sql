-- One column per property (see connector/storage/columns.py): profiles keep their
-- values in generated columns named by the `properties` registry. The JSON table is
-- renamed and converted row by row by the store on open, in the same transaction.
CREATE TABLE properties (
    name TEXT PRIMARY KEY,
    col  TEXT NOT NULL UNIQUE
);
DROP INDEX profiles_by_change;
ALTER TABLE profiles RENAME TO profiles_json;
CREATE TABLE profiles (
    id          TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    change_seq  INTEGER NOT NULL
);
CREATE INDEX profiles_by_change ON profiles (change_seq, id);
