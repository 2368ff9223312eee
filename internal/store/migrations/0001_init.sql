-- Apps, numbers and the session journal.
-- Portable SQL: TEXT, BIGINT (unix microseconds) and BLOB (bytea on PostgreSQL).
CREATE TABLE apps (
	id           TEXT PRIMARY KEY,
	name         TEXT NOT NULL,
	access_token TEXT NOT NULL UNIQUE,
	created_at   BIGINT NOT NULL
);

CREATE TABLE numbers (
	number     TEXT PRIMARY KEY,
	app_id     TEXT NOT NULL REFERENCES apps(id),
	notify_url TEXT NOT NULL DEFAULT ''
);
CREATE INDEX numbers_app ON numbers(app_id);

CREATE TABLE sessions (
	id         TEXT PRIMARY KEY,
	app_id     TEXT NOT NULL,
	state      TEXT NOT NULL,
	data       BLOB NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE INDEX sessions_state ON sessions(state);
CREATE INDEX sessions_app ON sessions(app_id);
