//go:build race

package notify

// latencyFactor loosens the latency target under the race detector, which slows the pure-Go
// SQLite driver several times over.
const latencyFactor = 3
