-- Every delivery attempt of an outbox item (internal/notify): when, how long, the HTTP status
-- the app answered (0: no answer) and the error. Deleted with their item (PurgeOutbox).
-- Portable SQL: BIGINT (unix microseconds; durations in microseconds), INTEGER, TEXT.
CREATE TABLE outbox_attempts (
	outbox_id   BIGINT NOT NULL,
	attempt     INTEGER NOT NULL,
	at          BIGINT NOT NULL,
	duration_us BIGINT NOT NULL,
	status_code INTEGER NOT NULL,
	error       TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (outbox_id, attempt)
);
-- The console lists sessions newest first.
CREATE INDEX sessions_updated ON sessions(updated_at);
