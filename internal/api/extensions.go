package api

import (
	"context"

	"github.com/ivrd/ivrd/internal/ivr"
)

// Monitors pauses and resumes sessions' Monitor recordings (the ivr engine).
type Monitors interface {
	PauseMonitor(appID string, p ivr.Params) ivr.Response
	ResumeMonitor(appID string, p ivr.Params) ivr.Response
}

// extensions are ivrd's extensions (spec §7: ours, absent from the original service) by their
// path under /open/ivr/: each makes its endpoint from the Handler, nil when the Handler lacks
// its part. They follow §1 as the blocks do: GET or POST, app credentials checked first, a
// JSON status, HTTP 200.
//
//	/open/ivr/monitor/pause, /open/ivr/monitor/resume   the Monitor recording (Monitors)
//	/open/ivr/recordings/list, get, delete                 the app's recordings (recordings.go)
var extensions = map[string]func(h *Handler) endpoint{
	"monitor/pause": func(h *Handler) endpoint {
		if h.Monitors == nil {
			return nil
		}
		return func(_ context.Context, appID string, p ivr.Params) answer {
			return answer{Response: h.Monitors.PauseMonitor(appID, p)}
		}
	},
	"monitor/resume": func(h *Handler) endpoint {
		if h.Monitors == nil {
			return nil
		}
		return func(_ context.Context, appID string, p ivr.Params) answer {
			return answer{Response: h.Monitors.ResumeMonitor(appID, p)}
		}
	},
	"recordings/list":   recordingsExtension(listRecordings),
	"recordings/get":    recordingsExtension(getRecording),
	"recordings/delete": recordingsExtension(deleteRecording),
}

// extension returns the endpoint of the extension at /open/ivr/<stage>/<name>, or nil.
func (h *Handler) extension(stage, name string) endpoint {
	if mk := extensions[stage+"/"+name]; mk != nil {
		return mk(h)
	}
	return nil
}
