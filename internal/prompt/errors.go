package prompt

import "errors"

// API statuses a msg can fail with (spec §5). error_msg_invalid_length is the API's own check.
const (
	StatusCannotConvertText = "error_msg_cannot_convert_text"
	StatusDownloadFailed    = "error_msg_download_failed"
	StatusInvalidFileFormat = "error_msg_invalid_file_format"
	StatusInvalidFileSize   = "error_msg_invalid_file_size"
	StatusInvalidURL        = "error_msg_invalid_url"
	StatusInvalidLanguage   = "error_msg_invalid_language"
	StatusInvalidGender     = "error_msg_invalid_gender"
	StatusInvalidXML        = "error_msg_invalid_xml"
)

// Error is a msg failure carrying the API status to answer with. Check and Prepare return
// only *Error values (context cancellation included: it is wrapped in Err).
type Error struct {
	Code string // one of the Status* constants
	Err  error  // the cause, for logs; may be nil
}

func (e *Error) Error() string {
	if e.Err == nil {
		return "prompt: " + e.Code
	}
	return "prompt: " + e.Code + ": " + e.Err.Error()
}

// Status is the API status, e.g. "error_msg_cannot_convert_text".
func (e *Error) Status() string { return e.Code }

func (e *Error) Unwrap() error { return e.Err }

// StatusOf returns the API status of a prompt error, or "" if err carries none.
func StatusOf(err error) string {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func fail(code string, err error) *Error { return &Error{Code: code, Err: err} }
