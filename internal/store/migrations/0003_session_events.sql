-- Each session's timeline (internal/ivr Entry): one row per transition step, written in the
-- same transaction as the session's record.
CREATE TABLE session_events (
	session_id TEXT NOT NULL,
	step       INTEGER NOT NULL,
	at         BIGINT NOT NULL,
	event      TEXT NOT NULL,
	data       BLOB NOT NULL,
	PRIMARY KEY (session_id, step)
);
