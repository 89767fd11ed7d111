package collector

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// Tests of the readings of the vendor's silent or contradictory spots:
// each compensation applied and counted as its quirk.

func (h *harness) quirks(t *testing.T, q string) float64 {
	t.Helper()
	return h.value(t, "portsip_wsi_quirks_total", "quirk", q)
}

// Every known quirk is rendered, 0 included, from the first session on,
// also without a client (a replay): the collector counts them. The
// decoder's quirks arrive in the event's header and count here too.
func TestQuirksRenderedFromTheFirstSession(t *testing.T) {
	c := New(Config{}, nil)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	h := &harness{Collector: c, clock: &fakeClock{t: t0}, reg: reg}
	if n := h.series(t, "portsip_wsi_quirks_total"); n != 0 {
		t.Fatalf("%d quirk series before any session", n)
	}
	c.SessionUp(wsi.Session{})
	h.expect(t, quirkLines(nil), "portsip_wsi_quirks_total")

	var qs wsi.QuirkSet
	qs.Add(wsi.QuirkDuplicateKey)
	qs.Add(wsi.QuirkVersionSpelling)
	ev := &wsi.ExtensionManagement{Header: wsi.Header{EventType: wsi.TypeExtensionCreated, TenantID: tenantA, Quirks: qs},
		ExtensionNumber: "1001"}
	c.HandleEvent(ev)
	c.HandleEvent(ev)
	c.SessionDown(nil)
	h.expect(t, quirkLines(map[string]int{"duplicate_key": 2, "version_spelling": 2}), "portsip_wsi_quirks_total")
}

// A session that came up with a topic refused counts once, however many
// events follow; the next such session counts again.
func TestTopicsRefusedOncePerSession(t *testing.T) {
	h := newHarness(t)
	refused := wsi.Session{Topics: map[string]bool{wsi.TopicGlobalQueueEvents: true, wsi.TopicGlobalCDREvents: false}}
	h.SessionDown(nil)
	h.SessionUp(refused)
	h.apply(queueStatus("8001", "Q1", nil), queueStatus("8001", "Q1", nil))
	if got := h.quirks(t, "topics_refused"); got != 1 {
		t.Errorf("topics_refused = %v after one session, want 1", got)
	}
	h.SessionDown(nil)
	h.SessionUp(wsi.Session{Topics: map[string]bool{wsi.TopicGlobalQueueEvents: true}})
	h.SessionDown(nil)
	h.SessionUp(refused)
	if got := h.quirks(t, "topics_refused"); got != 2 {
		t.Errorf("topics_refused = %v after two such sessions of three, want 2", got)
	}
}

// at is a header received at a time of our clock.
func at(typ string, received time.Time) wsi.Header {
	return wsi.Header{EventType: typ, TenantID: tenantA, Received: received}
}

func enqueueAt(received time.Time, session string, pbx int64) *wsi.QueueCallerStatus {
	return &wsi.QueueCallerStatus{Header: at(wsi.TypeQueueCallerStatus, received), QueueID: "Q1",
		Callers: []wsi.QueueCaller{callerEv(session, "enqueue", pbx)}}
}

// With the PBX's clock 120 s behind ours, or 60 s ahead, a caller who has
// waited 5 s shows 5 s, and the offset is exported, negative when the PBX
// is ahead.
func TestClockOffsetCorrectsAges(t *testing.T) {
	for _, skew := range []int64{-120, 60, 0} {
		t.Run(fmt.Sprint("pbx", skew), func(t *testing.T) {
			h := newHarness(t)
			h.apply(queueStatus("8001", "Q1", nil))
			h.apply(enqueueAt(h.clock.t, "s1", h.clock.Unix(skew)))
			h.clock.Advance(5 * time.Second)
			h.expect(t, fmt.Sprintf(`
portsip_queue_oldest_wait_seconds{`+q8001+`} 5
portsip_wsi_clock_offset_seconds %d
`, -skew), "portsip_queue_oldest_wait_seconds", "portsip_wsi_clock_offset_seconds")
		})
	}
}

// The estimate is the smallest receive-minus-event time of the last ten
// minutes: delivery delays and older times do not inflate it, a PBX clock
// set forward shows at once, one set back once the window has passed, and
// times more than a day off are not a clock.
func TestClockOffsetEstimate(t *testing.T) {
	h := newHarness(t)
	if n := h.series(t, "portsip_wsi_clock_offset_seconds"); n != 0 {
		t.Fatalf("offset rendered before any event with a time")
	}
	offset := func() float64 { return h.value(t, "portsip_wsi_clock_offset_seconds") }
	call := func(delay time.Duration, pbx int64) {
		h.apply(&wsi.ExtensionCall{Header: at(wsi.TypeExtensionCall, h.clock.t.Add(delay)),
			Extension: "101", CallStatus: "ON_CALL", Time: pbx})
	}
	// The PBX is 30 s behind; its events arrive 0.4 to 3 s late.
	call(3*time.Second, h.clock.Unix(-30))
	call(400*time.Millisecond, h.clock.Unix(-30))
	call(2*time.Second, h.clock.Unix(-30))
	if got := offset(); got != 30.4 {
		t.Errorf("offset %v, want 30.4 (the smallest sample)", got)
	}
	// A snapshot's older times make larger samples: no change.
	h.apply(&wsi.ExtensionStatus{Header: at(wsi.TypeExtensionStatus, h.clock.t),
		Status: []wsi.ExtensionState{{Extension: "101", Time: h.clock.Unix(-3600)}}})
	if got := offset(); got != 30.4 {
		t.Errorf("offset %v after old times, want 30.4", got)
	}
	// The PBX's clock is set back by 20 s: its samples are larger, and
	// count once the window has passed the smaller ones.
	h.clock.Advance(time.Minute)
	call(0, h.clock.Unix(-50))
	if got := offset(); got != 30.4 {
		t.Errorf("offset %v within the window, want still 30.4", got)
	}
	h.clock.Advance(10 * time.Minute)
	call(time.Second, h.clock.Unix(-50))
	if got := offset(); got != 51 {
		t.Errorf("offset %v once the window passed, want 51", got)
	}
	// Set forward to ours: a smaller sample counts at once.
	h.clock.Advance(time.Minute)
	call(0, h.clock.Unix(0))
	if got := offset(); got != 0 {
		t.Errorf("offset %v after the PBX clock went forward, want 0", got)
	}
	// Two days off is a wrong time, not a clock.
	call(0, h.clock.Unix(-2*86400))
	call(0, h.clock.Unix(2*86400))
	if got := offset(); got != 0 {
		t.Errorf("offset %v after implausible times, want 0", got)
	}
}

// A leave whose timestamp is not after the caller's enqueue (the PBX
// repeated the enqueue time) ends the wait when it arrived, on the PBX's
// clock: 7 s, with the PBX 120 s behind, not 0 s and not 127 s.
func TestLeaveTimeRepeatedEndsAtArrival(t *testing.T) {
	h := newHarness(t)
	h.apply(queueStatus("8001", "Q1", nil))
	enq := h.clock.Unix(-120)
	h.apply(enqueueAt(h.clock.t, "s1", enq), enqueueAt(h.clock.t, "s2", enq))
	h.clock.Advance(7 * time.Second)
	h.apply(&wsi.QueueCallerStatus{Header: at(wsi.TypeQueueCallerStatus, h.clock.t), QueueID: "Q1",
		Callers: []wsi.QueueCaller{callerEv("s1", "agent_answered", enq)}})
	h.clock.Advance(2 * time.Second)
	// A leave with a proper timestamp is taken as it is.
	h.apply(&wsi.QueueCallerStatus{Header: at(wsi.TypeQueueCallerStatus, h.clock.t), QueueID: "Q1",
		Callers: []wsi.QueueCaller{callerEv("s2", "hangup", enq+8)}})
	h.expect(t, waitLines(q8001, map[string][]float64{"answered": {7}, "abandoned": {8}}), "portsip_queue_wait_seconds")
	if got := h.quirks(t, "leave_time_repeated"); got != 1 {
		t.Errorf("leave_time_repeated = %v, want 1", got)
	}
}

// The same event twice, or events out of order, count once: a second
// leave of a caller already gone, a second enqueue of a waiting caller, a
// second call_cdr of a call (same session_id and call_id), and an enqueue
// that arrives after the caller's leave.
func TestDuplicateAndLateEventsCountOnce(t *testing.T) {
	h := newHarness(t)
	ts := h.clock.Unix(0)
	h.apply(queueStatus("8001", "Q1", nil))
	enq := callers("Q1", callerEv("s1", "enqueue", ts))
	h.apply(enq, enq)
	h.clock.Advance(10 * time.Second)
	leave := callers("Q1", callerEv("s1", "hangup", ts+10))
	h.apply(leave, leave)
	// Out of order: s2's leave, then its enqueue.
	h.apply(callers("Q1", callerEv("s2", "agent_answered", ts+9)), callers("Q1", callerEv("s2", "enqueue", ts+2)))
	// s1 calls again: a new wait, counted.
	h.apply(callers("Q1", callerEv("s1", "enqueue", ts+10)))
	h.clock.Advance(3 * time.Second)
	h.apply(callers("Q1", callerEv("s1", "overflow", ts+13)))
	h.expect(t, callersTotal(q8001, 3, 1, 1, 1, 0)+
		waitLines(q8001, map[string][]float64{"abandoned": {10}, "overflow": {3}})+`
portsip_queue_waiting_callers{`+q8001+`,kind="normal"} 0
portsip_queue_waiting_callers{`+q8001+`,kind="callback"} 0
`, "portsip_queue_callers_total", "portsip_queue_wait_seconds", "portsip_queue_waiting_callers")

	cdr := &wsi.CallCDR{Header: hdr(wsi.TypeCallCDR), SessionID: "c1", CallID: "x@pbx", Direction: "in",
		CallStatus: "answered", TalkDuration: wsi.OptInt{Value: 30, Set: true}, EndedReason: "caller_disconnected"}
	other := *cdr
	other.CallID = "y@pbx" // the same session, another call
	h.apply(cdr, cdr, &other)
	const t1 = `tenant_id="676398719834259456"`
	h.expect(t, callsLines(t1, map[callKey]int{{"inbound", "answered"}: 2})+
		dirLines("portsip_call_talk_seconds", t1, TalkBuckets, map[string][]float64{"inbound": {30, 30}})+`
portsip_call_end_reasons_total{reason="caller_disconnected",`+t1+`} 2
`, "portsip_calls_total", "portsip_call_talk_seconds", "portsip_call_end_reasons_total")
	if got := h.quirks(t, "duplicate_event"); got != 3 {
		t.Errorf("duplicate_event = %v, want 3 (enqueue, leave, call_cdr)", got)
	}
}

// What is remembered to tell a repeat is bounded: the last recentCDRs
// records. A repeat of one older than that counts again.
func TestDuplicateMemoryIsBounded(t *testing.T) {
	h := newHarness(t)
	cdr := func(i int) *wsi.CallCDR {
		return &wsi.CallCDR{Header: hdr(wsi.TypeCallCDR), SessionID: fmt.Sprint("c", i), CallStatus: "fail", Direction: "in"}
	}
	for i := range recentCDRs + 1 {
		h.apply(cdr(i))
	}
	h.apply(cdr(recentCDRs), cdr(0)) // the last is remembered, the first forgotten
	if got := h.value(t, "portsip_calls_total", "direction", "inbound", "status", "fail"); got != recentCDRs+2 {
		t.Errorf("calls = %v, want %d", got, recentCDRs+2)
	}
	if got := h.quirks(t, "duplicate_event"); got != 1 {
		t.Errorf("duplicate_event = %v, want 1", got)
	}
	q := &queue{left: recent{size: recentLeavers}}
	for i := range recentLeavers + 10 {
		q.left.add(uint64(i+1), 0)
	}
	if n := len(q.left.keys); n != recentLeavers {
		t.Errorf("a queue remembers %d leavers, want %d", n, recentLeavers)
	}
}

// Extensions not registered but reachable by push are counted apart, and
// each such entry as the quirk push_online; push_online beside a
// registration means nothing.
func TestPushOnline(t *testing.T) {
	h := newHarness(t)
	h.apply(&wsi.ExtensionStatus{Header: extHdr(wsi.TypeExtensionStatus), Status: []wsi.ExtensionState{
		{Extension: "sip:101@x", Online: false, PushOnline: true, Presence: "AWAY"},
		{Extension: "sip:102@x", Online: true, PushOnline: true},
		{Extension: "sip:103@x", Online: false},
		{Extension: "sip:104@x", Online: false, PushOnline: true, Presence: "BREAK"},
	}})
	const t1 = `tenant_id="794493068765036544"`
	h.expect(t, `
portsip_extensions{`+t1+`} 4
portsip_extensions_online{`+t1+`} 1
portsip_extensions_push_online{`+t1+`} 2
portsip_extension_online{extension="101",`+t1+`} 0
portsip_extension_online{extension="102",`+t1+`} 1
portsip_extension_online{extension="103",`+t1+`} 0
portsip_extension_online{extension="104",`+t1+`} 0
`, "portsip_extensions", "portsip_extensions_online", "portsip_extensions_push_online", "portsip_extension_online")
	if got := h.quirks(t, "push_online"); got != 2 {
		t.Errorf("push_online = %v, want 2", got)
	}
	if got := h.value(t, "portsip_extensions_by_presence", "presence", "break"); got != 1 {
		t.Errorf("by_presence{break} = %v, want 1", got)
	}
	// The phone registers again.
	h.apply(&wsi.ExtensionStatus{Header: extHdr(wsi.TypeExtensionStatus), Status: []wsi.ExtensionState{
		{Extension: "sip:101@x", Online: true, PushOnline: true}}})
	if got := h.value(t, "portsip_extensions_push_online", "tenant_id", tenantE); got != 1 {
		t.Errorf("push_online = %v after 101 registered, want 1", got)
	}
}

// Spellings of other versions are one label value and their quirk:
// extension call states, presences and agent states as they arrive.
func TestOtherVersionsSpellingsAreOneValue(t *testing.T) {
	h := newHarness(t)
	h.apply(&wsi.ExtensionStatus{Header: extHdr(wsi.TypeExtensionStatus), Status: []wsi.ExtensionState{
		{Extension: "101", CallStatus: "On Call", Presence: "Available"},
		{Extension: "102", CallStatus: "Ringing", Presence: "ONLINE"},
		{Extension: "103", CallStatus: "none", Presence: "AVAILABLE"},
	}})
	h.apply(queueStatus("8001", "Q1", nil, ag("201", "Not Ready"), ag("202", "NOT_READY"), ag("203", "Logout")))
	const t1 = `tenant_id="794493068765036544"`
	h.expect(t, `
portsip_extensions_by_call_state{state="on_call",`+t1+`} 1
portsip_extensions_by_call_state{state="ringing",`+t1+`} 1
portsip_extensions_by_call_state{state="idle",`+t1+`} 1
portsip_extensions_by_presence{presence="available",`+t1+`} 3
portsip_extensions_by_presence{presence="away",`+t1+`} 0
portsip_extensions_by_presence{presence="lunch",`+t1+`} 0
portsip_extensions_by_presence{presence="business_trip",`+t1+`} 0
portsip_extensions_by_presence{presence="do_not_disturb",`+t1+`} 0
portsip_extensions_by_presence{presence="break",`+t1+`} 0
`+agentsLines(q8001, map[string]int{"not_ready": 2, "logged_out": 1})+
		quirkLines(map[string]int{"version_spelling": 6, "presence_online": 1}),
		"portsip_extensions_by_call_state", "portsip_extensions_by_presence", "portsip_queue_agents",
		"portsip_wsi_quirks_total")
}
