// Package httplimit is ivrd's HTTP server with limits, so that slow or numerous clients cannot
// starve it: a request's headers must arrive within 10 s and its body within 30 s of its
// start, a response must be written in time (streamed downloads may run longer while they make
// progress), idle keep-alive connections close after a minute, and the connections open at
// once are capped (past the cap, the oldest make room for new ones).
package httplimit

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/ivrd/ivrd/internal/tally"
)

// The time limits.
const (
	HeaderTimeout = 10 * time.Second // request line and headers
	BodyTimeout   = 30 * time.Second // the whole request, body included, from its first byte
	IdleTimeout   = 60 * time.Second // a keep-alive connection between requests
	// StreamIdle: a Streaming response is cut when one write to the client does not complete
	// within it (the client stopped reading).
	StreamIdle = 30 * time.Second
	// DefaultWriteTimeout bounds an ordinary response, from the end of its request's headers.
	DefaultWriteTimeout = 60 * time.Second
)

// Config configures a Server. Zero durations take the defaults above.
type Config struct {
	MaxConns     int           // connections open at once; 0: DefaultMaxConns()
	WriteTimeout time.Duration // see DefaultWriteTimeout
	Log          *slog.Logger  // required

	HeaderTimeout, BodyTimeout, IdleTimeout time.Duration // tests shorten them
}

// Server is an http.Server with limits.
type Server struct {
	hs   *http.Server
	max  int
	shed *tally.Tally
	ln   *listener
}

// New returns a server for h. Serve starts it.
func New(h http.Handler, cfg Config) *Server {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns()
	}
	for _, d := range []struct {
		p   *time.Duration
		def time.Duration
	}{{&cfg.WriteTimeout, DefaultWriteTimeout}, {&cfg.HeaderTimeout, HeaderTimeout}, {&cfg.BodyTimeout, BodyTimeout}, {&cfg.IdleTimeout, IdleTimeout}} {
		if *d.p <= 0 {
			*d.p = d.def
		}
	}
	s := &Server{max: cfg.MaxConns,
		shed: tally.New(cfg.Log, 10*time.Second, "http: connection limit reached, oldest connections closed", "listener")}
	s.hs = &http.Server{
		Handler:           bodyDeadline(h),
		ReadHeaderTimeout: cfg.HeaderTimeout,
		ReadTimeout:       cfg.BodyTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(cfg.Log.Handler(), slog.LevelWarn), // accept errors, handler panics
	}
	return s
}

// MaxConns is the connection cap in force.
func (s *Server) MaxConns() int { return s.max }

// Serve accepts connections on ln until Shutdown; see http.Server.Serve.
func (s *Server) Serve(ln net.Listener) error {
	s.ln = newListener(ln, s.max, func() { s.shed.Add(ln.Addr().String()) })
	s.hs.ConnState = s.ln.connState
	s.hs.ConnContext = connContext
	return s.hs.Serve(s.ln)
}

// Shutdown stops the server gracefully (see http.Server.Shutdown) and its log.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.hs.Shutdown(ctx)
	s.shed.Close()
	return err
}

// DefaultMaxConns is half the process's open-file limit: the other half stays for calls (SIP,
// RTP), recordings, the database and outbound connections.
func DefaultMaxConns() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur == 0 {
		return 512
	}
	return int(min(r.Cur/2, 1<<30))
}

// RaiseFDLimit raises the process's open-file limit to its hard limit and returns the limit
// in force. (Go does the same at start since 1.19; doing it here makes it explicit and gives
// the number.)
func RaiseFDLimit() (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			return 0, err
		}
	}
	return r.Cur, nil
}

// bodyDeadline lifts the read deadline once a request's body has been read (at once when it
// has none): BodyTimeout bounds how long the client takes to send the request, not how long
// the handler takes to answer, whose request context would otherwise be cancelled then. The
// connection's cap then passes over it for a while (answerGrace).
func bodyDeadline(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		arrived := func() {
			_ = rc.SetReadDeadline(time.Time{})
			requestArrived(r)
		}
		if r.Body == nil || r.Body == http.NoBody {
			arrived()
		} else {
			r.Body = &eofHook{ReadCloser: r.Body, at: arrived}
		}
		h.ServeHTTP(w, r)
	})
}

// eofHook calls at once when the body has been read to its end.
type eofHook struct {
	io.ReadCloser
	at   func()
	done bool
}

func (b *eofHook) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		b.at()
	}
	return n, err
}

// Streaming lets h's responses run past the write timeout for as long as they make progress:
// each write extends the write deadline by StreamIdle (recording downloads).
func Streaming(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&progressWriter{ResponseWriter: w, rc: http.NewResponseController(w)}, r)
	})
}

type progressWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (w *progressWriter) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(StreamIdle))
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *progressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
