package bench

import (
	"testing"

	"go.uber.org/goleak"
)

// The loopback benchmarks start a simulated PBX and a client; none may
// leave a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
