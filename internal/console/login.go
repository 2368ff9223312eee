package console

import (
	"crypto/hmac"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ivrd/ivrd/internal/store"
)

// The session cookie.
const (
	cookieName = "ivrd_console"
	sessionTTL = 12 * time.Hour // a sign-in lasts this long
	formTTL    = time.Hour      // a sign-in form's session
)

// session returns the request's console session: signed in when its cookie verifies, has not
// expired, and the credential it was opened with still holds (the app's token was not
// rotated, the operator password not changed). A valid ticket of someone no longer signed in
// still gives the form's nonce.
func (c *Console) session(r *http.Request) session {
	ck, err := r.Cookie(cookieName)
	if err != nil {
		return session{}
	}
	t, ok := c.keys.open(ck.Value, c.now())
	if !ok {
		return session{}
	}
	s := session{t: t}
	switch t.Role {
	case roleOperator:
		if c.cfg.Password != "" && hmac.Equal([]byte(t.Cred), []byte(c.keys.fingerprint(c.cfg.Password))) {
			s.principal = principal{Role: roleOperator}
		}
	case roleApp:
		if tok, err := c.cfg.Token(t.AppID); err == nil && tok != "" && hmac.Equal([]byte(t.Cred), []byte(c.keys.fingerprint(tok))) {
			s.principal = principal{Role: roleApp, AppID: t.AppID}
		}
	}
	return s
}

// setTicket sets the session cookie to t.
func (c *Console) setTicket(w http.ResponseWriter, r *http.Request, t ticket) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: c.keys.seal(t), Path: Prefix, Expires: time.Unix(t.Expires, 0),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.cfg.Secure || r.TLS != nil})
}

// formTicket returns the request's ticket, or a new anonymous one (set as the cookie) for a
// sign-in form.
func (c *Console) formTicket(w http.ResponseWriter, r *http.Request, s session) ticket {
	if s.t.Nonce != "" && s.t.Role == roleNone {
		return s.t
	}
	t := ticket{Nonce: newNonce(), Expires: c.now().Add(formTTL).Unix()}
	c.setTicket(w, r, t)
	return t
}

// safeNext is where to go after signing in: a console path, else the console's start page.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.Contains(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix
	}
	return next
}

// loginView is the sign-in form's data.
type loginView struct {
	Next     string
	Operator bool   // operator sign-in is on
	Mode     string // the form that failed: app or operator
	AppID    string // given back after a failure (never the token or password)
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	s := c.session(r)
	next := safeNext(r.URL.Query().Get("next"))
	if s.signedIn() {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	c.showLogin(w, r, s, http.StatusOK, loginView{Next: next}, "")
}

func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, s session, status int, v loginView, msg string) {
	t := c.formTicket(w, r, s)
	v.Operator = c.cfg.Password != ""
	c.render(w, status, "login", view{Title: "Sign in", CSRF: c.keys.csrf(t.Nonce), Error: msg, Data: v})
}

// login checks a sign-in: the throttle, the form's CSRF token, then the credentials.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	now := c.now()
	key := clientKey(r)
	s := c.session(r)
	mode := r.PostFormValue("mode")
	v := loginView{Next: safeNext(r.PostFormValue("next")), Mode: mode}
	if d := c.throttle.wait(key, now); d > 0 {
		secs := int(d.Seconds() + 0.999)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		c.log.Warn("console: sign-in refused: too many failures", "client", key)
		c.showLogin(w, r, s, http.StatusTooManyRequests, v, "Too many failed sign-ins from your address: try again in "+strconv.Itoa(secs)+" s.")
		return
	}
	if s.t.Nonce == "" || !c.csrfOK(r, s.t) {
		c.showLogin(w, r, session{}, http.StatusForbidden, v, "The sign-in form expired. Please try again.")
		return
	}
	t := ticket{Role: mode, Nonce: newNonce(), Expires: now.Add(sessionTTL).Unix()}
	var ok bool
	switch mode {
	case roleOperator:
		ok = credentialOK(c.cfg.Password, r.PostFormValue("password"))
		t.Cred = c.keys.fingerprint(c.cfg.Password)
	case roleApp:
		t.AppID = strings.TrimSpace(r.PostFormValue("app_id"))
		v.AppID = t.AppID
		tok, err := c.cfg.Token(t.AppID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			c.log.Error("console: sign-in: app token", "app", t.AppID, "err", err)
			c.showLogin(w, r, s, http.StatusInternalServerError, v, "The apps cannot be read just now. Please try again.")
			return
		}
		ok = err == nil && credentialOK(tok, r.PostFormValue("access_token"))
		t.Cred = c.keys.fingerprint(tok)
	}
	if !ok {
		lock := c.throttle.fail(key, now)
		c.log.Warn("console: sign-in failed", "role", mode, "app", t.AppID, "client", key, "locked_for", lock)
		time.Sleep(c.failDelay)
		msg := "Wrong app_id or access_token."
		if mode == roleOperator {
			msg = "Wrong password."
			if c.cfg.Password == "" {
				msg = "Operator sign-in is off: start ivrd with --console-password."
			}
		}
		c.showLogin(w, r, s, http.StatusUnauthorized, v, msg)
		return
	}
	c.throttle.ok(key)
	c.setTicket(w, r, t) // a new nonce: the form's session does not carry over
	c.log.Info("console: signed in", "role", mode, "app", t.AppID, "client", key)
	http.Redirect(w, r, v.Next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s session) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: Prefix, MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.cfg.Secure || r.TLS != nil})
	c.log.Info("console: signed out", "role", s.Role, "app", s.AppID, "client", clientKey(r))
	http.Redirect(w, r, loginPath, http.StatusSeeOther)
}
