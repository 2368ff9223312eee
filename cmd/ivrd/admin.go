package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/ivrd/ivrd/internal/config"
	"github.com/ivrd/ivrd/internal/recording"
	"github.com/ivrd/ivrd/internal/server"
	"github.com/ivrd/ivrd/internal/store"
)

// database is where an admin command finds apps and numbers: --store's PostgreSQL, else the
// SQLite database in --data, bound like serve's.
type database struct {
	data, store string
	blob        config.Blob // where the recordings are (ivrd recording …)
	err         error       // a bad IVRD_STORE or IVRD_BLOB
}

// adminFlags makes the flag set of an admin command, with --data and --store.
func adminFlags(name string) (*flag.FlagSet, *database) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	db := &database{data: config.Defaults().Data}
	if v, ok := os.LookupEnv(config.EnvName("data")); ok {
		db.data = v
	}
	fs.StringVar(&db.data, "data", db.data, "data directory ("+config.EnvName("data")+")")
	fs.Var(config.StoreValue(&db.store), "store", "PostgreSQL URL, as serve's ("+config.EnvName("store")+"; empty: SQLite in the data directory)")
	if v, ok := os.LookupEnv(config.EnvName("store")); ok {
		if err := fs.Set("store", v); err != nil {
			db.err = fmt.Errorf("%s: %w", config.EnvName("store"), err)
		}
	}
	return fs, db
}

// blobFlag adds --blob, as serve's, to a command that reaches the recordings themselves.
func (db *database) blobFlag(fs *flag.FlagSet) {
	fs.Var(config.BlobValue(&db.blob), "blob", "where the recordings are, as serve's ("+config.EnvName("blob")+"; empty: the data directory)")
	if v, ok := os.LookupEnv(config.EnvName("blob")); ok && db.err == nil {
		if err := fs.Set("blob", v); err != nil {
			db.err = fmt.Errorf("%s: %w", config.EnvName("blob"), err)
		}
	}
}

// catalog runs f on the command's recordings catalog.
func (db *database) catalog(f func(*recording.Catalog) error) error {
	if db.err != nil {
		return db.err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return server.WithCatalog(db.data, db.store, db.blob, log, f)
}

// with runs f on the command's store.
func (db *database) with(f func(*store.Store) error) error {
	if db.err != nil {
		return db.err
	}
	return server.WithStore(db.data, db.store, f)
}

// parse parses args and checks that every named flag was given a value.
func parse(fs *flag.FlagSet, args []string, required ...string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", fs.Name(), fs.Args())
	}
	for _, name := range required {
		if fs.Lookup(name).Value.String() == "" {
			return fmt.Errorf("%s: --%s is required", fs.Name(), name)
		}
	}
	return nil
}

// printJSON writes v as one line of JSON.
func printJSON(v any) error { return json.NewEncoder(os.Stdout).Encode(v) }

// printLines writes each of xs as f describes it, one line of JSON each.
func printLines[T any](xs []T, f func(T) map[string]string) error {
	for _, x := range xs {
		if err := printJSON(f(x)); err != nil {
			return err
		}
	}
	return nil
}

func appJSON(a store.App) map[string]string {
	return map[string]string{"app_id": a.ID, "name": a.Name, "access_token": a.AccessToken, "created": a.CreatedAt.Format(time.RFC3339)}
}

func appCreate(args []string) error {
	fs, db := adminFlags("app create")
	name := fs.String("name", "", "app name")
	if err := parse(fs, args, "name"); err != nil {
		return err
	}
	return db.with(func(st *store.Store) error {
		app, err := st.CreateApp(*name)
		if err != nil {
			return err
		}
		return printJSON(map[string]string{"app_id": app.ID, "access_token": app.AccessToken})
	})
}

func appList(args []string) error {
	fs, db := adminFlags("app list")
	if err := parse(fs, args); err != nil {
		return err
	}
	return db.with(func(st *store.Store) error {
		apps, err := st.Apps()
		if err != nil {
			return err
		}
		return printLines(apps, appJSON)
	})
}

func appRotateToken(args []string) error {
	fs, db := adminFlags("app rotate-token")
	id := fs.String("app", "", "app id")
	if err := parse(fs, args, "app"); err != nil {
		return err
	}
	return db.with(func(st *store.Store) error {
		a, err := st.RotateToken(*id)
		if err != nil {
			return err
		}
		return printJSON(map[string]string{"app_id": a.ID, "access_token": a.AccessToken})
	})
}

func numberAdd(args []string) error {
	fs, db := adminFlags("number add")
	app := fs.String("app", "", "app id")
	number := fs.String("number", "", "number, E.164 (+6561234567)")
	notifyURL := fs.String("notify-url", "", "URL that receives the Answer notification")
	if err := parse(fs, args, "app", "number", "notify-url"); err != nil {
		return err
	}
	return db.with(func(st *store.Store) error {
		if err := st.AddNumber(store.Number{Number: *number, AppID: *app, NotifyURL: *notifyURL}); err != nil {
			return err
		}
		n, err := st.LookupNumber(*number)
		if err != nil {
			return err
		}
		return printJSON(numberJSON(n))
	})
}

func numberJSON(n store.Number) map[string]string {
	return map[string]string{"number": n.Number, "app_id": n.AppID, "notify_url": n.NotifyURL}
}

func numberList(args []string) error {
	fs, db := adminFlags("number list")
	if err := parse(fs, args); err != nil {
		return err
	}
	return db.with(func(st *store.Store) error {
		ns, err := st.Numbers()
		if err != nil {
			return err
		}
		return printLines(ns, numberJSON)
	})
}

func numberRemove(args []string) error {
	fs, db := adminFlags("number remove")
	number := fs.String("number", "", "number to stop routing")
	if err := parse(fs, args, "number"); err != nil {
		return err
	}
	return db.with(func(st *store.Store) error {
		return st.RemoveNumber(*number)
	})
}
