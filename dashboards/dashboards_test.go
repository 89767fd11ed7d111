package dashboards

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v2"

	"github.com/portsip-exporter/portsip_exporter/collector"
)

// wantUIDs are the dashboards shipped, by file name. The uids are stable:
// links, bookmarks and provisioning depend on them.
var wantUIDs = map[string]string{
	"portsip-queues.json":     "portsip-queues",
	"portsip-extensions.json": "portsip-extensions",
	"portsip-calls.json":      "portsip-calls",
	"portsip-exporter.json":   "portsip-exporter",
	"portsip-wallboard.json":  "portsip-wallboard",
	"portsip-agents.json":     "portsip-agents",
}

// histograms of the catalogue; their series carry the usual
// suffixes. A Desc does not say its type, so the list is kept here and
// checked against the catalogue.
var histograms = []string{
	"portsip_queue_wait_seconds",
	"portsip_call_talk_seconds",
	"portsip_call_ring_seconds",
}

// Series from outside the collector that the dashboards may use, with
// their labels: the scrape's up, the binary's build info, and the process
// metrics client_golang registers.
var extraMetrics = map[string][]string{
	"up":                            nil,
	"portsip_exporter_build_info":   {"version", "revision", "goversion"},
	"process_resident_memory_bytes": nil,
	"process_cpu_seconds_total":     nil,
}

type dashboard struct {
	file   string
	UID    string          `json:"uid"`
	Title  string          `json:"title"`
	ID     any             `json:"id"`
	Schema int             `json:"schemaVersion"`
	Inputs json.RawMessage `json:"__inputs"`
	Tags   []string        `json:"tags"`
	Time   struct{ From, To string }

	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type variable struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Query      any            `json:"query"`
	Datasource map[string]any `json:"datasource"`
	Multi      bool           `json:"multi"`
	IncludeAll bool           `json:"includeAll"`
	AllValue   string         `json:"allValue"`
	Regex      string         `json:"regex"`
}

type panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Datasource  map[string]any `json:"datasource"`
	GridPos     struct{ X, Y, W, H int }
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets         []target `json:"targets"`
	Panels          []panel  `json:"panels"` // collapsed rows
	Transformations []struct {
		ID      string `json:"id"`
		Options struct {
			ExcludeByName map[string]bool   `json:"excludeByName"`
			RenameByName  map[string]string `json:"renameByName"`
		} `json:"options"`
	} `json:"transformations"`
}

type target struct {
	RefID        string         `json:"refId"`
	LegendFormat string         `json:"legendFormat"`
	Expr         string         `json:"expr"`
	Format       string         `json:"format"`
	Instant      bool           `json:"instant"`
	Datasource   map[string]any `json:"datasource"`
}

func loadDashboards(t *testing.T) []dashboard {
	t.Helper()
	files, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	var ds []dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := dashboard{file: f}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ds = append(ds, d)
	}
	return ds
}

// allPanels flattens rows.
func (d dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// queryVariable returns the variable's query text whichever form Grafana
// stored it in (a string, or an object with a query key).
func (v variable) queryText() string {
	switch q := v.Query.(type) {
	case string:
		return q
	case map[string]any:
		s, _ := q["query"].(string)
		return s
	}
	return ""
}

var (
	labelValues = regexp.MustCompile(`^label_values\((.+), *([a-z_]+)\)$`)
	queryResult = regexp.MustCompile(`^query_result\((.+)\)$`)
	jsRegex     = regexp.MustCompile(`^/(.*)/([gimsuy]*)$`)
)

// promQL returns the PromQL expression a query variable runs, and the
// regexp that takes its values from the result (nil for label_values,
// whose values are the label's). A variable either lists the values of its
// own label (label_values(expr, name)), or runs query_result(expr) and
// takes its value from the label of its name and its display text from
// another: Grafana's named groups, (?<value>...) and (?<text>...), which Go
// reads too.
func (v variable) promQL() (string, *regexp.Regexp, error) {
	q := v.queryText()
	if m := labelValues.FindStringSubmatch(q); m != nil {
		if m[2] != v.Name {
			return "", nil, fmt.Errorf("lists %s, not %s", m[2], v.Name)
		}
		return m[1], nil, nil
	}
	m := queryResult.FindStringSubmatch(q)
	if m == nil {
		return "", nil, fmt.Errorf("query %q is neither label_values(..., %s) nor query_result(...)", q, v.Name)
	}
	js := jsRegex.FindStringSubmatch(v.Regex)
	if js == nil || !strings.Contains(js[1], v.Name+`="(?<value>`) {
		return "", nil, fmt.Errorf("query_result needs a regex taking the value from %s=\"(?<value>...)\", have %q", v.Name, v.Regex)
	}
	re, err := regexp.Compile(js[1])
	if err != nil {
		return "", nil, fmt.Errorf("regex %q: %v", v.Regex, err)
	}
	return m[1], re, nil
}

// catalogue maps every series name the exporter can expose to its labels
// (job and instance included, as Prometheus attaches them).
func catalogue(t *testing.T) map[string][]string {
	t.Helper()
	descs := make(chan *prometheus.Desc)
	go func() {
		collector.New(collector.Config{AgentState: true, ExtensionState: true}, nil).Describe(descs)
		close(descs)
	}()
	descRE := regexp.MustCompile(`^Desc\{fqName: "([^"]+)".*variableLabels: \{([^}]*)\}\}$`)
	cat := map[string][]string{}
	for d := range descs {
		m := descRE.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read %s", d)
		}
		var labels []string
		for _, l := range strings.Split(m[2], ",") {
			if l != "" {
				labels = append(labels, strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"))
			}
		}
		cat[m[1]] = append(labels, "job", "instance")
	}
	if len(cat) == 0 {
		t.Fatal("collector.Describe lists no metrics: the catalogue is not implemented")
	}
	for _, h := range histograms {
		labels, ok := cat[h]
		if !ok {
			t.Errorf("histogram %s is not in the collector's catalogue", h)
			continue
		}
		delete(cat, h)
		cat[h+"_bucket"] = append(slices.Clone(labels), "le")
		cat[h+"_sum"] = labels
		cat[h+"_count"] = labels
	}
	for name, labels := range extraMetrics {
		cat[name] = append(slices.Clone(labels), "job", "instance")
	}
	return cat
}

// recordingRules returns the recorded series of ../alerts with their
// labels, read from the level part of the name (tenant_id_queue: is
// tenant_id and queue), which must be made of known label names.
func recordingRules(t *testing.T, known map[string]bool) map[string][]string {
	t.Helper()
	files, err := filepath.Glob("../alerts/*.rules.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule files in ../alerts: %v", err)
	}
	var split func(string) []string
	split = func(level string) []string {
		for l := range known {
			if level == l {
				return []string{l}
			}
			if rest, ok := strings.CutPrefix(level, l+"_"); ok {
				if tail := split(rest); tail != nil {
					return append([]string{l}, tail...)
				}
			}
		}
		return nil
	}
	rules := map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rf struct {
			Groups []struct {
				Rules []struct {
					Record string `yaml:"record"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(b, &rf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Record == "" {
					continue
				}
				labels := split(strings.SplitN(r.Record, ":", 2)[0])
				if labels == nil {
					t.Errorf("%s: level of %s is not made of label names", f, r.Record)
				}
				rules[r.Record] = labels
			}
		}
	}
	return rules
}

func TestDashboardFiles(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range loadDashboards(t) {
		want, ok := wantUIDs[d.file]
		switch {
		case !ok:
			t.Errorf("%s: not a known dashboard; add it to wantUIDs", d.file)
		case d.UID != want:
			t.Errorf("%s: uid %q, want the stable %q", d.file, d.UID, want)
		}
		seen[d.file] = true
		if d.Title == "" || !slices.Contains(d.Tags, "portsip") {
			t.Errorf("%s: needs a title and the portsip tag (the dashboards link each other by it)", d.file)
		}
		// Provisioning takes the file as is: no import-time inputs, no fixed id.
		if d.Inputs != nil || d.ID != nil {
			t.Errorf("%s: has __inputs or an id; provisioning needs neither", d.file)
		}
		if d.Schema < 39 {
			t.Errorf("%s: schemaVersion %d, want 39 or later", d.file, d.Schema)
		}
	}
	for f := range wantUIDs {
		if !seen[f] {
			t.Errorf("%s: missing", f)
		}
	}
}

func isOurDatasource(ds map[string]any) bool {
	return ds["type"] == "prometheus" && ds["uid"] == "${datasource}"
}

func TestDashboardStructure(t *testing.T) {
	cat := catalogue(t)
	known := map[string]bool{}
	for _, labels := range cat {
		for _, l := range labels {
			known[l] = true
		}
	}
	maps.Copy(cat, recordingRules(t, known))

	for _, d := range loadDashboards(t) {
		t.Run(d.file, func(t *testing.T) {
			// Variables: a Prometheus datasource picker, and label filters
			// that take several values and All.
			vars := map[string]variable{}
			for _, v := range d.Templating.List {
				vars[v.Name] = v
			}
			if v, ok := vars["datasource"]; !ok || v.Type != "datasource" || v.Query != "prometheus" {
				t.Errorf("no datasource variable of type prometheus")
			}
			var labelVars []string
			for _, v := range d.Templating.List {
				if v.Type != "query" {
					continue
				}
				labelVars = append(labelVars, v.Name)
				if !isOurDatasource(v.Datasource) {
					t.Errorf("variable %s: datasource is not ${datasource}", v.Name)
				}
				if !v.Multi || !v.IncludeAll || v.AllValue != ".*" {
					t.Errorf("variable %s: want multi-value with All (.*)", v.Name)
				}
				expr, _, err := v.promQL()
				if err != nil {
					t.Errorf("variable %s: %v", v.Name, err)
					continue
				}
				checkExpr(t, "variable "+v.Name, expr, cat, nil)
			}
			// The same tenant and queue filters on every dashboard: the
			// dashboard links carry their values from one to the next.
			for _, name := range []string{"tenant_id", "queue"} {
				if v, ok := vars[name]; !ok || v.Type != "query" {
					t.Errorf("no %s query variable", name)
				}
			}
			if q, ok := vars["queue"]; ok && !strings.Contains(q.queryText(), `tenant_id=~"$tenant_id"`) {
				t.Errorf("variable queue: does not depend on tenant_id")
			}

			usesLabel := map[string]bool{}
			filtersBy := map[string]bool{} // variables some query filters on
			ids := map[int]bool{}
			taken := map[[2]int]string{} // grid cell -> panel
			for _, p := range d.allPanels() {
				if p.Type == "row" {
					continue
				}
				name := p.Title
				if ids[p.ID] {
					t.Errorf("%s: panel id %d used twice", name, p.ID)
				}
				ids[p.ID] = true
				if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X < 0 || p.GridPos.X+p.GridPos.W > 24 {
					t.Errorf("%s: does not fit the 24-column grid", name)
				}
			cells:
				for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
					for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
						if other, ok := taken[[2]int{x, y}]; ok {
							t.Errorf("%s: overlaps %s", name, other)
							break cells
						}
						taken[[2]int{x, y}] = name
					}
				}
				if !isOurDatasource(p.Datasource) {
					t.Errorf("%s: datasource is not ${datasource}", name)
				}
				if p.FieldConfig.Defaults.Unit == "" {
					t.Errorf("%s: no unit", name)
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s: no query", name)
				}
				for _, tg := range p.Targets {
					where := name + " " + tg.RefID
					if !isOurDatasource(tg.Datasource) {
						t.Errorf("%s: datasource is not ${datasource}", where)
					}
					if p.Type == "table" && (tg.Format != "table" || !tg.Instant) {
						t.Errorf("%s: table queries are instant, in table format", where)
					}
					if p.Type == "heatmap" && tg.Format != "heatmap" {
						t.Errorf("%s: heatmap query not in heatmap format", where)
					}
					for _, l := range checkExpr(t, where, tg.Expr, cat, labelVars) {
						usesLabel[l] = true
					}
					for _, v := range labelVars {
						if strings.Contains(tg.Expr, `=~"$`+v+`"`) {
							filtersBy[v] = true
						}
					}
				}
			}
			// A label a query could filter on has its variable, and a
			// variable filters some panel rather than decorate the top.
			for _, l := range []string{"tenant_id", "queue"} {
				if usesLabel[l] && !slices.Contains(labelVars, l) {
					t.Errorf("queries have a %s label but there is no %s variable", l, l)
				}
			}
			for _, v := range labelVars {
				if !filtersBy[v] {
					t.Errorf("variable %s: no panel filters by it", v)
				}
			}
		})
	}
}

// The tenant and queue variables behave the same on every dashboard: a
// user following a dashboard link keeps the same choices and lists.
func TestLabelVariablesAreTheSameEverywhere(t *testing.T) {
	for _, name := range []string{"tenant_id", "queue"} {
		var first variable
		var firstFile string
		for _, d := range loadDashboards(t) {
			for _, v := range d.Templating.List {
				if v.Name != name {
					continue
				}
				if firstFile == "" {
					first, firstFile = v, d.file
					continue
				}
				if v.queryText() != first.queryText() || v.Regex != first.Regex || v.Multi != first.Multi ||
					v.IncludeAll != first.IncludeAll || v.AllValue != first.AllValue {
					t.Errorf("%s: variable %s differs from %s's: %+v, want %+v", d.file, name, firstFile, v, first)
				}
			}
		}
	}
}

// checkExpr checks one query: its metrics exist, every label variable of
// the dashboard filters the selectors that have that label, and ranges are
// Grafana's. It returns the labels the query's selectors have.
func checkExpr(t *testing.T, where, expr string, cat map[string][]string, labelVars []string) []string {
	t.Helper()
	sels, ranges, err := scan(expr)
	if err != nil {
		t.Errorf("%s: %v in %q", where, err, expr)
		return nil
	}
	if len(sels) == 0 {
		t.Errorf("%s: no metric in %q", where, expr)
	}
	for _, r := range ranges {
		// $__rate_interval follows the scrape interval; $__range is the
		// dashboard's time range for "over the range" stats.
		if r != "$__rate_interval" && r != "$__range" {
			t.Errorf("%s: range [%s]; use [$__rate_interval] (or [$__range])", where, r)
		}
	}
	var has []string
	for _, s := range sels {
		labels, ok := cat[s.metric]
		if !ok {
			t.Errorf("%s: %s is not a metric of the exporter nor a recording rule", where, s.metric)
			continue
		}
		has = append(has, labels...)
		for l := range s.matchers {
			if !slices.Contains(labels, l) {
				t.Errorf("%s: %s has no label %s", where, s.metric, l)
			}
		}
		for _, v := range labelVars {
			if slices.Contains(labels, v) && s.matchers[v] != `=~"$`+v+`"` {
				t.Errorf("%s: %s is not filtered by %s=~\"$%s\"", where, s.metric, v, v)
			}
		}
	}
	return has
}

func TestScan(t *testing.T) {
	sels, ranges, err := scan(`sum by (tenant_id, queue) (rate(a_total{x=~"$x", y="a,}b"}[$__rate_interval])) / on (le) ` +
		`group_left (q) b offset 5m or vector(0) * histogram_quantile(0.9, c:d:e) and 1e3 > bool f`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range sels {
		got = append(got, s.metric)
	}
	if want := []string{"a_total", "b", "c:d:e", "f"}; !slices.Equal(got, want) {
		t.Errorf("metrics %q, want %q", got, want)
	}
	if sels[0].matchers["x"] != `=~"$x"` || sels[0].matchers["y"] != `="a,}b"` {
		t.Errorf("matchers %q", sels[0].matchers)
	}
	if want := []string{"$__rate_interval"}; !slices.Equal(ranges, want) {
		t.Errorf("ranges %q, want %q", ranges, want)
	}
	sels, _, err = scan(`count({__name__=~"a|b:c", t=~"$t"}) + {__name__="d"}`)
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, s := range sels {
		got = append(got, s.metric)
		if _, ok := s.matchers["__name__"]; ok {
			t.Errorf("%s: __name__ kept as a label matcher", s.metric)
		}
	}
	if want := []string{"a", "b:c", "d"}; !slices.Equal(got, want) {
		t.Errorf("metrics named by __name__: %q, want %q", got, want)
	}
	if sels[1].matchers["t"] != `=~"$t"` {
		t.Errorf("matchers of a selector named by __name__: %q", sels[1].matchers)
	}
	for _, bad := range []string{`a{x="1}`, `rate(a[5m)`, `a{x}`, `{x="1"}`,
		`{__name__=~"a.*"}`, `{__name__!="a"}`, `{__name__=~"a|"}`} {
		if _, _, err := scan(bad); err == nil {
			t.Errorf("scan(%q): no error", bad)
		}
	}
}

// The vendor's agent states name three ways of not serving a queue:
// logged_out, offline, and online ("the agent has logged out of the
// queue"). A query that counts agents by excluding states must exclude all
// three, or a supervisor counts agents who took no call as staffing.
func TestLoggedInAgentsExcludeEveryLoggedOutState(t *testing.T) {
	for _, d := range loadDashboards(t) {
		for _, p := range d.allPanels() {
			for _, tg := range p.Targets {
				sels, _, err := scan(tg.Expr)
				if err != nil {
					t.Fatalf("%s %s: %v", p.Title, tg.RefID, err)
				}
				for _, s := range sels {
					m, ok := s.matchers["state"]
					if s.metric != "portsip_queue_agents" || !ok || !strings.HasPrefix(m, "!~") {
						continue
					}
					re := regexp.MustCompile(`^(?:` + strings.Trim(strings.TrimPrefix(m, "!~"), `"`) + `)$`)
					for _, st := range []string{"logged_out", "offline", "online"} {
						if !re.MatchString(st) {
							t.Errorf("%s %s: %s counts agents in state %s", p.Title, tg.RefID, s.metric, st)
						}
					}
				}
			}
		}
	}
}

// portsip_wsi_last_event_timestamp_seconds is 0 until the first event: an
// age computed from it without a guard shows an exporter that just started
// as silent for 56 years.
func TestLastEventAgeIgnoresTheZeroBeforeTheFirstEvent(t *testing.T) {
	unguarded := regexp.MustCompile(`time\(\)\s*-\s*(?:max\()?portsip_wsi_last_event_timestamp_seconds\{[^}]*\}\)?\s*$`)
	for _, d := range loadDashboards(t) {
		for _, p := range d.allPanels() {
			for _, tg := range p.Targets {
				if strings.Contains(tg.Expr, "portsip_wsi_last_event_timestamp_seconds") && unguarded.MatchString(tg.Expr) {
					t.Errorf("%s %s: %q takes the 0 before the first event as a time", p.Title, tg.RefID, tg.Expr)
				}
			}
		}
	}
}

// People read queues and tenants by name: legends and tables show the
// display labels of the recording rules (the name, else the id), never the
// bare ids. A table of the tenants' names shows both, to look ids up.
func TestNamesNotIds(t *testing.T) {
	for _, d := range loadDashboards(t) {
		for _, p := range d.allPanels() {
			for _, tg := range p.Targets {
				if strings.Contains(tg.LegendFormat, "{{tenant_id}}") || strings.Contains(tg.LegendFormat, "{{queue}}") {
					t.Errorf("%s %q %s: legend %q shows ids; use {{tenant_display}} and {{queue_display}}", d.file, p.Title, tg.RefID, tg.LegendFormat)
				}
			}
			for _, tr := range p.Transformations {
				if tr.ID != "organize" {
					continue
				}
				o := tr.Options
				if _, named := o.RenameByName["tenant_name"]; !named && o.RenameByName["tenant_id"] != "" {
					t.Errorf("%s %q: shows the tenant id as a column; show tenant_display", d.file, p.Title)
				}
				if o.RenameByName["queue"] != "" {
					t.Errorf("%s %q: shows the queue number as a column; show queue_display", d.file, p.Title)
				}
				for _, l := range []string{"tenant_id", "queue"} {
					if _, shown := o.RenameByName[strings.TrimSuffix(l, "_id")+"_display"]; shown && !o.ExcludeByName[l] {
						t.Errorf("%s %q: shows %s beside its display name; exclude it", d.file, p.Title, l)
					}
				}
			}
		}
	}
}

// Callers on hold and scheduled callbacks are different things for a
// supervisor (a callback has nobody on the line): every query of waiting
// callers says which kind it counts, or keeps them apart by kind.
func TestCallbacksApartFromCallersOnHold(t *testing.T) {
	for _, d := range loadDashboards(t) {
		for _, p := range d.allPanels() {
			for _, tg := range p.Targets {
				sels, _, err := scan(tg.Expr)
				if err != nil {
					t.Fatalf("%s %q %s: %v", d.file, p.Title, tg.RefID, err)
				}
				for _, s := range sels {
					if _, ok := s.matchers["kind"]; s.metric == "portsip_queue_waiting_callers" && !ok {
						t.Errorf("%s %q %s: counts callers on hold and callbacks together", d.file, p.Title, tg.RefID)
					}
				}
			}
		}
	}
}

// The wallboard opens on "Today so far", and its "today" panels follow the
// time range.
func TestWallboardIsTodaySoFar(t *testing.T) {
	for _, d := range loadDashboards(t) {
		if d.UID != "portsip-wallboard" {
			continue
		}
		if d.Time.From != "now/d" || d.Time.To != "now" {
			t.Errorf("time range %+v, want now/d to now (Today so far)", d.Time)
		}
		ranged := 0
		for _, p := range d.allPanels() {
			for _, tg := range p.Targets {
				if strings.Contains(tg.Expr, "[$__range]") {
					ranged++
				}
			}
		}
		if ranged < 6 {
			t.Errorf("%d queries over $__range; the six today-so-far numbers need them", ranged)
		}
		return
	}
	t.Error("no wallboard")
}
