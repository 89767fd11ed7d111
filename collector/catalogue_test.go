package collector

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

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

// gatherRealistic registers a Collector with both switches on and a
// client's counters, loads a PBX with every kind of state, and gathers.
func gatherRealistic(t *testing.T) []*dto.MetricFamily {
	t.Helper()
	c := New(Config{AgentState: true, ExtensionState: true}, statsFunc(someStats))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	c.SessionUp(sessionWith())
	pbx{tenants: 2, queues: 3, agents: 2, callers: 2, extensions: 6}.load(c, time.Now())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// The catalogue is what Describe lists, MetricNames returns, and a
// realistic state renders: each family present, with its declared type
// and exactly its declared labels. (The names, types and labels users
// depend on are held to the README's metric table by readme_test.go.)
func TestCatalogueIsComplete(t *testing.T) {
	var want []string
	byName := map[string]*family{}
	for _, f := range catalogue {
		if byName[f.name] != nil {
			t.Errorf("%s declared twice", f.name)
		}
		byName[f.name] = f
		want = append(want, f.name)
	}
	slices.Sort(want)
	if got := described(New(Config{}, nil)); !slices.Equal(got, want) {
		t.Errorf("Describe lists\n%v\nwant\n%v", got, want)
	}
	if got := slices.Sorted(slices.Values(MetricNames())); !slices.Equal(got, want) {
		t.Errorf("MetricNames = %v", got)
	}
	var gathered []string
	for _, mf := range gatherRealistic(t) {
		name := mf.GetName()
		gathered = append(gathered, name)
		f := byName[name]
		if f == nil {
			t.Errorf("%s: gathered, not in the catalogue", name)
			continue
		}
		wantType := map[kind]dto.MetricType{gauge: dto.MetricType_GAUGE, counter: dto.MetricType_COUNTER,
			histogram: dto.MetricType_HISTOGRAM}[f.kind]
		if mf.GetType() != wantType {
			t.Errorf("%s is %s, declared %s", name, mf.GetType(), wantType)
		}
		if strings.HasSuffix(name, "_total") != (f.kind == counter) {
			t.Errorf("%s: a %s; only counters end in _total", name, mf.GetType())
		}
		wantLabels := slices.Sorted(slices.Values(f.names))
		for _, m := range mf.GetMetric() {
			var got []string
			for _, l := range m.GetLabel() {
				got = append(got, l.GetName())
			}
			if !slices.Equal(got, wantLabels) {
				t.Errorf("%s: labels %v, declared %v", name, got, wantLabels)
				break
			}
		}
		if f.kind != histogram {
			continue
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
	}
	if !slices.Equal(gathered, want) {
		t.Errorf("gathered\n%v\nwant\n%v", gathered, want)
	}
}

// Every label name is declared once, with whether its values are bounded:
// a scrape keeps one shared pair per value of a bounded label, so a label
// declared bounded must take few values however large the PBX.
func TestLabelsDeclared(t *testing.T) {
	seen := map[string]bool{}
	for id, l := range labels {
		if l.name == "" || seen[l.name] {
			t.Errorf("label %d: name %q missing or declared twice", id, l.name)
		}
		seen[l.name] = true
	}
	c := New(Config{AgentState: true, ExtensionState: true}, statsFunc(someStats))
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	c.SessionUp(sessionWith())
	pbx{tenants: 100, queues: 200, agents: 12, callers: 3, extensions: 400}.load(c, time.Now())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if values[l.GetName()] == nil {
					values[l.GetName()] = map[string]bool{}
				}
				values[l.GetName()][l.GetValue()] = true
			}
		}
	}
	for _, l := range labels {
		if n := len(values[l.name]); l.bounded && n > maxEnumValues+1 {
			t.Errorf("%s is declared bounded and took %d values", l.name, n)
		}
	}
	if n := len(values[labels[lTenantID].name]); n != 100 {
		t.Errorf("%d tenants rendered, want 100: the test's PBX is not large", n)
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
	mfs := gatherRealistic(t)
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
