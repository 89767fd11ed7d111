package collector

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/portsip-exporter/portsip_exporter/internal/secret"
	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// gather returns the registry's families and checks the budget on them.
func (h *harness) gather(t *testing.T) int {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	checkBudget(t, h.Collector, mfs)
	checkBounded(t, h.Collector)
	n := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if hs := m.GetHistogram(); hs != nil {
				n += len(hs.GetBucket()) + 3
			} else {
				n++
			}
		}
	}
	return n
}

// The product of the limits: queue ids that each bring their own agent
// states and caller reasons (the 10,000 x 64). Within the budget
// the Collector stops taking new series, counts what it refused, keeps
// rendering portsip_up and what it has, and its accounting stays exact.
func TestSeriesBudgetHoldsTheProductAttack(t *testing.T) {
	const budget = 20_000
	h := newHarness(t, func(c *Config) { c.MaxSeries = budget })
	for q := range 300 {
		id := fmt.Sprint("attack-", q)
		var updated []wsi.QueueAgent
		var changes []wsi.QueueCaller
		for i := range 64 {
			updated = append(updated, wsi.QueueAgent{Extension: fmt.Sprint(i), State: fmt.Sprint("state ", i)})
			changes = append(changes, wsi.QueueCaller{SessionID: "s", Reason: fmt.Sprint("reason ", i)})
		}
		h.apply(agentsEv(id, nil, updated...), callers(id, changes...))
	}
	lines := h.gather(t)
	if lines > budget {
		t.Errorf("%d sample lines rendered, budget %d", lines, budget)
	}
	if lines < budget*9/10 {
		t.Errorf("%d sample lines rendered: the budget of %d refused more than it had to", lines, budget)
	}
	if got := h.value(t, "portsip_exporter_dropped_entities_total", "entity", "series"); got == 0 {
		t.Error("nothing counted as refused by the budget")
	}
	if got := h.value(t, "portsip_up"); got != 1 {
		t.Errorf("portsip_up = %v", got)
	}
	// Without the budget the same frames make ~100,000 series.
	h = newHarness(t)
	for q := range 300 {
		id := fmt.Sprint("attack-", q)
		for i := range 64 {
			h.apply(agentsEv(id, nil, wsi.QueueAgent{Extension: fmt.Sprint(i), State: fmt.Sprint("state ", i)}))
		}
	}
	if lines := h.gather(t); lines < 4*budget {
		t.Fatalf("the attack makes only %d series without a tight budget: it proves nothing", lines)
	}
}

// The tenant-mode CDR attack: every call_cdr with a new direction and
// status (64 x 64 values) stays within the budget.
func TestSeriesBudgetHoldsTheCDRProduct(t *testing.T) {
	const budget = 2_000
	h := newHarness(t, func(c *Config) { c.MaxSeries = budget })
	for d := range 64 {
		for s := range 64 {
			h.apply(&wsi.CallCDR{Header: hdr(wsi.TypeCallCDR), SessionID: fmt.Sprint(d, "-", s),
				Direction: fmt.Sprint("dir ", d), CallStatus: fmt.Sprint("status ", s), EndedReason: fmt.Sprint("why ", s),
				TrunkName: fmt.Sprint("trunk ", d), TalkDuration: wsi.OptInt{Value: 5, Set: true}})
		}
	}
	if lines := h.gather(t); lines > budget {
		t.Errorf("%d sample lines rendered, budget %d", lines, budget)
	}
	if got := h.value(t, "portsip_exporter_dropped_entities_total", "entity", "series"); got == 0 {
		t.Error("nothing counted as refused by the budget")
	}
}

// What a refusal does to what is already tracked: an agent or an extension
// whose new state would need a series the budget has no room for is no
// longer tracked (never shown in a state it left), and what a forgotten
// queue paid for is there for the next.
func TestBudgetRefusals(t *testing.T) {
	h := newHarness(t)
	h.apply(queueStatus("8001", "Q1", nil, ag("101", "READY")))
	h.apply(&wsi.ExtensionStatus{Header: hdr(wsi.TypeExtensionStatus), Status: []wsi.ExtensionState{{Extension: "101", Online: true}}})
	h.gather(t)
	// No room for one more series.
	h.mu.Lock()
	h.cfg.MaxSeries = h.Collector.series
	h.mu.Unlock()

	h.apply(agentsEv("Q1", nil, ag("101", "Invented State")))
	if n := h.Collector.series; n > h.cfg.MaxSeries {
		t.Fatalf("%d series paid for, budget %d", n, h.cfg.MaxSeries)
	}
	if n := h.series(t, "portsip_queue_agent_state"); n != 0 {
		t.Errorf("%d agent series: the agent is shown in the state it left", n)
	}
	h.mu.Lock()
	h.cfg.MaxSeries = h.Collector.series // what the agent gave back is taken
	h.mu.Unlock()
	h.apply(&wsi.ExtensionPresence{Header: hdr(wsi.TypeExtensionPresence), Extension: "101", Presence: "Invented"})
	if n := h.series(t, "portsip_extension_online"); n != 0 {
		t.Errorf("%d extension series: the extension is shown in the presence it left", n)
	}
	if got := h.value(t, "portsip_exporter_dropped_entities_total", "entity", "series"); got != 2 {
		t.Errorf("series refused = %v, want 2", got)
	}
	// A queue too many is refused; once one is forgotten, it fits.
	h.apply(queueStatus("8002", "Q2", nil))
	if n := h.series(t, "portsip_queue_info"); n != 1 {
		t.Fatalf("%d queues with no room for a second", n)
	}
	h.apply(&wsi.QueueManagement{Header: hdr(wsi.TypeQueueDestroy), QueueNumber: "8001"})
	h.apply(queueStatus("8002", "Q2", nil))
	if got := h.value(t, "portsip_queue_info", "queue", "8002"); got != 1 {
		t.Errorf("queue 8002 not tracked after 8001 was destroyed")
	}
	h.gather(t)
}

// Queues the PBX no longer has are forgotten, counters and all, and give
// back what they paid for: a destroyed one retiredTTL after, one the PBX
// did not name in a session once that session has been up unseenTTL. A
// queue the PBX named in the session is kept however quiet it is.
func TestQueuesForgotten(t *testing.T) {
	h := newHarness(t)
	ts := h.clock.Unix(0)
	h.apply(queueStatus("8001", "Q1", nil), queueStatus("8002", "Q2", nil), queueStatus("8003", "Q3", nil),
		callers("Q1", callerEv("s1", "enqueue", ts)), callers("Q2", callerEv("s2", "enqueue", ts)),
		callers("Q3", callerEv("s3", "enqueue", ts)))
	h.apply(&wsi.QueueManagement{Header: hdr(wsi.TypeQueueDestroy), QueueNumber: "8001"})
	counted := func(q string) bool {
		return h.metric(t, "portsip_queue_callers_total", "queue", q, "reason", "enqueue") != nil
	}

	// Nine minutes on, the destroyed queue's counters are still there to
	// be scraped.
	h.clock.Advance(9 * time.Minute)
	h.apply(callers("Q2", callerEv("s2b", "enqueue", h.clock.Unix(0))))
	if !counted("8001") {
		t.Fatal("a destroyed queue forgotten before its last values could be scraped")
	}
	h.clock.Advance(2 * time.Minute)
	h.apply(callers("Q2", callerEv("s2c", "enqueue", h.clock.Unix(0))))
	if counted("8001") {
		t.Error("a destroyed queue kept after retiredTTL")
	}

	// A new session names 8002 only. Quiet for hours, it is kept; 8003,
	// which the PBX no longer lists, goes once the session has been up
	// unseenTTL.
	h.SessionDown(nil)
	h.clock.Advance(time.Hour)
	h.SessionUp(wsi.Session{})
	h.apply(queueStatus("8002", "Q2", nil))
	h.clock.Advance(9 * time.Minute)
	h.apply(queueStatus("8002", "Q2", nil))
	if !counted("8003") {
		t.Fatal("a queue forgotten before the session was up unseenTTL")
	}
	h.clock.Advance(2 * time.Minute)
	h.apply(&wsi.ExtensionCall{Header: hdr(wsi.TypeExtensionCall), Extension: "101"})
	if counted("8003") {
		t.Error("a queue the PBX did not name in the session kept after unseenTTL")
	}
	h.clock.Advance(5 * time.Hour)
	h.apply(&wsi.ExtensionCall{Header: hdr(wsi.TypeExtensionCall), Extension: "101"})
	if got := h.value(t, "portsip_queue_callers_total", "queue", "8002", "reason", "enqueue"); got != 3 {
		t.Errorf("the quiet queue 8002 counts %v enqueues, want its 3", got)
	}
	h.gather(t)

	// Named again, a forgotten queue starts from zero.
	h.apply(callers("Q3", callerEv("s3b", "enqueue", h.clock.Unix(0))))
	if got := h.value(t, "portsip_queue_callers_total", "queue", "id:Q3", "reason", "enqueue"); got != 1 {
		t.Errorf("queue named again counts %v enqueues, want 1", got)
	}
}

// Waiting callers are calls: all queues together hold at most
// Limits.ActiveCalls, whatever each queue may hold.
func TestWaitingCallersBoundedOverall(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Limits.ActiveCalls = 10 })
	ts := h.clock.Unix(0)
	for q := range 4 {
		var cs []wsi.QueueCaller
		for i := range 5 {
			cs = append(cs, callerEv(fmt.Sprint(q, "-", i), "enqueue", ts))
		}
		h.apply(callers(fmt.Sprint("Q", q), cs...))
	}
	if got := h.value(t, "portsip_exporter_dropped_entities_total", "entity", "caller"); got != 10 {
		t.Errorf("callers dropped = %v, want 10", got)
	}
	h.gather(t)
}

// Values no PBX can mean are not used, and each event carrying one counts
// once as implausible; the rest of the event applies.
func TestImplausibleValues(t *testing.T) {
	h := newHarness(t)
	now := h.clock.Unix(0)
	implausible := func() float64 {
		h.mu.Lock()
		defer h.mu.Unlock()
		return float64(h.implausible)
	}
	h.apply(queueStatus("8001", "Q1", nil))

	// One talk_duration of 2^63 froze the talk time's sum: not observed,
	// the call still counted.
	cdr := func(session string, talk int64) *wsi.CallCDR {
		return &wsi.CallCDR{Header: hdr(wsi.TypeCallCDR), SessionID: session, Direction: "in", CallStatus: "answered",
			TalkDuration: wsi.OptInt{Value: talk, Set: true}, EndedTime: now}
	}
	h.apply(cdr("c1", math.MaxInt64), cdr("c2", 60), cdr("c3", -5), cdr("c4", maxPlausible+1))
	if got := implausible(); got != 3 {
		t.Errorf("implausible = %v after three broken CDRs, want 3", got)
	}
	h.expect(t, dirLines("portsip_call_talk_seconds", `tenant_id="676398719834259456"`, TalkBuckets, map[string][]float64{"inbound": {60}}),
		"portsip_call_talk_seconds")
	if got := h.value(t, "portsip_calls_total", "direction", "inbound", "status", "answered"); got != 4 {
		t.Errorf("answered calls = %v, want 4: the calls happened", got)
	}

	// A waiting_list timestamp of "1" showed a 56-year wait: the caller
	// waits from when the snapshot arrived.
	snap := queueStatus("8002", "Q2", []wsi.QueueCaller{{SessionID: "w1", Timestamp: 1}})
	snap.Received = h.clock.t
	h.apply(snap)
	h.clock.Advance(30 * time.Second)
	if got := h.value(t, "portsip_queue_oldest_wait_seconds", "queue", "8002"); got != 30 {
		t.Errorf("oldest wait %v s, want 30", got)
	}
	// A leave timestamp far away: the wait ends when it arrived.
	h.apply(&wsi.QueueCallerStatus{Header: at(wsi.TypeQueueCallerStatus, h.clock.t), QueueID: "Q2",
		Callers: []wsi.QueueCaller{callerEv("w1", "agent_answered", math.MaxInt64)}})
	wait := h.metric(t, "portsip_queue_wait_seconds", "queue", "8002", "outcome", "answered").GetHistogram()
	if sum, n := wait.GetSampleSum(), wait.GetSampleCount(); sum != 30 || n != 1 {
		t.Errorf("wait %v s in %d observations, want 30 s in 1", sum, n)
	}
	// An enqueue two days ahead, an SLA time of 2^62, an agent's time in
	// state of 56 years, an extension_agent_status from 1970.
	h.apply(callers("Q1", callerEv("e1", "enqueue", now+2*maxPlausible)),
		&wsi.QueueSLABreached{Header: hdr(wsi.TypeQueueSLABreached), QueueID: "Q1", SLATimeSecs: 1 << 62},
		queueStatus("8001", "Q1", nil, wsi.QueueAgent{Extension: "103", State: "READY", Timestamp: 1}),
		&wsi.ExtensionAgentStatus{Header: hdr(wsi.TypeExtensionAgentStatus), Extension: "102", Time: 1,
			AgentStatus: []wsi.AgentQueueState{{QueueNumber: "8001", Status: "READY"}}})
	if got := implausible(); got != 3+2+4 {
		t.Errorf("implausible = %v, want %v", got, 3+2+4)
	}
	if got := h.value(t, "portsip_queue_sla_threshold_seconds", "queue", "8001"); got != DefaultSLATime.Seconds() {
		t.Errorf("SLA threshold %v", got)
	}
	for _, agent := range []string{"102", "103"} {
		if got := h.value(t, "portsip_queue_agent_state_changed_timestamp_seconds", "agent", agent); got < float64(now) {
			t.Errorf("agent %s entered its state at %v, before the test began", agent, got)
		}
	}
	if got := h.value(t, "portsip_queue_oldest_wait_seconds", "queue", "8001"); got != 0 {
		t.Errorf("oldest wait of 8001 = %v", got)
	}
	// And the counter is rendered with the client's reasons.
	h2 := newHarness(t)
	h2.Collector = New(Config{Now: h.clock.Now}, statsFunc(func() wsi.Stats { return wsi.Stats{} }))
	h2.SessionUp(wsi.Session{})
	h2.HandleEvent(cdr("x", -1))
	if err := testutil.CollectAndCompare(h2.Collector, strings.NewReader(`
# HELP portsip_wsi_events_ignored_total Well-formed events not applied, by reason: a tenant not configured or not logged in, no tenant, an implausible value.
# TYPE portsip_wsi_events_ignored_total counter
portsip_wsi_events_ignored_total{reason="implausible"} 1
portsip_wsi_events_ignored_total{reason="no_tenant"} 0
portsip_wsi_events_ignored_total{reason="other_tenant"} 0
`), "portsip_wsi_events_ignored_total"); err != nil {
		t.Error(err)
	}
}

// The PBX's clock may be off by up to a day: its times are plausible on
// its own clock, as the offset estimate has it.
func TestPlausibleOnThePBXClock(t *testing.T) {
	h := newHarness(t)
	behind := int64(20 * 3600)
	h.apply(&wsi.ExtensionCall{Header: at(wsi.TypeExtensionCall, h.clock.t), Extension: "999", Time: h.clock.Unix(-behind)})
	// 30 hours behind our clock, 10 behind the PBX's: plausible.
	h.apply(enqueueAt(h.clock.t, "s1", h.clock.Unix(-behind-10*3600)))
	h.mu.Lock()
	n := h.implausible
	h.mu.Unlock()
	if n != 0 {
		t.Errorf("implausible = %d for times within a day of the PBX's clock", n)
	}
}

// A leave whose timestamp repeats the enqueue time of a caller who waited
// less than a second (an instant overflow) is right: its wait is taken
// from the arrival all the same, and it is not counted as the quirk.
func TestLeaveTimeRepeatedOnlyWhenClearlyLonger(t *testing.T) {
	h := newHarness(t)
	h.apply(queueStatus("8001", "Q1", nil))
	enq := h.clock.Unix(0)
	h.apply(enqueueAt(h.clock.t, "s1", enq))
	h.clock.Advance(500 * time.Millisecond)
	h.apply(&wsi.QueueCallerStatus{Header: at(wsi.TypeQueueCallerStatus, h.clock.t), QueueID: "Q1",
		Callers: []wsi.QueueCaller{callerEv("s1", "overflow", enq)}})
	h.expect(t, waitLines(q8001, map[string][]float64{"overflow": {0.5}}), "portsip_queue_wait_seconds")
	if got := h.quirks(t, "leave_time_repeated"); got != 0 {
		t.Errorf("leave_time_repeated = %v for a wait under a second", got)
	}
}

// The password, wherever the PBX puts it, is never a label value: the
// entity it names is tracked under the redacted value, the same one at
// every event. An enum value is normalised: a password in lower case
// sent in upper case would become itself.
func TestPasswordNeverALabel(t *testing.T) {
	const pw, lower = "Sekr1t-pw-XyZ", "hunter2x"
	h := newHarness(t, func(c *Config) { c.Redactor = secret.NewRedactor(pw, lower) })
	tenant := "t" + pw
	hd := func(typ string) wsi.Header { return wsi.Header{EventType: typ, TenantID: tenant} }
	ts := h.clock.Unix(0)
	for i := range 2 {
		h.apply(
			&wsi.QueueStatus{Header: hd(wsi.TypeQueueStatus), QueueID: "id-" + pw, QueueNumber: "80" + pw,
				QueueName: "Sales " + pw, Agents: []wsi.QueueAgent{{Extension: "sip:" + pw + "@x", State: pw}}},
			&wsi.QueueCallerStatus{Header: hd(wsi.TypeQueueCallerStatus), QueueID: "id-" + pw,
				Callers: []wsi.QueueCaller{{SessionID: fmt.Sprint("s", i), Reason: "enqueue", Timestamp: ts}, {SessionID: "x", Reason: strings.ToUpper(lower)}}},
			&wsi.ExtensionStatus{Header: hd(wsi.TypeExtensionStatus), Status: []wsi.ExtensionState{
				{Extension: pw, Online: true, Presence: pw, CallStatus: strings.ToUpper(lower)}}},
			&wsi.CallCDR{Header: hd(wsi.TypeCallCDR), SessionID: fmt.Sprint("c", i), TenantName: "Acme " + pw,
				TrunkName: pw + ":1", Direction: pw, CallStatus: pw, EndedReason: pw},
			&wsi.QueueManagement{Header: hd(pw), QueueNumber: "80" + pw, QueueName: pw},
		)
	}
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				fmt.Fprintf(&text, "%s ", l.GetValue())
			}
		}
	}
	for _, form := range []string{pw, lower} {
		if strings.Contains(text.String(), form) {
			t.Errorf("a label value holds the password (%q): %s", form, text.String())
		}
	}
	// Looked up again, each entity is the same: two enqueues, two calls.
	red := "80" + secret.Redacted
	if got := h.value(t, "portsip_queue_callers_total", "queue", red, "reason", "enqueue"); got != 2 {
		t.Errorf("enqueues = %v, want 2", got)
	}
	if got := h.value(t, "portsip_trunk_calls_total", "trunk", secret.Redacted); got != 2 {
		t.Errorf("trunk calls = %v, want 2", got)
	}
	if got := h.value(t, "portsip_extensions", "tenant_id", "t"+secret.Redacted); got != 1 {
		t.Errorf("extensions = %v, want 1", got)
	}
	if got := h.value(t, "portsip_queue_info", "queue", red, "queue_name", secret.Redacted); got != 1 {
		t.Errorf("queue_info = %v", got)
	}
	h.gather(t)
}
