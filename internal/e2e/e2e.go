// Package e2e runs the real programs the end-to-end tests of the rules and
// dashboards need: the exporter built from this module, Prometheus,
// Alertmanager. Each runs in the test's temporary directory on a loopback
// port and is stopped by the test's cleanup.
package e2e

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// NeedTool returns the path of the first of names found on PATH (Debian
// calls Alertmanager prometheus-alertmanager, upstream alertmanager). It
// skips the test when none is installed, except in CI (CI set), where that
// is a failure.
func NeedTool(t testing.TB, names ...string) string {
	t.Helper()
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found on PATH (CI is set; install the Debian packages prometheus and prometheus-alertmanager)", strings.Join(names, " or "))
	}
	t.Skipf("%s not found on PATH", strings.Join(names, " or "))
	return ""
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// BuildExporter builds the exporter from the module's root into dir.
func BuildExporter(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "portsip_exporter")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = moduleRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// moduleRoot is the directory of go.mod above the test's working directory.
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

var client = &http.Client{Timeout: 10 * time.Second}

// Get fetches a URL.
func Get(u string) ([]byte, int, error) {
	resp, err := client.Get(u)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}

// SilentListener accepts TCP connections on loopback and never says a
// word: a PBX whose TLS handshake or WebSocket upgrade hangs. accepted
// counts the connections; cleanup closes them all.
func SilentListener(t testing.TB) (addr string, accepted func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done // no Accept runs now: conns is ours
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(conns)
	}
}
