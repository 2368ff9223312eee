package testpeer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

// scriptParams is what writeScript needs: the steps and how our in-dialog requests look.
type scriptParams struct {
	steps       []Step
	hangupAfter time.Duration // send BYE this long after the script starts; 0 = wait for the other side's BYE
	pcma        bool          // the negotiated codec is PCMA (else PCMU)
	dir         string        // for audio files
	prefix      string        // of the audio files' names, when a scenario writes steps twice
	dialog      string        // the From and To header lines of our in-dialog requests
	cseq        int           // CSeq of our last in-dialog request so far
}

// writeScript writes the part of a scenario that follows the call's set-up, the same for
// callers and answerers: the steps (cut at hangupAfter), then either our BYE (at hangupAfter)
// or the wait for the other side's BYE, ending with a jump to the label "end".
func writeScript(b *strings.Builder, p scriptParams) error {
	elapsed, cseq, err := writeSteps(b, p)
	if err != nil {
		return err
	}
	if p.hangupAfter > 0 {
		if rest := p.hangupAfter - elapsed; rest > 0 {
			fmt.Fprintf(b, `<pause milliseconds="%d"/>`+"\n", rest.Milliseconds())
		}
		fmt.Fprintf(b, `<send retrans="500"><![CDATA[

BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
%s
Call-ID: [call_id]
CSeq: %d BYE
[routes]
Max-Forwards: 70
Content-Length: 0

]]></send>
<recv response="200"/>
<nop next="end"/>
`, p.dialog, cseq+1)
		return nil
	}
	b.WriteString(awaitBye + `<nop next="end"/>` + "\n")
	return nil
}

// awaitBye waits for the other side's BYE and answers it 200 OK.
const awaitBye = `<recv request="BYE"/>
` + answerLast

// answerLast answers the last request received 200 OK.
const answerLast = `<send><![CDATA[

SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
`

// writeSteps writes the steps (cut at hangupAfter) and returns how long they take and the
// CSeq of our last in-dialog request.
func writeSteps(b *strings.Builder, p scriptParams) (elapsed time.Duration, cseq int, err error) {
	pt, codec := 0, "pcmu"
	if p.pcma {
		pt, codec = 8, "pcma"
	}
	cseq = p.cseq
	limit := time.Duration(-1)
	if p.hangupAfter > 0 {
		limit = p.hangupAfter
	}
	for i, s := range p.steps {
		if limit >= 0 && elapsed >= limit {
			break
		}
		d := s.duration()
		if limit >= 0 && elapsed+d > limit {
			d = limit - elapsed
		}
		switch s.kind {
		case stepAudio:
			name := filepath.Join(p.dir, fmt.Sprintf("%saudio%d.%s", p.prefix, i, codec))
			if strings.ContainsRune(name, ',') {
				return 0, 0, fmt.Errorf("testpeer: temp path %q contains a comma", name)
			}
			var raw []byte
			if p.pcma {
				raw = audio.EncodeAlaw(nil, s.pcm)
			} else {
				raw = audio.EncodeUlaw(nil, s.pcm)
			}
			if err := os.WriteFile(name, raw, 0o644); err != nil {
				return 0, 0, err
			}
			fmt.Fprintf(b, `<nop><action><exec rtp_stream="%s,1,%d"/></action></nop>`+"\n", xmlText(name), pt)
		case stepDTMF:
			pcap, err := dtmfPcap(s.digit)
			if err != nil {
				return 0, 0, err
			}
			fmt.Fprintf(b, `<nop><action><exec play_pcap_audio="%s"/></action></nop>`+"\n", xmlText(pcap))
		case stepInfo:
			if _, err := dtmfPcap(s.digit); err != nil {
				return 0, 0, err
			}
			cseq++
			fmt.Fprintf(b, `<send retrans="500"><![CDATA[

INFO [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
%s
Call-ID: [call_id]
CSeq: %d INFO
[routes]
Max-Forwards: 70
Content-Type: application/dtmf-relay
Content-Length: [len]

Signal=%c
Duration=160

]]></send>
<recv response="200"/>
`, p.dialog, cseq, s.digit)
		}
		if d > 0 {
			fmt.Fprintf(b, `<pause milliseconds="%d"/>`+"\n", d.Milliseconds())
		}
		elapsed += d
	}
	return elapsed, cseq, nil
}
