// Package server wires ivrd together: store, blob store, recorder, notifier, prompt pipeline,
// engine, telephony and HTTP. One call's data flows in a straight line through it:
// SIP leg → media → recorder → blob store → notifier.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/diago/media"

	"github.com/ivrd/ivrd/internal/api"
	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/blob"
	"github.com/ivrd/ivrd/internal/cluster"
	"github.com/ivrd/ivrd/internal/config"
	"github.com/ivrd/ivrd/internal/console"
	"github.com/ivrd/ivrd/internal/demo"
	"github.com/ivrd/ivrd/internal/diskwatch"
	"github.com/ivrd/ivrd/internal/health"
	"github.com/ivrd/ivrd/internal/httplimit"
	"github.com/ivrd/ivrd/internal/ivr"
	"github.com/ivrd/ivrd/internal/metrics"
	"github.com/ivrd/ivrd/internal/notify"
	"github.com/ivrd/ivrd/internal/outbound"
	"github.com/ivrd/ivrd/internal/prompt"
	"github.com/ivrd/ivrd/internal/recording"
	"github.com/ivrd/ivrd/internal/store"
	"github.com/ivrd/ivrd/internal/telephony"
)

// Server is a running ivrd.
type Server struct {
	cfg     config.Config
	log     *slog.Logger
	st      *store.Store
	q       *notify.Queue
	billing ivr.Billing
	engine  *ivr.Engine
	disk    *diskwatch.Watcher
	calls   atomic.Int64 // incoming calls routed to an app and not yet ended
	// demoNotify is where calls to the demo's numbers are announced: the demo app on this
	// process's own listener ("" when no number is routed to it).
	demoNotify string
	metrics    *metrics.Metrics
	trunk      *trunk
}

// Run starts ivrd and serves until ctx is done. First-start information (the default app's
// credentials) is printed to out. When ctx ends, the calls up are drained for up to
// cfg.DrainTimeout (new ones refused), unless hurry (may be nil) ends first.
func Run(ctx context.Context, cfg config.Config, out io.Writer, hurry context.Context) error {
	log := newLogger(cfg.LogLevel, cfg.LogFormat)
	media.SetDefaultLogger(log.With("caller", "media")) // diago's media logger is global: set once, before calls
	m := metrics.New()
	st, err := openStore(cfg.Data, cfg.Store)
	if err != nil {
		return err
	}
	defer st.Close()
	node, err := loadOrCreateNodeID(cfg.Data)
	if err != nil {
		return err
	}
	if err := firstStart(st, cfg, out); err != nil {
		return err
	}
	fdLimit, err := httplimit.RaiseFDLimit()
	if err != nil {
		log.Warn("raise the open-file limit", "err", err)
	}
	disk, err := diskwatch.New(diskwatch.Config{Dir: cfg.Data, Log: log})
	if err != nil {
		return err
	}
	defer disk.Close()
	// Listen first: the outbound policy keeps notifications and downloads off this listener.
	ln, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		return err
	}
	defer ln.Close()
	var proxy *url.URL
	if cfg.OutboundProxy != "" {
		proxy, _ = url.Parse(cfg.OutboundProxy) // checked by config
	}
	policy := outbound.New(outbound.Config{Allow: cfg.OutboundAllow, Deny: cfg.OutboundDeny, Proxy: proxy,
		Self: outbound.SelfFromAddr(ln.Addr()), SelfPaths: []string{demo.NotifyPath, blob.PathPrefix}, Log: log})
	secret, err := blob.LoadOrCreateSecret(filepath.Join(cfg.Data, "url-signing.key"))
	if err != nil {
		return err
	}
	recs, err := openRecordingStore(cfg, secret, log)
	if err != nil {
		return err
	}
	defer recs.close()
	rec, err := recording.NewRecorder(filepath.Join(cfg.Data, "recording"), recording.WithBitrate(cfg.MP3Kbps), recording.WithLogger(log))
	if err != nil {
		return err
	}
	prompter, err := prompt.New(prompt.Options{CacheDir: filepath.Join(cfg.Data, "cache"), Espeak: cfg.Espeak, Log: log,
		PrepareBudget: cfg.PrepareBudget, Outbound: policy})
	if err != nil {
		return err
	}
	tokens := newTokenCache(st).token
	q := notify.New(st, notify.Options{Log: log, Tokens: tokens, Outbound: policy, OnStoreError: disk.Check, Node: node, Metrics: m.Notifications})
	loc, _ := cfg.Location()
	rates, _ := cfg.RateTable()
	tel, err := telephony.NewServer(telephony.Config{
		Listen: cfg.SIP, ListenTLS: cfg.SIPTLS, TLSCert: cfg.TLSCert, TLSKey: cfg.TLSKey, TrunkCA: cfg.SIPTrunkCA, ExternalIP: cfg.ExternalIP,
		RTPPortLow: cfg.RTPPorts.Low, RTPPortHigh: cfg.RTPPorts.High, Allow: cfg.SIPAllow, InviteRate: cfg.SIPInviteRate,
		UserAgent: "ivrd", Log: log,
	})
	if err != nil {
		return err
	}
	catalog, err := recording.NewCatalog(recording.CatalogConfig{Index: index{st}, Blobs: recs.blobs, Signer: recs.urls, Retention: cfg.Retention, Log: log})
	if err != nil {
		return err
	}
	defer catalog.Close()
	archive, err := recording.NewArchive(recording.ArchiveConfig{Recorder: rec, Blobs: recs.blobs, Signer: recs.urls, Catalog: catalog,
		Pieces: recs.pieces, Log: log, Metrics: m.Recordings})
	if err != nil {
		return err
	}
	s := &Server{cfg: cfg, log: log, st: st, q: q, disk: disk, metrics: m,
		billing: ivr.Billing{Location: loc, Currency: cfg.Currency, Rate: cfg.Rate, Rates: rates}}
	jn := journal{st, log, node}
	deps := ivr.Deps{Prompter: prompter, Recorders: recorders{archive}, Notifier: notifier{q}, Journal: jn,
		Resolver: net.DefaultResolver, Outbound: policy, Log: log, HoldMusic: audio.HoldMusic(audio.HoldMusicPhrase),
		Calls: m.Calls, Blocks: m.Blocks}
	trk := newTrunk(tel, cfg, log)
	s.trunk = trk
	deps.Telephony = trk
	deps.Dialogs = tel // calls a crash left up are ended with a BYE once the SIP sockets serve
	deps.Trunk = !cfg.SIPTrunk.IsZero()
	s.engine = ivr.New(ivr.Config{IdleTimeout: cfg.IdleTimeout, PrepareBudget: cfg.PrepareBudget, MaxCallsPerApp: cfg.MaxCallsPerApp, Billing: s.billing}, deps)
	if err := s.engine.Recover(recorders{archive}); err != nil {
		return fmt.Errorf("recovery: %w", err)
	}

	var fwd api.Cluster // stays a nil interface without a cluster
	if st.Shared() {
		nodeURL := cfg.NodeURL
		if nodeURL == "" {
			nodeURL = ownURL(ln.Addr())
		}
		cl, err := cluster.New(cluster.Config{Store: st, ID: node, APIURL: nodeURL, SIPAddr: tel.Addr(), Secret: cfg.ClusterSecret,
			TakeOver: jn.takeOver(s.engine, recorders{archive}), Rooms: st, Log: log})
		if err != nil {
			return err
		}
		defer cl.Close()
		trk.cluster = cl
		if cfg.ClusterSecret != "" {
			fwd = cl.NewForwarder(func(id string) bool { _, ok := s.engine.Session(id); return ok },
				httplimit.DefaultWriteTimeout+cfg.PrepareBudget)
		}
	}

	mux := http.NewServeMux()
	limit := api.NewLimiter(api.RateLimit{Rate: cfg.APIRate, Burst: cfg.APIBurst, Log: log})
	defer limit.Close()
	(&api.Handler{Engine: s.engine, Monitors: s.engine, Log: log, Limit: limit, Recordings: catalog, Zone: loc, Metrics: m.API, Cluster: fwd, Apps: func(id string) (string, error) {
		t, err := tokens(id)
		if errors.Is(err, store.ErrNotFound) {
			return "", api.ErrNoApp
		}
		return t, err
	}}).Register(mux)
	mux.Handle(blob.PathPrefix, httplimit.Streaming(blob.Handler(recs.blobs, recs.own, log)))
	mux.Handle("GET /open/ivr/languages", prompt.LanguagesHandler())
	if err := s.mountConsole(mux, console.Config{Store: st, Live: s.engine, Recordings: catalog, Outbox: q, Token: tokens,
		Secret: secret, Password: cfg.ConsolePassword, Secure: strings.HasPrefix(cfg.PublicURL, "https://"), Zone: loc, Log: log},
		tel, ownURL(ln.Addr()), tokens); err != nil {
		return err
	}
	m.Read(metrics.Sources{RTPFrames: telephony.RTPFrames, EncoderQueue: audio.EncoderQueue, NotificationsPending: q.Pending})
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("/healthz", health.Live)
	mux.Handle("/readyz", health.Ready(
		health.Check{Name: "data directory", Probe: disk.Problem},
		health.Check{Name: "store", Probe: func() string { return health.Err(st.CheckWritable()) }},
		health.Check{Name: "sip", Probe: func() string { return notListening(tel.Listening()) }},
	))
	// A request waits up to the prepare budget for its msg: the write timeout allows for it.
	hs := httplimit.New(mux, httplimit.Config{MaxConns: cfg.HTTPMaxConns, WriteTimeout: httplimit.DefaultWriteTimeout + cfg.PrepareBudget, Log: log})
	log.Info("http limits", "max_conns", hs.MaxConns(), "open_file_limit", fdLimit)
	if cfg.PProf != "" {
		stopPprof, err := startPprof(cfg.PProf, log)
		if err != nil {
			ln.Close()
			return fmt.Errorf("pprof: %w", err)
		}
		defer stopPprof()
	}

	qctx, stopQueue := context.WithCancel(context.Background())
	defer stopQueue()
	qdone := make(chan error, 1)
	go func() { qdone <- q.Run(qctx) }()
	// Calls and the registration end in the shutdown order below, not at once with ctx.
	telCtx, stopTel := context.WithCancel(context.WithoutCancel(ctx))
	defer stopTel()
	teldone := make(chan error, 1)
	go func() { teldone <- tel.Serve(telCtx, s.onCall) }()
	stopRegister := trk.keepRegistered(telCtx)
	httpdone := make(chan error, 1)
	go func() { httpdone <- hs.Serve(ln) }()
	log.Info("ivrd ready", "http", ln.Addr().String(), "sip", tel.Addr(), "sip_tls", tel.AddrTLS(), "data", cfg.Data, "public_url", cfg.PublicURL,
		"store", storeName(cfg), "node", node)
	sipTLS := ""
	if a := tel.AddrTLS(); a != "" {
		sipTLS = "  sip:" + a + " (tls)"
	}
	fmt.Fprintf(out, "ivrd listening: http://%s  sip:%s (udp, tcp)%s\n", ln.Addr(), tel.Addr(), sipTLS)

	// Shut down in the order data flows: stop taking calls (after the drain, hanging up the
	// live ones), let the engine finish their recordings and queue their notifications, give
	// the queue a moment to deliver them, then stop it (what it has not delivered stays queued
	// for the next start).
	var runErr error
	select {
	case <-ctx.Done():
		if hurry == nil {
			hurry = context.Background()
		}
		tel.Drain(hurry, cfg.DrainTimeout) // the calls left are hung up by stopTel below
	case runErr = <-teldone:
		teldone <- nil
	case runErr = <-httpdone:
	case runErr = <-qdone:
		qdone <- nil
	}
	log.Info("ivrd stopping")
	stopRegister() // unregisters while the SIP socket is still up
	stopTel()
	<-teldone
	waitTimeout(s.engine.Wait, 15*time.Second)
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	if n := q.Flush(fctx); n > 0 { // the last calls' notifications go out now if the apps answer
		log.Warn("notifications left for the next start", "count", n)
	}
	fcancel()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	_ = hs.Shutdown(sctx)
	stopQueue()
	<-qdone
	if errors.Is(runErr, http.ErrServerClosed) || errors.Is(runErr, context.Canceled) {
		runErr = nil
	}
	return runErr
}

// waitTimeout runs wait, giving up after d.
func waitTimeout(wait func(), d time.Duration) {
	done := make(chan struct{})
	go func() { wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// notListening is the SIP check's answer.
func notListening(listening bool) string {
	if listening {
		return ""
	}
	return "not listening"
}

// onCall routes an incoming INVITE: to the app that owns the dialled number (the
// Request-URI user, else the To user, where registration-based providers put it), or 404.
func (s *Server) onCall(leg *telephony.Leg) {
	if cluster.IsRoomCall(leg.To()) { // another node's caller joining a room of this one
		s.trunk.acceptRoomCall(leg)
		return
	}
	n, err := s.st.LookupNumber(leg.To())
	if errors.Is(err, store.ErrNotFound) && leg.ToHeader() != "" && leg.ToHeader() != leg.To() {
		n, err = s.st.LookupNumber(leg.ToHeader())
	}
	log := leg.Logger() // its lines carry the Call-ID, and the session once the engine names it
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			log.Error("number lookup", "to", leg.To(), "err", err)
		}
		log.Info("call to unknown number", "to", leg.To(), "to_header", leg.ToHeader(), "from", leg.From())
		s.refuse(leg, 404)
		return
	}
	// A call could not be recorded or journaled: refuse it while the disk is full.
	if p := s.disk.Problem(); p != "" {
		log.Warn("call refused: data directory cannot be written", "problem", p, "from", leg.From(), "to", n.Number)
		s.refuse(leg, 503)
		return
	}
	// A machine has only so many cores: past --max-calls a new caller is refused at once
	// rather than degrade the calls (and recordings) already up.
	if lim := int64(s.cfg.MaxCalls); s.calls.Add(1) > lim && lim > 0 {
		s.calls.Add(-1)
		log.Warn("server call limit reached", "max_calls", lim, "from", leg.From(), "to", n.Number)
		s.refuse(leg, 503)
		return
	}
	leg.AfterEnd(func() { s.calls.Add(-1) })
	if demo.IsRoute(n.NotifyURL) { // the demo app, on this process's listener
		if n.NotifyURL = s.demoNotify; n.NotifyURL == "" {
			log.Warn("call to a number routed to the demo, which this ivrd did not start (restart it)", "to", n.Number)
			s.refuse(leg, 480)
			return
		}
	}
	_, err = s.engine.Incoming(leg, n.AppID, n.NotifyURL, leg.From(), n.Number)
	if errors.Is(err, ivr.ErrCallLimit) {
		log.Warn("call limit reached", "app", n.AppID, "from", leg.From())
		s.refuse(leg, 486)
		return
	}
	if err != nil {
		code := 500
		if p := s.disk.Probe(); p != "" { // the write failed because the disk just filled
			code = 503
		}
		log.Error("incoming call", "err", err, "sip_status", code)
		s.refuse(leg, code)
		return
	}
	log.Info("incoming call", "from", leg.From(), "to", n.Number, "app", n.AppID, "transport", leg.Transport(), "source", leg.Source(), "nat", leg.BehindNAT())
}

// refuse refuses a call that has no session, and counts it.
func (s *Server) refuse(leg *telephony.Leg, code int) {
	_ = leg.Reject(code)
	s.metrics.Calls.Count(metrics.Inbound, metrics.Refused)
}

// firstStart creates an app on a fresh database, prints its credentials, and routes the demo
// number to the built-in demo app.
func firstStart(st *store.Store, cfg config.Config, out io.Writer) error {
	n, err := st.CountApps()
	if err != nil || n > 0 {
		return err
	}
	app, err := st.CreateApp("default")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "created app on first start:\n  app_id:       %s\n  access_token: %s\n", app.ID, app.AccessToken)
	if cfg.DemoNumber == "" {
		return nil
	}
	if err := st.AddNumber(store.Number{Number: cfg.DemoNumber, AppID: app.ID, NotifyURL: demo.NotifyPath}); err != nil {
		return err
	}
	fmt.Fprintf(out, "demo: call sip:%s@%s to record a call (ivrd call sip:%s@%s --record heard.wav); its recordings are in the console at %s%s (sign in with the app above)\n",
		cfg.DemoNumber, cfg.SIP, cfg.DemoNumber, cfg.SIP, cfg.PublicURL, console.Prefix+"demo")
	return nil
}

// newLogger makes the process's logger (level and format are validated by config).
func newLogger(level, format string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
