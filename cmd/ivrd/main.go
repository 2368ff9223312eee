// Command ivrd is a self-hosted programmable-voice server speaking the Hoiio Open API IVR
// protocol over SIP/RTP.
//
//	ivrd serve [--data DIR] [--http ADDR] [--sip ADDR] ...   run the server
//	ivrd app create|list|rotate-token                         manage apps
//	ivrd number add|list|remove                               route numbers to apps
//	ivrd recording list|delete                                the stored recordings
//	ivrd call sip:100@127.0.0.1:5060 [flags]                   place a test call (a softphone)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ivrd/ivrd/internal/config"
	"github.com/ivrd/ivrd/internal/server"
)

const usage = `usage:
  ivrd serve [flags]                 run the server (ivrd serve -h for flags)
  ivrd app create --name NAME        create an app; prints {"app_id":…,"access_token":…}
  ivrd app list                      every app with its access token, one JSON object a line
  ivrd app rotate-token --app ID     give an app a new access token (the old one stops working)
  ivrd number add --app APP_ID --number +6561234567 --notify-url URL
                                     route calls to that number to the app
  ivrd number list                   every routed number, one JSON object a line
  ivrd number remove --number N      stop routing a number (its calls then get SIP 404)
  ivrd recording list [--app ID] [--session S]
                                     stored recordings, newest first, one JSON object a line
  ivrd recording delete --id ID      delete a recording: its file and its listing
every command above takes --data DIR (default ./data, or IVRD_DATA) and --store URL (PostgreSQL, or IVRD_STORE)
  ivrd call sip:100@127.0.0.1:5060 [--play FILE] [--digits 123] [--record heard.wav] [--duration 15s]
                                     place a call with ivrd's own SIP stack (ivrd call -h for flags)
`

// command is one admin command: its words and what it runs.
type command struct {
	words []string
	run   func(args []string) error
}

var commands = []command{
	{[]string{"serve"}, serve},
	{[]string{"app", "create"}, appCreate},
	{[]string{"app", "list"}, appList},
	{[]string{"app", "rotate-token"}, appRotateToken},
	{[]string{"number", "add"}, numberAdd},
	{[]string{"number", "list"}, numberList},
	{[]string{"number", "remove"}, numberRemove},
	{[]string{"recording", "list"}, recordingList},
	{[]string{"recording", "delete"}, recordingDelete},
	{[]string{"call"}, callCmd},
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ivrd:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("no command")
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Print(usage)
		return nil
	}
	for _, c := range commands {
		if len(args) >= len(c.words) && strings.Join(args[:len(c.words)], " ") == strings.Join(c.words, " ") {
			return c.run(args[len(c.words):])
		}
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", strings.Join(args, " "))
}

func serve(args []string) error {
	cfg := config.Defaults()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.Bind(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected arguments %q", fs.Args())
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx, hurry, stop := stopSignals()
	defer stop()
	return server.Run(ctx, cfg, os.Stdout, hurry)
}

// stopSignals returns ctx, which ends at the first SIGTERM or SIGINT (ivrd then drains its
// calls for --drain-timeout), and hurry, which ends at the second (the drain ends at once).
func stopSignals() (ctx, hurry context.Context, stop func()) {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	hurry, cancelHurry := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		for _, end := range []context.CancelFunc{cancel, cancelHurry} {
			select {
			case <-sig:
				end()
			case <-done:
				return
			}
		}
	}()
	return ctx, hurry, func() {
		signal.Stop(sig)
		close(done)
		cancel()
		cancelHurry()
	}
}
