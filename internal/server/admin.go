package server

import (
	"os"
	"path/filepath"

	"github.com/ivrd/ivrd/internal/store"
)

// openStore opens (creating) the database in the data directory.
func openStore(data string) (*store.Store, error) {
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	return store.Open(filepath.Join(data, "ivrd.db"))
}

// CreateApp creates an app in the data directory's database.
func CreateApp(data, name string) (store.App, error) {
	st, err := openStore(data)
	if err != nil {
		return store.App{}, err
	}
	defer st.Close()
	return st.CreateApp(name)
}

// AddNumber routes calls to number to an app.
func AddNumber(data, appID, number, notifyURL string) (store.Number, error) {
	st, err := openStore(data)
	if err != nil {
		return store.Number{}, err
	}
	defer st.Close()
	n := store.Number{Number: number, AppID: appID, NotifyURL: notifyURL}
	if err := st.AddNumber(n); err != nil {
		return store.Number{}, err
	}
	return st.LookupNumber(number)
}
