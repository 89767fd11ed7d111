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
	"sync"
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
// incident meets, the series each must fire for, and by when from the
// start: the queue, extension and call alerts within 15 minutes (the
// queue alerts about queues of the first tenant, the others about the
// second tenant), the session alerts by the end of the incident.
var incidentAlerts = []struct {
	name, matcher string
	by            time.Duration
	calmToo       bool // the calm traffic's busy queue meets it too
}{
	{"PortsipQueueNoAgentsReady", `queue="8002"`, 15 * time.Minute, false},
	{"PortsipQueueLongWait", `queue="8002"`, 15 * time.Minute, false},
	{"PortsipQueueServiceLevelLow", `queue="8001"`, 15 * time.Minute, true},
	{"PortsipQueueAbandonRateHigh", `queue="8001"`, 15 * time.Minute, true},
	{"PortsipQueueSLABreached", `queue="8001"`, 15 * time.Minute, true},
	{"PortsipExtensionsMassOffline", `tenant_id="794493068765036544"`, 15 * time.Minute, false},
	{"PortsipCallFailureRateHigh", `tenant_id="794493068765036544"`, 15 * time.Minute, false},
	{"PortsipWSIFlapping", `job="portsip"`, incidentEnd, false},
	{"PortsipWSISubscriptionRefused", `topic="global_cdr_events"`, incidentEnd, false},
	{"PortsipWSIDisconnected", `job="portsip"`, incidentEnd, false},
}

// incidentEnd is a little after the PBX is back from the incident's
// outage (26:30).
const incidentEnd = 27 * time.Minute

// TestIncidentAlerts plays `demo --demo.scenario=incident` on a simulated
// clock: the traffic's frames and its session faults go through wsi's
// replay and the collector, which is scraped every 15 simulated seconds,
// and the scrapes are the input of a promtool unit test of the shipped
// rules (alerts/), which must fire every alert of incidentAlerts in time.
// The calm traffic, played the same way for 15 minutes, must not fire
// those the incident alone causes.
func TestIncidentAlerts(t *testing.T) {
	promtool := lookTool(t, "promtool", "the prometheus package")
	rules, err := filepath.Abs(filepath.Join("alerts", "portsip.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	shipped := shippedAlerts(t, rules)
	const calm = 15 * time.Minute
	var fired []promqlTest
	var incidentOnly []string
	for _, a := range incidentAlerts {
		if !slices.Contains(shipped, a.name) {
			t.Errorf("%s is not in %s", a.name, rules)
			continue
		}
		fired = append(fired, promqlTest{
			Expr: fmt.Sprintf(`group by (alertname) (max_over_time(ALERTS{alertname=%q, alertstate="firing", %s}[%s]))`,
				a.name, a.matcher, model(a.by)),
			EvalTime:   model(a.by),
			ExpSamples: []sample{{Labels: fmt.Sprintf(`{alertname=%q}`, a.name), Value: 1}},
		})
		if !a.calmToo {
			incidentOnly = append(incidentOnly, a.name)
		}
	}
	quiet := []promqlTest{{
		Expr: fmt.Sprintf(`group by (alertname) (max_over_time(ALERTS{alertstate="firing", alertname=~%q}[%s]))`,
			strings.Join(incidentOnly, "|"), model(calm)),
		EvalTime:   model(calm),
		ExpSamples: []sample{},
	}}
	for _, tt := range []struct {
		scenario wsitest.Scenario
		d        time.Duration
		tests    []promqlTest
	}{{wsitest.Incident, incidentEnd, fired}, {wsitest.Calm, calm, quiet}} {
		t.Run(string(tt.scenario), func(t *testing.T) {
			scrapes := playDemo(t, tt.scenario, tt.d)
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
		down := false // the PBX is stopped: nothing reaches the exporter
		add := func(at time.Time, frame []byte) {
			if !down {
				pending = append(pending, wsi.Record{Time: at, Frame: frame})
			}
		}
		boundary := func(r wsi.Record) {
			pending = append(pending, r)
			sc.boundary(r.Time)
		}
		// What a live client's tap records of a session that comes up.
		subscribe := func(at time.Time, refused []string) {
			add(at, []byte(`{"command":"auth","id":"1","status":0}`))
			for i, topic := range []string{wsi.TopicGlobalQueueEvents, wsi.TopicGlobalQueueManagement,
				wsi.TopicGlobalExtensionEvents, wsi.TopicGlobalExtensionManagement, wsi.TopicGlobalCDREvents} {
				reply := fmt.Sprintf(`{"command":"subscribe","id":"%d","status":0}`, i+2)
				if slices.Contains(refused, topic) {
					reply = fmt.Sprintf(`{"command":"subscribe","error":"permission denied: %s","id":"%d","status":-1}`, topic, i+2)
				}
				add(at, []byte(reply))
			}
			boundary(wsi.Record{Time: at, Session: wsi.RecordUp})
		}
		subscribe(start, nil)
		tr.Tap(add) // the snapshots, then every frame as the traffic publishes it
		tr.TapSessions(func(at time.Time, f wsitest.SessionFault) {
			if !down {
				boundary(wsi.Record{Time: at, Session: wsi.RecordDown, Stage: wsi.StageRead, Reason: "read: connection reset by peer"})
			}
			down = f.Kind == wsitest.FaultStop
			if !down { // the client reconnects at once; the snapshots follow
				subscribe(at, f.Refused)
			}
		})
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
// an event or a session boundary past the next 15 s boundary it scrapes,
// at that boundary, what came before.
type scraper struct {
	t       *testing.T
	col     *collector.Collector
	reg     *prometheus.Registry
	now     time.Time // the collector's clock
	next    time.Time // the next scrape
	scrapes []map[string]float64

	mu     sync.Mutex
	bounds []time.Time // the times of the session boundaries fed and not yet handled
}

// boundary notes the time of a session boundary as it is fed: the
// Handler's calls carry none.
func (s *scraper) boundary(at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bounds = append(s.bounds, at)
}

func (s *scraper) atBoundary() {
	s.mu.Lock()
	at := s.bounds[0]
	s.bounds = s.bounds[1:]
	s.mu.Unlock()
	s.scrapeUntil(at)
	s.now = at
}

func (s *scraper) SessionUp(se wsi.Session) { s.atBoundary(); s.col.SessionUp(se) }
func (s *scraper) SessionDown(err error)    { s.atBoundary(); s.col.SessionDown(err) }
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
