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

// extension returns the endpoint of one of ivrd's extensions (spec §7: ours, absent from the
// original service), or nil. They follow §1 as the blocks do: GET or POST, app credentials
// checked first, a JSON status, HTTP 200.
//
//	/open/ivr/monitor/pause, /open/ivr/monitor/resume   the Monitor recording (Monitors)
//	/open/ivr/recordings/list, get, delete                 the app's recordings (recordings.go)
func (h *Handler) extension(stage, name string) endpoint {
	switch m := h.Monitors; {
	case m == nil:
	case stage+"/"+name == "monitor/pause":
		return func(_ context.Context, appID string, p ivr.Params) answer {
			return answer{Response: m.PauseMonitor(appID, p)}
		}
	case stage+"/"+name == "monitor/resume":
		return func(_ context.Context, appID string, p ivr.Params) answer {
			return answer{Response: m.ResumeMonitor(appID, p)}
		}
	}
	if stage == "recordings" && h.Recordings != nil {
		return recordingEndpoints[name].bind(h)
	}
	return nil
}
