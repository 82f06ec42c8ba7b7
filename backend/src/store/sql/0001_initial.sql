-- Configs are never hard-deleted while runs refer to their versions: `deleted_at` hides them.
CREATE TABLE configs (
    id TEXT PRIMARY KEY,
    current_version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);

CREATE TABLE config_versions (
    config_id TEXT NOT NULL REFERENCES configs(id),
    version INTEGER NOT NULL,
    spec TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (config_id, version)
) WITHOUT ROWID;

CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    config_id TEXT NOT NULL,
    config_version INTEGER NOT NULL,
    prompt TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN
        ('queued', 'starting', 'running', 'waiting_for_input', 'succeeded', 'failed', 'stopped', 'lost')),
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    updated_at INTEGER NOT NULL,
    exit_code INTEGER,
    reason TEXT,
    session_id TEXT,
    turns INTEGER,
    cost_usd REAL,
    branch TEXT,
    pr_url TEXT,
    last_error TEXT,
    last_seq INTEGER NOT NULL DEFAULT 0,
    FOREIGN KEY (config_id, config_version) REFERENCES config_versions(config_id, version)
);
CREATE INDEX runs_by_state ON runs(state, id);
CREATE INDEX runs_by_config ON runs(config_id, id);

CREATE TABLE log_lines (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    stream TEXT NOT NULL,
    text TEXT NOT NULL,
    truncated INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
