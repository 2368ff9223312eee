package httplimit

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// At the cap, a connection accepted a moment ago whose request has not been read yet is passed
// over even when it is the quietest: the busy one quiet longest after it is closed instead.
func TestCapSparesNewConnections(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newListener(tcp, 2, func() {})
	defer l.Close()
	accept := func() (client, server net.Conn) {
		t.Helper()
		c, err := net.Dial("tcp", tcp.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		s, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return c, s
	}
	c1, s1 := accept()
	l.connState(s1, http.StateActive) // a request runs on it
	c2, _ := accept()                 // new: nothing read yet
	time.Sleep(touchEvery + 10*time.Millisecond)
	if _, err := s1.Write([]byte("x")); err != nil { // s1 is now the more recently active
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := c1.Read(buf); err != nil {
		t.Fatal(err)
	}
	accept() // at the cap: one must go
	if !closedWithin(c1, time.Second) {
		t.Fatal("the served connection was not closed to make room")
	}
	if closedWithin(c2, 100*time.Millisecond) {
		t.Fatal("the new connection, not yet read, was closed to make room")
	}
}
