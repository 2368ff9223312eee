// Package api is ivrd's HTTP face: the Hoiio IVR endpoints /open/ivr/{start,middle,end}/<block>,
// and ivrd's extensions (extensions.go). It decodes requests, checks credentials, and hands
// each request to the ivr engine (or the recordings catalog); every answer is HTTP 200 with a
// JSON body carrying the exact status string of the spec.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/ivrd/ivrd/internal/ivr"
	"github.com/ivrd/ivrd/internal/metrics"
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
	Apps       AppLookup
	Engine     Engine
	Monitors   Monitors       // monitor/pause and monitor/resume (nil: not served)
	Recordings Recordings     // the recordings endpoints (nil: not served)
	Zone       *time.Location // of the dates the recordings endpoints take and give (nil: ivr.DefaultZone)
	Log        *slog.Logger
	Limit      *Limiter     // per-app request rate, every endpoint's; nil: none
	Metrics    *metrics.API // requests counted and timed by endpoint; nil: not counted
	Cluster    Cluster      // forwards requests for sessions other nodes carry; nil: every session is here
}

// Cluster is the node ivrd runs as when several share a store (cluster.Forwarder).
type Cluster interface {
	// Forwarded reports whether r (its body read into body) was forwarded by another node,
	// and fails for a request that claims so without the cluster's signature.
	Forwarded(r *http.Request, body []byte) (bool, error)
	// Forward answers r from the node carrying session id when that is another node, and
	// reports whether it did.
	Forward(w http.ResponseWriter, r *http.Request, body []byte, id string) bool
}

// statusForwarded is how a request answered by another node is counted.
const statusForwarded = "forwarded"

// Register mounts the API on mux, and its OpenAPI document at OpenAPIPath.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("/open/ivr/{stage}/{block}", h)
	mux.HandleFunc("GET "+OpenAPIPath, serveOpenAPI)
}

// endpoint answers a request to one path once it is decoded and its credentials checked.
type endpoint func(ctx context.Context, appID string, p ivr.Params) answer

// answer is an API answer: a status with string fields, and for a list its entries.
type answer struct {
	ivr.Response
	entries []map[string]string // nil: none (a list with none has an empty slice)
}

func status(st string) answer { return answer{Response: ivr.Response{Status: st}} }

// ServeHTTP answers one API request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	stage, name := r.PathValue("stage"), r.PathValue("block")
	run := h.endpoint(stage, name)
	if run == nil {
		http.NotFound(w, r)
		return
	}
	start, res := time.Now(), status(ivr.StatusInternal)
	defer func() {
		if v := recover(); v != nil {
			h.log().Error("api: panic", "block", name, "panic", v)
			write(w, status(ivr.StatusInternal))
		}
		h.Metrics.Observe(stage+"/"+name, res.Status, time.Since(start))
	}()
	res = h.handle(w, r, run)
	if res.Status != statusForwarded {
		write(w, res)
	}
}

// endpoint is what answers /open/ivr/<stage>/<name>: a block, an extension, or nil.
func (h *Handler) endpoint(stage, name string) endpoint {
	if stages[stage][name] {
		return func(ctx context.Context, appID string, p ivr.Params) answer {
			return answer{Response: h.Engine.Handle(ctx, appID, name, p)}
		}
	}
	return h.extension(stage, name)
}

// handle answers a request, or has another node answer it (written to w, status
// statusForwarded).
func (h *Handler) handle(w http.ResponseWriter, r *http.Request, run endpoint) answer {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return status(ivr.StatusInvalidHTTPMethod)
	}
	var body []byte
	forwarded := false
	if h.Cluster != nil { // the body is kept to forward it
		var err error
		if body, err = readBody(r); err != nil {
			return status(ivr.StatusMalformedParams)
		}
		if forwarded, err = h.Cluster.Forwarded(r, body); err != nil {
			h.log().Warn("api: refused a request forwarded without the cluster's signature", "from", r.RemoteAddr, "err", err)
			http.Error(w, err.Error(), http.StatusForbidden)
			return status(statusForwarded)
		}
	}
	p, err := decode(r)
	if err != nil {
		return status(ivr.StatusMalformedParams)
	}
	if st := h.auth(p); st != "" {
		return status(st)
	}
	if forwarded { // counted against the rate where it arrived; never forwarded again
		return run(r.Context(), p["app_id"], p)
	}
	if !h.Limit.Allow(p["app_id"]) {
		return status(ivr.StatusRateLimitExceeded)
	}
	if sid := p["session"]; sid != "" && h.Cluster != nil && h.Cluster.Forward(w, r, body, sid) {
		return status(statusForwarded)
	}
	return run(r.Context(), p["app_id"], p)
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

func write(w http.ResponseWriter, res answer) {
	body := map[string]any{}
	for k, v := range res.Fields {
		body[k] = v
	}
	if res.entries != nil {
		body["entries"] = res.entries
	}
	body["status"] = res.Status
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(body)
}
