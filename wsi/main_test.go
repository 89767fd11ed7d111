package wsi

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The Client starts a reader and a pinger per session; every test must
// leave none behind.
func TestMain(m *testing.M) {
	// Dead-peer tests need ping periods far below what an operator may
	// configure.
	minPingInterval = time.Millisecond
	goleak.VerifyTestMain(m)
}
