package wsi

import (
	"testing"

	"go.uber.org/goleak"
)

// The Client starts a reader and a pinger per session; every test must
// leave none behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
