package server

import (
	"log/slog"
	"net"
	"path/filepath"
	"testing"

	"github.com/ivrd/ivrd/internal/config"
	"github.com/ivrd/ivrd/internal/demo"
	"github.com/ivrd/ivrd/internal/store"
)

// TestDemoRoute: the demo is found by its route, not by an address; the route an older ivrd
// stored (its /demo/notify at the address of the start that made it) is moved to it.
func TestDemoRoute(t *testing.T) {
	for _, tc := range []struct {
		name     string
		numbers  []store.Number
		demoNum  string
		want     string // the demo's number, "" for none
		wantURLs map[string]string
	}{
		{"first start's route", []store.Number{{Number: "100", NotifyURL: demo.NotifyPath}}, "100", "+100", map[string]string{"+100": demo.NotifyPath}},
		{"an older ivrd's route, on a port it no longer has", []store.Number{{Number: "100", NotifyURL: "http://127.0.0.1:8080/demo/notify"}}, "100", "+100",
			map[string]string{"+100": demo.NotifyPath}},
		{"the number given to an app", []store.Number{{Number: "100", NotifyURL: "https://shop.example/answer"}}, "100", "", map[string]string{"+100": "https://shop.example/answer"}},
		{"another app's /demo/notify on another number is left alone", []store.Number{{Number: "200", NotifyURL: "http://shop.example/demo/notify"}}, "100", "",
			map[string]string{"+200": "http://shop.example/demo/notify"}},
		{"the demo on another number than --demo-number", []store.Number{{Number: "300", NotifyURL: demo.NotifyPath}}, "100", "+300", nil},
		{"no demo number configured", []store.Number{{Number: "100", NotifyURL: demo.NotifyPath}}, "", "+100", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := store.Open(filepath.Join(t.TempDir(), "ivrd.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			app, err := st.CreateApp("default")
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range tc.numbers {
				n.AppID = app.ID
				if err := st.AddNumber(n); err != nil {
					t.Fatal(err)
				}
			}
			n, ok, err := demoRoute(st, config.Config{DemoNumber: tc.demoNum}, slog.New(slog.DiscardHandler))
			if err != nil || ok != (tc.want != "") || (ok && (n.Number != tc.want || n.AppID != app.ID)) {
				t.Fatalf("demoRoute = %+v, %v, %v; want %s", n, ok, err, tc.want)
			}
			for num, want := range tc.wantURLs {
				if got, _ := st.LookupNumber(num); got.NotifyURL != want {
					t.Errorf("%s routed to %q, want %q", num, got.NotifyURL, want)
				}
			}
		})
	}
}

func TestOwnURL(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}, "http://127.0.0.1:8080"},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 8080}, "http://127.0.0.1:8080"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 8080}, "http://[::1]:8080"},
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 80}, "http://192.0.2.1:80"},
	} {
		if got := ownURL(tc.addr); got != tc.want {
			t.Errorf("ownURL(%v) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}
