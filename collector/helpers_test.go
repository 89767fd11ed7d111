package collector

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// t0 is the test clock's start; PBX timestamps in tests are near it.
var t0 = time.Unix(1_700_000_000, 0)

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }
func (c *fakeClock) Unix(offset int64) int64 { return c.t.Unix() + offset }

type harness struct {
	*Collector
	clock *fakeClock
	reg   *prometheus.Registry
}

// newHarness returns a Collector with both switches on, a fake clock at t0
// and a session up.
func newHarness(t *testing.T, mod ...func(*Config)) *harness {
	t.Helper()
	clk := &fakeClock{t: t0}
	cfg := Config{AgentState: true, ExtensionState: true, Now: clk.Now}
	for _, m := range mod {
		m(&cfg)
	}
	c := New(cfg, nil)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	c.SessionUp(wsi.Session{})
	return &harness{Collector: c, clock: clk, reg: reg}
}

func (h *harness) apply(evs ...wsi.Event) {
	for _, e := range evs {
		h.HandleEvent(e)
	}
}

// expect compares the named families with want, which holds sample lines
// only: the HELP and TYPE lines are taken from the registry. A family
// named but without lines in want must be absent.
func (h *harness) expect(t *testing.T, want string, names ...string) {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var b strings.Builder
	for _, name := range names {
		var lines []string
		for _, l := range strings.Split(want, "\n") {
			l = strings.TrimSpace(l)
			n, _, _ := strings.Cut(l, "{")
			n, _, _ = strings.Cut(n, " ")
			if n == name || n == name+"_bucket" || n == name+"_sum" || n == name+"_count" {
				lines = append(lines, l)
			}
		}
		if len(lines) == 0 {
			continue
		}
		found := false
		for _, mf := range mfs {
			if mf.GetName() == name {
				found = true
				fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, mf.GetHelp(), name, strings.ToLower(mf.GetType().String()))
			}
		}
		if !found {
			t.Errorf("%s: not gathered", name)
			continue
		}
		b.WriteString(strings.Join(lines, "\n") + "\n")
	}
	// Written label order is free: sort it as the registry does.
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(b.String()))
	if err != nil {
		t.Fatalf("expected text: %v", err)
	}
	var canon bytes.Buffer
	for _, name := range slices.Sorted(maps.Keys(fams)) {
		for _, m := range fams[name].GetMetric() {
			slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
		}
		if _, err := expfmt.MetricFamilyToText(&canon, fams[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := testutil.GatherAndCompare(h.reg, &canon, names...); err != nil {
		t.Error(err)
	}
}

// metric returns the first series of a family whose labels include the
// given name/value pairs, or nil.
func (h *harness) metric(t *testing.T, name string, labels ...string) *dto.Metric {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				ok := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						ok = true
					}
				}
				if !ok {
					continue metrics
				}
			}
			return m
		}
	}
	return nil
}

// value returns the single sample of a family matching the label pairs
// (a histogram's count).
func (h *harness) value(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	m := h.metric(t, name, labels...)
	switch {
	case m == nil:
		t.Fatalf("%s%v: no such series", name, labels)
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	t.Fatalf("%s%v: neither gauge, counter nor histogram", name, labels)
	return 0
}

// series counts the series of a family.
func (h *harness) series(t *testing.T, name string) int {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

const tenantA = "676398719834259456"

func hdr(typ string) wsi.Header { return wsi.Header{EventType: typ, TenantID: tenantA} }

func queueStatus(number, id string, waiting []wsi.QueueCaller, agents ...wsi.QueueAgent) *wsi.QueueStatus {
	return &wsi.QueueStatus{Header: hdr(wsi.TypeQueueStatus), QueueID: id, QueueNumber: number,
		QueueName: "Sales Department", Waiting: waiting, Agents: agents}
}

func callers(id string, cs ...wsi.QueueCaller) *wsi.QueueCallerStatus {
	return &wsi.QueueCallerStatus{Header: hdr(wsi.TypeQueueCallerStatus), QueueID: id, Callers: cs}
}

func callerEv(session, reason string, ts int64) wsi.QueueCaller {
	return wsi.QueueCaller{SessionID: session, CallerNumber: "123456", Reason: reason, Timestamp: ts, Type: "normal"}
}

func agentsEv(id string, removed []string, updated ...wsi.QueueAgent) *wsi.QueueAgentStatus {
	return &wsi.QueueAgentStatus{Header: hdr(wsi.TypeQueueAgentStatus), QueueID: id, Updated: updated, Removed: removed}
}

func ag(ext, state string) wsi.QueueAgent { return wsi.QueueAgent{Extension: ext, State: state} }

// quirkLines renders portsip_wsi_quirks_total: every quirk, with the
// counts given (others 0).
func quirkLines(counts map[string]int) string {
	var b strings.Builder
	for _, q := range wsi.Quirks {
		fmt.Fprintf(&b, "portsip_wsi_quirks_total{quirk=%q} %d\n", q, counts[q])
	}
	return b.String()
}
