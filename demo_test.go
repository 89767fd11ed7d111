package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
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

	if code := e.stop(); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
	if !strings.Contains(e.stderr.String(), "demo: simulated PBX with live traffic") {
		t.Errorf("the demo does not say what it runs:\n%s", e.stderr.String())
	}
}
