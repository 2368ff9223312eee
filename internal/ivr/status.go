package ivr

// Status strings of the API, exactly as the original service spelled them.
const (
	StatusOK                   = "success_ok"
	StatusInvalidHTTPMethod    = "error_invalid_http_method"
	StatusMalformedParams      = "error_malformed_params"
	StatusInvalidAccessToken   = "error_invalid_access_token"
	StatusInvalidAppID         = "error_invalid_app_id"
	StatusInternal             = "error_internal_server_error"
	StatusRateLimitExceeded    = "error_rate_limit_exceeded"
	StatusInvalidSession       = "error_invalid_session"
	StatusSessionAccessDenied  = "error_session_access_denied"
	StatusSessionEnded         = "error_session_ended"
	StatusSessionNotReady      = "error_session_not_ready"
	StatusMsgInvalidLength     = "error_msg_invalid_length"
	StatusMsgCannotConvertText = "error_msg_cannot_convert_text"
	StatusTagInvalidLength     = "error_tag_invalid_length"
	StatusInvalidNotifyURL     = "error_invalid_notify_url"
	StatusUnresolvableNotify   = "error_unable_to_resolve_notify_url"
	StatusMonitorInProgress    = "error_monitor_in_progress"
)

// Statuses of ivrd's extensions (spec §7: ours, absent from the original service).
const (
	StatusInvalidChannels      = "error_invalid_channels"        // Monitor, Record: channels not mono or dual
	StatusInvalidPauseBehavior = "error_invalid_pause_behavior"  // monitor/pause, resume: not silence or skip
	StatusMonitorNotInProgress = "error_monitor_not_in_progress" // monitor/pause, resume: no Monitor recording
	StatusRecordingNotFound    = "error_recording_not_found"     // recordings/get, delete: no such recording
	StatusInvalidFrom          = "error_invalid_from"            // recordings/list: from is not a date
	StatusInvalidTo            = "error_invalid_to"              // recordings/list: to is not a date, or before from
	StatusInvalidPage          = "error_invalid_page"            // recordings/list: page is not 1 or more
	StatusInvalidPageSize      = "error_invalid_page_size"       // recordings/list: page_size is not 1..100
)

// Missing is the status for a missing required parameter: error_<name>_param_missing.
func Missing(name string) string { return "error_" + name + "_param_missing" }

// statusOf returns the API status an error carries (any error with a Status() string method),
// or def when it carries none.
func statusOf(err error, def string) string {
	var s interface{ Status() string }
	for e := err; e != nil; {
		if x, ok := e.(interface{ Status() string }); ok {
			s = x
			break
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	if s != nil && s.Status() != "" {
		return s.Status()
	}
	return def
}
