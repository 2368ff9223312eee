//go:build !race

package notify

const latencyFactor = 1
