-- What --cluster-secret a node runs with, as a fingerprint ('' without one): a node refuses to
-- start beside live nodes whose fingerprint differs (they could not talk to each other).
ALTER TABLE nodes ADD COLUMN secret_id TEXT NOT NULL DEFAULT '';

-- A cluster's conference rooms: the node each lives on, so that a Transfer to a room on
-- another node joins it over SIP. A row exists while its room has participants; the rooms of
-- a node that dies are deleted by the node that takes over from it.
CREATE TABLE rooms (
	id         TEXT PRIMARY KEY,
	node_id    TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX rooms_node ON rooms(node_id);
