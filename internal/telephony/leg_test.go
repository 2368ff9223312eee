package telephony

import "testing"

func TestNormalizeNumber(t *testing.T) {
	tests := map[string]string{
		"6511111111":  "+6511111111",
		"+6511111111": "+6511111111",
		"100":         "+100",
		"anonymous":   "anonymous",
		"65-1111":     "65-1111",
		"":            "",
		"6511111111a": "6511111111a",
		"٣٣":          "٣٣", // non-ASCII digits are not E.164 digits
	}
	for in, want := range tests {
		if got := normalizeNumber(in); got != want {
			t.Errorf("normalizeNumber(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReasonPhrase(t *testing.T) {
	tests := map[int]string{404: "Not Found", 486: "Busy Here", 603: "Decline", 499: "Client Error", 599: "Server Error", 699: "Global Failure", 399: "Redirection"}
	for code, want := range tests {
		if got := reasonPhrase(code); got != want {
			t.Errorf("reasonPhrase(%d) = %q, want %q", code, got, want)
		}
	}
}
