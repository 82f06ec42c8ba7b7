-- No secret inside the sandbox: the capabilities of active runs, kept only as their SHA-256 (rows live while
-- their run is active; a run relaunched after a restart may hold two), and what the model proxy counted for
-- each run.
CREATE TABLE run_capabilities (
    token_sha256 TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    issued_at INTEGER NOT NULL
);
CREATE INDEX run_capabilities_by_run ON run_capabilities(run_id);

CREATE TABLE run_usage (
    run_id TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    requests INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cache_creation_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0
);

-- The subscription's usage window as the model's last answer stated it (anthropic-ratelimit-unified-*).
CREATE TABLE usage_window (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    headers TEXT NOT NULL,
    observed_at INTEGER NOT NULL
);
