//go:build linux

package dashboards

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portsip-exporter/portsip_exporter/internal/e2e"
)

// The end-to-end test builds the exporter, runs it on the demo PBX, has a
// real Prometheus scrape it with the shipped rules loaded, and runs every
// dashboard query through Prometheus's HTTP API. It fails on a query error,
// on a panel that stays empty after the demo has run for a while, and on a
// rule whose health is not ok.

const (
	// e2eDeadline bounds the wait for every panel to have data; the demo
	// makes every metric family appear within a minute.
	e2eDeadline = 3 * time.Minute
	// The substitutions for Grafana's variables. With a 1s scrape interval
	// Grafana's $__rate_interval would be a few seconds; a minute is as
	// valid and steadier on a loaded machine.
	rateInterval = "1m"
	dashRange    = "10m"
)

type apiResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

// sample is one series of an instant query's result (no labels for a
// scalar).
type sample struct {
	labels map[string]string
	value  float64
}

// query runs an instant query and returns its samples and any error
// Prometheus reported; badQuery tells a query that can never work
// (bad_data) from a transient failure.
func query(promURL, q string) (samples []sample, badQuery bool, err error) {
	b, _, err := e2e.Get(promURL + "/api/v1/query?" + url.Values{"query": {q}}.Encode())
	if err != nil {
		return nil, false, err
	}
	var r apiResponse
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, false, fmt.Errorf("%v: %s", err, b)
	}
	if r.Status != "success" {
		return nil, r.ErrorType == "bad_data", fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(r.Data, &data); err != nil {
		return nil, false, err
	}
	// A sample is [time, "value"].
	type apiSeries struct {
		Metric map[string]string
		Value  [2]any
	}
	var series []apiSeries
	switch data.ResultType {
	case "scalar":
		series = make([]apiSeries, 1)
		err = json.Unmarshal(data.Result, &series[0].Value)
	case "vector":
		err = json.Unmarshal(data.Result, &series)
	default:
		err = fmt.Errorf("unexpected result type %q", data.ResultType)
	}
	if err != nil {
		return nil, false, err
	}
	for _, s := range series {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, false, fmt.Errorf("sample value %v: %v", s.Value[1], err)
		}
		samples = append(samples, sample{s.Metric, v})
	}
	return samples, false, nil
}

// optionsProblem returns what is wrong with the options a query_result
// variable makes of its result, read as Grafana reads them: each series
// printed as {label="value",...} value timestamp, the regexp's value and
// text groups taken from every match. Each series must give its own label's
// value and a text to show.
func optionsProblem(label string, re *regexp.Regexp, samples []sample) string {
	for _, s := range samples {
		names := make([]string, 0, len(s.labels))
		for k := range s.labels {
			names = append(names, k)
		}
		sort.Strings(names)
		var pairs []string
		for _, k := range names {
			pairs = append(pairs, k+`="`+s.labels[k]+`"`)
		}
		line := "{" + strings.Join(pairs, ",") + "} " + strconv.FormatFloat(s.value, 'g', -1, 64) + " 1700000000000"
		var value, text string
		for _, m := range re.FindAllStringSubmatch(line, -1) {
			if v := m[re.SubexpIndex("value")]; v != "" {
				value = v
			}
			if i := re.SubexpIndex("text"); i >= 0 && m[i] != "" {
				text = m[i]
			}
		}
		if value != s.labels[label] || text == "" {
			return fmt.Sprintf("option of %s gives value %q and text %q, want value %q and a text", line, value, text, s.labels[label])
		}
	}
	return ""
}

// implausible returns a reason when a panel's value cannot be right for its
// unit: every query here measures something that is never negative (but
// the PBX's clock offset, which is a difference of clocks), and a share
// lies between 0 and 1. NaN (a ratio of two zero rates) is allowed.
func implausible(expr, unit string, v float64) string {
	const eps = 1e-9
	switch {
	case math.IsNaN(v):
		return ""
	case v < -eps && !strings.Contains(expr, "portsip_wsi_clock_offset_seconds"):
		return "negative"
	case unit == "percentunit" && v > 1+eps:
		return "a share above 100%"
	}
	return ""
}

// panelQuery is one dashboard query with Grafana's variables substituted.
type panelQuery struct {
	where string
	expr  string
	unit  string
	// A query_result variable's label and the regexp taking options from it.
	label   string
	options *regexp.Regexp
}

var (
	dollarVar    = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)
	grafanaConst = map[string]string{
		"__rate_interval": rateInterval,
		"__interval":      "15s",
		"__range":         dashRange,
	}
)

// substitute replaces Grafana's variables as Grafana would with every
// multi-value variable set to All (.*).
func substitute(expr string) string {
	return dollarVar.ReplaceAllStringFunc(expr, func(m string) string {
		name := dollarVar.FindStringSubmatch(m)[1]
		if v, ok := grafanaConst[name]; ok {
			return v
		}
		return ".*"
	})
}

func dashboardQueries(t *testing.T) []panelQuery {
	t.Helper()
	var qs []panelQuery
	for _, d := range loadDashboards(t) {
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			expr, options, err := v.promQL()
			if err != nil {
				t.Fatalf("%s: variable %s: %v", d.file, v.Name, err)
			}
			where := d.file + " variable " + v.Name
			if options == nil {
				qs = append(qs, panelQuery{where: where, expr: substitute("count by (" + v.Name + ") (" + expr + ")")})
				continue
			}
			qs = append(qs, panelQuery{where: where, expr: substitute(expr), label: v.Name, options: options})
		}
		for _, p := range d.allPanels() {
			for _, tg := range p.Targets {
				qs = append(qs, panelQuery{where: fmt.Sprintf("%s %q %s", d.file, p.Title, tg.RefID), expr: substitute(tg.Expr), unit: p.FieldConfig.Defaults.Unit})
			}
		}
	}
	return qs
}

// rulesHealth returns the rules not (yet) healthy, with their state.
func rulesHealth(promURL string) (notOK []string, broken bool, n int, err error) {
	b, _, err := e2e.Get(promURL + "/api/v1/rules")
	if err != nil {
		return nil, false, 0, err
	}
	var r apiResponse
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, false, 0, err
	}
	var data struct {
		Groups []struct {
			Rules []struct {
				Name      string `json:"name"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(r.Data, &data); err != nil {
		return nil, false, 0, err
	}
	for _, g := range data.Groups {
		for _, rule := range g.Rules {
			n++
			if rule.Health != "ok" {
				notOK = append(notOK, fmt.Sprintf("%s: %s %s", rule.Name, rule.Health, rule.LastError))
				broken = broken || rule.Health == "err"
			}
		}
	}
	return notOK, broken, n, nil
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: minutes of a real Prometheus")
	}
	promtool := e2e.NeedTool(t, "promtool")
	dir := t.TempDir()
	bin := e2e.BuildExporter(t, dir)

	exporterAddr := e2e.FreeAddr(t)
	exporter := e2e.Start(t, dir, "exporter", nil, bin, "demo", "--web.listen-address="+exporterAddr)
	metricsURL := "http://" + exporterAddr + "/metrics"
	e2e.WaitFor(t, "exporter /metrics", 30*time.Second, func() bool {
		_, code, err := e2e.Get(metricsURL)
		return err == nil && code == http.StatusOK
	}, exporter)

	rules, err := filepath.Abs("../alerts/portsip.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	// Native histograms stay off: Prometheus 2.x then keeps the classic
	// buckets the heatmap uses (it drops them for a histogram that has
	// native buckets unless scrape_classic_histograms is set, which 2.42
	// does not know).
	promURL, prom := e2e.Prometheus(t, dir, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: portsip
    static_configs:
      - targets: [%q]
`, rules, exporterAddr))
	e2e.WaitFor(t, "scrape of the exporter", time.Minute, func() bool {
		up, _, err := query(promURL, `up{job="portsip"} == 1`)
		return err == nil && len(up) > 0
	}, exporter, prom)

	t.Run("promtool check metrics", func(t *testing.T) {
		b, code, err := e2e.Get(metricsURL)
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET %s: %d %v", metricsURL, code, err)
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(string(b))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	})

	queries := dashboardQueries(t)
	var empty, failing, rulesNotOK []string
	wrong := map[string]string{} // query -> why its value cannot be right
	defer func() {
		for where, why := range wrong {
			t.Errorf("%s: %s", where, why)
		}
	}()
	began := time.Now()
	deadline := began.Add(e2eDeadline)
	for {
		empty, failing = empty[:0], failing[:0]
		for _, q := range queries {
			samples, bad, err := query(promURL, q.expr)
			switch {
			case bad:
				t.Fatalf("%s: %v\n%s", q.where, err, q.expr)
			case err != nil:
				failing = append(failing, fmt.Sprintf("%s: %v", q.where, err))
			case len(samples) == 0:
				empty = append(empty, q.where+"\n    "+strings.ReplaceAll(q.expr, "\n", " "))
			}
			for _, s := range samples {
				if why := implausible(q.expr, q.unit, s.value); why != "" {
					wrong[q.where] = fmt.Sprintf("%g is %s\n    %s", s.value, why, strings.ReplaceAll(q.expr, "\n", " "))
				}
			}
			if q.options != nil {
				if why := optionsProblem(q.label, q.options, samples); why != "" {
					wrong[q.where] = why
				}
			}
		}
		var broken bool
		var nRules int
		rulesNotOK, broken, nRules, err = rulesHealth(promURL)
		if err != nil {
			rulesNotOK = []string{err.Error()}
		}
		if broken {
			t.Fatalf("rules failing:\n%s", strings.Join(rulesNotOK, "\n"))
		}
		if nRules == 0 {
			rulesNotOK = append(rulesNotOK, "Prometheus has loaded no rules")
		}
		if len(empty)+len(failing)+len(rulesNotOK) == 0 {
			break
		}
		if exporter.Exited() || prom.Exited() || time.Now().After(deadline) {
			sort.Strings(empty)
			t.Fatalf("after %v of demo traffic:\n%d queries fail:\n%s\n%d of %d queries return no data:\n%s\nrules not ok:\n%s",
				e2eDeadline, len(failing), strings.Join(failing, "\n"), len(empty), len(queries),
				strings.Join(empty, "\n"), strings.Join(rulesNotOK, "\n"))
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("%d dashboard queries return data and every rule is healthy after %v of scraping",
		len(queries), time.Since(began).Round(time.Second))
}

// Keep the helper honest: a query is substituted the way Grafana does it.
func TestSubstitute(t *testing.T) {
	got := substitute(`rate(a{t=~"$tenant_id", q=~"${queue}"}[$__rate_interval]) / b[$__range]`)
	want := `rate(a{t=~".*", q=~".*"}[` + rateInterval + `]) / b[` + dashRange + `]`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
