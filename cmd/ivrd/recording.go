package main

import (
	"strconv"
	"time"

	"github.com/ivrd/ivrd/internal/ivr"
	"github.com/ivrd/ivrd/internal/recording"
)

func recordingJSON(r recording.Entry) map[string]string {
	return map[string]string{"id": r.ID, "app_id": r.AppID, "session": r.SessionID, "kind": r.Kind,
		"started": r.Started.Format(time.RFC3339), "duration_ms": strconv.FormatInt(r.Duration.Milliseconds(), 10),
		"size_bytes": strconv.FormatInt(r.Size, 10), "channels": ivr.ChannelsName(r.Channels), "key": r.Key,
		"stored": r.Stored.Format(time.RFC3339)}
}

func recordingList(args []string) error {
	fs, db := adminFlags("recording list")
	db.blobFlag(fs)
	app := fs.String("app", "", "only this app's recordings")
	session := fs.String("session", "", "only this session's recordings")
	if err := parse(fs, args); err != nil {
		return err
	}
	return db.catalog(func(c *recording.Catalog) error {
		rs, _, err := c.List(recording.Filter{AppID: *app, SessionID: *session})
		if err != nil {
			return err
		}
		return printLines(rs, recordingJSON)
	})
}

func recordingDelete(args []string) error {
	fs, db := adminFlags("recording delete")
	db.blobFlag(fs)
	id := fs.String("id", "", "recording id (rec-…)")
	if err := parse(fs, args, "id"); err != nil {
		return err
	}
	return db.catalog(func(c *recording.Catalog) error {
		return c.Delete("", *id)
	})
}
