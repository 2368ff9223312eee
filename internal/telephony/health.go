package telephony

// Listening reports whether the server takes calls: Serve has its SIP sockets served and has
// not stopped.
func (s *Server) Listening() bool {
	select {
	case <-s.ready:
	default:
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serving && !s.closed
}
