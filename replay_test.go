package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portsip-exporter/portsip_exporter/capture"
	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// recordedAt is when the hand-made captures below were recorded: years
// before any test runs, so that a replay reading the wall clock anywhere
// shows at once.
var recordedAt = time.Date(2020, 1, 6, 9, 0, 0, 0, time.UTC)

// writeRecords writes a capture of records, in global mode for tenant 1.
func writeRecords(t *testing.T, recs []wsi.Record, opt capture.Options) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "capture.jsonl")
	w, err := capture.Create(path, false, capture.Header{Time: recordedAt, Source: "test", Mode: capture.ModeGlobal, Tenants: []string{"1"}}, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(recs[len(recs)-1].Time); err != nil {
		t.Fatal(err)
	}
	return path
}

// at is a time of the hand-made recordings; pbx the PBX's timestamp of
// it (the PBX's clock agrees with the exporter's).
func at(s int) time.Time { return recordedAt.Add(time.Duration(s) * time.Second) }
func pbx(s int) string   { return fmt.Sprint(at(s).Unix()) }

func frameAt(s int, f string) wsi.Record { return wsi.Record{Time: at(s), Frame: []byte(f)} }

// upAt is what a Tap records of a session coming up at s with every
// global topic.
func upAt(s int) []wsi.Record {
	recs := []wsi.Record{frameAt(s, `{"command":"auth","id":"1","status":0}`)}
	topics := map[string]bool{}
	for i, topic := range goldenTopics {
		recs = append(recs, frameAt(s, fmt.Sprintf(`{"command":"subscribe","id":"%d","status":0}`, i+2)))
		topics[topic] = true
	}
	return append(recs, wsi.Record{Time: at(s), Session: wsi.RecordUp, Topics: topics})
}

// snapshotAt is the queue's snapshot at s: agent 101 ready since s, a
// caller waiting since waitingSince.
func snapshotAt(s, waitingSince int) wsi.Record {
	return frameAt(s, `{"event_type":"queue_status","tenant_id":"1","queue_id":"77","queue_number":"8001","queue_name":"Sales",`+
		`"waiting_list":[{"position":"1","session_id":"c1","caller_number":"5550001","timestamp":"`+pbx(waitingSince)+`","type":"normal"}],`+
		`"agents":[{"state":"READY","agent_extension_number":"101","timestamp":"`+pbx(s)+`"}]}`)
}

// The clock of a replay is the recorded one: times in state run from the
// snapshot to the recorded end of the session (not to when the replay
// handled it), a caller's wait from the PBX's enqueue time to the last
// recorded line, the last event's time is the recorded one.
func TestReplayClockIsTheRecordedOne(t *testing.T) {
	recs := upAt(0)
	recs = append(recs, snapshotAt(0, -100),
		frameAt(20, `{"event_type":"queue_created","tenant_id":"1","queue_number":"8002","queue_name":"Returns"}`),
		wsi.Record{Time: at(30), Session: wsi.RecordDown, Stage: wsi.StageRead, Reason: "read: no frame or pong for 1m0s (two ping periods)"},
		wsi.Record{Time: at(35), Session: wsi.RecordDown, Stage: wsi.StageDial, Reason: "dial: connection refused"})
	recs = append(recs, upAt(40)...)
	recs = append(recs, snapshotAt(40, -100),
		frameAt(50, `{"event_type":"queue_caller_status","tenant_id":"1","queue_id":"77","updated_callers":[`+
			`{"position":"2","session_id":"c2","caller_number":"5550002","timestamp":"`+pbx(50)+`","type":"normal","reason":"enqueue"}]}`),
		wsi.Record{Time: at(60), Session: wsi.RecordDown, Reason: "context canceled"})
	out := replayPrint(t, writeRecords(t, recs, capture.Options{}))

	for series, want := range map[string]float64{
		// Ready from 0 to the drop at 30, and from 40 to the end at 60.
		`portsip_queue_agent_state_seconds_total{queue="8001",state="ready",tenant_id="1"}`: 50,
		`portsip_queue_oldest_wait_seconds{queue="8001",tenant_id="1"}`:                     160,
		`portsip_queue_waiting_callers{kind="normal",queue="8001",tenant_id="1"}`:           2,
		`portsip_wsi_last_event_timestamp_seconds`:                                          float64(at(50).Unix()),
		`portsip_wsi_connection_attempts_total`:                                             3,
		`portsip_wsi_connection_errors_total{stage="read"}`:                                 1,
		`portsip_wsi_connection_errors_total{stage="dial"}`:                                 1,
		`portsip_wsi_clock_offset_seconds`:                                                  0,
		`portsip_up`:                                                                        1,
	} {
		if got := sampleValue(t, out, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

// A bad line is reported with its number and skipped; what follows it is
// replayed; a capture cut short is replayed up to its last whole line,
// and says so.
func TestReplaySkipsBadLines(t *testing.T) {
	recs := append(upAt(0), snapshotAt(0, -10),
		frameAt(5, `{"event_type":"queue_caller_status","tenant_id":"1","queue_id":"77","updated_callers":[{"session_id":"c1","reason":"agent_answered","timestamp":"`+pbx(5)+`"}]}`))
	path := writeRecords(t, recs, capture.Options{})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	// Line 4 garbled, line 6 not JSON; the end line lost to a kill.
	lines[3] = lines[3][:20] + "\n"
	lines = append(lines[:5], append([]string{"\x00\x01 garbage\n"}, lines[5:len(lines)-2]...)...)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"replay", "--print", path, "--log.format=logfmt"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	logs := stderr.String()
	for _, want := range []string{"line=4", "line=6", "cut short"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the logs do not say %q:\n%s", want, logs)
		}
	}
	if got := sampleValue(t, stdout.String(), `portsip_queue_callers_total{queue="8001",reason="agent_answered",tenant_id="1"}`); got != 1 {
		t.Errorf("the caller after the bad lines was not replayed: %v", got)
	}
}

// A file that is not a capture is one line and exit 2.
func TestReplayNotACapture(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("hello\n"), 0o600)
	newer := filepath.Join(dir, "newer.jsonl")
	os.WriteFile(newer, []byte(`{"capture":"portsip_exporter","version":9,"t":"2026-01-01T00:00:00Z","mode":"global"}`+"\n"), 0o600)
	noTenant := filepath.Join(dir, "notenant.jsonl")
	os.WriteFile(noTenant, []byte(`{"capture":"portsip_exporter","version":1,"t":"2026-01-01T00:00:00Z","mode":"global"}`+"\n"), 0o600)
	for file, want := range map[string]string{
		text:                          "not a portsip_exporter capture: its first line is not a capture header",
		newer:                         "capture version 9, written by a newer portsip_exporter",
		noTenant:                      "the header names no client this exporter can replay",
		filepath.Join(dir, "missing"): "no such file or directory",
		dir:                           "is a directory",
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"replay", file, "--print"}, &stdout, &stderr)
		if msg := stderr.String(); code != exitUsage || !strings.Contains(msg, want) || strings.Count(msg, "\n") != 1 || stdout.Len() > 0 {
			t.Errorf("replay %s: exit %d, stderr %q; want exit 2 and one line saying %q", file, code, msg, want)
		}
	}
}

// An anonymised capture replays to the same metrics, byte for byte, as
// the capture it was made from: the simulator speaking every quirk,
// rewritten through the anonymiser the record command uses.
func TestAnonymizedCaptureReplaysAlike(t *testing.T) {
	src := filepath.Join(goldenDir, "all_quirks.jsonl.gz")
	r, err := capture.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	anon := filepath.Join(t.TempDir(), "anon.jsonl")
	h := r.Header()
	w, err := capture.Create(anon, false, h, capture.Options{Anonymize: true})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch e.Kind {
		case capture.KindFrame, capture.KindSession:
			w.Record(e.Record)
			if i := bytes.Index(e.Record.Frame, []byte(`"caller_name":"`)); i >= 0 {
				name, _, _ := strings.Cut(string(e.Record.Frame[i+15:]), `"`)
				names = append(names, name)
			}
		case capture.KindEnd:
			w.Close(e.Time)
		}
	}
	b, _ := os.ReadFile(anon)
	for _, n := range append(names, "00442079") { // the simulated callers' numbers start so
		if n != "" && bytes.Contains(b, []byte(n)) {
			t.Errorf("%q is in the anonymised capture", n)
		}
	}
	if len(names) < 10 {
		t.Fatalf("only %d caller names in the capture: it proves nothing", len(names))
	}
	if plain, anonymized := replayPrint(t, src), replayPrint(t, anon); plain != anonymized {
		t.Errorf("the anonymised capture replays differently:\n%s", lineDiff(plain, anonymized))
	}
}

// Without --print, replay serves the metrics as the exporter does, paced
// by --replay.speed: a capture of 2 recorded seconds at speed 4 takes at
// least half a second, and afterwards /metrics holds what it replayed.
func TestReplayServes(t *testing.T) {
	recs := append(upAt(0), snapshotAt(0, -10))
	recs = append(recs, wsi.Record{Time: at(2), Session: wsi.RecordDown, Reason: "context canceled"})
	// A gzip-compressed capture reads the same.
	plain, err := os.ReadFile(writeRecords(t, recs, capture.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "c.jsonl.gz")
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(plain)
	zw.Close()
	os.WriteFile(path, z.Bytes(), 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &syncBuffer{}
	exited := make(chan int, 1)
	started := time.Now()
	go func() {
		exited <- run(ctx, []string{"replay", path, "--replay.speed=4", "--web.listen-address=127.0.0.1:0", "--log.format=json"}, io.Discard, stderr)
	}()
	var addr string
	eventually(t, 10*time.Second, "the replay to listen", func() bool { addr = listenAddress(stderr.String()); return addr != "" })
	eventually(t, 10*time.Second, "the end of the capture", func() bool { return strings.Contains(stderr.String(), "end of the capture") })
	if d := time.Since(started); d < 500*time.Millisecond {
		t.Errorf("2 recorded seconds at speed 4 took %s", d)
	}
	_, body := get(t, httpClient(nil), "http://"+addr+"/metrics")
	for _, want := range []string{`portsip_queue_waiting_callers{kind="normal",queue="8001",tenant_id="1"} 1`, "\ngo_goroutines ", "\nportsip_up 1\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	cancel()
	select {
	case code := <-exited:
		if code != exitOK {
			t.Errorf("exit %d after the stop: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the replay did not stop")
	}
}

// With a speed, the replay's clock runs between records at that pace from
// the recorded time of what was handled last, never past the record due
// next; a record handled sets it to that record's time; at the end it
// stands at the recording's last line.
func TestReplayClockRunsAtItsSpeed(t *testing.T) {
	wall := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newReplayClock(at(-1), 10)
	c.wall = func() time.Time { return wall }
	if got := c.now(); !got.Equal(at(-1)) {
		t.Errorf("before the first record: %v, want the header's time", got)
	}
	c.start(at(0), wall)
	c.next(at(0))
	c.tap(frameAt(0, "{}"))
	c.next(at(100))
	for _, tc := range []struct {
		elapsed time.Duration
		want    time.Time
	}{{0, at(0)}, {time.Second, at(10)}, {5 * time.Second, at(50)}, {20 * time.Second, at(100)}} {
		wall = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(tc.elapsed)
		if got := c.now(); !got.Equal(tc.want) {
			t.Errorf("%s after the first record: %v, want %v", tc.elapsed, got, tc.want)
		}
	}
	c.tap(frameAt(100, "{}"))
	c.saw(at(130))
	c.finish()
	wall = wall.Add(time.Hour)
	if got := c.now(); !got.Equal(at(130)) {
		t.Errorf("after the end: %v, want the last line's time", got)
	}
}
