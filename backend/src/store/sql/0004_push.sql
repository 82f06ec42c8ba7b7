-- Web Push: the server's VAPID key pair, the owner's subscribed devices, and the outbox of notifications to
-- send (one row per event and device, written in the same transaction as the run change it announces).
CREATE TABLE push_keys (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    private_key TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE push_subscriptions (
    id TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL UNIQUE,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    device TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    confirmed_at INTEGER NOT NULL
);

CREATE TABLE push_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id TEXT NOT NULL REFERENCES push_subscriptions(id) ON DELETE CASCADE,
    -- The run it is about (NULL for a test notification) and what happened: succeeded, failed,
    -- waiting_for_input, limit_hit, test.
    run_id TEXT,
    kind TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE INDEX push_outbox_due ON push_outbox (next_attempt_at);
