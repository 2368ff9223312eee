package demo

import "testing"

func TestRoutes(t *testing.T) {
	for _, tc := range []struct {
		url      string
		route    bool
		oldRoute bool
	}{
		{"/demo/notify", true, false},
		{"http://127.0.0.1:8080/demo/notify", false, true},
		{"https://ivrd.example/demo/notify", false, true},
		{"http://127.0.0.1:8080/demo/notify?x=1", false, false},
		{"http://u:p@127.0.0.1:8080/demo/notify", false, false},
		{"http://127.0.0.1:8080/shop/answer", false, false},
		{"/demo/notify/", false, false},
		{"ftp://h/demo/notify", false, false},
		{"", false, false},
	} {
		if got := IsRoute(tc.url); got != tc.route {
			t.Errorf("IsRoute(%q) = %v", tc.url, got)
		}
		if got := IsOldRoute(tc.url); got != tc.oldRoute {
			t.Errorf("IsOldRoute(%q) = %v", tc.url, got)
		}
	}
}
