package api

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/ivrd/ivrd/internal/ivr"
	"github.com/ivrd/ivrd/internal/recording"
)

// Recordings is the catalog of stored recordings the recordings endpoints serve
// (recording.Catalog). An appID of "" is never passed: apps see their own recordings only.
type Recordings interface {
	CheckSession(appID, sessionID string) error
	List(f recording.Filter) ([]recording.Entry, int, error)
	Get(appID, id string) (recording.Entry, string, error)
	Delete(appID, id string) error
}

// DateLayout is the format of the dates the recordings endpoints take (from, to) and give
// (date), in the configured time zone: the notifications' date field's.
const DateLayout = "2006-01-02 15:04:05"

// Paging of recordings/list.
const (
	DefaultPageSize = 100
	MaxPageSize     = 100
	maxPage         = 1_000_000
)

type recordingsEndpoint func(h *Handler, appID string, p ivr.Params) answer

// recordingsExtension makes a recordings endpoint's extension: served when the Handler has
// Recordings.
func recordingsExtension(f recordingsEndpoint) func(h *Handler) endpoint {
	return func(h *Handler) endpoint {
		if h.Recordings == nil {
			return nil
		}
		return func(_ context.Context, appID string, p ivr.Params) answer { return f(h, appID, p) }
	}
}

func (h *Handler) zone() *time.Location {
	if h.Zone != nil {
		return h.Zone
	}
	return ivr.DefaultZone
}

// listQuery is a checked recordings/list request.
type listQuery struct {
	filter         recording.Filter
	page, pageSize int
}

// parseList checks recordings/list's own parameters, in order: from, to, page, page_size. It
// returns the first failure's status, or "".
func parseList(p ivr.Params, loc *time.Location) (listQuery, string) {
	q := listQuery{page: 1, pageSize: DefaultPageSize}
	if v := p["from"]; v != "" {
		t, err := time.ParseInLocation(DateLayout, v, loc)
		if err != nil {
			return q, ivr.StatusInvalidFrom
		}
		q.filter.From = t
	}
	if v := p["to"]; v != "" {
		t, err := time.ParseInLocation(DateLayout, v, loc)
		if err != nil || (!q.filter.From.IsZero() && t.Before(q.filter.From)) {
			return q, ivr.StatusInvalidTo
		}
		q.filter.To = t.Add(time.Second) // to the second, inclusive
	}
	var ok bool
	if q.page, ok = number(p["page"], 1, 1, maxPage); !ok {
		return q, ivr.StatusInvalidPage
	}
	if q.pageSize, ok = number(p["page_size"], DefaultPageSize, 1, MaxPageSize); !ok {
		return q, ivr.StatusInvalidPageSize
	}
	q.filter.Limit, q.filter.Offset = q.pageSize, (q.page-1)*q.pageSize
	return q, ""
}

// number reads an optional whole number in [lo, hi] (def when absent).
func number(v string, def, lo, hi int) (int, bool) {
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= lo && n <= hi
}

// listRecordings answers /open/ivr/recordings/list: the app's recordings, newest first,
// optionally of one session and started within [from, to], a page at a time.
func listRecordings(h *Handler, appID string, p ivr.Params) answer {
	sid := p["session"]
	if sid != "" {
		if st := h.recordingStatus(h.Recordings.CheckSession(appID, sid), ivr.StatusInvalidSession); st != "" {
			return status(st)
		}
	}
	q, st := parseList(p, h.zone())
	if st != "" {
		return status(st)
	}
	q.filter.AppID, q.filter.SessionID = appID, sid
	rs, total, err := h.Recordings.List(q.filter)
	if st := h.recordingStatus(err, ivr.StatusInvalidSession); st != "" {
		return status(st)
	}
	a := answer{Response: ivr.Response{Status: ivr.StatusOK, Fields: map[string]string{
		"total_entries_count": strconv.Itoa(total),
		"entries_count":       strconv.Itoa(len(rs)),
		"page":                strconv.Itoa(q.page),
		"page_size":           strconv.Itoa(q.pageSize),
	}}, entries: make([]map[string]string, 0, len(rs))}
	for _, r := range rs {
		a.entries = append(a.entries, h.recordingFields(r))
	}
	return a
}

// getRecording answers /open/ivr/recordings/get: one recording and a freshly signed URL.
func getRecording(h *Handler, appID string, p ivr.Params) answer {
	id := p["id"]
	if id == "" {
		return status(ivr.Missing("id"))
	}
	r, url, err := h.Recordings.Get(appID, id)
	if st := h.recordingStatus(err, ivr.StatusRecordingNotFound); st != "" {
		return status(st)
	}
	f := h.recordingFields(r)
	f["url"] = url
	return answer{Response: ivr.Response{Status: ivr.StatusOK, Fields: f}}
}

// deleteRecording answers /open/ivr/recordings/delete: the recording's file and its row.
func deleteRecording(h *Handler, appID string, p ivr.Params) answer {
	id := p["id"]
	if id == "" {
		return status(ivr.Missing("id"))
	}
	if st := h.recordingStatus(h.Recordings.Delete(appID, id), ivr.StatusRecordingNotFound); st != "" {
		return status(st)
	}
	return status(ivr.StatusOK)
}

// recordingStatus maps a catalog error to its status: notFound for what does not exist,
// error_session_access_denied for another app's, error_internal_server_error for a failure;
// "" for no error.
func (h *Handler) recordingStatus(err error, notFound string) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, recording.ErrNotFound):
		return notFound
	case errors.Is(err, recording.ErrOtherApp):
		return ivr.StatusSessionAccessDenied
	}
	h.log().Error("api: recordings", "err", err)
	return ivr.StatusInternal
}

// recordingFields are a recording's fields in an answer (all strings, as §1 says).
func (h *Handler) recordingFields(r recording.Entry) map[string]string {
	return map[string]string{
		"id":          r.ID,
		"session":     r.SessionID,
		"kind":        r.Kind,
		"date":        r.Started.In(h.zone()).Format(DateLayout),
		"duration_ms": strconv.FormatInt(r.Duration.Milliseconds(), 10),
		"size_bytes":  strconv.FormatInt(r.Size, 10),
		"channels":    ivr.ChannelsName(r.Channels),
	}
}
