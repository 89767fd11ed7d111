package reliability

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test starts a client, a PBX and an HTTP server: none may outlive it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
