package e2e

import (
	"os"
	"testing"
	"time"
)

// The soak runs: the fault and attack tests at full length, run by `make soak` (about 10
// minutes), not by `make test`.

func soak(t *testing.T) {
	if os.Getenv("IVRD_SOAK") == "" {
		t.Skip("a soak run: make soak (IVRD_SOAK=1)")
	}
}

// TestSoakNotifyOrder: the app refuses connections for a minute, then answers 500 for a
// minute (ivrd SIGKILLed and restarted in the middle), 20 calls.
func TestSoakNotifyOrder(t *testing.T) {
	soak(t)
	runNotifyOrder(t, 20, time.Minute, time.Minute)
}

// TestSoakSlowClients: 20,000 slow clients for 5 minutes.
func TestSoakSlowClients(t *testing.T) {
	soak(t)
	runSlowClients(t, 5*time.Minute)
}
