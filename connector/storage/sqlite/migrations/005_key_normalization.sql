-- How the stored values of each unique property are normalised (match.normalize): trim,
-- lowercase or email. Keys have always been trimmed, so existing properties start as trim.
ALTER TABLE unique_properties ADD COLUMN normalize TEXT NOT NULL DEFAULT 'trim'
