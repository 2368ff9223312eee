package prompt

import (
	"container/list"
	"context"
	"fmt"
	"sync"
)

// memCache is an LRU of PCM buffers bounded by their total size in bytes. Buffers handed
// out are shared: callers must not modify them (Prepare hands them on read-only).
type memCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	ll    *list.List // front = most recently used
	items map[string]*list.Element
}

type memEntry struct {
	key string
	pcm []int16
}

func newMemCache(maxBytes int64) *memCache {
	return &memCache{max: maxBytes, ll: list.New(), items: map[string]*list.Element{}}
}

func (c *memCache) get(key string) ([]int16, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.ll.MoveToFront(e)
	return e.Value.(*memEntry).pcm, true
}

// put stores pcm under key; a buffer larger than the whole budget is not kept.
func (c *memCache) put(key string, pcm []int16) {
	n := int64(2 * len(pcm))
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.size -= int64(2 * len(e.Value.(*memEntry).pcm))
		c.ll.Remove(e)
		delete(c.items, key)
	}
	if n > c.max {
		return
	}
	c.items[key] = c.ll.PushFront(&memEntry{key: key, pcm: pcm})
	c.size += n
	for c.size > c.max {
		e := c.ll.Back()
		me := e.Value.(*memEntry)
		c.ll.Remove(e)
		delete(c.items, me.key)
		c.size -= int64(2 * len(me.pcm))
	}
}

func (c *memCache) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// flight runs one piece of work per key at a time; callers that arrive while it runs share
// its result. The work runs detached from any caller's context (it has its own deadline), so a
// caller giving up does not waste the work for the next one.
type flight struct {
	mu    sync.Mutex
	calls map[string]*flightCall
}

type flightCall struct {
	done chan struct{}
	pcm  []int16
	err  error
}

// do starts fn for key unless it is already running, then waits for it or for ctx.
func (f *flight) do(ctx context.Context, key string, fn func() ([]int16, error)) ([]int16, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]*flightCall{}
	}
	c, ok := f.calls[key]
	if !ok {
		c = &flightCall{done: make(chan struct{})}
		f.calls[key] = c
		go func() {
			defer func() {
				f.mu.Lock()
				delete(f.calls, key)
				f.mu.Unlock()
				close(c.done)
			}()
			defer func() {
				if r := recover(); r != nil {
					c.pcm, c.err = nil, fmt.Errorf("panic: %v", r)
				}
			}()
			c.pcm, c.err = fn()
		}()
	}
	f.mu.Unlock()
	select {
	case <-c.done:
		return c.pcm, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
