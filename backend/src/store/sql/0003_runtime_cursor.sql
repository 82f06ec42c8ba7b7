-- Where the runtime resumes reading a run's output after a restart (the Kubernetes runtime: the last pod log
-- timestamp taken and how many lines with it), written in the same transaction as the lines it follows.
ALTER TABLE runs ADD COLUMN log_cursor TEXT;
