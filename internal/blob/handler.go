package blob

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// Handler serves GET and HEAD PathPrefix+<key>?Expires=..&Signature=.. from st (streamed from
// a remote store). A missing, malformed, tampered or expired signature is 403 (checked before
// the key is looked up, so nothing can be probed without a valid URL); a validly signed key
// that is not stored is 404; a remote store that fails is 502. Range and conditional requests
// are served by http.ServeContent. Mount it at PathPrefix.
func Handler(st Store, s Signer, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		key, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
		if !ok {
			http.NotFound(w, r)
			return
		}
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil || !s.Verify(key, single(q, "Expires"), single(q, "Signature"), time.Now()) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		obj, err := st.Open(r.Context(), key)
		if err != nil {
			ServeError(w, r, key, err, log)
			return
		}
		defer obj.Close()
		Serve(w, r, key, obj)
	})
}

// Serve answers r with the blob stored under key, opened by the caller (who closes it):
// its media type, Range and conditional requests (http.ServeContent).
func Serve(w http.ResponseWriter, r *http.Request, key string, obj *Object) {
	h := w.Header()
	h.Set("Content-Type", ContentType(key))
	h.Set("Cache-Control", "private")
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, key, obj.ModTime, obj)
}

// ServeError answers r when opening key failed: 404 for a blob that is not stored, 502 for a
// remote store that fails, else 500 (both logged).
func ServeError(w http.ResponseWriter, r *http.Request, key string, err error, log *slog.Logger) {
	switch {
	case errors.Is(err, ErrNotFound):
		http.NotFound(w, r)
	case errors.Is(err, ErrUnavailable):
		log.Error("blob: open", "key", key, "err", err)
		http.Error(w, "recording store unavailable", http.StatusBadGateway)
	default:
		log.Error("blob: open", "key", key, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}

// single returns the only value of a query parameter, or "" when it is absent or repeated.
func single(q url.Values, name string) string {
	if v := q[name]; len(v) == 1 {
		return v[0]
	}
	return ""
}

// ContentType returns the media type served for a key, by extension.
func ContentType(key string) string {
	switch strings.ToLower(path.Ext(key)) {
	case ".mp3":
		return "audio/mpeg"
	case ".wav":
		return "audio/wav"
	case ".ogg", ".opus":
		return "audio/ogg"
	default:
		return "application/octet-stream"
	}
}
