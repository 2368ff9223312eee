package server

import (
	"sync"

	"github.com/ivrd/ivrd/internal/store"
)

// tokenCache remembers apps' access tokens, which never change once an app exists (the store
// has no update or delete for apps). Every API request and every notification needs its app's
// token; without the cache each one is a SQLite query, which the benchmark found took over 40 %
// of the API path's CPU. Only hits are cached, so an app created meanwhile by `ivrd app
// create` (another process) is found on its first use, and unknown ids cannot grow the map.
type tokenCache struct {
	st *store.Store
	mu sync.RWMutex
	m  map[string]string
}

func newTokenCache(st *store.Store) *tokenCache {
	return &tokenCache{st: st, m: map[string]string{}}
}

// token returns the access token of appID; store errors (ErrNotFound included) pass through.
func (c *tokenCache) token(appID string) (string, error) {
	c.mu.RLock()
	t, ok := c.m[appID]
	c.mu.RUnlock()
	if ok {
		return t, nil
	}
	a, err := c.st.App(appID)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.m[appID] = a.AccessToken
	c.mu.Unlock()
	return a.AccessToken, nil
}
