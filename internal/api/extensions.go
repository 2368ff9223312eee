package api

import (
	"context"

	"github.com/ivrd/ivrd/internal/ivr"
)

// extension returns the endpoint of one of ivrd's extensions (spec §7: ours, absent from the
// original service), or nil. They follow §1 as the blocks do: GET or POST, app credentials
// checked first, a JSON status, HTTP 200.
//
//	/open/ivr/monitor/pause, /open/ivr/monitor/resume   the Monitor recording (ivr.Engine)
//	/open/ivr/recordings/list, get, delete                 the app's recordings (recordings.go)
func (h *Handler) extension(stage, name string) endpoint {
	switch stage + "/" + name {
	case "monitor/pause":
		return func(_ context.Context, appID string, p ivr.Params) answer {
			return answer{Response: h.Engine.PauseMonitor(appID, p)}
		}
	case "monitor/resume":
		return func(_ context.Context, appID string, p ivr.Params) answer {
			return answer{Response: h.Engine.ResumeMonitor(appID, p)}
		}
	}
	if stage == "recordings" && h.Recordings != nil {
		return recordingEndpoints[name].bind(h)
	}
	return nil
}
