package secret

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// A password with what JSON, Go quoting and URLs each escape differently.
const oddPassword = `pa"ss\wörd<&>`

// forms are the ways oddPassword may be spelt in text.
var forms = []string{oddPassword, `pa\"ss\\wörd<&>`, `pa\"ss\\wörd\u003c\u0026\u003e`, `pa\"ss\\w\u00f6rd<&>`, "pa%22ss%5Cw%C3%B6rd%3C%26%3E"}

func TestRedactor(t *testing.T) {
	r := NewRedactor(oddPassword, "")
	for _, f := range forms {
		if got := r.String("x " + f + " y"); got != "x "+Redacted+" y" {
			t.Errorf("String(%q) = %q", f, got)
		}
	}
	var nilR *Redactor
	if nilR.String(oddPassword) != oddPassword || NewRedactor("").String("a") != "a" {
		t.Error("a nil or empty Redactor changed text")
	}

	var buf bytes.Buffer
	log := slog.New(r.Handler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	log.With("pre", oddPassword).WithGroup("g").Debug("msg "+oddPassword,
		"s", oddPassword, "err", errors.New("e "+oddPassword), "list", []string{oddPassword},
		slog.Group("inner", "s", oddPassword), "n", 1)
	out := buf.String()
	for _, f := range forms {
		if strings.Contains(out, f) {
			t.Errorf("the log holds %q: %s", f, out)
		}
	}
	if strings.Count(out, Redacted) != 6 || !strings.Contains(out, `"n":1`) {
		t.Errorf("log %s: want six redactions and the rest as it was", out)
	}
}
