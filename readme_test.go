package main

import (
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portsip-exporter/portsip_exporter/collector"
)

// The README is the operator's reference: every flag and every metric the
// program has must be in it.
func TestREADMECoversFlagsAndMetrics(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)

	var c cli
	parser, err := kong.New(&c, kong.Vars{"version": "", "default_listen": ":" + defaultPort, "password_env": passwordEnv}.CloneWith(limitVars()),
		kong.Writers(io.Discard, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var visit func(n *kong.Node)
	visit = func(n *kong.Node) {
		for _, f := range n.Flags {
			if f.Name == "help" || seen[f.Name] {
				continue
			}
			seen[f.Name] = true
			name := "`--" + f.Name + "`"
			if f.Tag.Negatable != "" {
				name = "`--[no-]" + f.Name + "`"
			}
			if !strings.Contains(readme, name) {
				t.Errorf("README lacks the flag %s", name)
			}
			for _, env := range f.Tag.Envs {
				if !strings.Contains(readme, "`"+env+"`") {
					t.Errorf("README lacks the environment variable %s", env)
				}
			}
		}
		for _, child := range n.Children {
			visit(child)
		}
	}
	visit(parser.Model.Node)
	if len(seen) < 20 {
		t.Fatalf("found only %d flags; the walk is broken", len(seen))
	}

	descs := make(chan *prometheus.Desc, 1000)
	collector.New(collector.Config{}, nil).Describe(descs)
	newBuildInfo(getBuildInfo()).Describe(descs)
	close(descs)
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	n := 0
	for d := range descs {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read the name of %s", d)
		}
		n++
		if !strings.Contains(readme, "| `"+m[1]+"` |") {
			t.Errorf("README's metric table lacks %s", m[1])
		}
	}
	if n < 30 {
		t.Errorf("only %d metrics described; want the whole catalogue", n)
	}
}

// The README's flag table states each flag's default as --help does: a
// default changed in the code must be changed in the table.
func TestREADMEFlagDefaults(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	// | `--flag` | env | default | meaning |
	row := regexp.MustCompile("(?m)^\\| `--(?:\\[no-\\])?([a-z0-9.-]+)` \\|[^|]*\\|([^|]*)\\|")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		documented[m[1]] = strings.Trim(strings.TrimSpace(m[2]), "`")
	}

	var c cli
	parser, err := kong.New(&c, kong.Vars{"version": "", "default_listen": ":" + defaultPort, "password_env": passwordEnv}.CloneWith(limitVars()),
		kong.Writers(io.Discard, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	checked := map[string]bool{}
	var visit func(n *kong.Node)
	visit = func(n *kong.Node) {
		for _, f := range n.Flags {
			got, ok := documented[f.Name]
			if !ok || checked[f.Name] {
				continue // a missing row is TestREADMECoversFlagsAndMetrics's
			}
			checked[f.Name] = true
			want := f.Default
			if f.IsBool() {
				want = map[string]string{"true": "on", "false": "off", "": "off"}[f.Default]
				if f.Name == "version" {
					want = ""
				}
			}
			if got != want {
				t.Errorf("README: --%s defaults to %q, the program to %q", f.Name, got, want)
			}
		}
		for _, child := range n.Children {
			visit(child)
		}
	}
	visit(parser.Model.Node)
	if len(checked) < 20 {
		t.Fatalf("checked only %d defaults; the table's pattern is broken", len(checked))
	}
}
