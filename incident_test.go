package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v2"

	"github.com/portsip-exporter/portsip_exporter/collector"
	"github.com/portsip-exporter/portsip_exporter/wsi"
	"github.com/portsip-exporter/portsip_exporter/wsi/wsitest"
)

// incidentAlerts are the shipped alerts whose conditions the demo's
// incident meets without touching the session, and the series each must
// fire for within 15 minutes of the start. The queue alerts are about
// queues of the first tenant, the others about the second tenant.
var incidentAlerts = []struct {
	name, matcher string
	calmToo       bool // the calm traffic's busy queue meets it too
}{
	{"PortsipQueueNoAgentsReady", `queue="8002"`, false},
	{"PortsipQueueLongWait", `queue="8002"`, false},
	{"PortsipQueueServiceLevelLow", `queue="8001"`, true},
	{"PortsipQueueAbandonRateHigh", `queue="8001"`, true},
	{"PortsipQueueSLABreached", `queue="8001"`, true},
	{"PortsipExtensionsMassOffline", `tenant_id="794493068765036544"`, false},
	{"PortsipCallFailureRateHigh", `tenant_id="794493068765036544"`, false},
}

// TestIncidentAlerts plays `demo --demo.scenario=incident` on a simulated
// clock: the traffic's frames go through the decoder and the collector,
// which is scraped every 15 simulated seconds, and the scrapes are the
// input of a promtool unit test of the shipped rules (alerts/), which
// must fire every alert of incidentAlerts within 15 minutes. The calm
// traffic, played the same way, must not fire those the incident alone
// causes.
func TestIncidentAlerts(t *testing.T) {
	promtool := lookTool(t, "promtool", "the prometheus package")
	rules, err := filepath.Abs(filepath.Join("alerts", "portsip.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	shipped := shippedAlerts(t, rules)
	const window = 15 * time.Minute
	var fired []promqlTest
	var incidentOnly []string
	for _, a := range incidentAlerts {
		if !slices.Contains(shipped, a.name) {
			t.Errorf("%s is not in %s", a.name, rules)
			continue
		}
		fired = append(fired, promqlTest{
			Expr: fmt.Sprintf(`group by (alertname) (max_over_time(ALERTS{alertname=%q, alertstate="firing", %s}[%s]))`,
				a.name, a.matcher, model(window)),
			EvalTime:   model(window),
			ExpSamples: []sample{{Labels: fmt.Sprintf(`{alertname=%q}`, a.name), Value: 1}},
		})
		if !a.calmToo {
			incidentOnly = append(incidentOnly, a.name)
		}
	}
	quiet := []promqlTest{{
		Expr: fmt.Sprintf(`group by (alertname) (max_over_time(ALERTS{alertstate="firing", alertname=~%q}[%s]))`,
			strings.Join(incidentOnly, "|"), model(window)),
		EvalTime:   model(window),
		ExpSamples: []sample{},
	}}
	for _, tt := range []struct {
		scenario wsitest.Scenario
		tests    []promqlTest
	}{{wsitest.Incident, fired}, {wsitest.Calm, quiet}} {
		t.Run(string(tt.scenario), func(t *testing.T) {
			scrapes := playDemo(t, tt.scenario, window)
			runPromtool(t, promtool, rules, scrapes, tt.tests)
		})
	}
}

const scrapeInterval = 15 * time.Second

// playDemo runs the demo's traffic through the exporter on the traffic's
// clock: its frames, as a system administrator subscribed to everything
// receives them, go through wsi's replay (the live path after the socket)
// into a collector whose clock is each frame's time, scraped every 15 s
// from the start to d.
func playDemo(t *testing.T, scenario wsitest.Scenario, d time.Duration) []map[string]float64 {
	t.Helper()
	start := time.Date(2026, 3, 2, 13, 0, 0, 0, time.UTC)
	tr := wsitest.NewTraffic(wsitest.NewUnstartedServer(), wsitest.TrafficConfig{Seed: 1, Start: start, Scenario: scenario})
	client, err := wsi.NewReplay(wsi.Config{Tenants: tr.TenantIDs()})
	if err != nil {
		t.Fatal(err)
	}
	sc := &scraper{t: t, now: start, next: start}
	sc.col = collector.New(collector.Config{AgentState: true, ExtensionState: true, Now: func() time.Time { return sc.now }}, client)
	sc.reg = prometheus.NewRegistry()
	sc.reg.MustRegister(sc.col)

	records := func(yield func(wsi.Record) bool) {
		var pending []wsi.Record
		add := func(at time.Time, frame []byte) { pending = append(pending, wsi.Record{Time: at, Frame: frame}) }
		add(start, []byte(`{"command":"auth","id":"1","status":0}`))
		for i := range 5 { // one subscribe per global topic
			add(start, []byte(fmt.Sprintf(`{"command":"subscribe","id":"%d","status":0}`, i+2)))
		}
		pending = append(pending, wsi.Record{Time: start, Session: wsi.RecordUp})
		tr.Tap(add) // the snapshots, then every frame as the traffic publishes it
		for at := start; !at.After(start.Add(d)); at = at.Add(time.Second) {
			tr.Step(at)
			for _, r := range pending {
				if !yield(r) {
					return
				}
			}
			pending = pending[:0]
		}
	}
	if err := client.Feed(context.Background(), records, sc); err != nil {
		t.Fatal(err)
	}
	sc.scrapeUntil(start.Add(d))
	return sc.scrapes
}

// scraper is the wsi.Handler between the replay and the collector: before
// an event past the next 15 s boundary it scrapes, at that boundary, what
// the events before it made.
type scraper struct {
	t       *testing.T
	col     *collector.Collector
	reg     *prometheus.Registry
	now     time.Time // the collector's clock
	next    time.Time // the next scrape
	scrapes []map[string]float64
}

func (s *scraper) SessionUp(se wsi.Session) { s.col.SessionUp(se) }
func (s *scraper) SessionDown(err error)    { s.col.SessionDown(err) }
func (s *scraper) HandleEvent(ev wsi.Event) {
	s.scrapeUntil(ev.Head().Received)
	s.now = ev.Head().Received
	s.col.HandleEvent(ev)
}

// scrapeUntil takes the scrapes due up to at.
func (s *scraper) scrapeUntil(at time.Time) {
	for !s.next.After(at) {
		s.now = s.next
		mfs, err := s.reg.Gather()
		if err != nil {
			s.t.Fatal(err)
		}
		s.scrapes = append(s.scrapes, flatten(mfs))
		s.next = s.next.Add(scrapeInterval)
	}
}

// runPromtool runs promtool's unit tests of rules on the scrapes.
func runPromtool(t *testing.T, promtool, rules string, scrapes []map[string]float64, tests []promqlTest) {
	t.Helper()
	b, err := yaml.Marshal(promtoolFile{
		RuleFiles:          []string{rules},
		EvaluationInterval: model(scrapeInterval),
		Tests: []promtoolGroup{{
			Interval:    model(scrapeInterval),
			InputSeries: inputSeries(scrapes, `job="portsip",instance="demo:9887"`),
			PromqlTests: tests,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "incident_test.yml")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "test", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool test rules on %d scrapes: %v\n%s", len(scrapes), err, out)
	}
}

// flatten turns a gathered page into series as Prometheus stores them:
// name{labels} -> value, histograms as _bucket, _sum and _count.
func flatten(mfs []*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := make([]string, 0, len(m.GetLabel())+1)
			for _, lp := range m.GetLabel() {
				labels = append(labels, lp.GetName()+"="+strconv.Quote(lp.GetValue()))
			}
			series := func(suffix string, extra ...string) string {
				ls := append(slices.Clone(labels), extra...)
				sort.Strings(ls)
				return mf.GetName() + suffix + "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[series("")] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[series("")] = m.Gauge.GetValue()
			case m.Untyped != nil:
				out[series("")] = m.Untyped.GetValue()
			case m.Histogram != nil:
				h := m.Histogram
				for _, b := range h.GetBucket() {
					out[series("_bucket", "le="+strconv.Quote(strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)))] = float64(b.GetCumulativeCount())
				}
				out[series("_bucket", `le="+Inf"`)] = float64(h.GetSampleCount())
				out[series("_sum")] = h.GetSampleSum()
				out[series("_count")] = float64(h.GetSampleCount())
			}
		}
	}
	return out
}

// inputSeries writes scrapes as promtool input series with the target's
// labels, and up 1: a series missing from a scrape is "_", and "stale"
// right after its last sample, as Prometheus marks it.
func inputSeries(scrapes []map[string]float64, target string) []promtoolSeries {
	names := map[string]bool{}
	for _, s := range scrapes {
		for n := range s {
			names[n] = true
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	var out []promtoolSeries
	for _, n := range sorted {
		vals := make([]string, len(scrapes))
		for i, s := range scrapes {
			v, ok := s[n]
			switch {
			case ok:
				vals[i] = formatValue(v)
			case i > 0 && vals[i-1] != "_" && vals[i-1] != "stale":
				vals[i] = "stale"
			default:
				vals[i] = "_"
			}
		}
		name, labels, _ := strings.Cut(n, "{")
		if labels != "}" {
			labels = "," + labels
		}
		out = append(out, promtoolSeries{Series: name + "{" + target + labels, Values: strings.Join(vals, " ")})
	}
	up := strings.TrimSpace(strings.Repeat("1 ", len(scrapes)))
	return append(out, promtoolSeries{Series: "up{" + target + "}", Values: up})
}

func formatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// model is a duration as Prometheus reads it, in whole seconds.
func model(d time.Duration) string { return strconv.Itoa(int(d/time.Second)) + "s" }

// shippedAlerts lists the alert names of a rules file.
func shippedAlerts(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var names []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				names = append(names, r.Alert)
			}
		}
	}
	return names
}

type promtoolFile struct {
	RuleFiles          []string        `yaml:"rule_files"`
	EvaluationInterval string          `yaml:"evaluation_interval"`
	Tests              []promtoolGroup `yaml:"tests"`
}

type promtoolGroup struct {
	Interval    string           `yaml:"interval"`
	InputSeries []promtoolSeries `yaml:"input_series"`
	PromqlTests []promqlTest     `yaml:"promql_expr_test"`
}

type promtoolSeries struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

type promqlTest struct {
	Expr       string   `yaml:"expr"`
	EvalTime   string   `yaml:"eval_time"`
	ExpSamples []sample `yaml:"exp_samples"`
}

type sample struct {
	Labels string  `yaml:"labels"`
	Value  float64 `yaml:"value"`
}

// lookTool returns the path of a program, skipping the test when it is
// not installed, except in CI (CI set), where a missing one is a failure.
func lookTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found on PATH (CI is set; install %s)", name, pkg)
		}
		t.Skipf("%s not found on PATH", name)
	}
	return p
}
