//go:build linux

package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"

	"github.com/portsip-exporter/portsip_exporter/internal/e2e"
	"github.com/portsip-exporter/portsip_exporter/wsi/wsitest"
)

// The end-to-end test runs the whole alerting path with real programs: the
// exporter against a simulated PBX, Prometheus scraping it with the
// shipped rules, Alertmanager with the shipped alertmanager.yml, whose
// receivers are this test's webhook.
//
// To take about a minute rather than a quarter of an hour, every "for" of
// the rules is twelve times shorter (2m is 10s) and Alertmanager waits a
// second before sending; the expressions, labels and routes are the
// shipped ones.

const (
	e2eTenant = "676398719834259456"
	e2eQueue  = "8001"
	e2eUser   = "admin"
	e2ePass   = "e2e-secret"
)

// notification is one alert of a webhook notification, as a receiver got it.
type notification struct {
	receiver, status string
	labels           map[string]string
}

// webhook is the receivers' end: it records every alert notified.
type webhook struct {
	mu  sync.Mutex
	got []notification
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var msg struct {
		Alerts []struct {
			Status string            `json:"status"`
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range msg.Alerts {
		w.got = append(w.got, notification{strings.TrimPrefix(r.URL.Path, "/"), a.Status, a.Labels})
	}
}

// received returns the notifications of an alert to a receiver.
func (w *webhook) received(receiver, alertname, status string) []notification {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []notification
	for _, n := range w.got {
		if n.receiver == receiver && n.labels["alertname"] == alertname && n.status == status {
			out = append(out, n)
		}
	}
	return out
}

func (w *webhook) anyOf(alertname string) []notification {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []notification
	for _, n := range w.got {
		if n.labels["alertname"] == alertname {
			out = append(out, n)
		}
	}
	return out
}

// fastRules is the shipped rules file with every "for" twelve times
// shorter.
func fastRules(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	forMinutes := regexp.MustCompile(`(?m)^(\s+for: )(\d+)m$`)
	n := 0
	out := forMinutes.ReplaceAllStringFunc(string(b), func(m string) string {
		n++
		sub := forMinutes.FindStringSubmatch(m)
		minutes, _ := strconv.Atoi(sub[2])
		return fmt.Sprintf("%s%ds", sub[1], minutes*5)
	})
	if n == 0 {
		t.Fatal("no \"for: Nm\" in the rules to shorten")
	}
	return out
}

// probeRules are two alerts of the test's own, firing 10 s after the
// session is lost, when PortsipWSIDisconnected (for: 2m, 10 s here) already
// fires. The first is named like the queue alerts, which the inhibition
// mutes; the second is like it in every other way, and nothing mutes it:
// it shows the first would have been delivered.
const probeRules = `groups:
  - name: e2e.probes
    rules:
      - alert: PortsipQueueE2EProbe
        expr: portsip_up{job="portsip"} == 0
        for: 20s
        labels: {severity: warning, tenant_id: "` + e2eTenant + `", queue: "` + e2eQueue + `"}
      - alert: E2EControlProbe
        expr: portsip_up{job="portsip"} == 0
        for: 20s
        labels: {severity: warning, tenant_id: "` + e2eTenant + `", queue: "` + e2eQueue + `"}
`

// alertmanagerConfig is the shipped alertmanager.yml with every webhook
// pointed at hook (path: the receiver's name) and the waits shortened.
func alertmanagerConfig(t *testing.T, hook string) string {
	t.Helper()
	b, err := os.ReadFile(alertmanagerFile)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	receivers, _ := cfg["receivers"].([]any)
	hooks := 0
	for _, r := range receivers {
		r := r.(map[any]any)
		for _, wc := range r["webhook_configs"].([]any) {
			wc.(map[any]any)["url"] = hook + "/" + r["name"].(string)
			hooks++
		}
	}
	if hooks == 0 {
		t.Fatal("no webhook receivers in alertmanager.yml")
	}
	short := map[string]string{"group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h"}
	var shorten func(route map[any]any, root bool)
	shorten = func(route map[any]any, root bool) {
		for k, v := range short {
			if _, ok := route[k]; ok || root {
				route[k] = v
			}
		}
		routes, _ := route["routes"].([]any)
		for _, r := range routes {
			shorten(r.(map[any]any), false)
		}
	}
	shorten(cfg["route"].(map[any]any), true)
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// amAlert is an alert as Alertmanager's API lists it.
type amAlert struct {
	Labels map[string]string `json:"labels"`
	Status struct {
		State       string   `json:"state"`
		InhibitedBy []string `json:"inhibitedBy"`
	} `json:"status"`
}

func amAlerts(amURL string) ([]amAlert, error) {
	b, code, err := e2e.Get(amURL + "/api/v2/alerts")
	if err != nil || code != http.StatusOK {
		return nil, fmt.Errorf("GET alerts: %d %v", code, err)
	}
	var alerts []amAlert
	return alerts, json.Unmarshal(b, &alerts)
}

func TestAlertingEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: a minute of Prometheus and Alertmanager")
	}
	alertmanager := e2e.NeedTool(t, "prometheus-alertmanager", "alertmanager")
	amtool := e2e.NeedTool(t, "amtool")
	dir := t.TempDir()

	// The receivers.
	hook := &webhook{}
	hookSrv := httptest.NewServer(hook)
	defer hookSrv.Close()

	// The PBX: one tenant with a named queue and no agents.
	pbx := wsitest.NewUnstartedServer()
	pbx.AddTenant(wsitest.Tenant{ID: e2eTenant, Name: "Acme", Domain: "acme.test"})
	pbx.AddQueue(e2eTenant, wsitest.Queue{Number: e2eQueue, Name: "Sales", SLASeconds: 20})
	pbx.AddUser(wsitest.User{Username: e2eUser, Password: e2ePass, Role: wsitest.SystemAdmin})
	pbx.Start()
	defer pbx.Close()

	bin := e2e.BuildExporter(t, dir)
	exporterAddr := e2e.FreeAddr(t)
	exporter := e2e.Start(t, dir, "exporter", []string{"PORTSIP_WSI_PASSWORD=" + e2ePass}, bin,
		"--wsi.url="+pbx.URL, "--wsi.username="+e2eUser, "--wsi.tenant="+e2eTenant,
		"--web.listen-address="+exporterAddr)

	// Alertmanager with the shipped configuration, checked as shipped.
	amFile := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(amFile, []byte(alertmanagerConfig(t, hookSrv.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(amtool, "check-config", amFile).CombinedOutput(); err != nil {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
	amAddr := e2e.FreeAddr(t)
	amURL := "http://" + amAddr
	am := e2e.Start(t, dir, "alertmanager", nil, alertmanager,
		"--config.file="+amFile,
		"--storage.path="+filepath.Join(dir, "alertmanager-data"),
		"--web.listen-address="+amAddr,
		"--cluster.listen-address=", // no gossip port: one instance
		"--log.level=warn")
	e2e.WaitFor(t, "Alertmanager ready", time.Minute, func() bool {
		_, code, err := e2e.Get(amURL + "/-/ready")
		return err == nil && code == http.StatusOK
	}, am)

	// Prometheus with the rules, alerting to it.
	rules := filepath.Join(dir, "portsip.rules.yml")
	probes := filepath.Join(dir, "probes.rules.yml")
	if err := os.WriteFile(rules, []byte(fastRules(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(probes, []byte(probeRules), 0o644); err != nil {
		t.Fatal(err)
	}
	_, prom := e2e.Prometheus(t, dir, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q, %q]
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
scrape_configs:
  - job_name: portsip
    static_configs:
      - targets: [%q]
`, rules, probes, amAddr, exporterAddr))
	procs := []*e2e.Process{exporter, am, prom}

	// Once the exporter has subscribed, a call record names the tenant and
	// a caller waits in the queue, which has no agent.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pbx.WaitFor(ctx, func() bool { return len(pbx.Subscriptions()) >= 5 }); err != nil {
		t.Fatalf("the exporter did not subscribe: %v\n%s", err, exporter.Tail(20))
	}
	now := time.Now()
	pbx.EndCall(e2eTenant, wsitest.CDR{
		Call:  wsitest.Call{Direction: "inbound", Caller: "sip:0123456@acme.test", Callee: "sip:8001@acme.test"},
		Start: now.Add(-time.Minute), Ring: now.Add(-time.Minute), Answered: now.Add(-50 * time.Second), Ended: now,
		CallStatus: "answered", EndedReason: "caller_disconnect",
	})
	pbx.Enqueue(e2eTenant, e2eQueue, wsitest.Caller{Number: "0123456", Name: "Thomas Young"})

	// The page, with the names of the queue and the tenant.
	e2e.WaitFor(t, "PortsipQueueNoAgentsReady at the pager", time.Minute, func() bool {
		return len(hook.received("pager", "PortsipQueueNoAgentsReady", "firing")) > 0
	}, procs...)
	n := hook.received("pager", "PortsipQueueNoAgentsReady", "firing")[0]
	for k, want := range map[string]string{"queue": e2eQueue, "queue_name": "Sales", "tenant_id": e2eTenant, "tenant_name": "Acme", "severity": "critical"} {
		if n.labels[k] != want {
			t.Errorf("PortsipQueueNoAgentsReady: label %s=%q, want %q (labels %v)", k, n.labels[k], want, n.labels)
		}
	}

	// The PBX goes away: the exporter's session is lost.
	pbx.Stop()
	e2e.WaitFor(t, "PortsipWSIDisconnected at the pager", time.Minute, func() bool {
		return len(hook.received("pager", "PortsipWSIDisconnected", "firing")) > 0
	}, procs...)
	// The queue alert stopped with the session (its gauges are gone), and
	// the probe named like a queue alert fires but is muted: Alertmanager
	// holds it as suppressed by the disconnection while the control probe,
	// in every other way the same, reaches the tickets receiver.
	e2e.WaitFor(t, "control probe at tickets", time.Minute, func() bool {
		return len(hook.received("tickets", "E2EControlProbe", "firing")) > 0
	}, procs...)
	var probe *amAlert
	e2e.WaitFor(t, "queue probe suppressed in Alertmanager", 30*time.Second, func() bool {
		alerts, err := amAlerts(amURL)
		if err != nil {
			return false
		}
		for i, a := range alerts {
			if a.Labels["alertname"] == "PortsipQueueE2EProbe" && a.Status.State == "suppressed" && len(a.Status.InhibitedBy) > 0 {
				probe = &alerts[i]
				return true
			}
		}
		return false
	}, procs...)
	// Give a delivery that should not happen the time one would take (a
	// group_wait and a group_interval after the control's).
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		if got := hook.anyOf("PortsipQueueE2EProbe"); len(got) > 0 {
			t.Fatalf("the queue probe reached %s although PortsipWSIDisconnected fires: %v", got[0].receiver, got[0].labels)
		}
		time.Sleep(250 * time.Millisecond)
	}
	alerts, err := amAlerts(amURL)
	if err != nil {
		t.Fatal(err)
	}
	var disconnected []string
	for _, a := range alerts {
		if a.Labels["alertname"] == "PortsipWSIDisconnected" {
			disconnected = append(disconnected, a.Labels["instance"])
		}
	}
	if len(disconnected) == 0 {
		t.Errorf("Alertmanager has no PortsipWSIDisconnected to inhibit the probe (inhibited by %v)", probe.Status.InhibitedBy)
	}
	if !slices.Contains(disconnected, exporterAddr) {
		t.Errorf("PortsipWSIDisconnected for %v, want the exporter %s", disconnected, exporterAddr)
	}
}
