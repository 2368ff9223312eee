package main

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ivrd/ivrd/internal/softphone"
)

// Every flag of `ivrd call` is documented in the README's `ivrd call` section, with its
// default.
func TestReadmeDocumentsCallFlags(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "### Trying it: `ivrd call`")
	if start < 0 {
		t.Fatal("README has no `ivrd call` section")
	}
	section := readme[start:]
	if end := strings.Index(section[1:], "\n#"); end > 0 {
		section = section[:end+1]
	}
	var o softphone.Options
	var play string
	var verbose bool
	n := 0
	callFlags(&o, &play, &verbose).VisitAll(func(f *flag.Flag) {
		n++
		row := regexp.MustCompile("(?m)^\\| `--" + regexp.QuoteMeta(f.Name) + "[ `].*$").FindString(section)
		if row == "" {
			t.Errorf("the README's ivrd call table has no row for --%s", f.Name)
			return
		}
		if def := f.DefValue; def != "" && def != "false" && !strings.Contains(row, "`"+def+"`") {
			t.Errorf("the README's row for --%s does not give its default `%s`: %s", f.Name, def, row)
		}
	})
	if n < 13 {
		t.Fatalf("%d flags", n)
	}
	// The first minutes use it.
	if !strings.Contains(readme[:start], "ivrd call sip:100@127.0.0.1:5060 --record out.wav") {
		t.Error("the README's set-up does not call the demo with ivrd call")
	}
}
