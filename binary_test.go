package main

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildBinary builds the real program, version injected as the Dockerfile
// does, into a temporary directory. It keeps the default build flags
// (no -trimpath, cgo as configured) so the build reuses the test's cache.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), programName)
	cmd := exec.Command("go", "build",
		"-ldflags", "-X main.version=9.9.9-test -X main.revision=abc123", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runningBinary is the built program running against a PBX, listening on
// addr. The test's cleanup kills it if it is still running.
type runningBinary struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan error
	addr   string
}

func startBinary(t *testing.T, bin, pbxURL string) *runningBinary {
	t.Helper()
	return startCommand(t, exec.Command(bin, exporterArgs(pbxURL)...))
}

// exporterArgs run the exporter against the PBX at pbxURL.
func exporterArgs(pbxURL string) []string {
	return []string{"--wsi.url=" + pbxURL, "--wsi.username=admin", "--wsi.tenant=" + tenantID,
		"--web.listen-address=127.0.0.1:0", "--log.format=json"}
}

// startCommand starts cmd, which runs the exporter, and waits for it to
// listen.
func startCommand(t *testing.T, cmd *exec.Cmd) *runningBinary {
	t.Helper()
	b := &runningBinary{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan error, 1)}
	b.cmd.Env = []string{"PORTSIP_WSI_PASSWORD=" + testPassword}
	b.cmd.Stderr = b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// exited is buffered: the waiter never blocks, and once the cleanup
	// kills a binary still running, it ends.
	go func() { b.exited <- b.cmd.Wait() }()
	t.Cleanup(func() { b.cmd.Process.Kill() })
	eventually(t, 10*time.Second, "the binary to listen", func() bool {
		b.addr = listenAddress(b.stderr.String())
		return b.addr != ""
	})
	return b
}

// TestBinarySignals runs the built binary against the simulated PBX and
// stops it the way an init system does.
func TestBinarySignals(t *testing.T) {
	bin := buildBinary(t)

	out, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.Contains(string(out), "version 9.9.9-test (revision: abc123)") {
		t.Errorf("--version = %q, %v; want the injected version and revision", out, err)
	}

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			pbx := newPBX(t, false)
			b := startBinary(t, bin, pbx.URL)
			stderr, addr := b.stderr, b.addr
			c := httpClient(nil)
			eventually(t, 10*time.Second, "portsip_up 1", func() bool {
				_, body := get(t, c, "http://"+addr+"/metrics")
				return strings.Contains(body, "\nportsip_up 1\n")
			})
			_, body := get(t, c, "http://"+addr+"/metrics")
			if !strings.Contains(body, `portsip_exporter_build_info{goversion="`) || !strings.Contains(body, `revision="abc123",version="9.9.9-test"} 1`) {
				t.Errorf("build_info does not carry the injected version")
			}

			if err := b.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-b.exited:
				if err != nil {
					t.Errorf("exit after %s: %v, want status 0\n%s", sig, err, stderr.String())
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("still running 15s after %s", sig)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := pbx.WaitFor(ctx, func() bool { return pbx.Sessions() == 0 }); err != nil {
				t.Errorf("the PBX still has a session after the exporter exited")
			}
			if strings.Contains(stderr.String(), testPassword) {
				t.Errorf("the password appears in the logs")
			}
		})
	}
}

// TestBinarySecondSignal holds a request in flight so that the graceful
// shutdown has to wait, and checks that a second SIGINT ends the program
// at once instead of leaving the operator waiting on a Ctrl-C that does
// nothing.
func TestBinarySecondSignal(t *testing.T) {
	bin := buildBinary(t)
	pbx := newPBX(t, false)
	b := startBinary(t, bin, pbx.URL)
	stderr, addr := b.stderr, b.addr
	// A request whose body never arrives keeps its connection active, so
	// the shutdown waits for it up to its timeout.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc"); err != nil {
		t.Fatal(err)
	}
	c := httpClient(nil)
	eventually(t, 10*time.Second, "the held request in the handler", func() bool {
		_, body := get(t, c, "http://"+addr+"/metrics")
		return strings.Contains(body, "\npromhttp_metric_handler_requests_in_flight 2\n")
	})

	if err := b.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the shutdown to start", func() bool {
		return strings.Contains(stderr.String(), `"msg":"shutting down"`)
	})
	select {
	case err := <-b.exited:
		t.Fatalf("exited (%v) without waiting for the held request: the test proves nothing", err)
	default:
	}

	if err := b.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-b.exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Success() {
			t.Errorf("exit after the second SIGINT: %v, want killed by the signal", err)
		}
	case <-time.After(2 * time.Second):
		// Without it, the shutdown waits for the held request for
		// shutdownTimeout.
		t.Fatalf("still running 2s after the second SIGINT")
	}
}

// TestBinaryIdleConnectionFlood replays "20,000 idle connections used every
// file descriptor, and the exporter could then not reconnect to the PBX"
// with a limit of 64 descriptors and 300 connections: the exporter closes
// the idle ones beyond its bound (half the limit), still serves a scrape,
// and reconnects when the PBX drops the session.
func TestBinaryIdleConnectionFlood(t *testing.T) {
	const fdLimit, flood = 64, 300
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("counts descriptors in /proc")
	}
	bin := buildBinary(t)
	pbx := newPBX(t, false)
	// ulimit lowers both limits, so the runtime cannot raise the soft one.
	script := "ulimit -n " + strconv.Itoa(fdLimit) + ` && exec "$0" "$@"`
	b := startCommand(t, exec.Command("sh", append([]string{"-c", script, bin}, exporterArgs(pbx.URL)...)...))
	c := httpClient(nil)
	up := func() bool {
		_, body := get(t, c, "http://"+b.addr+"/metrics")
		return strings.Contains(body, "\nportsip_up 1\n")
	}
	eventually(t, 10*time.Second, "portsip_up 1", up)

	closed := openIdle(t, b.addr, flood)
	eventually(t, 10*time.Second, "the idle connections beyond the bound closed", func() bool {
		return closed.Load() >= flood-fdLimit/2
	})
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(b.cmd.Process.Pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	if len(fds) >= fdLimit-4 {
		t.Errorf("the exporter holds %d descriptors of %d", len(fds), fdLimit)
	}

	pbx.DropSessions()
	eventually(t, 10*time.Second, "the session dropped", func() bool { return !up() })
	eventually(t, 15*time.Second, "the exporter to reconnect", up)
	if logs := b.stderr.String(); strings.Contains(logs, "too many open files") {
		t.Errorf("the exporter ran out of descriptors:\n%s", logs)
	}
}
