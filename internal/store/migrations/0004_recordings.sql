-- Stored recordings (internal/recording Catalog): one row per MP3 in the blob store, written
-- when the recording is stored (at the end of its call, or by crash recovery).
-- Portable SQL: TEXT, BIGINT (unix microseconds; durations in microseconds), INTEGER.
CREATE TABLE recordings (
	id          TEXT PRIMARY KEY,
	app_id      TEXT NOT NULL,
	session_id  TEXT NOT NULL,
	kind        TEXT NOT NULL CHECK (kind IN ('monitor', 'record')),
	started_at  BIGINT NOT NULL,
	duration_us BIGINT NOT NULL,
	size_bytes  BIGINT NOT NULL,
	channels    INTEGER NOT NULL,
	storage_key TEXT NOT NULL,
	stored_at   BIGINT NOT NULL
);
CREATE INDEX recordings_app_started ON recordings(app_id, started_at, id);
CREATE INDEX recordings_session ON recordings(session_id);
CREATE INDEX recordings_stored ON recordings(stored_at);
