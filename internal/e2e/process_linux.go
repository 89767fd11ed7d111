package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Process is a program started for the test, stopped on cleanup.
type Process struct {
	Name string
	Pid  int // the process's id, for /proc
	log  string
	done chan struct{}
}

// Start runs a program with its output in dir/<name>.log and env added to
// the test's environment. Cleanup stops it with SIGTERM (SIGKILL after
// 10 s) and shows the log's tail if the test failed.
func Start(t testing.TB, dir, name string, env []string, args ...string) *Process {
	t.Helper()
	p := &Process{Name: name, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	logf, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf // files: no copying goroutines
	// Should the test binary die (a -timeout panic), take the child along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p.Pid = cmd.Process.Pid
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-p.done
		}
		logf.Close()
		if t.Failed() {
			t.Logf("%s log (last lines):\n%s", name, p.Tail(30))
		}
	})
	return p
}

// Exited reports whether the program has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Log returns the program's output so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// Tail returns the last n lines of the program's output.
func (p *Process) Tail(n int) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitFor polls cond until it holds; it fails the test when one of procs
// exits or the timeout passes first.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool, procs ...*Process) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		for _, p := range procs {
			if p.Exited() {
				t.Fatalf("%s exited while waiting for %s:\n%s", p.Name, what, p.Tail(30))
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Prometheus starts Prometheus on a loopback port with config (a
// prometheus.yml, checked with promtool first) and its data in dir, and
// returns its URL once it is ready.
func Prometheus(t testing.TB, dir, config string) (string, *Process) {
	t.Helper()
	prometheus := NeedTool(t, "prometheus")
	promtool := NeedTool(t, "promtool")
	configFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configFile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "config", configFile).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s\n%s", err, out, config)
	}
	addr := FreeAddr(t)
	p := Start(t, dir, "prometheus", nil, prometheus,
		"--config.file="+configFile,
		"--storage.tsdb.path="+filepath.Join(dir, "prometheus-data"),
		"--web.listen-address="+addr,
		"--log.level=warn")
	u := "http://" + addr
	WaitFor(t, "Prometheus ready", time.Minute, func() bool {
		_, code, err := Get(u + "/-/ready")
		return err == nil && code == http.StatusOK
	}, p)
	return u, p
}
