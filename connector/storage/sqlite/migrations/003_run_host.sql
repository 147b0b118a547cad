-- Which process ran each run (host:pid), so a history shared by several daemons says who.
ALTER TABLE runs ADD COLUMN ran_by TEXT
