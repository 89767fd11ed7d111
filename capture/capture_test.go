package capture

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portsip-exporter/portsip_exporter/internal/secret"
	"github.com/portsip-exporter/portsip_exporter/wsi"
)

const password = `s3cr"et pa55`

var start = time.Date(2026, 3, 2, 13, 0, 0, 123456789, time.FixedZone("CET", 3600))

// records is a session as a Tap sees it: frames of every shape the PBX may
// send, boundaries, a down reason holding the password.
func records() []wsi.Record {
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	return []wsi.Record{
		{Time: at(0), Session: wsi.RecordDown, Stage: wsi.StageDial, Reason: "dial: connection refused"},
		{Time: at(1000), Frame: []byte(`{"command":"auth","id":"1","status":0}`)},
		{Time: at(1001), Frame: []byte(`{"command":"subscribe","id":"2","status":0}`)},
		{Time: at(1002), Session: wsi.RecordUp, Topics: map[string]bool{wsi.TopicGlobalQueueEvents: true, wsi.TopicGlobalCDREvents: false}},
		{Time: at(1003), Frame: []byte("\xef\xbb\xbf{\"event_type\":\"queue_created\", \"queue_number\":\"8001\"} {\"a\":1}\n")},
		{Time: at(1004), Frame: []byte("{\"event_type\":\"x\",\"v\":\"\xff\xfe <&> \u2028\"}")},
		{Time: at(1005), Frame: []byte{}},
		{Time: at(1006), Frame: []byte(`{"event_type":`)},
		{Time: at(2000), Session: wsi.RecordDown, Stage: wsi.StageRead, Reason: "read: websocket: close 1008: bad password " + password},
	}
}

func header() Header {
	return Header{Time: start, Source: "test", Exporter: "9.9.9", Mode: ModeGlobal, Tenants: []string{"1", "2"}}
}

func writeCapture(t *testing.T, opt Options, recs []wsi.Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, header(), opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Skipped(start.Add(3*time.Second), SkippedBinary, 2); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(start.Add(4 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(t *testing.T, r io.Reader) (Header, []Entry, []*LineError) {
	t.Helper()
	cr, err := NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	var entries []Entry
	var bad []*LineError
	for {
		e, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return cr.Header(), entries, bad
		}
		var le *LineError
		if errors.As(err, &le) {
			bad = append(bad, le)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
}

// What the Tap saw comes back from the file as it was: frames byte for
// byte (a byte order mark, two objects, invalid UTF-8, an empty frame,
// invalid JSON), times to the nanosecond, boundaries with their topics,
// stages and reasons, without the password.
func TestWriteThenRead(t *testing.T) {
	file := writeCapture(t, Options{Secrets: []string{password}}, records())
	if bytes.Contains(file, []byte(password)) || bytes.Contains(file, []byte(`pa55`)) {
		t.Fatalf("the password is in the capture:\n%s", file)
	}
	h, entries, bad := readAll(t, bytes.NewReader(file))
	if len(bad) > 0 {
		t.Fatalf("lines refused: %v", bad)
	}
	want := header()
	want.Capture, want.Version, want.Time = Magic, Version, start.UTC()
	if !reflect.DeepEqual(h, want) {
		t.Errorf("header %+v, want %+v", h, want)
	}
	recs := records()
	recs[len(recs)-1].Reason = "read: websocket: close 1008: bad password " + secret.Redacted
	if len(entries) != len(recs)+2 {
		t.Fatalf("%d entries, want %d", len(entries), len(recs)+2)
	}
	for i, r := range recs {
		e := entries[i]
		if e.Line != i+2 || !e.Time.Equal(r.Time) {
			t.Errorf("entry %d: line %d at %v, want line %d at %v", i, e.Line, e.Time, i+2, r.Time)
		}
		got := e.Record
		if !got.Time.Equal(r.Time) || !bytes.Equal(got.Frame, r.Frame) || got.Session != r.Session ||
			!reflect.DeepEqual(got.Topics, r.Topics) || got.Stage != r.Stage || got.Reason != r.Reason {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, got, r)
		}
	}
	if e := entries[len(recs)]; e.Kind != KindSkipped || e.Skipped != SkippedBinary || e.Count != 2 {
		t.Errorf("skipped line read as %+v", e)
	}
	if e := entries[len(recs)+1]; e.Kind != KindEnd || !e.Time.Equal(start.Add(4*time.Second)) {
		t.Errorf("end line read as %+v", e)
	}
}

// The lines are as the README documents them, a frame's exactly as
// {"t":...,"frame":...}.
func TestLineFormat(t *testing.T) {
	lines := strings.Split(strings.TrimSuffix(string(writeCapture(t, Options{}, records())), "\n"), "\n")
	want := []string{
		`{"capture":"portsip_exporter","version":1,"t":"2026-03-02T12:00:00.123456789Z","source":"test","exporter":"9.9.9","mode":"global","tenants":["1","2"]}`,
		`{"t":"2026-03-02T12:00:00.123456789Z","session":"down","stage":"dial","reason":"dial: connection refused"}`,
		`{"t":"2026-03-02T12:00:01.123456789Z","frame":"{\"command\":\"auth\",\"id\":\"1\",\"status\":0}"}`,
		`{"t":"2026-03-02T12:00:01.124456789Z","frame":"{\"command\":\"subscribe\",\"id\":\"2\",\"status\":0}"}`,
		`{"t":"2026-03-02T12:00:01.125456789Z","session":"up","topics":{"global_cdr_events":false,"global_queue_events":true}}`,
		`{"t":"2026-03-02T12:00:01.126456789Z","frame":"\ufeff{\"event_type\":\"queue_created\", \"queue_number\":\"8001\"} {\"a\":1}\n"}`,
		`{"t":"2026-03-02T12:00:01.127456789Z","frame_base64":"eyJldmVudF90eXBlIjoieCIsInYiOiL//iA8Jj4g4oCoIn0="}`,
		`{"t":"2026-03-02T12:00:01.128456789Z","frame":""}`,
		`{"t":"2026-03-02T12:00:01.129456789Z","frame":"{\"event_type\":"}`,
		`{"t":"2026-03-02T12:00:02.123456789Z","session":"down","stage":"read","reason":"read: websocket: close 1008: bad password s3cr\"et pa55"}`,
		`{"t":"2026-03-02T12:00:03.123456789Z","skipped":"binary_frame","count":2}`,
		`{"t":"2026-03-02T12:00:04.123456789Z","end":true,"frames":6,"bytes":195}`,
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, lines[i], want[i])
		}
	}
}

// A bad line is reported with its number and skipped; the lines after it
// are read. A last line cut short by a kill is one more bad line; a last
// line that is whole but has no newline is read.
func TestBadLinesAreSkipped(t *testing.T) {
	file := string(writeCapture(t, Options{}, records()[:3]))
	lines := strings.SplitAfter(file, "\n")
	mixed := lines[0] + "not json\n" + lines[1] + "\n" + `{"t":"yesterday","frame":"x"}` + "\n" +
		`{"t":"2026-03-02T12:00:00Z","session":"sideways"}` + "\n" + lines[2] +
		`{"t":"2026-03-02T12:00:00Z","future":"kind"}` + "\n" + lines[3] + `{"t":"2026-03-02T12:00:05Z","fra`
	_, entries, bad := readAll(t, strings.NewReader(mixed))
	var nums []int
	for _, b := range bad {
		nums = append(nums, b.Line)
	}
	if want := []int{2, 4, 5, 6, 10}; !reflect.DeepEqual(nums, want) {
		t.Errorf("bad lines %v (%v), want %v", nums, bad, want)
	}
	var kinds []Kind
	for _, e := range entries {
		kinds = append(kinds, e.Kind)
	}
	if want := []Kind{KindSession, KindFrame, KindUnknown, KindFrame}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("kinds %v, want %v", kinds, want)
	}

	whole := strings.TrimSuffix(file, "\n")
	_, entries, bad = readAll(t, strings.NewReader(whole))
	if len(bad) != 0 || len(entries) != 5 || entries[4].Kind != KindEnd {
		t.Errorf("a whole last line without a newline: %d entries, bad %v", len(entries), bad)
	}
}

func TestLongLineIsSkipped(t *testing.T) {
	file := string(writeCapture(t, Options{}, records()[:3]))
	lines := strings.SplitAfter(file, "\n")
	defer func(old int) { maxLine = old }(maxLine)
	maxLine = 100 << 10
	huge := `{"t":"2026-03-02T12:00:00Z","frame":"` + strings.Repeat("x", maxLine) + "\"}\n"
	_, entries, bad := readAll(t, strings.NewReader(lines[0]+huge+lines[1]+lines[2]))
	if len(bad) != 1 || bad[0].Line != 2 || len(entries) != 2 || entries[1].Line != 4 {
		t.Errorf("entries %+v, bad %v: want line 2 skipped, 3 and 4 read", entries, bad)
	}
}

func TestGzip(t *testing.T) {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(writeCapture(t, Options{}, records()))
	zw.Close()
	_, entries, bad := readAll(t, &z)
	if len(bad) != 0 || len(entries) != len(records())+2 {
		t.Errorf("%d entries, bad %v", len(entries), bad)
	}
}

// A file that is not a capture is one error saying so, whatever it holds.
func TestNotACapture(t *testing.T) {
	for name, content := range map[string]string{
		"empty":     "",
		"text":      "hello\nworld\n",
		"json":      `{"event_type":"queue_status"}` + "\n",
		"binary":    "\x00\x01\x02" + strings.Repeat("\xff", 200<<10),
		"gzip junk": "\x1f\x8bjunk",
		"newer":     `{"capture":"portsip_exporter","version":2,"t":"2026-03-02T12:00:00Z","mode":"global"}` + "\n",
		"no mode":   `{"capture":"portsip_exporter","version":1,"t":"2026-03-02T12:00:00Z"}` + "\n",
	} {
		_, err := NewReader(strings.NewReader(content))
		var nc *NotCaptureError
		if !errors.As(err, &nc) {
			t.Errorf("%s: err %v, want a NotCaptureError", name, err)
		}
	}
	dir := t.TempDir()
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("Open(directory) = %v", err)
	}
	if _, err := Open(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) = %v", err)
	}
}

// Create makes a file only its owner reads, never overwrites one without
// force, and with force overwrites only a regular file, which then is
// 0600 too.
func TestCreate(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0))
	dir := t.TempDir()
	path := filepath.Join(dir, "c.jsonl")
	w, err := Create(path, false, header(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.Record(records()[1])
	if err := w.Close(start); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode())
	}
	if _, err := Create(path, false, header(), Options{}); !errors.Is(err, ErrExists) {
		t.Errorf("second Create without force: %v, want ErrExists", err)
	}
	os.Chmod(path, 0o644)
	w, err = Create(path, true, header(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.Close(start)
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
		t.Errorf("overwritten: mode %v size %d, want 0600 and a header", fi.Mode(), fi.Size())
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := r.Next(); err != nil || e.Kind != KindEnd {
		t.Errorf("the overwritten capture holds %+v, %v; want only its own end", e, err)
	}
	r.Close()
	for _, p := range []string{dir, os.DevNull} {
		if _, err := Create(p, true, header(), Options{}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Create(%s, force) = %v, want refused", p, err)
		}
	}
}

// A write that fails stops the Writer, and says why, every time after.
func TestWriteError(t *testing.T) {
	w, err := NewWriter(&failAfter{n: 1}, header(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Record(records()[1]); err == nil || w.Err() == nil || w.Close(start) == nil {
		t.Errorf("a failed write was not reported")
	}
}

type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, syscall.ENOSPC
	}
	f.n--
	return len(p), nil
}
