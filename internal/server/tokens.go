package server

import (
	"sync"
	"time"

	"github.com/ivrd/ivrd/internal/store"
)

// tokenTTL is how long a cached access token is trusted: `ivrd app rotate-token` (another
// process) takes effect on a running server within it.
const tokenTTL = 5 * time.Second

// tokenCache remembers apps' access tokens for tokenTTL. Every API request and every
// notification needs its app's token; without the cache each one is a SQLite query, which the
// benchmark found took over 40 % of the API path's CPU. Only hits are cached, so an app created
// meanwhile by `ivrd app create` is found on its first use, and unknown ids cannot grow the map.
type tokenCache struct {
	st  *store.Store
	now func() time.Time
	mu  sync.RWMutex
	m   map[string]cachedToken
}

type cachedToken struct {
	token string
	until time.Time
}

func newTokenCache(st *store.Store) *tokenCache {
	return &tokenCache{st: st, now: time.Now, m: map[string]cachedToken{}}
}

// token returns the access token of appID; store errors (ErrNotFound included) pass through.
func (c *tokenCache) token(appID string) (string, error) {
	now := c.now()
	c.mu.RLock()
	t, ok := c.m[appID]
	c.mu.RUnlock()
	if ok && now.Before(t.until) {
		return t.token, nil
	}
	a, err := c.st.App(appID)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.m[appID] = cachedToken{token: a.AccessToken, until: now.Add(tokenTTL)}
	c.mu.Unlock()
	return a.AccessToken, nil
}
