package httplimit

import (
	"container/list"
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// listener caps the connections open at once. A connection accepted at the cap closes one
// already open: the longest idle keep-alive connection if there is one, else the busy one that
// has been quiet longest (nothing read or written: a slow client trickling its request, or a
// client that stopped reading its response). A flood of slow clients therefore cannot lock out
// new ones: a download that keeps streaming is never the quietest, and a request that has
// arrived whole is being answered, so for answerGrace it is passed over however quiet it is
// (a health check or an app's API call whose handler is waiting for the CPU on a loaded
// machine).
type listener struct {
	net.Listener
	max    int
	onShed func() // a connection was closed to make room
	mu     sync.Mutex
	idle   list.List // of *conn, oldest first
	busy   list.List // of *conn, quiet longest first
}

// touchEvery limits how often a connection's activity moves it in its list.
const touchEvery = 50 * time.Millisecond

// conn is an accepted connection, on one of the listener's lists until it is closed.
type conn struct {
	net.Conn
	l      *listener
	elem   *list.Element // nil once off the lists
	onList *list.List
	once   sync.Once
	last   atomic.Int64 // unix nanoseconds of the last move to the back of its list
	// accepted is when it was accepted (unix nanoseconds); served, whether a request has
	// started on it: until then, and for newGrace, it is not closed to make room.
	accepted int64
	served   atomic.Bool
	// arrived is when the request being served arrived whole (unix nanoseconds; 0: not yet).
	// Only busy connections are looked at; a request starting (StateActive) clears it.
	arrived atomic.Int64
}

func newListener(ln net.Listener, max int, onShed func()) *listener {
	return &listener{Listener: ln, max: max, onShed: onShed}
}

func (l *listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &conn{Conn: nc, l: l, accepted: time.Now().UnixNano()}
	var shed []*conn
	l.mu.Lock()
	for l.idle.Len()+l.busy.Len() >= l.max {
		v := l.oldest()
		if v == nil {
			break
		}
		l.remove(v)
		shed = append(shed, v)
	}
	l.push(c, &l.busy)
	l.mu.Unlock()
	for _, v := range shed {
		v.Conn.Close()
		l.onShed()
	}
	return c, nil
}

// newGrace is how long a connection accepted a moment ago, whose request has not been read
// yet, is passed over when one must make room. In a flood of reconnecting slow clients, fifty
// accepts come in well under the time a loaded machine may take to read a new connection's
// first request; without it a health check could be closed before it was read.
const newGrace = time.Second

// answerGrace is how long a connection whose request has arrived whole is passed over when
// one must make room: its handler runs, and its slot comes free as soon as it has answered.
// After it, a response the client does not read makes the connection as closable as any.
const answerGrace = time.Second

// oldest picks the connection to close for room (l.mu held): the longest idle one, else the
// busy one quiet longest, passing over connections within their newGrace or answerGrace.
// When all are, a new connection whose request has not been read goes before one that is
// being answered (whose work is nearly done).
func (l *listener) oldest() *conn {
	if e := l.idle.Front(); e != nil {
		return e.Value.(*conn)
	}
	now := time.Now().UnixNano()
	young, answering := now-int64(newGrace), now-int64(answerGrace)
	var unread, answered *conn
	for e := l.busy.Front(); e != nil; e = e.Next() {
		c := e.Value.(*conn)
		if !c.served.Load() && c.accepted >= young {
			if unread == nil {
				unread = c
			}
			continue
		}
		if a := c.arrived.Load(); a != 0 && a >= answering {
			if answered == nil {
				answered = c
			}
			continue
		}
		return c
	}
	if unread != nil {
		return unread
	}
	if answered != nil {
		return answered
	}
	return nil
}

func (l *listener) push(c *conn, to *list.List) {
	c.elem, c.onList = to.PushBack(c), to
	c.last.Store(time.Now().UnixNano())
}

// touch moves a busy connection that just read or wrote to the back of the busy list (at
// most every touchEvery).
func (c *conn) touch() {
	now := time.Now().UnixNano()
	if now-c.last.Load() < int64(touchEvery) {
		return
	}
	l := c.l
	l.mu.Lock()
	if c.onList == &l.busy {
		l.remove(c)
		l.push(c, &l.busy)
	}
	l.mu.Unlock()
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (l *listener) remove(c *conn) {
	if c.elem != nil {
		c.onList.Remove(c.elem)
		c.elem, c.onList = nil, nil
	}
}

// connState is http.Server.ConnState: it moves a connection to the back of the idle list when
// it goes idle and to the back of the busy list when a request starts on it.
func (l *listener) connState(nc net.Conn, st http.ConnState) {
	c, ok := nc.(*conn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.elem == nil { // closed, or shed
		return
	}
	switch st {
	case http.StateIdle:
		l.remove(c)
		l.push(c, &l.idle)
	case http.StateActive:
		c.arrived.Store(0)
		c.served.Store(true)
		l.remove(c)
		l.push(c, &l.busy)
	case http.StateHijacked, http.StateClosed:
		l.remove(c)
	}
}

// open returns how many connections are open.
func (l *listener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.idle.Len() + l.busy.Len()
}

func (c *conn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.remove(c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// connKey is the request context's key for the *conn a request came on.
type connKey struct{}

// connContext is http.Server.ConnContext: it lets a request's handler find its connection.
func connContext(ctx context.Context, nc net.Conn) context.Context {
	if c, ok := nc.(*conn); ok {
		return context.WithValue(ctx, connKey{}, c)
	}
	return ctx
}

// requestArrived marks r's connection as answering a request that has arrived whole.
func requestArrived(r *http.Request) {
	if c, ok := r.Context().Value(connKey{}).(*conn); ok {
		c.arrived.Store(time.Now().UnixNano())
	}
}
