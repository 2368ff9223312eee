// Command ivrd is a self-hosted programmable-voice server speaking the Hoiio Open API IVR
// protocol over SIP/RTP.
//
//	ivrd serve [--data DIR] [--http ADDR] [--sip ADDR] ...   run the server
//	ivrd app create --name NAME [--data DIR]                  create an app, print its credentials
//	ivrd number add --app ID --number +65... --notify-url URL [--data DIR]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ivrd/ivrd/internal/config"
	"github.com/ivrd/ivrd/internal/server"
)

const usage = `usage:
  ivrd serve [flags]                 run the server (ivrd serve -h for flags)
  ivrd app create --name NAME        create an app; prints {"app_id":…,"access_token":…}
  ivrd number add --app APP_ID --number +6561234567 --notify-url URL
                                     route calls to that number to the app
every command takes --data DIR (default ./data, or IVRD_DATA)
`

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
	switch {
	case args[0] == "serve":
		return serve(args[1:])
	case len(args) >= 2 && args[0] == "app" && args[1] == "create":
		return appCreate(args[2:])
	case len(args) >= 2 && args[0] == "number" && args[1] == "add":
		return numberAdd(args[2:])
	case args[0] == "help" || args[0] == "-h" || args[0] == "--help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func serve(args []string) error {
	cfg := config.Defaults()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.Bind(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return server.Run(ctx, cfg, os.Stdout)
}

// dataFlag binds --data with the same default as serve.
func dataFlag(fs *flag.FlagSet) *string {
	d := config.Defaults().Data
	if v, ok := os.LookupEnv("IVRD_DATA"); ok {
		d = v
	}
	return fs.String("data", d, "data directory (IVRD_DATA)")
}

func appCreate(args []string) error {
	fs := flag.NewFlagSet("app create", flag.ContinueOnError)
	data := dataFlag(fs)
	name := fs.String("name", "", "app name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" {
		return fmt.Errorf("--name is required")
	}
	app, err := server.CreateApp(*data, *name)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]string{"app_id": app.ID, "access_token": app.AccessToken})
}

func numberAdd(args []string) error {
	fs := flag.NewFlagSet("number add", flag.ContinueOnError)
	data := dataFlag(fs)
	app := fs.String("app", "", "app id")
	number := fs.String("number", "", "number, E.164 (+6561234567)")
	notifyURL := fs.String("notify-url", "", "URL that receives the Answer notification")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *app == "" || *number == "" || *notifyURL == "" {
		return fmt.Errorf("--app, --number and --notify-url are required")
	}
	n, err := server.AddNumber(*data, *app, *number, *notifyURL)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]string{"number": n.Number, "app_id": n.AppID, "notify_url": n.NotifyURL})
}
