package telephony

import "fmt"

// ResponseError is a final SIP response other than 2xx to a request of ivrd's: a Dial that was
// refused (404, 486, 603, …), or an in-dialog request (INFO) the far end did not take.
type ResponseError struct {
	Code   int
	Reason string // as the far end sent it; "" for the standard phrase
}

func (e *ResponseError) Error() string {
	reason := e.Reason
	if reason == "" {
		reason = reasonPhrase(e.Code)
	}
	return fmt.Sprintf("telephony: %d %s", e.Code, reason)
}
