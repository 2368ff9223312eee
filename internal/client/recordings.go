package client

import (
	"context"
	"net/url"
)

// Recording is a stored recording as ivrd's recordings endpoints describe it (an extension of
// ivrd's: see the README's "Extensions"). Every field is a string, as the API gives it.
type Recording struct {
	ID         string `json:"id"`
	Session    string `json:"session"`
	Kind       string `json:"kind"` // monitor or record
	Date       string `json:"date"` // start, YYYY-MM-DD HH:mm:ss in ivrd's time zone
	DurationMS string `json:"duration_ms"`
	SizeBytes  string `json:"size_bytes"`
	Channels   string `json:"channels"` // mono or dual
	URL        string `json:"url"`      // recordings/get only: a freshly signed download URL
}

// RecordingPage is the answer of recordings/list.
type RecordingPage struct {
	Status       string      `json:"status"`
	TotalEntries string      `json:"total_entries_count"`
	EntriesCount string      `json:"entries_count"`
	Page         string      `json:"page"`
	PageSize     string      `json:"page_size"`
	Entries      []Recording `json:"entries"`
}

// Recordings lists the app's recordings (recordings/list); params may hold session, from, to,
// page and page_size. An API error is a page whose Status is not success_ok.
func (c *Client) Recordings(ctx context.Context, params url.Values) (RecordingPage, error) {
	var p RecordingPage
	err := c.post(ctx, "ivr/recordings/list", params, &p)
	return p, err
}

// Recording fetches one recording with a fresh download URL (recordings/get) and returns it
// with the answer's status.
func (c *Client) Recording(ctx context.Context, id string) (Recording, string, error) {
	var out struct {
		Recording
		Status string `json:"status"`
	}
	err := c.post(ctx, "ivr/recordings/get", url.Values{"id": {id}}, &out)
	return out.Recording, out.Status, err
}

// DeleteRecording deletes one recording, its file and its listing (recordings/delete), and
// returns the answer's status.
func (c *Client) DeleteRecording(ctx context.Context, id string) (string, error) {
	out, err := c.Call(ctx, "ivr/recordings/delete", url.Values{"id": {id}})
	return out["status"], err
}
