package reliability

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// atExit runs after every test of the package (the program they share is
// removed so).
var atExit []func()

// Every test starts a client, a PBX and an HTTP server: none may outlive it.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, f := range atExit {
		f()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
