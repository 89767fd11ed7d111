package collector

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// histLines renders the classic part of a histogram with the given
// observations, as the text exposition shows it.
func histLines(name, labels string, buckets []float64, obs ...float64) string {
	var b strings.Builder
	sum := 0.0
	for _, o := range obs {
		sum += o
	}
	for _, le := range buckets {
		n := 0
		for _, o := range obs {
			if o <= le {
				n++
			}
		}
		fmt.Fprintf(&b, "%s_bucket{%s,le=\"%g\"} %d\n", name, labels, le, n)
	}
	fmt.Fprintf(&b, "%s_bucket{%s,le=\"+Inf\"} %d\n", name, labels, len(obs))
	fmt.Fprintf(&b, "%s_sum{%s} %g\n%s_count{%s} %d\n", name, labels, sum, name, labels, len(obs))
	return b.String()
}

// waitLines renders a queue's four wait histograms, each outcome with the
// observations given for it (none: an empty histogram).
func waitLines(labels string, obs map[string][]float64) string {
	var b strings.Builder
	for _, o := range outcomes {
		b.WriteString(histLines("portsip_queue_wait_seconds", `outcome="`+o+`",`+labels, WaitBuckets, obs[o]...))
	}
	return b.String()
}

const q8001 = `queue="8001",tenant_id="676398719834259456"`

func callersTotal(labels string, enqueue, answered, overflow, hangup, callback int) string {
	return fmt.Sprintf(`portsip_queue_callers_total{%[1]s,reason="enqueue"} %[2]d
portsip_queue_callers_total{%[1]s,reason="agent_answered"} %[3]d
portsip_queue_callers_total{%[1]s,reason="overflow"} %[4]d
portsip_queue_callers_total{%[1]s,reason="hangup"} %[5]d
portsip_queue_callers_total{%[1]s,reason="callback"} %[6]d
`, labels, enqueue, answered, overflow, hangup, callback)
}

func TestEnqueueThenAnsweredLandsInItsBucket(t *testing.T) {
	h := newHarness(t)
	ts := h.clock.Unix(0)
	h.apply(
		queueStatus("8001", "Q1", nil),
		callers("Q1", callerEv("s1", "enqueue", ts)),
	)
	h.clock.Advance(12 * time.Second)
	h.expect(t, `
portsip_queue_waiting_callers{`+q8001+`,kind="normal"} 1
portsip_queue_waiting_callers{`+q8001+`,kind="callback"} 0
portsip_queue_oldest_wait_seconds{`+q8001+`} 12
`, "portsip_queue_waiting_callers", "portsip_queue_oldest_wait_seconds")

	h.apply(callers("Q1", callerEv("s1", "agent_answered", ts+12)))
	h.expect(t, waitLines(q8001, map[string][]float64{"answered": {12}})+
		callersTotal(q8001, 1, 1, 0, 0, 0)+`
portsip_queue_waiting_callers{`+q8001+`,kind="normal"} 0
portsip_queue_waiting_callers{`+q8001+`,kind="callback"} 0
portsip_queue_oldest_wait_seconds{`+q8001+`} 0
`, "portsip_queue_wait_seconds", "portsip_queue_callers_total", "portsip_queue_waiting_callers", "portsip_queue_oldest_wait_seconds")
}

// A series born at 1 shows rate() no increase: a queue's first answered
// or abandoned caller would be invisible to the service level and abandon
// rate rules. Every outcome is there, empty, as soon as the queue is.
func TestNewQueueHasEveryOutcomeEmpty(t *testing.T) {
	h := newHarness(t)
	h.apply(queueStatus("8001", "Q1", nil))
	h.expect(t, waitLines(q8001, nil), "portsip_queue_wait_seconds")
	// So does a queue known only by its id.
	h.apply(agentsEv("Q2", nil, ag("101", "READY")))
	h.expect(t, waitLines(q8001, nil)+waitLines(`queue="id:Q2",tenant_id="676398719834259456"`, nil),
		"portsip_queue_wait_seconds")
}

func TestLeaveReasonsGiveOutcomes(t *testing.T) {
	h := newHarness(t)
	ts := h.clock.Unix(0)
	h.apply(queueStatus("8001", "Q1", nil))
	for i, r := range []string{"hangup", "overflow", "callback", "hangup"} {
		s := fmt.Sprint("s", i)
		h.apply(callers("Q1", callerEv(s, "enqueue", ts)), callers("Q1", callerEv(s, r, ts+int64(40*(i+1)))))
	}
	// A leave stamped before the caller's enqueue ends the wait when it
	// arrives (here at once).
	h.apply(callers("Q1", callerEv("early", "enqueue", ts)), callers("Q1", callerEv("early", "hangup", ts-5)))
	// A leave of a caller never seen counts the reason, observes no wait.
	h.apply(callers("Q1", callerEv("ghost", "hangup", ts)))
	h.expect(t,
		waitLines(q8001, map[string][]float64{"abandoned": {40, 160, 0}, "overflow": {80}, "callback": {120}})+
			callersTotal(q8001, 5, 0, 1, 4, 1),
		"portsip_queue_wait_seconds", "portsip_queue_callers_total")
}

// A change of a waiting caller that is neither an enqueue nor a leave
// (a reason the vendor does not document, or none) updates the caller, its
// kind, and keeps it waiting: the page says a waiting list's callers
// change, and only the listed reasons take them off it. The change is
// counted under its reason and as the quirk caller_update.
func TestCallerUpdateKeepsTheCallerWaiting(t *testing.T) {
	h := newHarness(t)
	ts := h.clock.Unix(0)
	h.apply(queueStatus("8001", "Q1", nil))
	h.apply(callers("Q1", callerEv("s1", "enqueue", ts), callerEv("s2", "enqueue", ts)))
	h.clock.Advance(10 * time.Second)
	cb := callerEv("s2", "", ts+10)
	cb.Type = "callback"
	h.apply(callers("Q1", callerEv("s1", "Transferred", ts+10), cb))
	h.expect(t, `
portsip_queue_waiting_callers{`+q8001+`,kind="normal"} 1
portsip_queue_waiting_callers{`+q8001+`,kind="callback"} 1
portsip_queue_oldest_wait_seconds{`+q8001+`} 10
`+callersTotal(q8001, 2, 0, 0, 0, 0)+`
portsip_queue_callers_total{`+q8001+`,reason="transferred"} 1
portsip_queue_callers_total{`+q8001+`,reason="unknown"} 1
`+waitLines(q8001, nil),
		"portsip_queue_waiting_callers", "portsip_queue_oldest_wait_seconds", "portsip_queue_callers_total",
		"portsip_queue_wait_seconds")
	if got := h.value(t, "portsip_wsi_quirks_total", "quirk", "caller_update"); got != 2 {
		t.Errorf("caller_update quirks = %v, want 2", got)
	}
	// The caller still leaves with its whole wait.
	h.clock.Advance(5 * time.Second)
	h.apply(callers("Q1", callerEv("s1", "agent_answered", ts+15)))
	h.expect(t, waitLines(q8001, map[string][]float64{"answered": {15}}), "portsip_queue_wait_seconds")
}

func TestCallbackEntriesAreTheirOwnKind(t *testing.T) {
	h := newHarness(t)
	ts := h.clock.Unix(-30)
	h.apply(queueStatus("8001", "Q1", []wsi.QueueCaller{
		{SessionID: "a", Timestamp: ts, Type: "callback"},
		{SessionID: "b", Timestamp: ts + 10, Type: "normal"},
	}))
	h.expect(t, `
portsip_queue_waiting_callers{`+q8001+`,kind="normal"} 1
portsip_queue_waiting_callers{`+q8001+`,kind="callback"} 1
portsip_queue_oldest_wait_seconds{`+q8001+`} 30
`, "portsip_queue_waiting_callers", "portsip_queue_oldest_wait_seconds")
}

func agentsLines(labels string, counts map[string]int) string {
	var b strings.Builder
	for _, s := range agentStates {
		fmt.Fprintf(&b, "portsip_queue_agents{%s,state=%q} %d\n", labels, s, counts[s])
	}
	for s, n := range counts {
		if !strings.Contains(b.String(), fmt.Sprintf("state=%q", s)) {
			fmt.Fprintf(&b, "portsip_queue_agents{%s,state=%q} %d\n", labels, s, n)
		}
	}
	return b.String()
}

func TestAgentRemovedDisappears(t *testing.T) {
	h := newHarness(t)
	h.apply(
		queueStatus("8001", "Q1", nil, ag("101", "Ready"), ag("102", "Not Ready")),
		agentsEv("Q1", []string{"102"}, ag("101", "QUEUE_CALL"), ag("103", "Wrap Up")),
	)
	h.expect(t, agentsLines(q8001, map[string]int{"queue_call": 1, "wrap_up": 1})+`
portsip_queue_agent_state{agent="101",`+q8001+`,state="queue_call"} 1
portsip_queue_agent_state{agent="103",`+q8001+`,state="wrap_up"} 1
`, "portsip_queue_agents", "portsip_queue_agent_state")
}

func TestUnknownAgentStatePassesThroughNormalised(t *testing.T) {
	h := newHarness(t)
	h.apply(queueStatus("8001", "Q1", nil, ag("101", "On  Break-Time!"), ag("102", strings.Repeat("X", 100))))
	h.expect(t, agentsLines(q8001, map[string]int{"on_break_time": 1, strings.Repeat("x", 32): 1}),
		"portsip_queue_agents")
}

func TestAgentStateSecondsAccrueContinuously(t *testing.T) {
	h := newHarness(t)
	h.apply(queueStatus("8001", "Q1", nil, ag("101", "READY"), ag("102", "READY")))
	h.clock.Advance(10 * time.Second)
	// In progress time shows at scrape: 2 agents x 10 s.
	if got := h.value(t, "portsip_queue_agent_state_seconds_total", "state", "ready"); got != 20 {
		t.Fatalf("ready seconds = %v, want 20", got)
	}
	h.apply(agentsEv("Q1", nil, ag("101", "QUEUE_CALL")))
	h.clock.Advance(5 * time.Second)
	h.expect(t, `
portsip_queue_agent_state_seconds_total{`+q8001+`,state="ready"} 25
portsip_queue_agent_state_seconds_total{`+q8001+`,state="queue_call"} 5
`, "portsip_queue_agent_state_seconds_total")
	// Session down flushes and stops accruing; the counter stays.
	h.SessionDown(nil)
	h.clock.Advance(time.Hour)
	h.expect(t, `
portsip_queue_agent_state_seconds_total{`+q8001+`,state="ready"} 25
portsip_queue_agent_state_seconds_total{`+q8001+`,state="queue_call"} 5
`, "portsip_queue_agent_state_seconds_total")
}

// An agent's time stops where the agent does: at its removal, at the
// snapshot that no longer lists it, at the queue's destruction. A snapshot
// repeating an agent's state does not restart or double its time.
func TestAgentTimeStopsWithTheAgent(t *testing.T) {
	h := newHarness(t)
	h.apply(queueStatus("8001", "Q1", nil, ag("101", "READY"), ag("102", "READY"), ag("103", "READY")))
	h.clock.Advance(10 * time.Second)
	h.apply(queueStatus("8001", "Q1", nil, ag("101", "READY"), ag("102", "READY"), ag("103", "READY")))
	h.clock.Advance(10 * time.Second)
	h.apply(agentsEv("Q1", []string{"101"}))                    // 101: 20 s
	h.apply(queueStatus("8001", "Q1", nil, ag("103", "READY"))) // 102: 20 s
	h.clock.Advance(10 * time.Second)
	h.apply(&wsi.QueueManagement{Header: hdr(wsi.TypeQueueDestroy), QueueNumber: "8001"}) // 103: 30 s
	h.clock.Advance(time.Hour)
	h.expect(t, `portsip_queue_agent_state_seconds_total{`+q8001+`,state="ready"} 70`,
		"portsip_queue_agent_state_seconds_total")
}

func TestSnapshotAfterReconnectReplacesWithoutDoubleCounting(t *testing.T) {
	h := newHarness(t)
	ts := h.clock.Unix(0)
	h.apply(
		queueStatus("8001", "Q1", nil, ag("101", "READY"), ag("102", "READY")),
		callers("Q1", callerEv("s1", "enqueue", ts), callerEv("s2", "enqueue", ts)),
	)
	h.SessionDown(nil)
	h.clock.Advance(time.Minute)
	h.SessionUp(wsi.Session{})
	// s1 left during the outage (never counted), s2 still waits, s3 came.
	h.apply(queueStatus("8001", "Q1", []wsi.QueueCaller{
		{SessionID: "s2", Timestamp: ts}, {SessionID: "s3", Timestamp: ts + 50},
	}, ag("101", "Not Ready")))
	h.apply(queueStatus("8001", "Q1", []wsi.QueueCaller{ // the PBX may repeat it
		{SessionID: "s2", Timestamp: ts}, {SessionID: "s3", Timestamp: ts + 50},
	}, ag("101", "Not Ready")))
	h.apply(callers("Q1", callerEv("s2", "agent_answered", ts+70)))
	h.expect(t, callersTotal(q8001, 2, 1, 0, 0, 0)+
		waitLines(q8001, map[string][]float64{"answered": {70}})+
		agentsLines(q8001, map[string]int{"not_ready": 1})+`
portsip_queue_waiting_callers{`+q8001+`,kind="normal"} 1
portsip_queue_waiting_callers{`+q8001+`,kind="callback"} 0
`, "portsip_queue_callers_total", "portsip_queue_wait_seconds", "portsip_queue_agents", "portsip_queue_waiting_callers")
}

func TestSessionDownHidesGaugesKeepsCounters(t *testing.T) {
	h := newHarness(t)
	ts := h.clock.Unix(0)
	h.apply(
		queueStatus("8001", "Q1", nil, ag("101", "READY")),
		callers("Q1", callerEv("s1", "enqueue", ts)),
		&wsi.QueueSLABreached{Header: hdr(wsi.TypeQueueSLABreached), QueueID: "Q1", SLATimeSecs: 20},
		&wsi.ExtensionStatus{Header: hdr(wsi.TypeExtensionStatus), Status: []wsi.ExtensionState{{Extension: "sip:101@test.io", Online: true}}},
		&wsi.CallStart{Header: hdr(wsi.TypeCallStart), SessionID: "c1"},
		&wsi.CallCDR{Header: hdr(wsi.TypeCallCDR), SessionID: "c0", TenantName: "Acme", Direction: "in", CallStatus: "answered"},
	)
	gauges := []string{"portsip_queue_info", "portsip_queue_waiting_callers", "portsip_queue_oldest_wait_seconds",
		"portsip_queue_agents", "portsip_queue_agent_state", "portsip_queue_sla_threshold_seconds",
		"portsip_extension_online", "portsip_extension_call_state", "portsip_extensions", "portsip_extensions_online",
		"portsip_extensions_by_call_state", "portsip_calls_active", "portsip_queue_agent_state_changed_timestamp_seconds",
		"portsip_extensions_push_online"}
	for _, g := range gauges {
		if h.series(t, g) == 0 {
			t.Errorf("%s: absent while up", g)
		}
	}
	h.SessionDown(nil)
	for _, g := range gauges {
		if n := h.series(t, g); n != 0 {
			t.Errorf("%s: %d series while down", g, n)
		}
	}
	h.expect(t, `
portsip_up 0
portsip_queue_sla_breaches_total{`+q8001+`} 1
portsip_tenant_info{tenant_id="676398719834259456",tenant_name="Acme"} 1
`+callersTotal(q8001, 1, 0, 0, 0, 0)+callsLines(`tenant_id="676398719834259456"`, map[callKey]int{{"inbound", "answered"}: 1}),
		"portsip_up", "portsip_queue_sla_breaches_total", "portsip_calls_total", "portsip_tenant_info", "portsip_queue_callers_total")
}

// The SLA time is the queue's setting, which the PBX sends only with a
// breach: it is hidden while no session vouches for the queue, and shown
// again once the queue's snapshot says it still exists, rather than
// missing until the next breach.
func TestSLAThresholdIsASettingThatOutlivesAReconnect(t *testing.T) {
	h := newHarness(t)
	h.apply(queueStatus("8001", "Q1", nil),
		&wsi.QueueSLABreached{Header: hdr(wsi.TypeQueueSLABreached), QueueID: "Q1", SLATimeSecs: 20})
	h.SessionDown(nil)
	if n := h.series(t, "portsip_queue_sla_threshold_seconds"); n != 0 {
		t.Fatalf("%d threshold series while down", n)
	}
	h.SessionUp(wsi.Session{})
	if n := h.series(t, "portsip_queue_sla_threshold_seconds"); n != 0 {
		t.Fatalf("%d threshold series before the queue's snapshot", n)
	}
	h.apply(queueStatus("8001", "Q1", nil))
	h.expect(t, `portsip_queue_sla_threshold_seconds{`+q8001+`} 20`, "portsip_queue_sla_threshold_seconds")
}

// A breach without sla_time_secs (decoded as 0) says nothing about the
// queue's SLA time: no queue has an SLA of 0 seconds.
func TestBreachWithoutSLATimeKeepsTheThreshold(t *testing.T) {
	h := newHarness(t)
	h.apply(queueStatus("8001", "Q1", nil),
		&wsi.QueueSLABreached{Header: hdr(wsi.TypeQueueSLABreached), QueueID: "Q1", SLATimeSecs: 30},
		&wsi.QueueSLABreached{Header: hdr(wsi.TypeQueueSLABreached), QueueID: "Q1"})
	h.expect(t, `
portsip_queue_sla_threshold_seconds{`+q8001+`} 30
portsip_queue_sla_breaches_total{`+q8001+`} 2
`, "portsip_queue_sla_threshold_seconds", "portsip_queue_sla_breaches_total")
}

// idSeries lists the series of any family labelled with a queue id
// rather than its number.
func (h *harness) idSeries(t *testing.T) []string {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "queue" && strings.HasPrefix(l.GetValue(), "id:") {
					out = append(out, mf.GetName()+"{"+l.GetValue()+"}")
				}
			}
		}
	}
	return out
}

// Events for a queue whose number is not known yet count under its id;
// once the number is learnt, the id-derived queue becomes the numbered
// one, counters and histograms included, and nothing is left under the id.
func TestQueueIDBeforeNumber(t *testing.T) {
	h := newHarness(t)
	ts := h.clock.Unix(0)
	h.apply(
		callers("Q9", callerEv("s1", "enqueue", ts), callerEv("s2", "enqueue", ts), callerEv("s3", "enqueue", ts)),
		agentsEv("Q9", nil, ag("101", "READY")),
		&wsi.QueueSLABreached{Header: hdr(wsi.TypeQueueSLABreached), QueueID: "Q9", SLATimeSecs: 30},
	)
	h.clock.Advance(4 * time.Second)
	h.apply(callers("Q9", callerEv("s3", "agent_answered", ts+4)))
	const idq = `queue="id:Q9",tenant_id="676398719834259456"`
	h.expect(t, `
portsip_queue_info{`+idq+`,queue_id="Q9",queue_name=""} 1
portsip_queue_waiting_callers{`+idq+`,kind="normal"} 2
portsip_queue_waiting_callers{`+idq+`,kind="callback"} 0
portsip_queue_sla_breaches_total{`+idq+`} 1
portsip_wsi_quirks_total{quirk="queue_id_only"} 4
`+callersTotal(idq, 3, 1, 0, 0, 0)+waitLines(idq, map[string][]float64{"answered": {4}}),
		"portsip_queue_info", "portsip_queue_waiting_callers", "portsip_queue_callers_total",
		"portsip_queue_sla_breaches_total", "portsip_queue_wait_seconds")
	if got := h.value(t, "portsip_wsi_quirks_total", "quirk", "queue_id_only"); got != 4 {
		t.Errorf("queue_id_only = %v, want 4", got)
	}

	// queue_created with the id teaches the number.
	h.apply(&wsi.QueueManagement{Header: hdr(wsi.TypeQueueCreated), QueueNumber: "8009", QueueID: "Q9"})
	if ids := h.idSeries(t); len(ids) > 0 {
		t.Errorf("series under the id after the merge: %v", ids)
	}
	h.clock.Advance(6 * time.Second)
	h.apply(callers("Q9", callerEv("s1", "agent_answered", ts+10)))
	const q = `queue="8009",tenant_id="676398719834259456"`
	h.expect(t, `
portsip_queue_info{`+q+`,queue_id="Q9",queue_name=""} 1
portsip_queue_waiting_callers{`+q+`,kind="normal"} 1
portsip_queue_waiting_callers{`+q+`,kind="callback"} 0
portsip_queue_sla_breaches_total{`+q+`} 1
portsip_queue_sla_threshold_seconds{`+q+`} 30
portsip_queue_agent_state{agent="101",`+q+`,state="ready"} 1
`+callersTotal(q, 3, 2, 0, 0, 0)+waitLines(q, map[string][]float64{"answered": {4, 10}}),
		"portsip_queue_info", "portsip_queue_waiting_callers", "portsip_queue_sla_breaches_total",
		"portsip_queue_sla_threshold_seconds", "portsip_queue_agent_state", "portsip_queue_callers_total",
		"portsip_queue_wait_seconds")
	if got := h.value(t, "portsip_wsi_quirks_total", "quirk", "queue_id_only"); got != 4 {
		t.Errorf("queue_id_only = %v after the number is known, want still 4", got)
	}
}

// A queue known by its number (from extension_agent_status) and the same
// queue known by its id (from queue events) are one queue once anything
// pairs them: every count of both is in the numbered queue's series,
// none lost, none twice, histograms and agent time included.
func TestQueueIDMergesIntoItsNumber(t *testing.T) {
	h := newHarness(t)
	ts := h.clock.Unix(0)
	h.apply(
		&wsi.ExtensionAgentStatus{Header: hdr(wsi.TypeExtensionAgentStatus), Extension: "sip:102@x",
			AgentStatus: []wsi.AgentQueueState{{QueueNumber: "8010", Status: "READY"}}},
		callers("Q10", callerEv("a", "enqueue", ts), callerEv("b", "enqueue", ts)),
		agentsEv("Q10", nil, ag("101", "READY")),
		&wsi.QueueSLABreached{Header: hdr(wsi.TypeQueueSLABreached), QueueID: "Q10", SLATimeSecs: 45},
	)
	h.clock.Advance(20 * time.Second)
	h.apply(callers("Q10", callerEv("a", "hangup", ts+20)))
	h.apply(&wsi.QueueCallerStatus{Header: hdr(wsi.TypeQueueCallerStatus), QueueNumber: "8010",
		Callers: []wsi.QueueCaller{callerEv("c", "enqueue", ts+20)}})
	h.clock.Advance(5 * time.Second)
	h.apply(&wsi.QueueCallerStatus{Header: hdr(wsi.TypeQueueCallerStatus), QueueNumber: "8010",
		Callers: []wsi.QueueCaller{callerEv("c", "agent_answered", ts+25)}})
	const idq = `queue="id:Q10",tenant_id="676398719834259456"`
	const q = `queue="8010",tenant_id="676398719834259456"`
	h.expect(t, callersTotal(idq, 2, 0, 0, 1, 0)+callersTotal(q, 1, 1, 0, 0, 0)+
		waitLines(idq, map[string][]float64{"abandoned": {20}})+waitLines(q, map[string][]float64{"answered": {5}}),
		"portsip_queue_callers_total", "portsip_queue_wait_seconds")

	// The snapshot pairs them.
	h.apply(queueStatus("8010", "Q10", []wsi.QueueCaller{{SessionID: "b", Timestamp: ts}},
		ag("101", "READY"), ag("102", "READY")))
	if ids := h.idSeries(t); len(ids) > 0 {
		t.Errorf("series under the id after the merge: %v", ids)
	}
	h.clock.Advance(5 * time.Second)
	h.expect(t, `
portsip_queue_sla_breaches_total{`+q+`} 1
portsip_queue_sla_threshold_seconds{`+q+`} 45
portsip_queue_waiting_callers{`+q+`,kind="normal"} 1
portsip_queue_waiting_callers{`+q+`,kind="callback"} 0
portsip_queue_oldest_wait_seconds{`+q+`} 30
portsip_queue_agent_state_seconds_total{`+q+`,state="ready"} 60
`+callersTotal(q, 3, 1, 0, 1, 0)+waitLines(q, map[string][]float64{"abandoned": {20}, "answered": {5}}),
		"portsip_queue_callers_total", "portsip_queue_wait_seconds", "portsip_queue_sla_breaches_total",
		"portsip_queue_sla_threshold_seconds", "portsip_queue_waiting_callers", "portsip_queue_oldest_wait_seconds",
		"portsip_queue_agent_state_seconds_total")
	// Later events by the id are the numbered queue's.
	h.apply(callers("Q10", callerEv("b", "agent_answered", ts+30)))
	h.expect(t, callersTotal(q, 3, 2, 0, 1, 0)+waitLines(q, map[string][]float64{"abandoned": {20}, "answered": {5, 30}}),
		"portsip_queue_callers_total", "portsip_queue_wait_seconds")
	if n := h.series(t, "portsip_queue_info"); n != 1 {
		t.Errorf("%d queues, want 1", n)
	}
}

func TestQueueStatusTeachesNumberToo(t *testing.T) {
	h := newHarness(t)
	h.apply(queueStatus("8001", "Q1", nil), agentsEv("Q1", nil, ag("101", "READY")))
	h.expect(t, `portsip_queue_agent_state{agent="101",`+q8001+`,state="ready"} 1`, "portsip_queue_agent_state")
}

func TestQueueManagement(t *testing.T) {
	h := newHarness(t)
	mgmt := func(typ, number, name string) *wsi.QueueManagement {
		return &wsi.QueueManagement{Header: hdr(typ), QueueNumber: number, QueueName: name}
	}
	h.apply(mgmt(wsi.TypeQueueCreated, "8800", ""), mgmt(wsi.TypeQueueCreated, "8801", "Support"))
	// The replay of the queue list after a reconnect is not activity.
	h.SessionDown(nil)
	h.SessionUp(wsi.Session{})
	h.apply(mgmt(wsi.TypeQueueCreated, "8800", ""), mgmt(wsi.TypeQueueCreated, "8801", "Support"))
	h.apply(mgmt(wsi.TypeQueueUpdated, "8801", "Support 2"), mgmt(wsi.TypeQueueDestroy, "8800", ""))
	h.expect(t, `
portsip_queue_management_events_total{event_type="queue_created",tenant_id="676398719834259456"} 2
portsip_queue_management_events_total{event_type="queue_updated",tenant_id="676398719834259456"} 1
portsip_queue_management_events_total{event_type="queue_destroy",tenant_id="676398719834259456"} 1
portsip_queue_info{queue="8801",queue_id="",queue_name="Support 2",tenant_id="676398719834259456"} 1
`, "portsip_queue_management_events_total", "portsip_queue_info")
}

// The vendor documents queue management events with no more than the
// number and the tenant: an update of a known queue tells nothing new in
// its fields and must still count, while the list replayed as
// queue_created on every subscribe must not.
func TestQueueUpdatedCountsReplayedCreatedDoesNot(t *testing.T) {
	h := newHarness(t)
	mgmt := func(typ string) *wsi.QueueManagement {
		return &wsi.QueueManagement{Header: hdr(typ), QueueNumber: "8800"}
	}
	const l = `portsip_queue_management_events_total{tenant_id="676398719834259456",event_type=`
	// The first event, usually the subscribe's replay, brings every type,
	// so rate() sees the first real update or destroy.
	h.apply(mgmt(wsi.TypeQueueCreated))
	h.expect(t, l+`"queue_created"} 1
`+l+`"queue_updated"} 0
`+l+`"queue_destroy"} 0
`, "portsip_queue_management_events_total")
	h.apply(mgmt(wsi.TypeQueueUpdated), mgmt(wsi.TypeQueueUpdated))
	h.expect(t, l+`"queue_created"} 1
`+l+`"queue_updated"} 2
`+l+`"queue_destroy"} 0
`, "portsip_queue_management_events_total")

	h.SessionDown(nil)
	h.SessionUp(wsi.Session{})
	h.apply(mgmt(wsi.TypeQueueCreated), mgmt(wsi.TypeQueueUpdated))
	h.expect(t, l+`"queue_created"} 1
`+l+`"queue_updated"} 3
`+l+`"queue_destroy"} 0
`, "portsip_queue_management_events_total")

	// A queue created again after its destroy is a real creation.
	h.apply(mgmt(wsi.TypeQueueDestroy), mgmt(wsi.TypeQueueCreated))
	h.expect(t, l+`"queue_created"} 2
`+l+`"queue_updated"} 3
`+l+`"queue_destroy"} 1
`, "portsip_queue_management_events_total")
}
