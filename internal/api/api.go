// Package api is ivrd's HTTP face: the Hoiio IVR endpoints /open/ivr/{start,middle,end}/<block>.
// It decodes requests, checks credentials, and hands each request to the ivr engine; every answer
// is HTTP 200 with a JSON body carrying the exact status string of the spec.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/ivrd/ivrd/internal/ivr"
)

// ErrNoApp is what an AppLookup returns for an unknown app id.
var ErrNoApp = errors.New("no such app")

// AppLookup returns an app's access token, or ErrNoApp.
type AppLookup func(appID string) (token string, err error)

// Engine is what the API drives (the ivr engine).
type Engine interface {
	Handle(ctx context.Context, appID, block string, p ivr.Params) ivr.Response
}

// stages lists the blocks of each path stage; a block is reachable only under its own stage.
var stages = map[string]map[string]bool{
	"start":  {"dial": true},
	"middle": {"play": true, "gather": true, "record": true, "monitor": true, "hold": true, "unhold": true},
	"end":    {"hangup": true, "transfer": true},
}

// Handler serves the IVR API under /open/ivr/.
type Handler struct {
	Apps   AppLookup
	Engine Engine
	Log    *slog.Logger
	Limit  *Limiter // per-app request rate; nil: none
}

// Register mounts the API on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("/open/ivr/{stage}/{block}", h)
}

// ServeHTTP answers one API request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	stage, name := r.PathValue("stage"), r.PathValue("block")
	if !stages[stage][name] {
		http.NotFound(w, r)
		return
	}
	defer func() {
		if v := recover(); v != nil {
			h.log().Error("api: panic", "block", name, "panic", v)
			write(w, ivr.Response{Status: ivr.StatusInternal})
		}
	}()
	write(w, h.handle(r, name))
}

func (h *Handler) handle(r *http.Request, name string) ivr.Response {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return ivr.Response{Status: ivr.StatusInvalidHTTPMethod}
	}
	p, err := decode(r)
	if err != nil {
		return ivr.Response{Status: ivr.StatusMalformedParams}
	}
	if st := h.auth(p); st != "" {
		return ivr.Response{Status: st}
	}
	if !h.Limit.Allow(p["app_id"]) {
		return ivr.Response{Status: ivr.StatusRateLimitExceeded}
	}
	return h.Engine.Handle(r.Context(), p["app_id"], name, p)
}

// auth checks app_id and access_token: presence first, then the credentials.
func (h *Handler) auth(p ivr.Params) string {
	appID, token := p["app_id"], p["access_token"]
	switch {
	case appID == "":
		return ivr.Missing("app_id")
	case token == "":
		return ivr.Missing("access_token")
	}
	want, err := h.Apps(appID)
	if errors.Is(err, ErrNoApp) {
		return ivr.StatusInvalidAppID
	}
	if err != nil {
		h.log().Error("api: app lookup", "err", err)
		return ivr.StatusInternal
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(token)) != 1 {
		return ivr.StatusInvalidAccessToken
	}
	return ""
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

func write(w http.ResponseWriter, res ivr.Response) {
	body := map[string]string{}
	for k, v := range res.Fields {
		body[k] = v
	}
	body["status"] = res.Status
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(body)
}
