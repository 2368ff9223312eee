package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/softphone"
)

// callUsage is `ivrd call -h`'s head; the flags follow.
const callUsage = `usage: ivrd call [flags] sip:USER@HOST[:PORT][;transport=udp|tcp|tls]
place a call with ivrd's own SIP stack: send a file (or a tone), keys, record what is heard
`

// callFlags are `ivrd call`'s flags, into o, playFile and verbose.
func callFlags(o *softphone.Options, playFile *string, verbose *bool) *flag.FlagSet {
	fs := flag.NewFlagSet("call", flag.ContinueOnError)
	fs.StringVar(playFile, "play", "", "audio file to send from the answer on (.wav of any rate and encoding, .mp3, .gsm); default a 440 Hz tone, 1 s on and 1 s off")
	fs.StringVar(&o.Digits, "digits", "", "DTMF keys to send (0-9 * # A-D)")
	fs.StringVar(&o.DTMF, "dtmf", softphone.DTMFRFC4733, "how keys are sent: rfc4733 (telephone-events in RTP) or info (SIP INFO)")
	fs.DurationVar(&o.DigitsAfter, "digits-after", softphone.DefaultDigitsAfter, "when the first key goes, after the answer")
	fs.DurationVar(&o.DigitGap, "digit-gap", softphone.DefaultDigitGap, "pause between keys")
	fs.DurationVar(&o.DigitDuration, "digit-duration", softphone.DefaultDigitDuration, "how long each key is held (50ms to 5s)")
	fs.StringVar(&o.Record, "record", "", "WAV file (8 kHz mono 16-bit) to write what the call hears, from the answer on")
	fs.DurationVar(&o.Duration, "duration", softphone.DefaultDuration, "hang up this long after the answer (0: when the far end hangs up)")
	fs.StringVar(&o.From, "from", softphone.DefaultFrom, "From user (the caller's number or name)")
	fs.DurationVar(&o.RingTimeout, "ring-timeout", softphone.DefaultRingTimeout, "give up when not answered within")
	fs.StringVar(&o.CA, "ca", "", "PEM file of authorities trusted for transport=tls, beside the system's")
	fs.StringVar(&o.Bind, "bind", "", "local SIP address, IP:PORT (default: the address that reaches the target, a free port)")
	fs.BoolVar(verbose, "verbose", false, "log the SIP stack's steps to stderr")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), callUsage)
		fs.PrintDefaults()
	}
	return fs
}

// callCmd is `ivrd call`: a softphone for trying ivrd (and any SIP server) from the shell.
func callCmd(args []string) error {
	var o softphone.Options
	var playFile string
	var verbose bool
	fs := callFlags(&o, &playFile, &verbose)
	uris, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(uris) != 1 {
		fs.Usage()
		return fmt.Errorf("call: one SIP URI to call, e.g. sip:100@127.0.0.1:5060 (got %d)", len(uris))
	}
	if o.Target, err = softphone.ParseTarget(uris[0]); err != nil {
		return fmt.Errorf("call: %w", err)
	}
	if playFile != "" {
		if o.Play, err = softphone.ReadPlay(playFile); err != nil {
			return fmt.Errorf("call: --play: %w", err)
		}
	}
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, _, stop := stopSignals() // Ctrl-C hangs up (and still prints the summary)
	defer stop()
	sum, err := softphone.Call(ctx, o)
	printSummary(os.Stdout, sum)
	if err != nil {
		return fmt.Errorf("call: %w", err)
	}
	return nil
}

// parseInterspersed parses flags wherever they are among the positional arguments (the URI
// usually comes first) and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// printSummary writes the call's summary, one "name: value" a line.
func printSummary(w io.Writer, s softphone.Summary) {
	line := func(name, format string, a ...any) { fmt.Fprintf(w, "%-12s %s\n", name+":", fmt.Sprintf(format, a...)) }
	if s.Target.Host == "" {
		return // nothing was called
	}
	line("call", "%s", s.Target)
	line("answered", "%s", map[bool]string{true: "yes", false: "no (" + string(s.Outcome) + ")"}[s.Answered()])
	if s.Status != 0 {
		line("sip status", "%d %s", s.Status, s.Reason)
	} else {
		line("sip status", "none")
	}
	if !s.Answered() {
		return
	}
	line("duration", "%.2fs (hung up by %s)", s.Duration.Seconds(), s.EndedBy)
	if s.Digits != "" {
		line("digits sent", "%s (%s)", s.Digits, s.DTMF)
	} else {
		line("digits sent", "none")
	}
	if s.Record != "" {
		line("recorded", "%d bytes to %s (%.2fs)", s.Bytes, s.Record, audio.Duration(int(s.Samples)).Seconds())
	}
}
