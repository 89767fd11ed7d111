package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	l := newLogger(&buf, logConfig{Level: "info", Format: "json"})
	l.Debug("hidden")
	l.Info("shown", "k", "v")
	l.Warn("also shown")
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("json at info: %d lines, want 2 (debug filtered):\n%s", len(lines), buf.String())
	}
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("not one JSON object per line: %q: %v", line, err)
		}
	}

	buf.Reset()
	l = newLogger(&buf, logConfig{Level: "debug", Format: "text"})
	l.Debug("details", "k", "v")
	out := buf.String()
	if !strings.Contains(out, "details") || !strings.Contains(out, "k=v") {
		t.Errorf("text at debug: %q", out)
	}
	// A buffer is not a terminal: no colour escapes.
	if strings.Contains(out, "\x1b[") {
		t.Errorf("colour escapes written to a non-terminal: %q", out)
	}

	// logfmt: slog's key=value pairs, the ecosystem's usual machine format.
	buf.Reset()
	l = newLogger(&buf, logConfig{Level: "info", Format: "logfmt"})
	l.Info("shown here", "k", "v w")
	if out := buf.String(); !strings.HasPrefix(out, "time=") || !strings.Contains(out, ` level=INFO msg="shown here" k="v w"`+"\n") {
		t.Errorf("logfmt: %q", out)
	}

	buf.Reset()
	l = newLogger(&buf, logConfig{Level: "error", Format: "text"})
	l.Warn("quiet")
	if buf.Len() != 0 {
		t.Errorf("warn logged at level error: %q", buf.String())
	}
}
