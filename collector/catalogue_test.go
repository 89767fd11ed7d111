package collector

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// catalogue is DESIGN.md's metric catalogue without build_info (main
// registers that), plus this package's drop counter.
var catalogue = []string{
	"portsip_up",
	"portsip_wsi_connection_attempts_total", "portsip_wsi_connection_errors_total",
	"portsip_wsi_subscription_active", "portsip_wsi_events_total", "portsip_wsi_invalid_messages_total",
	"portsip_wsi_last_event_timestamp_seconds",
	"portsip_tenant_info", "portsip_queue_info", "portsip_queue_waiting_callers",
	"portsip_queue_oldest_wait_seconds", "portsip_queue_agents", "portsip_queue_agent_state",
	"portsip_queue_agent_state_seconds_total", "portsip_queue_callers_total", "portsip_queue_wait_seconds",
	"portsip_queue_sla_breaches_total", "portsip_queue_sla_threshold_seconds",
	"portsip_queue_management_events_total", "portsip_extension_online", "portsip_extension_presence",
	"portsip_extension_call_state", "portsip_extensions", "portsip_extensions_online",
	"portsip_extensions_by_presence", "portsip_extensions_by_call_state",
	"portsip_extension_management_events_total", "portsip_calls_active", "portsip_calls_total",
	"portsip_call_talk_seconds", "portsip_call_ring_seconds", "portsip_call_end_reasons_total",
	"portsip_trunk_calls_total",
	"portsip_exporter_dropped_entities_total",
}

func described(c prometheus.Collector) []string {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	re := regexp.MustCompile(`fqName: "([^"]+)"`)
	var names []string
	for d := range ch {
		names = append(names, re.FindStringSubmatch(d.String())[1])
	}
	slices.Sort(names)
	return names
}

// The catalogue is what Describe lists, MetricNames returns, and a
// realistic state renders: each family present, with the type DESIGN.md says.
func TestCatalogueIsComplete(t *testing.T) {
	want := slices.Sorted(slices.Values(catalogue))
	c := New(Config{AgentState: true, ExtensionState: true}, statsFunc(someStats))
	if got := described(c); !slices.Equal(got, want) {
		t.Errorf("Describe lists\n%v\nwant\n%v", got, want)
	}
	if got := slices.Sorted(slices.Values(MetricNames())); !slices.Equal(got, want) {
		t.Errorf("MetricNames = %v", got)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	c.SessionUp(sessionWith())
	pbx{tenants: 2, queues: 3, agents: 2, callers: 2, extensions: 6}.load(c, time.Now())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var gathered []string
	for _, mf := range mfs {
		gathered = append(gathered, mf.GetName())
		typ := mf.GetType().String()
		name := mf.GetName()
		switch {
		case name == "portsip_queue_wait_seconds" || name == "portsip_call_talk_seconds" || name == "portsip_call_ring_seconds":
			if typ != "HISTOGRAM" {
				t.Errorf("%s is %s", name, typ)
			}
			// Series start empty; one with observations shows its native buckets.
			native := false
			for _, m := range mf.GetMetric() {
				h := m.GetHistogram()
				if h.GetSchema() != 3 {
					t.Errorf("%s: not a native histogram too (schema %d)", name, h.GetSchema())
					break
				}
				native = native || len(h.GetPositiveSpan())+int(h.GetZeroCount()) > 0
			}
			if !native {
				t.Errorf("%s: no series with native buckets", name)
			}
		case regexp.MustCompile(`_total$`).MatchString(name):
			if typ != "COUNTER" {
				t.Errorf("%s is %s", name, typ)
			}
		default:
			if typ != "GAUGE" {
				t.Errorf("%s is %s", name, typ)
			}
		}
	}
	if !slices.Equal(gathered, want) {
		t.Errorf("gathered\n%v\nwant\n%v", gathered, want)
	}
}

// promtool's linter passes a full exposition of a realistic state.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not on PATH")
		}
		t.Skip("promtool not on PATH")
	}
	c := New(Config{AgentState: true, ExtensionState: true}, statsFunc(someStats))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	c.SessionUp(sessionWith())
	pbx{tenants: 2, queues: 3, agents: 2, callers: 2, extensions: 6}.load(c, time.Now())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&text, mf); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = &text
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// designLabels is DESIGN.md's catalogue: each family's label names, exactly.
// Users' dashboards and alert routes join on them; an extra label splits
// their series, a missing one merges them.
var designLabels = map[string][]string{
	"portsip_up":                                {},
	"portsip_wsi_connection_attempts_total":     {},
	"portsip_wsi_connection_errors_total":       {"stage"},
	"portsip_wsi_subscription_active":           {"topic"},
	"portsip_wsi_events_total":                  {"event_type"},
	"portsip_wsi_invalid_messages_total":        {"reason"},
	"portsip_wsi_last_event_timestamp_seconds":  {},
	"portsip_tenant_info":                       {"tenant_id", "tenant_name"},
	"portsip_queue_info":                        {"tenant_id", "queue", "queue_id", "queue_name"},
	"portsip_queue_waiting_callers":             {"tenant_id", "queue", "kind"},
	"portsip_queue_oldest_wait_seconds":         {"tenant_id", "queue"},
	"portsip_queue_agents":                      {"tenant_id", "queue", "state"},
	"portsip_queue_agent_state":                 {"tenant_id", "queue", "agent", "state"},
	"portsip_queue_agent_state_seconds_total":   {"tenant_id", "queue", "state"},
	"portsip_queue_callers_total":               {"tenant_id", "queue", "reason"},
	"portsip_queue_wait_seconds":                {"tenant_id", "queue", "outcome"},
	"portsip_queue_sla_breaches_total":          {"tenant_id", "queue"},
	"portsip_queue_sla_threshold_seconds":       {"tenant_id", "queue"},
	"portsip_queue_management_events_total":     {"tenant_id", "event_type"},
	"portsip_extension_online":                  {"tenant_id", "extension"},
	"portsip_extension_presence":                {"tenant_id", "extension", "presence"},
	"portsip_extension_call_state":              {"tenant_id", "extension", "state"},
	"portsip_extensions":                        {"tenant_id"},
	"portsip_extensions_online":                 {"tenant_id"},
	"portsip_extensions_by_presence":            {"tenant_id", "presence"},
	"portsip_extensions_by_call_state":          {"tenant_id", "state"},
	"portsip_extension_management_events_total": {"tenant_id", "event_type"},
	"portsip_calls_active":                      {"tenant_id"},
	"portsip_calls_total":                       {"tenant_id", "direction", "status"},
	"portsip_call_talk_seconds":                 {"tenant_id", "direction"},
	"portsip_call_ring_seconds":                 {"tenant_id", "direction"},
	"portsip_call_end_reasons_total":            {"tenant_id", "reason"},
	"portsip_trunk_calls_total":                 {"tenant_id", "trunk", "direction", "status"},
	"portsip_exporter_dropped_entities_total":   {"entity"},
}

func TestCatalogueLabelsAreDesigns(t *testing.T) {
	c := New(Config{AgentState: true, ExtensionState: true}, statsFunc(someStats))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	c.SessionUp(sessionWith())
	pbx{tenants: 2, queues: 3, agents: 2, callers: 2, extensions: 6}.load(c, time.Now())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		want, ok := designLabels[mf.GetName()]
		if !ok {
			t.Errorf("%s: not in the catalogue", mf.GetName())
			continue
		}
		want = slices.Sorted(slices.Values(want))
		for _, m := range mf.GetMetric() {
			var got []string
			for _, l := range m.GetLabel() {
				got = append(got, l.GetName())
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s: labels %v, want %v", mf.GetName(), got, want)
				break
			}
		}
	}
}
