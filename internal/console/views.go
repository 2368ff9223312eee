package console

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"
)

// view is what every page template gets: the layout's parts and the page's own Data.
type view struct {
	Title   string
	Section string // the navigation entry to highlight
	Who     principal
	CSRF    string // the session's CSRF token, for the page's forms
	Demo    bool   // the demo page is there for Who
	Error   string
	Notice  string
	Data    any
}

// pages are the page templates, each parsed with the layout.
type pages map[string]*template.Template

// pageNames are the templates/<name>.html pages.
var pageNames = []string{"message", "login", "live", "sessions", "session", "recordings", "outbox", "demo"}

func parsePages(zone *time.Location) (pages, error) {
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.In(zone).Format("2006-01-02 15:04:05")
		},
		"clock": func(t time.Time) string { return t.In(zone).Format("15:04:05.000") },
		"dur":   formatDuration,
		"size":  formatSize,
	}
	p := pages{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		p[name] = t
	}
	return p, nil
}

// render writes page name with v, whole or not at all (a template error is a 500, logged).
func (c *Console) render(w http.ResponseWriter, status int, name string, v view) {
	var b bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&b, "layout", v); err != nil {
		c.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// formatDuration: "850 ms", "12 s", "3:05", "1:02:03".
func formatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "—"
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return formatClock(d)
}

// formatClock: a running call's length, "0:07", "12:05", "1:02:03".
func formatClock(d time.Duration) string {
	s := max(int64(d/time.Second), 0)
	if s < 3600 {
		return fmt.Sprintf("%d:%02d", s/60, s%60)
	}
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
}

// formatSize: "900 B", "12.3 kB", "4.5 MB".
func formatSize(n int64) string {
	switch {
	case n < 1000:
		return strconv.FormatInt(n, 10) + " B"
	case n < 1000*1000:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

// kv is one parameter or field, for display.
type kv struct{ K, V string }

// sortedKV lists a map by key.
func sortedKV(m map[string]string) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].K < out[j].K })
	return out
}

// formKV lists a form-encoded body by key (the first value of each).
func formKV(body []byte) []kv {
	form, _ := url.ParseQuery(string(body))
	m := make(map[string]string, len(form))
	for k, v := range form {
		m[k] = v[0]
	}
	return sortedKV(m)
}

// pager is a page of a longer list.
type pager struct {
	Page, Prev, Next int // Prev, Next: 0 when there is none
	Total            int // -1: unknown
}

func newPager(page, size, got, total int) pager {
	p := pager{Page: page, Total: total}
	if page > 1 {
		p.Prev = page - 1
	}
	if (total >= 0 && page*size < total) || (total < 0 && got == size) {
		p.Next = page + 1
	}
	return p
}

// pageParam reads ?page= (1 when absent or bad).
func pageParam(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || n < 1 || n > 1_000_000 {
		return 1
	}
	return n
}
