package store

import (
	"context"
	"time"
)

// writeProbeTimeout bounds CheckWritable: a database that cannot take a write this quickly is
// not ready for calls.
const writeProbeTimeout = 2 * time.Second

// CheckWritable commits a write that changes no data (the newest schema_version row over
// itself): an error says the database cannot be written now (read-only, full, locked past
// the timeout, unreachable).
func (s *Store) CheckWritable() error {
	c, cancel := context.WithTimeout(context.Background(), writeProbeTimeout)
	defer cancel()
	_, err := s.exec(c, `UPDATE schema_version SET applied_at = applied_at
		WHERE version = (SELECT MAX(version) FROM schema_version)`)
	return err
}
