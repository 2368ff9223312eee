package ivr

import (
	"fmt"
	"testing"
	"time"
)

// A session another node took over is dropped here, whether the journal refuses its next save
// (ErrNotOwner) or the engine is told (Drop): it is forgotten, its call hung up, its Monitor
// recording discarded, and nothing more is journaled or notified (the new owner settles it).
func TestDropTakenOver(t *testing.T) {
	for _, tc := range []struct {
		name string
		drop func(r *rig, sid string)
	}{
		{"journal refuses", func(r *rig, sid string) {
			r.j.mu.Lock()
			r.j.fail = fmt.Errorf("store: %w", ErrNotOwner)
			r.j.mu.Unlock()
			r.do("play", Params{"session": sid, "msg": "hello", "notify_url": "http://app.test/p"})
		}},
		{"told", func(r *rig, sid string) {
			if !r.e.Drop(sid) {
				t.Error("Drop: the engine did not have the session")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Config{})
			c, sid := r.incoming()
			if st := r.do("monitor", Params{"session": sid, "notify_url": "http://app.test/m"}); st != StatusOK {
				t.Fatal(st)
			}
			if n := r.next(); n.params.Get("call_state") != "ongoing" {
				t.Fatalf("monitor notification: %v", n.params)
			}
			r.j.mu.Lock()
			saved := len(r.j.steps[sid])
			r.j.mu.Unlock()
			tc.drop(r, sid)
			waitFor(t, func() bool { _, ok := r.e.Session(sid); return !ok })
			<-c.Done()
			if how := c.how(); how != "bye" {
				t.Errorf("call ended by %q, want bye", how)
			}
			rec := r.recs.recs[0]
			rec.mu.Lock()
			discarded, finished := rec.discarded, !rec.finished.IsZero()
			rec.mu.Unlock()
			if !discarded || finished {
				t.Errorf("monitor recording discarded %v, finished %v", discarded, finished)
			}
			r.quiet(500 * time.Millisecond)
			r.j.mu.Lock()
			after := len(r.j.steps[sid])
			r.j.mu.Unlock()
			if after != saved {
				t.Errorf("%d timeline entries journaled after the drop", after-saved)
			}
			if r.e.Drop(sid) {
				t.Error("a second Drop found the session")
			}
		})
	}
}
