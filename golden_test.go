package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portsip-exporter/portsip_exporter/capture"
	"github.com/portsip-exporter/portsip_exporter/wsi"
	"github.com/portsip-exporter/portsip_exporter/wsi/wsitest"
)

var update = flag.Bool("update", false, "regenerate the captures in testdata/captures from the simulator, and their golden expositions")

// goldenModes are the readings of the vendor's silent spots the simulator
// speaks (wsitest.Quirks), one capture each, and the quirk whose counter
// the capture must move ("" for none: the default reading).
var goldenModes = []struct {
	name  string
	q     wsitest.Quirks
	quirk string
}{
	{"default", wsitest.Quirks{}, wsi.QuirkEndReasonSpelling.String()},
	{"leave_repeats_enqueue_time", wsitest.Quirks{LeaveRepeatsEnqueueTime: true}, wsi.QuirkLeaveTimeRepeated.String()},
	{"clock_skew", wsitest.Quirks{ClockSkew: -2 * time.Minute}, ""},
	{"new_queue_id_only", wsitest.Quirks{NewQueueIDOnly: true}, wsi.QuirkQueueIDOnly.String()},
	{"duplicate_keys", wsitest.Quirks{DuplicateKeys: true}, wsi.QuirkDuplicateKey.String()},
	{"presence_online", wsitest.Quirks{PresenceOnline: true}, wsi.QuirkPresenceOnline.String()},
	{"push_only", wsitest.Quirks{PushOnly: true}, wsi.QuirkPushOnline.String()},
	{"admin_globals_refused", wsitest.Quirks{AdminGlobalsRefused: true}, wsi.QuirkTopicsRefused.String()},
	{"caller_updates", wsitest.Quirks{CallerUpdates: true}, wsi.QuirkCallerUpdate.String()},
	{"end_reasons_past_tense", wsitest.Quirks{EndReasonsPastTense: true}, ""},
	{"duplicates", wsitest.Quirks{Duplicates: true}, wsi.QuirkDuplicateEvent.String()},
	{"spelling_title_case", wsitest.Quirks{Spelling: wsitest.SpellingTitleCase}, wsi.QuirkVersionSpelling.String()},
	{"spelling_lower_case", wsitest.Quirks{Spelling: wsitest.SpellingLowerCase}, wsi.QuirkVersionSpelling.String()},
	{"all_quirks", allButRefusal(), wsi.QuirkLeaveTimeRepeated.String()},
}

// allButRefusal is every quirk at once but the refused topics, which
// leave little to see (they have their own capture).
func allButRefusal() wsitest.Quirks {
	q := wsitest.AllQuirks()
	q.AdminGlobalsRefused = false
	return q
}

const goldenDir = "testdata/captures"

// TestGoldenCaptures replays each capture in testdata/captures (replay
// --print, in-process) and compares the metrics with its golden
// exposition beside it (NAME.prom beside NAME.jsonl or NAME.jsonl.gz).
// With -update the expositions are rewritten, and the captures of the
// simulator (goldenModes) made again from it, on its own clock; any other
// capture (a PBX's, to keep a fix) is kept as it is. A simulator's capture
// that does not show its reading (its quirk counter at 0) fails too: it
// would prove nothing.
func TestGoldenCaptures(t *testing.T) {
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, m := range goldenModes {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			if err := simulatedCapture(zw, m.q); err != nil {
				t.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(goldenDir, m.name+".jsonl.gz"), buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	captures, _ := filepath.Glob(filepath.Join(goldenDir, "*.jsonl*"))
	if len(captures) < len(goldenModes) {
		t.Fatalf("%d captures in %s, want at least the simulator's %d (go test -run TestGoldenCaptures -update makes them)",
			len(captures), goldenDir, len(goldenModes))
	}
	for _, capPath := range captures {
		name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(capPath), ".gz"), ".jsonl")
		t.Run(name, func(t *testing.T) {
			promPath := filepath.Join(goldenDir, name+".prom")
			exposition := replayPrint(t, capPath)
			got := goldenExposition(exposition)
			if *update {
				if err := os.WriteFile(promPath, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(promPath)
			if err != nil {
				t.Fatalf("%v (go test -run TestGoldenCaptures -update makes it)", err)
			}
			if got != string(want) {
				t.Errorf("replaying %s gives other metrics than %s (if the change is meant, go test -run TestGoldenCaptures -update, and review the diff):\n%s",
					capPath, promPath, lineDiff(string(want), got))
			}
			for _, m := range goldenModes {
				if m.name == name {
					checkReading(t, exposition, m.q, m.quirk)
				}
			}
		})
	}
}

// checkReading fails when a simulator's capture does not show the reading
// it was made to show.
func checkReading(t *testing.T, exposition string, q wsitest.Quirks, quirk string) {
	t.Helper()
	if quirk != "" && sampleValue(t, exposition, `portsip_wsi_quirks_total{quirk="`+quirk+`"}`) == 0 {
		t.Errorf("the capture does not show its reading: quirk %s is 0", quirk)
	}
	if q.ClockSkew != 0 {
		if off := sampleValue(t, exposition, "portsip_wsi_clock_offset_seconds"); off < 119 || off > 121 {
			t.Errorf("clock offset %v, want the PBX's 2 minutes", off)
		}
	}
	if n := sampleValue(t, exposition, `portsip_wsi_connection_errors_total{stage="read"}`); n != 1 {
		t.Errorf("%v read errors, want the one recorded drop", n)
	}
}

// goldenExposition is what a golden file keeps of an exposition: every
// sample but the histograms' buckets (their counts and sums stay), so
// that fourteen captures' expositions take a few hundred KB, and no HELP
// or TYPE line, so that a reworded help text does not touch them.
func goldenExposition(exposition string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(exposition, "\n") {
		if !strings.HasPrefix(l, "#") && !strings.Contains(l, "_bucket{") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// replayPrint is `replay --print file`, in-process.
func replayPrint(t *testing.T, file string, flags ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args := append([]string{"replay", file, "--print", "--log.format=logfmt"}, flags...)
	if code := run(context.Background(), args, &stdout, &stderr); code != exitOK {
		t.Fatalf("replay %s: exit %d\n%s", file, code, stderr.String())
	}
	return stdout.String()
}

// sampleValue is the value of one sample of an exposition, 0 when absent.
func sampleValue(t *testing.T, exposition, series string) float64 {
	t.Helper()
	for _, l := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return f
		}
	}
	return 0
}

// lineDiff lists the lines only one side has.
func lineDiff(want, got string) string {
	count := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(got, "\n") {
		count[l]--
	}
	var out []string
	for _, l := range strings.Split(want, "\n") {
		if count[l] > 0 {
			out = append(out, "- "+l)
			count[l]--
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if count[l] < 0 {
			out = append(out, "+ "+l)
			count[l]++
		}
	}
	if len(out) > 40 {
		out = append(out[:40], fmt.Sprintf("... and %d more", len(out)-40))
	}
	return strings.Join(out, "\n")
}

// The simulated session of a golden capture: a contact centre of one
// tenant, recorded for a minute by a system administrator on every
// global topic, with the session dropped once and resumed.
const (
	goldenFirst   = 45 * time.Second // the first session
	goldenGap     = 2 * time.Second  // down: what the PBX sends meanwhile is lost
	goldenSession = 15 * time.Second // the second
)

var goldenTopics = []string{wsi.TopicGlobalQueueEvents, wsi.TopicGlobalQueueManagement, wsi.TopicGlobalExtensionEvents,
	wsi.TopicGlobalExtensionManagement, wsi.TopicGlobalCDREvents}

// simulatedCapture writes a capture of the simulator speaking q as the
// record command would write it, on the simulator's clock: the frames a
// client reads (what the Tap sees of the login, the subscribe replies and
// the traffic), its session boundaries, each at its simulated time.
func simulatedCapture(w io.Writer, q wsitest.Quirks) error {
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	tr := wsitest.NewTraffic(wsitest.NewUnstartedServer(), wsitest.TrafficConfig{
		Seed: 1, Start: start, Tenants: 1, QueuesPerTenant: 1, Extensions: 4, Load: 0.5, Quirks: q,
	})
	cw, err := capture.NewWriter(w, capture.Header{Time: start, Source: "wsitest", Exporter: "golden",
		Mode: capture.ModeGlobal, Tenants: tr.TenantIDs()}, capture.Options{})
	if err != nil {
		return err
	}
	// An administrator may be refused every global topic but extension
	// management (Quirks.AdminGlobalsRefused): then the PBX sends only
	// that topic's events.
	accepted := func(topic string) bool { return !q.AdminGlobalsRefused || topic == wsi.TopicGlobalExtensionManagement }
	up := false
	tap := func(at time.Time, frame []byte) {
		if up && accepted(topicOf(frame)) {
			cw.Record(wsi.Record{Time: at, Frame: frame})
		}
	}
	session := func(at time.Time) {
		cw.Record(wsi.Record{Time: at, Frame: []byte(`{"command":"auth","id":"1","status":0}`)})
		topics := map[string]bool{}
		for i, topic := range goldenTopics {
			reply := fmt.Sprintf(`{"command":"subscribe","id":"%d","status":0}`, i+2)
			if !accepted(topic) {
				reply = fmt.Sprintf(`{"command":"subscribe","error":"permission denied: %s","id":"%d","status":-1}`, topic, i+2)
			}
			cw.Record(wsi.Record{Time: at, Frame: []byte(reply)})
			topics[topic] = accepted(topic)
		}
		cw.Record(wsi.Record{Time: at, Session: wsi.RecordUp, Topics: topics})
		up = true
		tr.Tap(tap) // the snapshots, then the traffic
	}
	step := func(from, to time.Time) {
		for at := from; !at.After(to); at = at.Add(100 * time.Millisecond) {
			tr.Step(at)
		}
	}
	session(start)
	drop := start.Add(goldenFirst)
	step(start, drop)
	cw.Record(wsi.Record{Time: drop, Session: wsi.RecordDown, Stage: wsi.StageRead,
		Reason: "websocket: close 1006 (abnormal closure): unexpected EOF"})
	up = false
	resume := drop.Add(goldenGap)
	step(drop, resume)
	session(resume)
	end := resume.Add(goldenSession)
	step(resume, end)
	cw.Record(wsi.Record{Time: end, Session: wsi.RecordDown, Reason: "context canceled"})
	return cw.Close(end)
}

// topicOf is the global topic that carries a frame's event.
func topicOf(frame []byte) string {
	var ev struct {
		EventType string `json:"event_type"`
	}
	_ = json.Unmarshal(frame, &ev)
	switch t := ev.EventType; {
	case regexp.MustCompile(`^queue_(created|updated|destroy)$`).MatchString(t):
		return wsi.TopicGlobalQueueManagement
	case strings.HasPrefix(t, "queue_"):
		return wsi.TopicGlobalQueueEvents
	case regexp.MustCompile(`^extension_(created|updated|destroyed)$`).MatchString(t):
		return wsi.TopicGlobalExtensionManagement
	case strings.HasPrefix(t, "extension_"):
		return wsi.TopicGlobalExtensionEvents
	}
	return wsi.TopicGlobalCDREvents
}
