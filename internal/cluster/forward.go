package cluster

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Headers of a request one node forwards to another.
const (
	HeaderFrom      = "X-Ivrd-Node"      // the forwarding node's id
	HeaderTime      = "X-Ivrd-Time"      // when it forwarded, unix seconds
	HeaderSignature = "X-Ivrd-Signature" // HMAC-SHA256 of the above, the method, path, query and body
)

// MaxSkew is how far a forwarded request's time may be from the receiving node's clock.
const MaxSkew = time.Minute

// ErrBadSignature is what Forwarded returns for a request that claims to come from a node but
// is not signed with the cluster secret (or is too old).
var ErrBadSignature = errors.New("cluster: forwarded request not signed with the cluster secret")

// Local reports whether session id runs here (the engine knows it).
type Local func(id string) bool

// Forwarder sends an API request for a session another live node carries to that node.
type Forwarder struct {
	n      *Node
	local  Local
	client *http.Client
}

// NewForwarder returns the node's forwarder; timeout bounds a forwarded request (the owner may
// wait for its prompt up to the prepare budget). Without a cluster secret it forwards nothing.
func (n *Node) NewForwarder(local Local, timeout time.Duration) *Forwarder {
	return &Forwarder{n: n, local: local, client: &http.Client{Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// owner returns the base URL of the live node other than this one that carries session id, or
// "" when it is served here.
func (f *Forwarder) owner(id string) string {
	if f.n.cfg.Secret == "" || f.local(id) {
		return ""
	}
	row, err := f.n.cfg.Store.Session(id)
	if err != nil || row.Node == "" || row.Node == f.n.cfg.ID {
		return ""
	}
	p, ok := f.n.livePeer(row.Node)
	if !ok {
		return "" // dead: its sessions are being taken over, this node answers for them
	}
	return p.APIURL
}

// Forward answers r (whose body, already read, is body) from the node carrying session id when
// that is another node, and reports whether it did. A request it cannot deliver is answered
// 502.
func (f *Forwarder) Forward(w http.ResponseWriter, r *http.Request, body []byte, id string) bool {
	base := f.owner(id)
	if base == "" {
		return false
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, base+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, "cluster: "+err.Error(), http.StatusBadGateway)
		return true
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	f.sign(req, body, time.Now())
	res, err := f.client.Do(req)
	if err != nil {
		f.n.log.Warn("cluster: forward", "session", id, "to", base, "err", err)
		http.Error(w, "cluster: the node carrying the session did not answer", http.StatusBadGateway)
		return true
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(res.StatusCode)
	_, _ = io.Copy(w, res.Body)
	return true
}

// sign adds the headers that let the receiving node check a request came from a node.
func (f *Forwarder) sign(req *http.Request, body []byte, at time.Time) {
	ts := strconv.FormatInt(at.Unix(), 10)
	req.Header.Set(HeaderFrom, f.n.cfg.ID)
	req.Header.Set(HeaderTime, ts)
	req.Header.Set(HeaderSignature, signature(f.n.cfg.Secret, f.n.cfg.ID, ts, req.Method, req.URL.RequestURI(), body))
}

// Forwarded reports whether r was forwarded by another node: false for a request without the
// headers, ErrBadSignature for one whose signature is wrong or whose time is off by more than
// MaxSkew (or when this node has no secret).
func (f *Forwarder) Forwarded(r *http.Request, body []byte) (bool, error) {
	from, ts, sig := r.Header.Get(HeaderFrom), r.Header.Get(HeaderTime), r.Header.Get(HeaderSignature)
	if from == "" && ts == "" && sig == "" {
		return false, nil
	}
	if f.n.cfg.Secret == "" {
		return false, ErrBadSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false, ErrBadSignature
	}
	if d := time.Since(time.Unix(sec, 0)); d > MaxSkew || d < -MaxSkew {
		return false, ErrBadSignature
	}
	want := signature(f.n.cfg.Secret, from, ts, r.Method, r.URL.RequestURI(), body)
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return false, ErrBadSignature
	}
	return true, nil
}

func signature(secret, from, ts, method, uri string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	for _, s := range []string{from, ts, method, uri} {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}
