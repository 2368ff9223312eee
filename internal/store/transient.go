package store

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Transient reports whether a failed write may succeed when tried again later: the disk is
// full, the database is locked or busy, an I/O error, the database server restarting or out of
// reach. A write refused for what it holds (a constraint, a value too big or of the wrong
// type) is not transient.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_RANGE:
			return false
		}
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code[:min(2, len(pe.Code))] { // the SQLSTATE class
		case "22", // data exception: a value too long, out of range, badly encoded
			"23", // integrity constraint violation
			"54": // program limit exceeded: a row too big
			return false
		}
		// The connection (08), the server shutting down (57), resources such as disk space (53),
		// a conflict (40), and also what an administrator can mend while the item waits, such
		// as a missing privilege (42).
		return true
	}
	return true // timeouts, refused connections, a closed pool: nothing about the item itself
}
