// Package cluster lets several ivrd processes (nodes) share one PostgreSQL store: each node
// registers itself and heartbeats (node.go), takes over the sessions of a node that stopped
// heartbeating (node.go), and forwards an API request for a session another node carries to
// that node, authenticated with the cluster secret (forward.go).
package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ivrd/ivrd/internal/store"
)

// Defaults of Config.
const (
	DefaultBeat    = 2 * time.Second  // a node heartbeats this often
	DefaultSilence = 10 * time.Second // a node silent this long is dead: its sessions are taken over
)

// Store is what a node keeps in the shared database (*store.Store).
type Store interface {
	RegisterNode(n store.Node) error
	Heartbeat(id string) error
	LiveNodes(d time.Duration) ([]store.Node, error)
	DeadNodes(d time.Duration) ([]store.Node, error)
	TakeOverSessions(dead, by string, silence time.Duration) ([]store.SessionRow, error)
	RemoveDeadNode(id string, silence time.Duration) (bool, error)
	Session(id string) (store.SessionRow, error)
}

// Config configures a Node.
type Config struct {
	Store   Store
	ID      string // this node's id
	APIURL  string // base URL other nodes reach this node's API at
	SIPAddr string // this node's SIP address
	Secret  string // the cluster secret ("": requests are not forwarded)
	Beat    time.Duration
	Silence time.Duration
	// TakeOver settles the unfinished sessions taken over from a dead node (they are this
	// node's from then on). It runs on the node's own goroutine, one dead node at a time.
	TakeOver func(dead string, sessions []store.SessionRow)
	Rooms    RoomStore // where rooms live (nil: rooms stay on their node, rooms.go)
	Log      *slog.Logger
}

// Node is this process as one node of a cluster: registered, heartbeating, watching the others.
type Node struct {
	cfg    Config
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	peers map[string]store.Node // the live nodes at the last beat, by id
	// beating is since when this node's heartbeats have all succeeded (zero after one failed):
	// after the database was unreachable, every node's last heartbeat is old, so a node judges
	// the others only once they have had the time to heartbeat again (judging).
	beating time.Time
}

// SecretID is a fingerprint of a cluster secret that does not reveal it ("" for none).
func SecretID(secret string) string {
	if secret == "" {
		return ""
	}
	h := sha256.Sum256([]byte("ivrd cluster secret\x00" + secret))
	return hex.EncodeToString(h[:8])
}

// New registers the node and starts heartbeating and watching the other nodes. It refuses
// to start beside live nodes that run with another cluster secret (they could not forward
// requests to each other).
func New(cfg Config) (*Node, error) {
	if cfg.Store == nil || cfg.ID == "" || cfg.TakeOver == nil || cfg.Log == nil {
		return nil, errors.New("cluster: node needs a store, an id, TakeOver and a logger")
	}
	if cfg.Beat <= 0 {
		cfg.Beat = DefaultBeat
	}
	if cfg.Silence <= 0 {
		cfg.Silence = DefaultSilence
	}
	n := &Node{cfg: cfg, log: cfg.Log.With("node", cfg.ID), done: make(chan struct{}), peers: map[string]store.Node{}}
	live, err := cfg.Store.LiveNodes(cfg.Silence)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	mine := SecretID(cfg.Secret)
	for _, p := range live {
		if p.ID != cfg.ID && p.SecretID != mine {
			return nil, fmt.Errorf("cluster: node %s (%s) runs with another --cluster-secret", p.ID, p.APIURL)
		}
	}
	if err := n.register(); err != nil {
		return nil, err
	}
	n.setPeers(live)
	n.beating = time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go n.run(ctx)
	return n, nil
}

// ID is this node's id.
func (n *Node) ID() string { return n.cfg.ID }

// Close stops heartbeating. The registration stays: a node restarted within the silence
// finds its sessions again; otherwise another node takes them over and removes it.
func (n *Node) Close() {
	n.cancel()
	<-n.done
}

func (n *Node) register() error {
	err := n.cfg.Store.RegisterNode(store.Node{ID: n.cfg.ID, APIURL: n.cfg.APIURL, SIPAddr: n.cfg.SIPAddr, SecretID: SecretID(n.cfg.Secret)})
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}

// run heartbeats and watches the other nodes, each every beat, on two goroutines: settling a
// dead node's sessions (which may take a while) never delays this node's heartbeat.
func (n *Node) run(ctx context.Context) {
	defer close(n.done)
	var wg sync.WaitGroup
	for _, f := range []func(){n.beat, n.watch} {
		wg.Go(func() {
			t := time.NewTicker(n.cfg.Beat)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				f()
			}
		})
	}
	wg.Wait()
}

// beat heartbeats, registering again if another node removed this one meanwhile (it took
// its sessions over: those it still carries are dropped when they next save).
func (n *Node) beat() {
	err := n.cfg.Store.Heartbeat(n.cfg.ID)
	if errors.Is(err, store.ErrNotFound) {
		n.log.Warn("cluster: this node was declared dead by another; registering again")
		err = n.register()
	}
	n.mu.Lock()
	switch {
	case err != nil:
		n.beating = time.Time{}
	case n.beating.IsZero():
		n.beating = time.Now()
	}
	n.mu.Unlock()
	if err != nil {
		n.log.Error("cluster: heartbeat", "err", err)
	}
}

// judging reports whether this node may declare others dead: its own heartbeats have succeeded
// for longer than the silence (and a beat), so a live node has had the time to heartbeat too.
func (n *Node) judging() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return !n.beating.IsZero() && time.Since(n.beating) > n.cfg.Silence+n.cfg.Beat
}

// watch takes over the sessions of every node silent for longer than the silence, then
// removes it, and notes the live nodes.
func (n *Node) watch() {
	if !n.judging() {
		return
	}
	dead, err := n.cfg.Store.DeadNodes(n.cfg.Silence)
	if err != nil {
		n.log.Error("cluster: dead nodes", "err", err)
		return
	}
	for _, d := range dead {
		if d.ID == n.cfg.ID {
			continue
		}
		rows, err := n.cfg.Store.TakeOverSessions(d.ID, n.cfg.ID, n.cfg.Silence)
		if err != nil {
			n.log.Error("cluster: take over sessions", "dead", d.ID, "err", err)
			continue
		}
		if len(rows) > 0 {
			n.log.Warn("cluster: node dead, taking over its sessions", "dead", d.ID, "silent_since", d.HeartbeatAt, "sessions", len(rows))
			n.cfg.TakeOver(d.ID, rows)
		}
		if n.cfg.Rooms != nil {
			if k, err := n.cfg.Rooms.DeleteRoomsOf(d.ID); err != nil {
				n.log.Error("cluster: forget the rooms of a dead node", "dead", d.ID, "err", err)
			} else if k > 0 {
				n.log.Info("cluster: rooms of a dead node forgotten", "dead", d.ID, "rooms", k)
			}
		}
		if gone, err := n.cfg.Store.RemoveDeadNode(d.ID, n.cfg.Silence); err != nil {
			n.log.Error("cluster: remove dead node", "dead", d.ID, "err", err)
		} else if gone {
			n.log.Info("cluster: dead node removed", "dead", d.ID)
		}
	}
	live, err := n.cfg.Store.LiveNodes(n.cfg.Silence)
	if err != nil {
		n.log.Error("cluster: live nodes", "err", err)
		return
	}
	n.setPeers(live)
}

func (n *Node) setPeers(live []store.Node) {
	m := make(map[string]store.Node, len(live))
	for _, p := range live {
		m[p.ID] = p
	}
	n.mu.Lock()
	n.peers = m
	n.mu.Unlock()
}

// peer returns a live node other than this one, as of the last beat.
func (n *Node) peer(id string) (store.Node, bool) {
	if id == "" || id == n.cfg.ID {
		return store.Node{}, false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	p, ok := n.peers[id]
	return p, ok
}
