package main

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

var queueTenant = regexp.MustCompile(`(?m)^portsip_queue_info\{.*tenant_id="([^"]+)"`)

var eventsTotal = regexp.MustCompile(`(?m)^portsip_wsi_events_total\{event_type="queue_caller_status"\} (\d+)$`)

// TestDemo runs "demo" in-process: it must come up on its own simulated
// PBX, with both tenants and live traffic, and stop cleanly.
func TestDemo(t *testing.T) {
	clearEnv(t)
	e := startExporter(t, "demo", "--demo.seed=42")
	c := httpClient(nil)
	url := "http://" + e.addr + "/metrics"

	var body string
	eventually(t, 10*time.Second, "portsip_up 1 with the demo's queues", func() bool {
		_, body = get(t, c, url)
		return strings.Contains(body, "\nportsip_up 1\n") && strings.Count(body, "\nportsip_queue_info{") >= 4
	})
	tenants := map[string]bool{}
	for _, m := range queueTenant.FindAllStringSubmatch(body, -1) {
		tenants[m[1]] = true
	}
	if len(tenants) < 2 {
		t.Errorf("queues of %d tenants, want at least 2:\n%s", len(tenants), body)
	}

	// Callers keep arriving and leaving: the counter moves.
	count := func() int {
		_, body := get(t, c, url)
		m := eventsTotal.FindStringSubmatch(body)
		if m == nil {
			return 0
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	first := count()
	eventually(t, 30*time.Second, "queue_caller_status events from the traffic", func() bool { return count() > first })

	// Whatever the demo has shown by now, the README describes as it is.
	_, body = get(t, c, url)
	checkREADMEMetrics(t, body)

	if code := e.stop(); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
	for _, want := range []string{"demo: simulated PBX with live traffic", "demo: metrics at " + url} {
		if !strings.Contains(e.stderr.String(), want) {
			t.Errorf("the demo's log lacks %q:\n%s", want, e.stderr.String())
		}
	}
}

func TestMetricsURL(t *testing.T) {
	certPEM, keyPEM := selfSigned(t)
	tlsCfg := writeFile(t, "web.yml", "tls_server_config:\n  cert_file: "+writeFile(t, "c.pem", string(certPEM))+"\n  key_file: "+writeFile(t, "k.pem", string(keyPEM))+"\n")
	authOnly := writeFile(t, "auth.yml", "basic_auth_users:\n  p: "+scrapeHash+"\n")
	for _, tt := range []struct {
		addr, config, want string
	}{
		{"0.0.0.0:9887", "", "http://localhost:9887/metrics"},
		{"[::]:9887", "", "http://localhost:9887/metrics"},
		{"127.0.0.1:1234", "", "http://127.0.0.1:1234/metrics"},
		{"127.0.0.1:1234", authOnly, "http://127.0.0.1:1234/metrics"},
		{"127.0.0.1:1234", tlsCfg, "https://127.0.0.1:1234/metrics"},
	} {
		addr, err := net.ResolveTCPAddr("tcp", tt.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := metricsURL(addr, webConfig{ConfigFile: tt.config, TelemetryPath: "/metrics"}); got != tt.want {
			t.Errorf("metricsURL(%s, %q) = %s, want %s", tt.addr, tt.config, got, tt.want)
		}
	}
}

// With --demo.quirks the PBX first refuses the administrator its global
// topics but extension management, then grants them and drops the
// session: the exporter comes back with everything.
func TestDemoQuirks(t *testing.T) {
	clearEnv(t)
	defer func(d time.Duration) { adminRefusedFor = d }(adminRefusedFor)
	adminRefusedFor = 2 * time.Second
	e := startExporter(t, "demo", "--demo.quirks")
	c := httpClient(nil)
	url := "http://" + e.addr + "/metrics"

	eventually(t, 20*time.Second, "the queues after the administrator is granted the topics", func() bool {
		_, body := get(t, c, url)
		return strings.Contains(body, "\nportsip_up 1\n") && strings.Count(body, "\nportsip_queue_info{") >= 4 &&
			strings.Contains(body, `portsip_wsi_subscription_active{topic="global_queue_events"} 1`)
	})
	_, body := get(t, c, url)
	if m := attempts.FindStringSubmatch(body); m == nil || m[1] == "1" {
		t.Errorf("connection attempts %v, want a second session after the grant", m)
	}
	// Every reading shows in its counter.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, body := get(t, c, url)
		var still []string
		for _, q := range wsi.Quirks {
			if !regexp.MustCompile(`(?m)^portsip_wsi_quirks_total\{quirk="` + q + `"\} [1-9]`).MatchString(body) {
				still = append(still, q)
			}
		}
		if len(still) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s these quirks were not counted: %v", still)
		}
	}
	if code := e.stop(); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
	logs := e.stderr.String()
	for _, want := range []string{`"quirks":true`, `the PBX refused a subscription`, `"topic":"global_queue_events"`, "every quirk"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the demo's log lacks %s:\n%s", want, logs)
		}
	}
}

var attempts = regexp.MustCompile(`(?m)^portsip_wsi_connection_attempts_total (\d+)$`)

// The incident scenario starts calm like the default; its course is
// tested on the simulated clock (TestIncidentAlerts).
func TestDemoIncidentStarts(t *testing.T) {
	clearEnv(t)
	e := startExporter(t, "demo", "--demo.scenario=incident")
	c := httpClient(nil)
	url := "http://" + e.addr + "/metrics"
	eventually(t, 10*time.Second, "portsip_up 1 with the demo's queues", func() bool {
		_, body := get(t, c, url)
		return strings.Contains(body, "\nportsip_up 1\n") && strings.Count(body, "\nportsip_queue_info{") >= 4
	})
	if code := e.stop(); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
	if logs := e.stderr.String(); !strings.Contains(logs, `"scenario":"incident"`) || !strings.Contains(logs, "demo: incident from 2m") {
		t.Errorf("the demo's log does not tell the scenario:\n%s", logs)
	}
}
