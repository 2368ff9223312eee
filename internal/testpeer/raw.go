package testpeer

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Raw is a caller whose scenario is written out in sipp's XML, for the SIP exchanges Call does
// not script (odd offers, extensions, merged requests, re-INVITEs and UPDATEs). Before sipp
// runs it these placeholders are replaced:
//
//	{{rtp_port}}  the port of the caller's RTP receiver on 127.0.0.1 (what it hears: Result.Heard)
//	{{target}}    Target, host:port
//
// sipp's own keywords ([call_id], [branch], [last_Via:], [len], ...) work as usual. The
// scenario should end with the caller's BYE or with receiving the server's.
type Raw struct {
	Target    string        // SIP server, "127.0.0.1:5060"
	XML       string        // the scenario
	Transport string        // "udp" (default) or "tcp"
	Timeout   time.Duration // whole call; default 30 s
	OnMedia   func(from netip.AddrPort)
}

// Run runs the scenario and returns when sipp has exited, as Call.Run does.
func (r Raw) Run(ctx context.Context) (Result, error) {
	return uac{target: r.Target, transport: r.Transport, timeout: r.Timeout, onMedia: r.OnMedia,
		scenario: func(p scenarioParams) (string, error) {
			return strings.NewReplacer("{{rtp_port}}", strconv.Itoa(p.mediaPort), "{{target}}", p.host+":"+p.port).Replace(r.XML), nil
		}}.run(ctx)
}
