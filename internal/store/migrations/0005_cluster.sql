-- Several ivrd processes (nodes) on one database (PostgreSQL).
-- The outbox: an item being attempted is claimed by one node until claimed_until (the
-- database's clock, unix microseconds); a node that dies loses its claims when they expire.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN claimed_until BIGINT NOT NULL DEFAULT 0;
CREATE INDEX outbox_claims ON outbox(state, claimed_until);

-- The node carrying each session ('' for sessions written before there were nodes).
ALTER TABLE sessions ADD COLUMN node_id TEXT NOT NULL DEFAULT '';
CREATE INDEX sessions_node ON sessions(node_id, state);

-- The nodes, each heartbeating (the database's clock, unix microseconds).
CREATE TABLE nodes (
	id           TEXT PRIMARY KEY,
	api_url      TEXT NOT NULL DEFAULT '',
	sip_addr     TEXT NOT NULL DEFAULT '',
	started_at   BIGINT NOT NULL,
	heartbeat_at BIGINT NOT NULL
);
