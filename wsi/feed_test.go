package wsi

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi/wsitest"
)

// trace is a Handler writing down every call, as comparable text.
type trace struct {
	mu    sync.Mutex
	calls []string
}

func (t *trace) add(s string) { t.mu.Lock(); t.calls = append(t.calls, s); t.mu.Unlock() }
func (t *trace) SessionUp(s Session) {
	t.add(fmt.Sprint("up ", s.Topics))
}
func (t *trace) SessionDown(err error) {
	stage := ""
	if e, ok := err.(*Error); ok {
		stage = e.Stage
	}
	t.add("down " + stage)
}
func (t *trace) HandleEvent(ev Event) {
	h := ev.Head()
	t.add(fmt.Sprint(h.EventType, " ", h.TenantID, " ", h.Received.UnixNano()))
}
func (t *trace) get() []string { t.mu.Lock(); defer t.mu.Unlock(); return slices.Clone(t.calls) }

// tape collects what a Tap sees.
type tape struct {
	mu      sync.Mutex
	records []Record
}

func (t *tape) tap(r Record) { t.mu.Lock(); t.records = append(t.records, r); t.mu.Unlock() }
func (t *tape) get() []Record {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.records)
}

// A live session recorded by the Tap and fed back through Feed gives the
// Handler the same calls, and Stats the same counts: refused and failed
// attempts, the snapshots, frames with a byte order mark and two
// objects, invalid frames, other tenants' events, a dropped session.
func TestTapThenFeedGivesTheSameSessions(t *testing.T) {
	pbx := newPBX(t, false)
	pbx.Stop()
	var rec tape
	cfg := testConfig(pbx.URL, nil)
	cfg.Username, cfg.Domain, cfg.Tenants = "admin", "", []string{tenantID}
	cfg.Tap = rec.tap
	c := newClient(t, cfg)
	live := &trace{}
	stop := run(t, c, live)

	waitFor(t, "a failed dial", func() bool { return c.Stats().ConnectionErrors[StageDial] >= 1 })
	pbx.SetAuthError("not now")
	if err := pbx.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a refused login", func() bool { return c.Stats().ConnectionErrors[StageAuth] >= 1 })
	pbx.SetAuthError("")
	waitFor(t, "the session up", func() bool { return c.Stats().Up })
	waitFor(t, "the snapshots", func() bool { return c.Stats().Events[TypeQueueStatus] == 2 })

	other := `{"event_type":"queue_created","queue_number":"9","tenant_id":"42"}`
	pbx.SendRaw([]byte("\xef\xbb\xbf" + queueCreated("8009", tenantID) + " " + other))
	pbx.SendRaw([]byte(`{"event_type":`))
	pbx.Enqueue(tenantID, "8001", wsitest.Caller{Number: "555"})
	waitFor(t, "the caller", func() bool { return c.Stats().Events[TypeQueueCallerStatus] == 1 })
	pbx.DropSessions()
	waitFor(t, "the second session", func() bool { return strings.Count(strings.Join(live.get(), "\n"), "up ") == 2 })
	waitFor(t, "its snapshots", func() bool { return c.Stats().Events[TypeQueueStatus] == 4 })
	pbx.SetPresence(tenantID, "101", "AWAY", "lunch")
	waitFor(t, "the presence", func() bool { return c.Stats().Events[TypeExtensionPresence] == 1 })
	stop()
	want, wantStats := live.get(), c.Stats()

	records := rec.get()
	var downs []string
	for _, r := range records {
		if r.Session == RecordDown {
			downs = append(downs, r.Stage)
		}
		if strings.Contains(string(r.Frame), password) {
			t.Fatal("the password was recorded")
		}
	}
	if !slices.Equal(downs[len(downs)-3:], []string{StageAuth, StageRead, ""}) || downs[0] != StageDial {
		t.Errorf("recorded ends %q, want dials, a refused login, the dropped session, the stop", downs)
	}

	replay, err := NewReplay(Config{Tenants: []string{tenantID}})
	if err != nil {
		t.Fatal(err)
	}
	fed := &trace{}
	if err := replay.Feed(context.Background(), slices.Values(records), fed); err != nil {
		t.Fatal(err)
	}
	// Live, the stop ends the session; a replay leaves it as recorded.
	if got := fed.get(); !slices.Equal(got, want[:len(want)-1]) {
		t.Errorf("fed Handler calls differ from the live ones:\n got %q\nwant %q", got, want)
	}
	got := replay.Stats()
	if !got.Up || got.ConnectionAttempts != wantStats.ConnectionAttempts || !got.LastEvent.Equal(wantStats.LastEvent) ||
		!maps.Equal(got.ConnectionErrors, wantStats.ConnectionErrors) || !maps.Equal(got.InvalidMessages, wantStats.InvalidMessages) ||
		!maps.Equal(got.Events, wantStats.Events) || !maps.Equal(got.Ignored, wantStats.Ignored) {
		t.Errorf("fed stats differ:\n got %+v\nwant %+v", got, wantStats)
	}
	if wantStats.Ignored[IgnoredOtherTenant] != 1 || wantStats.InvalidMessages[ReasonMalformedJSON] != 1 || wantStats.Events[TypeQueueCreated] < 3 {
		t.Errorf("the live session did not see what the test sent: %+v", wantStats)
	}
}

// Where the live session decided by a timer (no reply to subscribe), the
// recording says when; a fed session that stops mid-recording stops there.
func TestFeedTakesTheTimersFromTheRecording(t *testing.T) {
	at := time.Unix(1700000000, 0)
	frame := func(s string) Record { at = at.Add(time.Second); return Record{Time: at, Frame: []byte(s)} }
	records := []Record{
		frame(`{"command":"auth","status":0}`),
		frame(`{"command":"subscribe","status":0}`), // the first topic; the rest never answered
		{Time: at, Session: RecordUp},
		frame(queueCreated("8001", "1")),
		{Session: RecordDown, Stage: StageRead, Reason: "read: no frame or pong"},
		frame(`{"command":"auth","status":-1,"error":"locked"}`),
		{Session: RecordDown, Stage: StageAuth, Reason: "auth: the PBX refused authentication: locked"},
		{Session: RecordDown, Stage: StageDial, Reason: "dial: connection refused"},
		frame(`{"command":"auth","status":0}`),
		frame(queueCreated("8002", "1")), // no subscribe reply at all: the first event decides
		frame(queueCreated("8003", "1")),
	}
	c, err := NewReplay(Config{Tenants: []string{"1"}})
	if err != nil {
		t.Fatal(err)
	}
	h := &trace{}
	if err := c.Feed(context.Background(), slices.Values(records), h); err != nil {
		t.Fatal(err)
	}
	calls := strings.Join(h.get(), "\n")
	if strings.Count(calls, "up ") != 2 || strings.Count(calls, "down read") != 1 || strings.Count(calls, "queue_created") != 3 {
		t.Errorf("calls:\n%s\nwant two sessions, one dropped, three events", calls)
	}
	st := c.Stats()
	want := map[string]uint64{StageDial: 1, StageAuth: 1, StageSubscribe: 0, StageRead: 1}
	if st.ConnectionAttempts != 4 || !maps.Equal(st.ConnectionErrors, want) || !st.Up || !st.LastEvent.Equal(at) {
		t.Errorf("stats %+v, want 4 attempts, errors %v, up, last event at %v", st, want, at)
	}
	if !st.Subscriptions[TopicGlobalQueueEvents] || !st.Subscriptions[TopicGlobalCDREvents] {
		t.Errorf("subscriptions %v, want the unanswered ones assumed accepted", st.Subscriptions)
	}
}
