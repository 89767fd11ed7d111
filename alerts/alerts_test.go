package alerts

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v2"

	"github.com/portsip-exporter/portsip_exporter/internal/e2e"
)

const (
	rulesFile = "portsip.rules.yml"
	testsFile = "portsip.rules_test.yml"
)

// designAlerts is the alert table (README.md, "Alerts and dashboards"):
// names, severities and "for" durations are fixed because users route on
// them.
var designAlerts = map[string]struct{ severity, forDuration string }{
	"PortsipExporterDown":           {"critical", "5m"},
	"PortsipWSIDisconnected":        {"critical", "2m"},
	"PortsipWSIFlapping":            {"warning", ""},
	"PortsipWSISubscriptionRefused": {"warning", "5m"},
	"PortsipQueueSLABreached":       {"info", ""},
	"PortsipQueueNoAgentsReady":     {"critical", "2m"},
	"PortsipQueueLongWait":          {"warning", "1m"},
	"PortsipQueueServiceLevelLow":   {"warning", "5m"},
	"PortsipQueueAbandonRateHigh":   {"warning", "5m"},
	"PortsipExtensionsMassOffline":  {"critical", ""},
	"PortsipCallFailureRateHigh":    {"warning", "5m"},
}

// pbxAlerts are the alerts about what happens on the PBX (queues,
// extensions, calls), as opposed to the exporter and its session.
var pbxAlerts = regexp.MustCompile(`^Portsip(Queue|Extensions|Call)`)

// runbookBase is where each alert's runbook_url points, followed by the
// anchor GitHub makes of the alert's heading in README.md.
const runbookBase = "https://github.com/portsip-exporter/portsip_exporter/blob/main/alerts/README.md#"

// sessionGate is how a PBX alert requires some exporter of its PBX to have
// a session: stale counters of a dead exporter or session never page.
const sessionGate = `max without (instance) (portsip_up{job="portsip"}) == 1`

type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	var rules []rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

func TestAlertsMatchDesign(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range loadRules(t) {
		if r.Alert == "" {
			continue
		}
		seen[r.Alert]++
		want, ok := designAlerts[r.Alert]
		if !ok {
			t.Errorf("%s: not an alert of the README's table", r.Alert)
			continue
		}
		if got := r.Labels["severity"]; got != want.severity {
			t.Errorf("%s: severity %q, want %q", r.Alert, got, want.severity)
		}
		if r.For != want.forDuration {
			t.Errorf("%s: for %q, want %q", r.Alert, r.For, want.forDuration)
		}
		summary, desc := r.Annotations["summary"], r.Annotations["description"]
		if summary == "" || desc == "" {
			t.Errorf("%s: needs summary and description annotations", r.Alert)
		}
		// The runbook: this directory's README, at the alert's own heading.
		anchor := strings.ToLower(r.Alert)
		if got := r.Annotations["runbook_url"]; got != runbookBase+anchor {
			t.Errorf("%s: runbook_url %q, want %q", r.Alert, got, runbookBase+anchor)
		}
		if !regexp.MustCompile(`(?m)^### ` + r.Alert + `$`).Match(readme) {
			t.Errorf("%s: README.md has no heading \"### %s\" for its runbook_url", r.Alert, r.Alert)
		}
		// Tell the reader where, by name where the exporter knows it.
		if strings.Contains(r.Alert, "Queue") {
			for _, l := range []string{"$labels.queue_name", "$labels.queue "} {
				if !strings.Contains(summary, l) || !strings.Contains(desc, l) {
					t.Errorf("%s: summary and description do not both name the queue by %s", r.Alert, l)
				}
			}
		}
		if pbxAlerts.MatchString(r.Alert) {
			for _, l := range []string{"$labels.tenant_name", "$labels.tenant_id"} {
				if !strings.Contains(summary, l) || !strings.Contains(desc, l) {
					t.Errorf("%s: summary and description do not both name the tenant by %s", r.Alert, l)
				}
			}
			if !strings.Contains(r.Expr, sessionGate) {
				t.Errorf("%s: does not require a session (%s)", r.Alert, sessionGate)
			}
		}
		// The two "down" alerts have a constant value, not worth printing;
		// the refused topic is in a label.
		switch r.Alert {
		case "PortsipExporterDown", "PortsipWSIDisconnected", "PortsipWSISubscriptionRefused":
		default:
			if !strings.Contains(desc, "$value") {
				t.Errorf("%s: description does not give the value", r.Alert)
			}
		}
		if !strings.Contains(r.Expr, `job="portsip"`) {
			t.Errorf("%s: expression does not select job=\"portsip\"", r.Alert)
		}
	}
	for name := range designAlerts {
		if seen[name] != 1 {
			t.Errorf("%s: defined %d times, want once", name, seen[name])
		}
	}
}

// No rule aggregates "by" a list of labels: that drops the target labels
// that tell PBXs apart (pbx, ...) and mixes them. Rules aggregate
// "without" what they sum over, and "without (instance)" to count an HA
// pair once.
func TestRulesKeepTargetLabels(t *testing.T) {
	by := regexp.MustCompile(`\bby\s*\(`)
	for _, r := range loadRules(t) {
		if by.MatchString(r.Expr) {
			t.Errorf("%s%s: aggregates by a label list; use without", r.Record, r.Alert)
		}
	}
}

// recordName is level:metric:operations, each part a plain identifier.
var recordName = regexp.MustCompile(`^[a-z_]+:portsip_[a-z0-9_]+:[a-z0-9_]+$`)

// rawMetric is a name of the exporter's, not part of a recorded name.
var rawMetric = regexp.MustCompile(`(^|[^:a-z_])portsip_[a-z0-9_]+`)

func TestRecordingRules(t *testing.T) {
	var names []string
	for _, r := range loadRules(t) {
		if r.Record == "" {
			continue
		}
		names = append(names, r.Record)
		if !recordName.MatchString(r.Record) {
			t.Errorf("%s: not named level:metric:operations", r.Record)
		}
		// The exporter's own series are selected by job; a rule made only
		// of other recorded series (already selected so) needs no matcher.
		if !strings.Contains(r.Expr, `job="portsip"`) && rawMetric.MatchString(r.Expr) {
			t.Errorf("%s: expression does not select job=\"portsip\"", r.Record)
		}
	}
	// The per-queue measures of the README's KPI section.
	for _, want := range []string{"service_level:ratio", "abandoned:ratio", "speed_of_answer_seconds:avg", "handle_time_seconds:avg"} {
		if !slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, want) }) {
			t.Errorf("no recording rule for %s", want)
		}
	}
}

type unitTests struct {
	Tests []struct {
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
		PromQLExprTest []struct {
			Expr       string `yaml:"expr"`
			ExpSamples []any  `yaml:"exp_samples"`
		} `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

// TestEveryRuleIsUnitTested keeps the promtool tests honest as rules are
// added: each alert must be shown to fire and to stay quiet, each recording
// rule's value must be asserted.
func TestEveryRuleIsUnitTested(t *testing.T) {
	b, err := os.ReadFile(testsFile)
	if err != nil {
		t.Fatal(err)
	}
	var u unitTests
	if err := yaml.Unmarshal(b, &u); err != nil {
		t.Fatalf("%s: %v", testsFile, err)
	}
	fires, quiet, asserted := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, tc := range u.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
		for _, e := range tc.PromQLExprTest {
			if len(e.ExpSamples) > 0 {
				// The rule itself, or a selection of its series.
				asserted[strings.SplitN(e.Expr, "{", 2)[0]] = true
			}
		}
	}
	for _, r := range loadRules(t) {
		switch {
		case r.Alert != "" && !fires[r.Alert]:
			t.Errorf("%s: no test where it fires", r.Alert)
		case r.Alert != "" && !quiet[r.Alert]:
			t.Errorf("%s: no test where it stays quiet", r.Alert)
		case r.Record != "" && !asserted[r.Record]:
			t.Errorf("%s: no test asserts its value", r.Record)
		}
	}
}

func TestPromtoolCheckRules(t *testing.T) {
	out, err := exec.Command(e2e.NeedTool(t, "promtool"), "check", "rules", rulesFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

func TestPromtoolTestRules(t *testing.T) {
	out, err := exec.Command(e2e.NeedTool(t, "promtool"), "test", "rules", testsFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

const alertmanagerFile = "alertmanager.yml"

func TestAmtoolCheckConfig(t *testing.T) {
	out, err := exec.Command(e2e.NeedTool(t, "amtool"), "check-config", alertmanagerFile).CombinedOutput()
	if err != nil {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
}

// Every alert reaches the receiver of its severity: critical pages,
// warning makes a ticket, info goes to the wallboard.
func TestAlertmanagerRoutesBySeverity(t *testing.T) {
	amtool := e2e.NeedTool(t, "amtool")
	receiver := map[string]string{"critical": "pager", "warning": "tickets", "info": "wallboard"}
	for name, a := range designAlerts {
		out, err := exec.Command(amtool, "config", "routes", "test", "--config.file="+alertmanagerFile,
			"alertname="+name, "severity="+a.severity, "job=portsip", "tenant_id=7001").Output()
		if err != nil {
			t.Fatalf("amtool config routes test: %v\n%s", err, out)
		}
		if got := strings.TrimSpace(string(out)); got != receiver[a.severity] {
			t.Errorf("%s (%s) goes to %q, want %q", name, a.severity, got, receiver[a.severity])
		}
	}
}

// The inhibition mutes exactly the PBX alerts while the exporter or its
// session is down, and never the alerts that say so.
func TestAlertmanagerInhibitsPBXAlerts(t *testing.T) {
	b, err := os.ReadFile(alertmanagerFile)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		InhibitRules []struct {
			SourceMatchers []string `yaml:"source_matchers"`
			TargetMatchers []string `yaml:"target_matchers"`
			Equal          []string `yaml:"equal"`
		} `yaml:"inhibit_rules"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	// alertname=~"..." as a regexp anchored as Alertmanager anchors it.
	nameMatcher := func(ms []string) *regexp.Regexp {
		for _, m := range ms {
			if v, ok := strings.CutPrefix(m, `alertname=~`); ok {
				return regexp.MustCompile(`^(?:` + strings.Trim(v, `"`) + `)$`)
			}
		}
		t.Fatalf("no alertname=~ matcher in %q", ms)
		return nil
	}
	if len(cfg.InhibitRules) != 1 {
		t.Fatalf("%d inhibit rules, want 1", len(cfg.InhibitRules))
	}
	r := cfg.InhibitRules[0]
	source, target := nameMatcher(r.SourceMatchers), nameMatcher(r.TargetMatchers)
	for name := range designAlerts {
		wantSource := name == "PortsipExporterDown" || name == "PortsipWSIDisconnected"
		if source.MatchString(name) != wantSource {
			t.Errorf("%s: source of the inhibition %v, want %v", name, !wantSource, wantSource)
		}
		if target.MatchString(name) != pbxAlerts.MatchString(name) {
			t.Errorf("%s: muted while the exporter is down %v, want %v", name, !pbxAlerts.MatchString(name), pbxAlerts.MatchString(name))
		}
	}
	if !slices.Contains(r.Equal, "job") {
		t.Errorf("inhibition equal %q: without job it mutes every job's alerts", r.Equal)
	}
	if slices.Contains(r.Equal, "instance") {
		t.Errorf("inhibition equal %q: the PBX alerts carry no instance, so it would never match", r.Equal)
	}
}

// prometheus.yml is the ready configuration for the demo: valid, scraping
// the demo's port as job portsip, with these rules, alerting to the
// Alertmanager's default port.
func TestDemoPrometheusConfig(t *testing.T) {
	out, err := exec.Command(e2e.NeedTool(t, "promtool"), "check", "config", "prometheus.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	b, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		RuleFiles []string `yaml:"rule_files"`
		Alerting  struct {
			Alertmanagers []struct {
				StaticConfigs []struct {
					Targets []string `yaml:"targets"`
				} `yaml:"static_configs"`
			} `yaml:"alertmanagers"`
		} `yaml:"alerting"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.RuleFiles, []string{rulesFile}) {
		t.Errorf("rule_files %q, want %q", cfg.RuleFiles, rulesFile)
	}
	if len(cfg.ScrapeConfigs) != 1 || cfg.ScrapeConfigs[0].JobName != "portsip" ||
		len(cfg.ScrapeConfigs[0].StaticConfigs) != 1 || !slices.Equal(cfg.ScrapeConfigs[0].StaticConfigs[0].Targets, []string{"localhost:9887"}) {
		t.Errorf("scrape_configs %+v, want job portsip scraping localhost:9887", cfg.ScrapeConfigs)
	}
	if am := cfg.Alerting.Alertmanagers; len(am) != 1 || len(am[0].StaticConfigs) != 1 ||
		!slices.Equal(am[0].StaticConfigs[0].Targets, []string{"localhost:9093"}) {
		t.Errorf("alertmanagers %+v, want localhost:9093", am)
	}
}

// The alert tables of this directory's README and the main README say what
// the rules do: every alert, its severity and its "for".
func TestREADMEAlertTables(t *testing.T) {
	rules := map[string]rule{}
	for _, r := range loadRules(t) {
		if r.Alert != "" {
			rules[r.Alert] = r
		}
	}
	row := regexp.MustCompile("(?m)^\\| `(Portsip[A-Za-z]+)` \\| ([a-z]+) \\| *([0-9a-z]*) *\\|")
	for _, file := range []string{"README.md", "../README.md"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, m := range row.FindAllStringSubmatch(string(b), -1) {
			r, ok := rules[m[1]]
			switch {
			case !ok:
				t.Errorf("%s: %s is not an alert of the rules", file, m[1])
			case seen[m[1]]:
				t.Errorf("%s: %s twice in the table", file, m[1])
			case m[2] != r.Labels["severity"] || m[3] != r.For:
				t.Errorf("%s: %s is %s, for %q; the rules say %s, for %q", file, m[1], m[2], m[3], r.Labels["severity"], r.For)
			}
			seen[m[1]] = true
		}
		for name := range rules {
			if !seen[name] {
				t.Errorf("%s: the alert table lacks %s", file, name)
			}
		}
	}
}
