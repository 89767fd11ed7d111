package alerts

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v2"
)

const (
	rulesFile = "portsip.rules.yml"
	testsFile = "portsip.rules_test.yml"
)

// designAlerts is the alert table of the design contract: names and
// severities are fixed because users route on them.
var designAlerts = map[string]string{
	"PortsipExporterDown":          "critical",
	"PortsipWSIDisconnected":       "critical",
	"PortsipWSIFlapping":           "warning",
	"PortsipQueueSLABreached":      "warning",
	"PortsipQueueNoAgentsReady":    "critical",
	"PortsipQueueLongWait":         "warning",
	"PortsipQueueServiceLevelLow":  "warning",
	"PortsipQueueAbandonRateHigh":  "warning",
	"PortsipExtensionsMassOffline": "critical",
	"PortsipCallFailureRateHigh":   "warning",
}

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
	seen := map[string]int{}
	for _, r := range loadRules(t) {
		if r.Alert == "" {
			continue
		}
		seen[r.Alert]++
		want, ok := designAlerts[r.Alert]
		if !ok {
			t.Errorf("%s: not an alert of the design contract", r.Alert)
			continue
		}
		if got := r.Labels["severity"]; got != want {
			t.Errorf("%s: severity %q, want %q", r.Alert, got, want)
		}
		summary, desc := r.Annotations["summary"], r.Annotations["description"]
		if summary == "" || desc == "" {
			t.Errorf("%s: needs summary and description annotations", r.Alert)
		}
		// Tell the reader where: the tenant, and the queue for queue alerts.
		if strings.Contains(r.Alert, "Queue") && !strings.Contains(desc, "$labels.queue") {
			t.Errorf("%s: description does not name the queue", r.Alert)
		}
		if (strings.Contains(r.Alert, "Queue") || strings.Contains(r.Alert, "Extensions") || strings.Contains(r.Alert, "Call")) &&
			!strings.Contains(desc, "$labels.tenant_id") {
			t.Errorf("%s: description does not name the tenant", r.Alert)
		}
		// The two "down" alerts have a constant value, not worth printing.
		if r.Alert != "PortsipExporterDown" && r.Alert != "PortsipWSIDisconnected" && !strings.Contains(desc, "$value") {
			t.Errorf("%s: description does not give the value", r.Alert)
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

// recordName is level:metric:operations, each part a plain identifier.
var recordName = regexp.MustCompile(`^[a-z_]+:portsip_[a-z0-9_]+:[a-z0-9_]+$`)

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
		if !strings.Contains(r.Expr, `job="portsip"`) {
			t.Errorf("%s: expression does not select job=\"portsip\"", r.Record)
		}
	}
	// The three per-queue measures the design asks for.
	for _, want := range []string{"answered_within_20s:ratio", "abandoned:ratio", "speed_of_answer_seconds:avg"} {
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
				asserted[e.Expr] = true
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

// promtool returns the path of promtool, skipping the test when it is not
// installed, except in CI (CI set), where a missing promtool is a failure.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not found on PATH (CI is set; install the prometheus package)")
		}
		t.Skip("promtool not found on PATH")
	}
	return p
}

func TestPromtoolCheckRules(t *testing.T) {
	out, err := exec.Command(promtool(t), "check", "rules", rulesFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

func TestPromtoolTestRules(t *testing.T) {
	out, err := exec.Command(promtool(t), "test", "rules", testsFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}
