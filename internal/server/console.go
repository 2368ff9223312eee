package server

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/ivrd/ivrd/internal/config"
	"github.com/ivrd/ivrd/internal/console"
	"github.com/ivrd/ivrd/internal/demo"
	"github.com/ivrd/ivrd/internal/store"
)

// ownURL is the base URL of ivrd's own HTTP listener as ivrd itself reaches it: an
// unspecified address (0.0.0.0, ::) becomes loopback.
func ownURL(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "http://" + addr.String()
	}
	ip := tcp.IP
	switch {
	case ip == nil || ip.IsUnspecified() && ip.To4() != nil:
		ip = net.IPv4(127, 0, 0, 1)
	case ip.IsUnspecified():
		ip = net.IPv6loopback
	}
	return "http://" + (&net.TCPAddr{IP: ip, Port: tcp.Port}).String()
}

// demoRoute returns the number routed to the built-in demo (its notify URL is
// demo.NotifyPath), the configured demo number first. A route an older ivrd stored for the
// configured demo number (an absolute URL of its /demo/notify) is moved to the demo's own
// route first, so the demo follows the listener from now on.
func demoRoute(st *store.Store, cfg config.Config, log *slog.Logger) (store.Number, bool, error) {
	if cfg.DemoNumber != "" {
		n, err := st.LookupNumber(cfg.DemoNumber)
		switch {
		case err == nil && demo.IsOldRoute(n.NotifyURL):
			log.Info("demo: route moved to the current listener", "number", n.Number, "was", n.NotifyURL)
			n.NotifyURL = demo.NotifyPath
			if err := st.AddNumber(n); err != nil {
				return n, false, err
			}
			return n, true, nil
		case err == nil && demo.IsRoute(n.NotifyURL):
			return n, true, nil
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return n, false, err
		}
	}
	ns, err := st.Numbers()
	if err != nil {
		return store.Number{}, false, err
	}
	for _, n := range ns {
		if demo.IsRoute(n.NotifyURL) {
			return n, true, nil
		}
	}
	return store.Number{}, false, nil
}

// mountConsole mounts the console and, when a number is routed to it, the demo app (on
// ivrd's own listener, at self).
func (s *Server) mountConsole(mux *http.ServeMux, cc console.Config, tel sipAddr, self string, tokens func(string) (string, error)) error {
	n, ok, err := demoRoute(s.st, s.cfg, s.log)
	if err != nil {
		return err
	}
	if ok {
		token := func() string { t, _ := tokens(n.AppID); return t }
		(&demo.App{API: self, AppID: n.AppID, Token: token, Self: self + "/demo", Listen: s.cfg.DemoListen, Log: s.log}).Register(mux)
		s.demoNotify = self + demo.NotifyPath
		cc.Demo = &console.Demo{AppID: n.AppID, Number: strings.TrimPrefix(n.Number, "+"), SIP: tel.Addr()}
	}
	c, err := console.New(cc)
	if err != nil {
		return err
	}
	c.Register(mux)
	return nil
}

// sipAddr is the SIP server's address, for the demo page.
type sipAddr interface{ Addr() string }
