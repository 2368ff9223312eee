package ivr

import (
	"context"
	"log/slog"
	"net/url"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

// The engine does no I/O of its own: every effect goes through one of these interfaces. The
// server wires real implementations (telephony, prompt, recording, store, notify); tests wire
// in-memory ones.

// Call is one telephone leg as the engine sees it.
type Call interface {
	// Answer accepts a ringing incoming call (SIP 200 OK). Idempotent.
	Answer(ctx context.Context) error
	// Reject refuses a ringing call with a SIP status code (e.g. 603). It fails once an
	// answer is under way or done (the engine then hangs up with Hangup instead).
	Reject(code int) error
	// Play sends 8 kHz PCM to the caller in real time and returns when it has all been sent,
	// when ctx is done, or when the call ends (then it returns ErrCallEnded).
	Play(ctx context.Context, pcm []int16) error
	// Hangup ends the call from our side: BYE once answered; while an answer is under way it
	// waits for it and then sends BYE; a ringing call is refused. Idempotent.
	Hangup() error
	// Done is closed when the call has ended, whichever side ended it.
	Done() <-chan struct{}
	// AfterEnd makes f run in its own goroutine once Done is closed (at once if it is), so
	// that following many calls needs no goroutine waiting on each.
	AfterEnd(f func())
	// SetTap makes t receive both directions of audio from now on (nil stops).
	SetTap(t audio.Tap)
	// OnDTMF makes f receive every key the caller presses (RFC 4733 or SIP INFO).
	OnDTMF(f func(digit rune))
}

// Dial outcomes, as the API reports them in dial_status and transfer_status.
const (
	DialAnswered   = "answered"
	DialUnanswered = "unanswered"
	DialBusy       = "busy"
	DialFailed     = "failed"
)

// Telephony places outbound calls and connects calls together. A nil Telephony means the server
// has no trunk: Dial and Transfer to numbers answer error_dest_not_supported.
type Telephony interface {
	// Dial calls dest (E.164) through the trunk and returns the answered call, or the outcome
	// (DialUnanswered, DialBusy, DialFailed) with a nil call. earlyTo, when not nil, is an
	// answered call that hears the far end's early media (ringback, announcements) until Dial
	// returns.
	Dial(ctx context.Context, dest, callerID string, earlyTo Call) (Call, string, error)
	// Bridge connects the audio of two answered calls until stop is called or either ends.
	Bridge(a, b Call) (stop func())
	// JoinRoom puts c into the conference room id (creating it when create is set) until leave
	// is called or c ends. It fails with ErrNoRoom for an unknown id and ErrRoomFull when full.
	JoinRoom(id string, create bool, c Call) (leave func(), err error)
	// RoomExists reports whether room id exists.
	RoomExists(id string) bool
}

// Prompter turns a block's msg into audio.
type Prompter interface {
	// Check validates msg without doing any slow work (markup, language, gender, URL form).
	Check(msg string) error
	// Prepare synthesises/downloads msg into 8 kHz PCM. The PCM is read-only: it may be
	// the prompt cache's own, shared by every call playing it.
	Prepare(ctx context.Context, msg string) ([]int16, error)
}

// Recorders start recordings of a call.
type Recorders interface {
	Start(info RecordingInfo) (Recording, error)
}

// RecordingInfo describes a recording to start (or, after a crash, to find again).
type RecordingInfo struct {
	ID        string // recording id, e.g. "rec-<session>-monitor"
	AppID     string
	SessionID string
	Kind      string       // "monitor" or "record"
	Start     time.Time    // zero when a crash left it unknown (a Record block's)
	Channels  int          // 1 (mono: both directions mixed) or 2 (dual: caller left, what it hears right)
	Log       *slog.Logger // the session's logger, for the recording's lines (nil: the recorder's own)
}

// Recording is a running recording: it taps a call's audio until finished.
type Recording interface {
	audio.Tap
	// Finish stops capture at end, completes and stores the file, and returns its signed URL.
	Finish(end time.Time) (url string, err error)
	// Pause stops taking audio from at until Resume: the paused part is silence in the file,
	// or with skip left out of it. It reports whether it paused (false: already paused).
	Pause(at time.Time, skip bool) bool
	// Resume takes audio again from at. It reports whether it resumed (false: not paused).
	Resume(at time.Time) bool
}

// DialogCall is a Call that can describe its SIP dialog (Call-ID, tags, remote target, route
// set, CSeq, transport) as an opaque snapshot. The engine journals it with the session (when
// the call rings and once it is answered) so that a later start can end a call a crashed
// process was carrying.
type DialogCall interface {
	Call
	Dialog() []byte
}

// DialogEnder ends, at the next start, a call a crashed process was carrying, from the dialog
// snapshot its session journaled (its Call was a DialogCall).
type DialogEnder interface {
	EndDialog(snapshot []byte) error
}

// dialogOf returns c's dialog snapshot, or nil.
func dialogOf(c Call) []byte {
	if d, ok := c.(DialogCall); ok {
		return d.Dialog()
	}
	return nil
}

// Notification is one notification to queue: POST Params to Target, signed with the app's
// access token. DeliveryID is stable: queueing the same id again must not queue it twice.
type Notification struct {
	DeliveryID string
	AppID      string
	SessionID  string // the session's notifications are delivered in the order queued
	Target     string
	Params     url.Values
}

// Notifier queues notifications for durable delivery. It returns once the notification is
// safely queued; a notification whose DeliveryID is already queued is not queued again.
type Notifier interface {
	Notify(n Notification) error
}

// Resolver looks up host names (net.DefaultResolver satisfies it).
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Outbound decides where ivrd may connect for an app (internal/outbound's Policy).
type Outbound interface {
	// CheckURL returns nil when ivrd may send a request to u whose host resolved to addrs
	// (IP address strings), else why not.
	CheckURL(u *url.URL, addrs []string) error
}

// Journal persists session state so that a restart can finish what a crash interrupted. The
// engine saves a session's record after each transition, before acting on it, together with
// the timeline entries that transition produced (one write).
type Journal interface {
	// SaveSession writes s with its new timeline entries. For a session another node has
	// taken over it fails with an error wrapping ErrNotOwner: the engine then drops it.
	SaveSession(s SessionRecord, steps []Entry) error
	// Unfinished returns the sessions whose phase is not ended (Engine.Recover settles them):
	// those this server left when it stopped (on a database several servers share, not the
	// sessions of the others).
	Unfinished() ([]SessionRecord, error)
}

// RecordingFiles finds recordings again after a crash.
type RecordingFiles interface {
	// Recover finishes the recording info describes as far as it was written, stores it and
	// returns its signed URL and length; url is "" when nothing usable was recorded.
	Recover(info RecordingInfo) (url string, length time.Duration, err error)
}
