package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi/wsitest"
)

// testPassword is distinctive so that a leak into logs or pages is found
// by a plain substring search.
const testPassword = "pw-Wh1sky-Tango-9"

const (
	tenantID = "794493068765036544"
	domain   = "acme.example.com"
)

// newPBX is a simulated PBX with one tenant, one queue with an agent and a
// waiting caller, and one registered extension.
func newPBX(t *testing.T, tls bool) *wsitest.Server {
	t.Helper()
	s := wsitest.NewUnstartedServer()
	s.AddTenant(wsitest.Tenant{ID: tenantID, Name: "Acme", Domain: domain})
	s.AddUser(wsitest.User{Username: "admin", Password: testPassword, Role: wsitest.SystemAdmin})
	s.AddUser(wsitest.User{Username: "boss", Password: testPassword, Role: wsitest.TenantAdmin, TenantID: tenantID})
	s.AddQueue(tenantID, wsitest.Queue{Number: "8000", Name: "Sales", SLASeconds: 20})
	s.AddExtension(tenantID, "101")
	if tls {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	s.SetAgentState(tenantID, "8000", "101", "READY")
	s.SetExtensionOnline(tenantID, "101", true)
	s.Enqueue(tenantID, "8000", wsitest.Caller{Number: "5551234", Name: "Alice"})
	return s
}

// syncBuffer collects a program's output while tests read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// listenAddress finds exporter-toolkit's "Listening on" line in JSON logs.
func listenAddress(logs string) string {
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var l struct{ Msg, Address string }
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "Listening on" {
			return l.Address
		}
	}
	return ""
}

// exporter is the program running in-process with run().
type exporter struct {
	addr   string
	stderr *syncBuffer
	stop   func() int // cancels like SIGTERM and returns the exit code
}

func startExporter(t *testing.T, args ...string) *exporter {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncBuffer{}
	code := make(chan int, 1)
	args = append(args, "--web.listen-address=127.0.0.1:0", "--log.format=json")
	go func() { code <- run(ctx, args, io.Discard, stderr) }()

	var once sync.Once
	var exit int
	stop := func() int {
		once.Do(func() {
			cancel()
			select {
			case exit = <-code:
			case <-time.After(20 * time.Second):
				t.Errorf("the exporter did not stop within 20s after cancel")
			}
		})
		return exit
	}
	t.Cleanup(func() { stop() })

	var addr string
	eventually(t, 10*time.Second, "the exporter to listen", func() bool {
		select {
		case c := <-code:
			code <- c
			t.Fatalf("the exporter exited with %d: %s", c, stderr.String())
		default:
		}
		addr = listenAddress(stderr.String())
		return addr != ""
	})
	return &exporter{addr: addr, stderr: stderr, stop: stop}
}

// httpClient keeps no idle connections, so no goroutine outlives a test.
func httpClient(tlsCfg *tls.Config) *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: tlsCfg},
	}
}

func get(t *testing.T, c *http.Client, url string, auth ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(auth) == 2 {
		req.SetBasicAuth(auth[0], auth[1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func TestExporterAgainstPBX(t *testing.T) {
	clearEnv(t)
	pbx := newPBX(t, false)
	t.Setenv("PORTSIP_WSI_PASSWORD", testPassword)
	e := startExporter(t,
		"--wsi.url="+pbx.URL, "--wsi.username=admin", "--wsi.tenant="+tenantID,
		"--log.level=debug")
	c := httpClient(nil)
	base := "http://" + e.addr

	var metrics string
	eventually(t, 10*time.Second, "portsip_up 1 and the queue's waiting caller", func() bool {
		_, metrics = get(t, c, base+"/metrics")
		return strings.Contains(metrics, "\nportsip_up 1\n") &&
			strings.Contains(metrics, `portsip_queue_waiting_callers{kind="normal",queue="8000",tenant_id="`+tenantID+`"} 1`)
	})
	b := getBuildInfo()
	for _, want := range []string{
		`portsip_exporter_build_info{goversion="` + b.GoVersion + `",revision="` + b.Revision + `",version="` + b.Version + `"} 1`,
		"go_goroutines ",
		"process_start_time_seconds ",
		"promhttp_metric_handler_requests_total",
		`portsip_queue_agents{queue="8000",state="ready",tenant_id="` + tenantID + `"} 1`,
		`portsip_extensions_online{tenant_id="` + tenantID + `"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// Events after the snapshot arrive too.
	pbx.Enqueue(tenantID, "8000", wsitest.Caller{Number: "5559876"})
	eventually(t, 10*time.Second, "the second caller", func() bool {
		_, metrics = get(t, c, base+"/metrics")
		return strings.Contains(metrics, `portsip_queue_waiting_callers{kind="normal",queue="8000",tenant_id="`+tenantID+`"} 2`)
	})

	code, landing := get(t, c, base+"/")
	if code != http.StatusOK || !strings.Contains(landing, `href="/metrics"`) {
		t.Errorf("landing page: %d, want 200 with a link to /metrics: %s", code, landing)
	}
	// Every link of the landing page on this server leads somewhere.
	for _, m := range regexp.MustCompile(`href="(/[^"]*)"`).FindAllStringSubmatch(landing, -1) {
		if code, _ := get(t, c, base+m[1]); code != http.StatusOK {
			t.Errorf("the landing page links to %s, which answers %d", m[1], code)
		}
	}
	if code, _ := get(t, c, base+"/nothing-here"); code != http.StatusNotFound {
		t.Errorf("unknown path: %d, want 404", code)
	}
	for _, p := range []string{healthyPath, readyPath} {
		if code, _ := get(t, c, base+p); code != http.StatusOK {
			t.Errorf("%s: %d, want 200", p, code)
		}
	}

	// /-/ready does not follow the PBX: a lost session must still be
	// scraped so that portsip_up=0 reaches Prometheus.
	pbx.SetAuthError("maintenance")
	pbx.DropSessions()
	eventually(t, 10*time.Second, "portsip_up 0", func() bool {
		_, metrics = get(t, c, base+"/metrics")
		return strings.Contains(metrics, "\nportsip_up 0\n")
	})
	if code, _ := get(t, c, base+readyPath); code != http.StatusOK {
		t.Errorf("%s with the PBX down: %d, want 200", readyPath, code)
	}

	if code := e.stop(); code != 0 {
		t.Errorf("exit code after cancel = %d, want 0", code)
	}
	logs := e.stderr.String()
	for name, text := range map[string]string{"logs": logs, "/metrics": metrics, "landing page": landing} {
		if strings.Contains(text, testPassword) {
			t.Errorf("the password appears in the %s", name)
		}
	}
	if !strings.Contains(logs, `"level":"DEBUG"`) {
		t.Errorf("--log.level=debug logged no debug line; the password search above proves little")
	}
	if err := pbx.WaitFor(context.Background(), func() bool { return pbx.Sessions() == 0 }); err != nil {
		t.Errorf("the WSI session is still open after shutdown")
	}
}

func TestTelemetryPath(t *testing.T) {
	clearEnv(t)
	pbx := newPBX(t, false)
	t.Setenv("PORTSIP_WSI_PASSWORD", testPassword)
	e := startExporter(t, "--wsi.url="+pbx.URL, "--wsi.username=boss", "--wsi.domain="+domain,
		"--web.telemetry-path=/portsip/metrics")
	c := httpClient(nil)
	code, body := get(t, c, "http://"+e.addr+"/portsip/metrics")
	if code != http.StatusOK || !strings.Contains(body, "portsip_up ") {
		t.Errorf("/portsip/metrics: %d, want 200 with portsip_up", code)
	}
	if code, _ := get(t, c, "http://"+e.addr+"/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics: %d, want 404 with another telemetry path", code)
	}
	if _, landing := get(t, c, "http://"+e.addr+"/"); !strings.Contains(landing, `href="/portsip/metrics"`) {
		t.Errorf("the landing page does not link to the telemetry path")
	}
}

// scrapeHash is bcrypt("scrape-pw"), as exporter-toolkit's web config wants.
const scrapeHash = "$2a$10$1MSuNE5L.HwDLXCT5oiTweAU9GDEdCzKLKOLCyJo9ViIpIQFaWyPW"

func TestWebConfigBasicAuthAndTLS(t *testing.T) {
	clearEnv(t)
	pbx := newPBX(t, false)
	t.Setenv("PORTSIP_WSI_PASSWORD", testPassword)
	wsiArgs := []string{"--wsi.url=" + pbx.URL, "--wsi.username=admin", "--wsi.tenant=" + tenantID}

	t.Run("basic auth", func(t *testing.T) {
		cfg := writeFile(t, "web.yml", "basic_auth_users:\n  prometheus: "+scrapeHash+"\n")
		e := startExporter(t, append(wsiArgs, "--web.config.file="+cfg)...)
		c := httpClient(nil)
		url := "http://" + e.addr + "/metrics"
		if code, _ := get(t, c, url); code != http.StatusUnauthorized {
			t.Errorf("without credentials: %d, want 401", code)
		}
		if code, _ := get(t, c, url, "prometheus", "wrong"); code != http.StatusUnauthorized {
			t.Errorf("with a wrong password: %d, want 401", code)
		}
		if code, body := get(t, c, url, "prometheus", "scrape-pw"); code != http.StatusOK || !strings.Contains(body, "portsip_up ") {
			t.Errorf("with credentials: %d, want 200 with metrics", code)
		}
	})

	t.Run("TLS", func(t *testing.T) {
		certPEM, keyPEM := selfSigned(t)
		cert := writeFile(t, "cert.pem", string(certPEM))
		key := writeFile(t, "key.pem", string(keyPEM))
		cfg := writeFile(t, "web.yml", "tls_server_config:\n  cert_file: "+cert+"\n  key_file: "+key+"\n")
		e := startExporter(t, append(wsiArgs, "--web.config.file="+cfg)...)

		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(certPEM)
		code, body := get(t, httpClient(&tls.Config{RootCAs: pool}), "https://"+e.addr+"/metrics")
		if code != http.StatusOK || !strings.Contains(body, "portsip_up ") {
			t.Errorf("over TLS: %d, want 200 with metrics", code)
		}
		// Plain HTTP to the TLS port gets no metrics.
		resp, err := httpClient(nil).Get("http://" + e.addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), "portsip_up") {
				t.Errorf("plain HTTP to the TLS listener served metrics")
			}
		}
	})
}

func TestListenAddressInUse(t *testing.T) {
	clearEnv(t)
	pbx := newPBX(t, false)
	t.Setenv("PORTSIP_WSI_PASSWORD", testPassword)
	e := startExporter(t, "--wsi.url="+pbx.URL, "--wsi.username=admin", "--wsi.tenant="+tenantID)

	var stderr bytes.Buffer
	code := run(context.Background(), []string{"--wsi.url=" + pbx.URL, "--wsi.username=admin", "--wsi.tenant=" + tenantID,
		"--web.listen-address=" + e.addr, "--log.format=json"}, io.Discard, &stderr)
	if code != exitFailed {
		t.Errorf("exit code = %d, want %d", code, exitFailed)
	}
	// The flag, the reason, and what to do, with an address to try.
	host, port, _ := net.SplitHostPort(e.addr)
	p, _ := strconv.Atoi(port)
	for _, want := range []string{
		"--web.listen-address=" + e.addr + ": address already in use",
		"choose another address, e.g. --web.listen-address=" + net.JoinHostPort(host, strconv.Itoa(p+1)),
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr = %q, want %q", stderr.String(), want)
		}
	}
}

// TestShutdownFinishesInFlightScrape holds a scrape inside the handler,
// stops the exporter, and expects the scrape to be answered in full
// before the program exits 0.
func TestShutdownFinishesInFlightScrape(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	wrapMetricsHandler = func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Hold") != "" {
				close(entered)
				<-release
			}
			h.ServeHTTP(w, r)
		})
	}
	defer func() { wrapMetricsHandler = func(h http.Handler) http.Handler { return h } }()

	clearEnv(t)
	pbx := newPBX(t, false)
	t.Setenv("PORTSIP_WSI_PASSWORD", testPassword)
	e := startExporter(t, "--wsi.url="+pbx.URL, "--wsi.username=admin", "--wsi.tenant="+tenantID)

	type result struct {
		code int
		body string
		err  error
	}
	scraped := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+e.addr+"/metrics", nil)
		req.Header.Set("X-Hold", "1")
		resp, err := httpClient(nil).Do(req)
		if err != nil {
			scraped <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		scraped <- result{resp.StatusCode, string(b), err}
	}()
	<-entered

	exited := make(chan int, 1)
	go func() { exited <- e.stop() }()
	// Shutdown has begun once the listener refuses new connections.
	eventually(t, 10*time.Second, "the listener to close", func() bool {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	select {
	case code := <-exited:
		t.Fatalf("exited (%d) with a scrape in flight", code)
	default:
	}

	close(release)
	r := <-scraped
	if r.err != nil || r.code != http.StatusOK || !strings.Contains(r.body, "portsip_up ") {
		t.Errorf("in-flight scrape: %d, %v; want 200 with metrics", r.code, r.err)
	}
	if code := <-exited; code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
}

// TestTLSToPBX runs the exporter against a wss:// PBX with a self-signed
// certificate: refused by default, trusted with its CA, and accepted with
// the insecure switch, which is logged as a warning.
func TestTLSToPBX(t *testing.T) {
	clearEnv(t)
	pbx := newPBX(t, true)
	t.Setenv("PORTSIP_WSI_PASSWORD", testPassword)
	args := []string{"--wsi.url=" + pbx.URL, "--wsi.username=admin", "--wsi.tenant=" + tenantID}
	c := httpClient(nil)
	up := func(e *exporter) bool {
		_, body := get(t, c, "http://"+e.addr+"/metrics")
		return strings.Contains(body, "\nportsip_up 1\n")
	}

	t.Run("untrusted", func(t *testing.T) {
		e := startExporter(t, args...)
		eventually(t, 10*time.Second, "a logged dial failure", func() bool {
			return strings.Contains(e.stderr.String(), "certificate signed by unknown authority")
		})
		if up(e) {
			t.Errorf("portsip_up 1 with an untrusted certificate")
		}
		if n := pbx.AuthAttempts(); n != 0 {
			t.Errorf("%d auth attempts: the password went to an untrusted PBX", n)
		}
	})

	t.Run("CA file", func(t *testing.T) {
		ca := writeFile(t, "ca.pem", string(pbx.CACertPEM()))
		e := startExporter(t, append(args, "--wsi.tls.ca-file="+ca)...)
		eventually(t, 10*time.Second, "portsip_up 1", func() bool { return up(e) })
		if strings.Contains(e.stderr.String(), `"level":"WARN"`) {
			t.Errorf("a verified connection logged a warning:\n%s", e.stderr.String())
		}
	})

	t.Run("insecure", func(t *testing.T) {
		e := startExporter(t, append(args, "--wsi.tls.insecure-skip-verify")...)
		eventually(t, 10*time.Second, "portsip_up 1", func() bool { return up(e) })
		warned := false
		for _, line := range strings.Split(e.stderr.String(), "\n") {
			if strings.Contains(line, `"level":"WARN"`) && strings.Contains(line, "verification") {
				warned = true
			}
		}
		if !warned {
			t.Errorf("no warning about disabled verification:\n%s", e.stderr.String())
		}
	})
}
