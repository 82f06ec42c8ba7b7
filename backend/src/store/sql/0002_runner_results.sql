-- What the agent runner reports: the size of the branch's diff, and when a usage limit resets.
ALTER TABLE runs ADD COLUMN diff_files INTEGER;
ALTER TABLE runs ADD COLUMN diff_added INTEGER;
ALTER TABLE runs ADD COLUMN diff_removed INTEGER;
ALTER TABLE runs ADD COLUMN limit_resets_at INTEGER;
