// Package client is ivrd's API as an application uses it: Client calls the IVR blocks over
// HTTP, Receiver takes the notifications (checking signatures, dropping duplicate deliveries).
// The built-in demo app, the benchmark and the end-to-end tests all use it, as a user's Go
// application would.
package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls ivrd's API for one app.
type Client struct {
	BaseURL string // ivrd's base URL, e.g. http://127.0.0.1:8080
	AppID   string
	Token   string
	HTTP    *http.Client // default: 30 s timeout
}

// StatusOK is the API's success status.
const StatusOK = "success_ok"

// Call invokes an API endpoint: path is relative to /open/, e.g. "ivr/middle/monitor". It adds
// the app's credentials to params and returns the JSON answer (status and any extra fields).
// err is set only when no answer could be had (network, HTTP status other than 200, bad JSON);
// an API error is an answer whose "status" is not success_ok.
func (c *Client) Call(ctx context.Context, path string, params url.Values) (map[string]string, error) {
	var out map[string]string
	if err := c.post(ctx, path, params, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// post calls an API endpoint (see Call) and decodes its JSON answer into out.
func (c *Client) post(ctx context.Context, path string, params url.Values, out any) error {
	v := url.Values{}
	for k, x := range params {
		v[k] = x
	}
	v.Set("app_id", c.AppID)
	v.Set("access_token", c.Token)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.BaseURL, "/")+"/open/"+path, strings.NewReader(v.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("client: %s: HTTP %d: %.200s", path, res.StatusCode, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("client: %s: %w", path, err)
	}
	return nil
}

// Block invokes an IVR block ("middle/play", "end/hangup", ...) and returns its status.
func (c *Client) Block(ctx context.Context, block string, params url.Values) (string, error) {
	out, err := c.Call(ctx, "ivr/"+block, params)
	if err != nil {
		return "", err
	}
	return out["status"], nil
}

var defaultHTTP = &http.Client{Timeout: 30 * time.Second}
