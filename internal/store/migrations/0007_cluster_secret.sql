-- What --cluster-secret a node runs with, as a fingerprint ('' without one): a node refuses to
-- start beside live nodes whose fingerprint differs (they could not forward requests to each other).
ALTER TABLE nodes ADD COLUMN secret_id TEXT NOT NULL DEFAULT '';
