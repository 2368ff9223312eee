-- The durable notification outbox (internal/notify).
-- id orders items; on PostgreSQL it becomes BIGSERIAL / GENERATED ALWAYS AS IDENTITY.
CREATE TABLE outbox (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	delivery_id TEXT NOT NULL UNIQUE,
	app_id      TEXT NOT NULL,
	session_key TEXT NOT NULL DEFAULT '',
	target      TEXT NOT NULL,
	body        BLOB NOT NULL,
	signature   TEXT NOT NULL,
	state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
	attempts    INTEGER NOT NULL DEFAULT 0,
	created_at  BIGINT NOT NULL,
	next_at     BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL,
	last_error  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_due ON outbox(state, next_at);
CREATE INDEX outbox_session ON outbox(session_key, state, attempts, id);
