package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"
)

// scriptedPBX is a PBX no one in this project wrote the simulator of: a
// WebSocket server that answers the login and the subscriptions, then
// plays a fixed script of frames written out below, by hand, stamped with
// its own clock (two minutes behind). Each user's first session gets the
// first part and is then dropped; its second session gets the second part
// and stays open, silent. Several clients (the exporter, record, record
// --record.anonymize) each get the same script on their own connections.
type scriptedPBX struct {
	srv *httptest.Server

	mu       sync.Mutex
	sessions map[string]int // by user name
	done     map[string]bool
}

// pbxSkew is how far the scripted PBX's clock is behind.
const pbxSkew = 2 * time.Minute

// scriptPeople are the callers' numbers and names the script sends: an
// anonymised recording holds none of them.
var scriptPeople = []string{"00441111222", "Alice Example", "00442222333", "Bob Person", "00443333444", "Carol Caller",
	"00444444555", "Dave Waiting", "erin@customer.example", "Erin Agent", "erin.agent"}

// scriptFrame is one thing the script does.
type scriptFrame struct {
	text   string
	binary bool
}

// script is what a session of the scripted PBX sends after subscribing:
// part 1 in the first session, part 2 in the second. Timestamps are the
// PBX's clock when the part starts; spans between them are what the
// metrics must show, whatever the frames' pace (a few milliseconds).
func script(part int, now int64) []scriptFrame {
	ts := func(d int64) string { return fmt.Sprint(now + d) }
	f := func(format string, args ...any) scriptFrame { return scriptFrame{text: fmt.Sprintf(format, args...)} }
	if part == 1 {
		return []scriptFrame{
			f(`{"event_type":"queue_status","tenant_id":"1","queue_id":"501","queue_number":"8001","queue_name":"Sales",`+
				`"waiting_list":[{"position":"1","session_id":"s-a","caller_number":"00441111222","caller_name":"Alice Example","timestamp":"%s","type":"normal"}],`+
				`"agents":[{"state":"READY","agent_extension_number":"101","timestamp":"%s"},{"state":"NOT_READY","agent_extension_number":"102","timestamp":"%s"}]}`,
				ts(-10), ts(-60), ts(-300)),
			f(`{"event_type":"queue_status","tenant_id":"1","queue_id":"502","queue_number":"8002","queue_name":"Support","waiting_list":[],`+
				`"agents":[{"state":"READY","agent_extension_number":"103","timestamp":"%s"}]}`, ts(-120)),
			f(`{"event_type":"extension_status","tenant_id":"1","status":[`+
				`{"extension":"sip:101@acme.example","online":true,"presence":"AVAILABLE","call_status":"","time":"%[1]s"},`+
				`{"extension":"sip:102@acme.example","online":true,"presence":"AWAY","presence_note":"back at 3","call_status":"","time":"%[1]s"},`+
				`{"extension":"sip:103@acme.example","online":true,"presence":"AVAILABLE","call_status":"","time":"%[1]s"},`+
				`{"extension":"sip:201@acme.example","online":false,"push_online":true,"presence":"AVAILABLE","call_status":"","time":"%[1]s"}]}`, ts(0)),
			// Bob waits 30 s, by the PBX's timestamps, and is answered.
			f(`{"event_type":"queue_caller_status","tenant_id":"1","queue_id":"501","updated_callers":[`+
				`{"position":"2","session_id":"s-b","caller_number":"00442222333","caller_name":"Bob Person","timestamp":"%s","type":"normal","reason":"enqueue"}]}`, ts(-30)),
			f(`{"event_type":"queue_sla_breached","queue_id":"501","tenant_id":"1","caller":"00442222333","total_callers_breached":1,"sla_time_secs":20,"waiting_callers":2,"timestamp":"%s"}`, ts(-10)),
			f(`{"event_type":"queue_agent_status","queue_id":"501","tenant_id":"1","updated_agents":[`+
				`{"state":"QUEUE_CALL","agent_extension_number":"101","session_id":"s-b","caller_number":"00442222333","caller_name":"Bob Person","timestamp":"%s"}],"removed_agents":[]}`, ts(0)),
			f(`{"event_type":"queue_caller_status","tenant_id":"1","queue_id":"501","updated_callers":[`+
				`{"position":"1","session_id":"s-b","caller_number":"00442222333","caller_name":"Bob Person","timestamp":"%s","type":"normal","reason":"agent_answered"}]}`, ts(0)),
			// Carol's leave repeats her enqueue time: her wait ends when it
			// arrives, 37 s after she called.
			f(`{"event_type":"queue_caller_status","tenant_id":"1","queue_id":"502","updated_callers":[`+
				`{"position":"1","session_id":"s-c","caller_number":"00443333444","caller_name":"Carol Caller","timestamp":"%s","type":"normal","reason":"enqueue"}]}`, ts(-37)),
			f(`{"event_type":"queue_caller_status","tenant_id":"1","queue_id":"502","updated_callers":[`+
				`{"position":"1","session_id":"s-c","caller_number":"00443333444","caller_name":"Carol Caller","timestamp":"%s","type":"normal","reason":"hangup"}]}`, ts(-37)),
			f(`{"event_type":"call_start","call_id":"call-1","callee":"sip:101@acme.example","callee_display_name":"Erin Agent","caller":"sip:00442222333@acme.example",`+
				`"caller_display_name":"Bob Person","cdr_id":"cdr-1","direction":"inbound","session_id":"c-1","tenant_id":"1","time":"%s"}`, ts(-40)),
			f(`{"event_type":"call_cdr","session_id":"c-1","call_id":"call-1","tenant_id":"1","tenant_name":"Acme","caller":"sip:00442222333@acme.example",`+
				`"caller_display_name":"Bob Person","callee":"sip:101@acme.example","start_time":"%s","ring_time":"%s","answered_time":"%s","ended_time":"%s",`+
				`"ring_duration":"10","talk_duration":30,"call_status":"answered","ended_reason":"caller_disconnect","direction":"in","trunk_name":"Telia",`+
				`"call_targets":[{"callee":"8001","caller":"00442222333","destination":"sip:101@acme.example","status":"answered"}]}`, ts(-40), ts(-40), ts(-30), ts(0)),
			// The same CDR again, as the vendor says may happen.
			f(`{"event_type":"call_cdr","session_id":"c-1","call_id":"call-1","tenant_id":"1","tenant_name":"Acme","caller":"sip:00442222333@acme.example",`+
				`"callee":"sip:101@acme.example","start_time":"%s","answered_time":"%s","ended_time":"%s","ring_duration":"10","talk_duration":30,`+
				`"call_status":"answered","ended_reason":"caller_disconnect","direction":"in","trunk_name":"Telia"}`, ts(-40), ts(-30), ts(0)),
			f(`{"event_type":"call_cdr","session_id":"c-2","call_id":"call-2","tenant_id":"1","tenant_name":"Acme","caller":"sip:102@acme.example",`+
				`"callee":"sip:00449999000@acme.example","start_time":"%s","answered_time":"0","ended_time":"%s","ring_duration":"4","talk_duration":0,`+
				`"call_status":"fail","status_code":"503","end_reason":"None","direction":"out","trunk_name":"BT-SIP"}`, ts(-5), ts(-1)),
			f(`{"event_type":"extension_presence","extension":"sip:103@acme.example","presence":"ONLINE","presence_note":"","tenant_id":"1","time":"%s"}`, ts(0)),
			f(`{"event_type":"extension_created","extension_number":"104","disp_name":"Erin Agent","email":"erin@customer.example",` +
				`"username":"erin.agent","username":"erin.agent","tenant_id":"1","enabled":true}`),
			f(`{"event_type":"queue_created","queue_number":"9","tenant_id":"42"}`), // another tenant's
			f(`{"event_type":`),
			{binary: true, text: "\x00\x01binary"},
		}
	}
	return []scriptFrame{
		f(`{"event_type":"queue_status","tenant_id":"1","queue_id":"501","queue_number":"8001","queue_name":"Sales",`+
			`"waiting_list":[{"position":"1","session_id":"s-a","caller_number":"00441111222","caller_name":"Alice Example","timestamp":"%s","type":"normal"}],`+
			`"agents":[{"state":"QUEUE_CALL","agent_extension_number":"101","timestamp":"%s"},{"state":"READY","agent_extension_number":"102","timestamp":"%s"}]}`,
			ts(-25), ts(-5), ts(-2)),
		f(`{"event_type":"queue_status","tenant_id":"1","queue_id":"502","queue_number":"8002","queue_name":"Support",`+
			`"waiting_list":[{"position":"1","session_id":"s-d","caller_number":"00444444555","caller_name":"Dave Waiting","timestamp":"%s","type":"callback"}],`+
			`"agents":[{"state":"LUNCH","agent_extension_number":"103","timestamp":"%s"}]}`, ts(-100), ts(-30)),
		f(`{"event_type":"extension_status","tenant_id":"1","status":[`+
			`{"extension":"sip:101@acme.example","online":true,"presence":"AVAILABLE","call_status":"ON_CALL","time":"%[1]s"},`+
			`{"extension":"sip:102@acme.example","online":true,"presence":"AVAILABLE","call_status":"","time":"%[1]s"},`+
			`{"extension":"sip:103@acme.example","online":false,"presence":"LUNCH","call_status":"","time":"%[1]s"}]}`, ts(0)),
		// Alice gives up after 25 s.
		f(`{"event_type":"queue_caller_status","tenant_id":"1","queue_id":"501","updated_callers":[`+
			`{"position":"1","session_id":"s-a","caller_number":"00441111222","caller_name":"Alice Example","timestamp":"%s","type":"normal","reason":"hangup"}]}`, ts(0)),
		f(`{"event_type":"call_start","call_id":"call-3","callee":"sip:00441111222@acme.example","caller":"sip:101@acme.example",`+
			`"cdr_id":"cdr-3","direction":"outbound","session_id":"c-3","tenant_id":"1","time":"%s"}`, ts(0)),
		f(`{"event_type":"queue_updated","queue_number":"8001","queue_name":"Sales","tenant_id":"1"}`), // the last frame
	}
}

func newScriptedPBX(t *testing.T) *scriptedPBX {
	p := &scriptedPBX{sessions: map[string]int{}, done: map[string]bool{}}
	upgrader := websocket.Upgrader{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		p.serve(conn)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *scriptedPBX) url() string { return "ws" + strings.TrimPrefix(p.srv.URL, "http") + "/wsi" }

func (p *scriptedPBX) finished(user string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done[user]
}

// serve answers the login and the five global subscriptions, then plays
// the user's part of the script.
func (p *scriptedPBX) serve(conn *websocket.Conn) {
	var user string
	id := 0
	reply := func(command string) error {
		id++
		return conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"command":%q,"id":"%d","status":0}`, command, id))
	}
	for subscribed := 0; subscribed < 5; {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		var c struct{ Command, Username string }
		if json.Unmarshal(msg, &c) != nil {
			return
		}
		if c.Command == "auth" {
			user = c.Username
		} else {
			subscribed++
		}
		if reply(c.Command) != nil {
			return
		}
	}
	p.mu.Lock()
	p.sessions[user]++
	part := p.sessions[user]
	p.mu.Unlock()
	if part <= 2 {
		for _, f := range script(part, time.Now().Add(-pbxSkew).Unix()) {
			typ := websocket.TextMessage
			if f.binary {
				typ = websocket.BinaryMessage
			}
			if conn.WriteMessage(typ, []byte(f.text)) != nil {
				return
			}
		}
	}
	if part == 1 {
		return // dropped
	}
	p.mu.Lock()
	p.done[user] = true
	p.mu.Unlock()
	for {
		if _, _, err := conn.ReadMessage(); err != nil { // pongs are answered meanwhile
			return
		}
	}
}

// TestRecordReplayAgainstAnotherPBX is the promise of record and replay,
// with the built program: a PBX this project did not write (scriptedPBX)
// is watched by the exporter and recorded at the same time, plainly and
// anonymised; each recording, replayed with --print, gives the metrics
// the live exporter had: every counter and every histogram's counts,
// waits from the PBX's timestamps and the recorded receive times (30 s
// and 37 s, though the frames came milliseconds apart and the replay takes
// milliseconds), times in state to the recorded end of a session. The
// anonymised one holds none of the callers' names or numbers.
func TestRecordReplayAgainstAnotherPBX(t *testing.T) {
	bin := buildBinary(t)
	pbx := newScriptedPBX(t)
	dir := t.TempDir()
	plainFile, anonFile := filepath.Join(dir, "plain.jsonl"), filepath.Join(dir, "anon.jsonl")
	wsiArgs := func(user string) []string {
		return []string{"--wsi.url=" + pbx.url(), "--wsi.username=" + user, "--wsi.tenant=1", "--log.format=json"}
	}
	live := startCommand(t, exec.Command(bin, append(wsiArgs("exporter"), "--web.listen-address=127.0.0.1:0")...))
	plain := startRecorder(t, bin, append(wsiArgs("recorder"), "--record.file="+plainFile))
	anon := startRecorder(t, bin, append(wsiArgs("anonymiser"), "--record.file="+anonFile, "--record.anonymize"))

	c := httpClient(nil)
	liveMetrics := func() string { _, body := get(t, c, "http://"+live.addr+"/metrics"); return body }
	eventually(t, 30*time.Second, "the script played to every client", func() bool {
		return pbx.finished("exporter") && pbx.finished("recorder") && pbx.finished("anonymiser")
	})
	eventually(t, 10*time.Second, "the exporter to handle the last frame", func() bool {
		return strings.Contains(liveMetrics(), `portsip_queue_management_events_total{event_type="queue_updated",tenant_id="1"} 1`)
	})
	for _, r := range []*recorderProcess{plain, anon} {
		eventually(t, 10*time.Second, "the last frame in "+r.file, func() bool {
			b, _ := os.ReadFile(r.file)
			return bytes.Contains(b, []byte(`queue_updated`))
		})
	}
	// The live scrape and the ends of the recordings are moments apart:
	// the times in state still running differ by that much.
	scraped := time.Now()
	liveBody := liveMetrics()
	plain.stop(t)
	anon.stop(t)
	drift := time.Since(scraped).Seconds() + 0.5

	for _, r := range []*recorderProcess{plain, anon} {
		if !strings.HasPrefix(r.stdout.String(), "Recorded ") || !strings.Contains(r.stdout.String(), "2 sessions") {
			t.Errorf("%s: summary %q", r.file, r.stdout.String())
		}
	}
	anonCapture, _ := os.ReadFile(anonFile)
	for _, p := range scriptPeople {
		if bytes.Contains(anonCapture, []byte(p)) {
			t.Errorf("%q is in the anonymised recording", p)
		}
	}
	plainCapture, _ := os.ReadFile(plainFile)
	if !bytes.Contains(plainCapture, []byte("Alice Example")) {
		t.Errorf("the plain recording lacks the callers: it proves nothing")
	}

	want := parseExposition(t, liveBody)
	for _, f := range []string{plainFile, anonFile} {
		// Replayed as if recorded a day ago: a replay that took a time
		// from its own clock anywhere would be a day off there.
		f = shiftCapture(t, f, -shift)
		out, err := exec.Command(bin, "replay", f, "--print", "--log.level=warn").Output()
		if err != nil {
			t.Fatalf("replay %s --print: %v", f, err)
		}
		got := parseExposition(t, string(out))
		compareWithLive(t, f, want, got, drift, shift)
		// What the script spaced by the PBX's clock, the replay shows.
		for series, v := range map[string]float64{
			`portsip_queue_wait_seconds_sum{outcome="answered",queue="8001",tenant_id="1"}`:  30,
			`portsip_queue_wait_seconds_sum{outcome="abandoned",queue="8001",tenant_id="1"}`: 25,
			`portsip_call_talk_seconds_sum{direction="inbound",tenant_id="1"}`:               30,
		} {
			if g := sampleValue(t, string(out), series); g != v {
				t.Errorf("%s: %s = %v, want %v", f, series, g, v)
			}
		}
		if g := sampleValue(t, string(out), `portsip_queue_wait_seconds_sum{outcome="abandoned",queue="8002",tenant_id="1"}`); math.Abs(g-37) > 1.5 {
			t.Errorf("%s: the wait ending at arrival is %vs, want about 37s", f, g)
		}
		if g := sampleValue(t, string(out), "portsip_wsi_clock_offset_seconds") + shift.Seconds(); math.Abs(g-pbxSkew.Seconds()) > 1.5 {
			t.Errorf("%s: clock offset %v, want about %v", f, g, pbxSkew.Seconds())
		}
	}
	if strings.Contains(plain.stderr.String()+anon.stderr.String(), testPassword) || bytes.Contains(plainCapture, []byte(testPassword)) {
		t.Errorf("the password is in a recording or its logs")
	}
}

// shiftCapture is a copy of a capture with every time moved by d, the
// frames as they were.
func shiftCapture(t *testing.T, file string, d time.Duration) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	stamp := regexp.MustCompile(`"t":"([^"]+)"`)
	var out []string
	for _, line := range strings.SplitAfter(string(b), "\n") {
		i := stamp.FindStringSubmatchIndex(line) // the line's own time comes before its frame
		if i == nil {
			out = append(out, line)
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, line[i[2]:i[3]])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, line[:i[2]]+at.Add(d).Format(time.RFC3339Nano)+line[i[3]:])
	}
	shifted := strings.TrimSuffix(file, ".jsonl") + "-shifted.jsonl"
	if err := os.WriteFile(shifted, []byte(strings.Join(out, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	return shifted
}

// recorderProcess is `portsip_exporter record` running.
type recorderProcess struct {
	cmd            *exec.Cmd
	file           string
	stdout, stderr *syncBuffer
	exited         chan error
}

func startRecorder(t *testing.T, bin string, args []string) *recorderProcess {
	t.Helper()
	r := &recorderProcess{cmd: exec.Command(bin, append([]string{"record"}, args...)...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan error, 1)}
	for _, a := range args {
		if f, ok := strings.CutPrefix(a, "--record.file="); ok {
			r.file = f
		}
	}
	r.cmd.Env = []string{"PORTSIP_WSI_PASSWORD=" + testPassword}
	r.cmd.Stdout, r.cmd.Stderr = r.stdout, r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.exited <- r.cmd.Wait() }()
	t.Cleanup(func() { r.cmd.Process.Kill() })
	return r
}

// stop sends SIGINT and expects a clean exit.
func (r *recorderProcess) stop(t *testing.T) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.exited:
		if err != nil {
			t.Errorf("record exited with %v after SIGINT:\n%s", err, r.stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("record still running 15s after SIGINT")
	}
}

func parseExposition(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(pmodel.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parsing an exposition: %v", err)
	}
	return mfs
}

// shift is how long before the live run the replayed recordings pretend
// to have been made.
const shift = 24 * time.Hour

// timeSeries are the gauges and counters that depend on when they are
// read: the live exporter's at its scrape, a replay's at the end of the
// recording. They may differ by drift seconds per agent; the rest must be
// equal.
var timeSeries = []string{"portsip_queue_agent_state_seconds_total", "portsip_queue_oldest_wait_seconds",
	"portsip_wsi_last_event_timestamp_seconds", "portsip_queue_agent_state_changed_timestamp_seconds", "portsip_wsi_clock_offset_seconds"}

// clockSeries are times on the exporter's clock (or its offset from the
// PBX's): a recording made earlier shows them earlier by as much.
var clockSeries = []string{"portsip_wsi_last_event_timestamp_seconds", "portsip_queue_agent_state_changed_timestamp_seconds",
	"portsip_wsi_clock_offset_seconds"}

// compareWithLive compares every portsip_* family of the live exporter
// with the replay of a recording shifted back by shift, series by series:
// counters and gauges by value (times on the exporter's clock shifted),
// histograms by count, buckets and sum (a sum within a second per
// observation: a wait ending at arrival is timed by each process's own
// receive time).
func compareWithLive(t *testing.T, file string, live, replay map[string]*dto.MetricFamily, drift float64, shift time.Duration) {
	t.Helper()
	families := 0
	for name, lf := range live {
		if !strings.HasPrefix(name, "portsip_") || name == "portsip_exporter_build_info" {
			continue
		}
		families++
		rf := replay[name]
		if rf == nil {
			t.Errorf("%s: the replay lacks %s", file, name)
			continue
		}
		index := map[string]*dto.Metric{}
		for _, m := range rf.GetMetric() {
			index[labelString(m)] = m
		}
		for _, lm := range lf.GetMetric() {
			key := labelString(lm)
			rm := index[key]
			delete(index, key)
			if rm == nil {
				t.Errorf("%s: the replay lacks %s%s", file, name, key)
				continue
			}
			tol := 0.0
			if slices.Contains(timeSeries, name) {
				tol = 3*drift + 1
			}
			switch lf.GetType() {
			case dto.MetricType_HISTOGRAM:
				lh, rh := lm.GetHistogram(), rm.GetHistogram()
				if lh.GetSampleCount() != rh.GetSampleCount() || math.Abs(lh.GetSampleSum()-rh.GetSampleSum()) > float64(lh.GetSampleCount())+0.001 {
					t.Errorf("%s: %s%s: live %d observations summing to %v, replayed %d summing to %v", file, name, key,
						lh.GetSampleCount(), lh.GetSampleSum(), rh.GetSampleCount(), rh.GetSampleSum())
				}
				for i, b := range lh.GetBucket() {
					if i >= len(rh.GetBucket()) || b.GetCumulativeCount() != rh.GetBucket()[i].GetCumulativeCount() {
						t.Errorf("%s: %s%s: bucket le=%v differs", file, name, key, b.GetUpperBound())
					}
				}
			default:
				l, r := value(lm), value(rm)
				if slices.Contains(clockSeries, name) {
					r += shift.Seconds()
				}
				if math.Abs(l-r) > tol {
					t.Errorf("%s: %s%s: live %v, replayed %v", file, name, key, l, r)
				}
			}
		}
		for key := range index {
			t.Errorf("%s: the replay has %s%s, the live exporter not", file, name, key)
		}
	}
	if families < 30 {
		t.Errorf("only %d families compared", families)
	}
}

func labelString(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	return m.GetUntyped().GetValue()
}
