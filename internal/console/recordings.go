package console

import (
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ivrd/ivrd/internal/blob"
	"github.com/ivrd/ivrd/internal/ivr"
	"github.com/ivrd/ivrd/internal/recording"
)

// recRow is one stored recording, with the console's URLs of it.
type recRow struct {
	ID, App, Session, Kind, Channels string
	Started                          time.Time
	Duration                         time.Duration
	Size                             int64
	Audio, Download, Delete          string
}

func (c *Console) recRows(es []recording.Entry) []recRow {
	out := make([]recRow, 0, len(es))
	for _, e := range es {
		base := Prefix + "recordings/" + url.PathEscape(e.ID)
		out = append(out, recRow{ID: e.ID, App: e.AppID, Session: e.SessionID, Kind: e.Kind, Channels: ivr.ChannelsName(e.Channels),
			Started: e.Started, Duration: e.Duration, Size: e.Size,
			Audio: base + "/audio", Download: base + "/audio?download=1", Delete: base + "/delete"})
	}
	return out
}

const recordingsPageSize = 20

// recordingsView lists recordings: the recordings page, a session's, the demo's.
type recordingsView struct {
	Recs     []recRow
	Operator bool
	CSRF     string
	Return   string // where a delete comes back to
	Pager    pager
}

func (c *Console) recordingsPage(w http.ResponseWriter, r *http.Request, s session) {
	page := pageParam(r)
	es, total, err := c.cfg.Recordings.List(recording.Filter{AppID: s.scope(), Limit: recordingsPageSize, Offset: (page - 1) * recordingsPageSize})
	if err != nil {
		c.fail(w, s, "recordings", err)
		return
	}
	v := recordingsView{Recs: c.recRows(es), Operator: s.Role == roleOperator, CSRF: c.keys.csrf(s.t.Nonce), Return: r.URL.RequestURI(),
		Pager: newPager(page, recordingsPageSize, len(es), total)}
	c.render(w, http.StatusOK, "recordings", c.view(s, "Recordings", "recordings", v))
}

// audio streams a recording's MP3 (Range requests too), through the catalog: the same
// recordings, and the same access, as the API's. ?download=1 makes it an attachment.
func (c *Console) audio(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	e, obj, err := c.cfg.Recordings.Open(r.Context(), s.scope(), id)
	switch {
	case errors.Is(err, recording.ErrNotFound), errors.Is(err, recording.ErrOtherApp):
		http.NotFound(w, r)
		return
	case err != nil:
		blob.ServeError(w, r, e.Key, err, c.log)
		return
	}
	defer obj.Close()
	if r.URL.Query().Get("download") != "" {
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": e.ID + ".mp3"}))
	}
	blob.Serve(w, r, e.Key, obj)
}

// deleteRecording deletes through the catalog, as recordings/delete does: the file and its
// listing; every URL of it answers 404 from then on.
func (c *Console) deleteRecording(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	err := c.cfg.Recordings.Delete(s.scope(), id)
	switch {
	case errors.Is(err, recording.ErrNotFound), errors.Is(err, recording.ErrOtherApp):
		c.notFound(w, s, "No recording "+id+".")
		return
	case err != nil:
		c.fail(w, s, "recording", err)
		return
	}
	c.log.Info("console: recording deleted", "id", id, "role", s.Role, "app", s.AppID)
	http.Redirect(w, r, safeReturn(r.PostFormValue("return"), Prefix+"recordings"), http.StatusSeeOther)
}

// safeReturn is a console path to come back to after a POST, else def.
func safeReturn(ret, def string) string {
	if next := safeNext(ret); next != Prefix || strings.TrimSpace(ret) == Prefix {
		return next
	}
	return def
}
