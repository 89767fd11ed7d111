package main

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
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
	parser, err := newParser(&c, io.Discard, io.Discard)
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
	parser, err := newParser(&c, io.Discard, io.Discard)
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

// readmeMetricTable is the README's metric table: type and label names of
// each metric. Label names are the words outside parentheses.
func readmeMetricTable(t *testing.T) map[string]readmeMetric {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(portsip_[a-z_]+)` \\| ([a-z]+)[^|]*\\|([^|]*)\\|")
	parens := regexp.MustCompile(`\([^)]*\)`)
	table := map[string]readmeMetric{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		labels := map[string]bool{}
		for _, l := range strings.FieldsFunc(parens.ReplaceAllString(m[3], ""), func(r rune) bool { return r == ',' || r == ' ' }) {
			labels[l] = true
		}
		table[m[1]] = readmeMetric{typ: m[2], labels: labels}
	}
	return table
}

type readmeMetric struct {
	typ    string
	labels map[string]bool
}

// checkREADMEMetrics compares a /metrics page with the README's table:
// every portsip_ family on it must be documented with its real type and
// label names.
func checkREADMEMetrics(t *testing.T, page string) {
	t.Helper()
	table := readmeMetricTable(t)
	types := map[string]string{}
	labels := map[string]map[string]bool{}
	series := regexp.MustCompile(`^([a-z_]+)(?:\{(.*)\})? `)
	labelName := regexp.MustCompile(`([a-z_]+)="`)
	for _, line := range strings.Split(page, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
			continue
		}
		m := series.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name := m[1]
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base := strings.TrimSuffix(name, suffix); base != name && types[base] == "histogram" {
				name = base
			}
		}
		if labels[name] == nil {
			labels[name] = map[string]bool{}
		}
		for _, l := range labelName.FindAllStringSubmatch(m[2], -1) {
			if l[1] != "le" {
				labels[name][l[1]] = true
			}
		}
	}
	for name, typ := range types {
		if !strings.HasPrefix(name, "portsip_") {
			continue
		}
		doc, ok := table[name]
		if !ok {
			t.Errorf("README's metric table lacks %s", name)
			continue
		}
		if doc.typ != typ {
			t.Errorf("README: %s is a %s, /metrics says %s", name, doc.typ, typ)
		}
		if !reflect.DeepEqual(doc.labels, labels[name]) && !(len(doc.labels) == 0 && len(labels[name]) == 0) {
			t.Errorf("README: %s has labels %v, /metrics %v", name, keys(doc.labels), keys(labels[name]))
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// architectureSections are ARCHITECTURE.md's sections, in order: code
// comments point to them by name.
var architectureSections = []string{
	"The data path", "The WSI session", "Decoding frames", "Readings of the vendor's silent spots",
	"The collector's state", "The metric catalogue", "The scrape", "The web side", "Record and replay",
	"The simulated PBX", "Rules and dashboards", "Where each concern lives", "Decisions and their measured reasons",
}

// ARCHITECTURE.md keeps the sections code comments name, and every file or
// directory it names in backticks exists: a file moved or renamed must
// take the document with it.
func TestArchitectureNamesWhatExists(t *testing.T) {
	b, err := os.ReadFile("ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var sections []string
	for _, m := range regexp.MustCompile(`(?m)^## (.+)$`).FindAllStringSubmatch(doc, -1) {
		sections = append(sections, m[1])
	}
	if !reflect.DeepEqual(sections, architectureSections) {
		t.Errorf("ARCHITECTURE.md's sections are\n%q\nwant\n%q", sections, architectureSections)
	}

	// A repository path: words of path characters with a slash, or a file
	// name with an extension the repository uses.
	path := regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]*)*$`)
	file := regexp.MustCompile(`\.(go|md|yml|json|gz|prom)$`)
	n := 0
	for _, m := range regexp.MustCompile("`([^`\n]+)`").FindAllStringSubmatch(doc, -1) {
		p := m[1]
		if !path.MatchString(p) || !strings.Contains(p, "/") && !file.MatchString(p) {
			continue
		}
		n++
		if _, err := os.Stat(p); err != nil {
			t.Errorf("ARCHITECTURE.md names %s, which does not exist", p)
		}
	}
	if n < 40 {
		t.Errorf("found only %d paths in ARCHITECTURE.md; the pattern is broken", n)
	}
}

// Code and documentation point to what is in the repository: the design
// contract the project started from is not, so nothing may cite it.
func TestNothingCitesTheContract(t *testing.T) {
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, ".md") && !strings.HasSuffix(p, ".yml") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "DESIGN"+".md") {
			t.Errorf("%s cites a file that is not in the repository (point to ARCHITECTURE.md or README.md)", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
