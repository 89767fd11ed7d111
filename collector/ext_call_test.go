package collector

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

const tenantE = "794493068765036544"

func extHdr(typ string) wsi.Header { return wsi.Header{EventType: typ, TenantID: tenantE} }

// The vendor's extension_status sample: its typo ON_ACLL is on_call, its
// presence ONLINE is available.
func vendorExtensionStatus() *wsi.ExtensionStatus {
	return &wsi.ExtensionStatus{Header: extHdr(wsi.TypeExtensionStatus), Status: []wsi.ExtensionState{
		{Extension: "sip:101@test.io", CallStatus: "ON_ACLL", Presence: "AWAY", Time: 1704186780},
		{Extension: "sip:102@test.io", CallStatus: "ON_CALL", Presence: "ONLINE", Time: 1704186780},
	}}
}

func TestExtensionEvents(t *testing.T) {
	h := newHarness(t)
	h.apply(vendorExtensionStatus())
	const t1 = `tenant_id="794493068765036544"`
	h.expect(t, `
portsip_extension_online{extension="101",`+t1+`} 0
portsip_extension_online{extension="102",`+t1+`} 0
portsip_extension_presence{extension="101",presence="away",`+t1+`} 1
portsip_extension_presence{extension="102",presence="available",`+t1+`} 1
portsip_extension_call_state{extension="101",state="on_call",`+t1+`} 1
portsip_extension_call_state{extension="102",state="on_call",`+t1+`} 1
portsip_extensions{`+t1+`} 2
portsip_extensions_online{`+t1+`} 0
portsip_extensions_by_presence{presence="away",`+t1+`} 1
portsip_extensions_by_presence{presence="available",`+t1+`} 1
portsip_extensions_by_presence{presence="lunch",`+t1+`} 0
portsip_extensions_by_presence{presence="business_trip",`+t1+`} 0
portsip_extensions_by_presence{presence="do_not_disturb",`+t1+`} 0
portsip_extensions_by_presence{presence="break",`+t1+`} 0
`+quirkLines(map[string]int{"presence_online": 1, "version_spelling": 1})+`
portsip_extensions_by_call_state{state="on_call",`+t1+`} 2
portsip_extensions_by_call_state{state="ringing",`+t1+`} 0
portsip_extensions_by_call_state{state="idle",`+t1+`} 0
`, "portsip_extension_online", "portsip_extension_presence", "portsip_extension_call_state",
		"portsip_extensions", "portsip_extensions_online", "portsip_extensions_by_presence", "portsip_extensions_by_call_state",
		"portsip_wsi_quirks_total")

	h.apply(
		&wsi.ExtensionStatus{Header: extHdr(wsi.TypeExtensionStatus), Status: []wsi.ExtensionState{
			{Extension: "sip:101@test.io", Online: true, Presence: "AWAY"}}},
		&wsi.ExtensionCall{Header: extHdr(wsi.TypeExtensionCall), Extension: "sip:101@test.io", CallStatus: ""},
		&wsi.ExtensionCall{Header: extHdr(wsi.TypeExtensionCall), Extension: "sip:102@test.io", CallStatus: "RINGING"},
		// v22.2 says AVAILABLE where v22.3 says ONLINE: one state.
		&wsi.ExtensionPresence{Header: extHdr(wsi.TypeExtensionPresence), Extension: "sip:101@test.io", Presence: "AVAILABLE"},
		// An extension seen only in a call event: its registration is unknown.
		&wsi.ExtensionCall{Header: extHdr(wsi.TypeExtensionCall), Extension: "103", CallStatus: "ON_CALL"},
	)
	h.expect(t, `
portsip_extension_online{extension="101",`+t1+`} 1
portsip_extension_online{extension="102",`+t1+`} 0
portsip_extension_presence{extension="101",presence="available",`+t1+`} 1
portsip_extension_presence{extension="102",presence="available",`+t1+`} 1
portsip_extension_call_state{extension="101",state="idle",`+t1+`} 1
portsip_extension_call_state{extension="102",state="ringing",`+t1+`} 1
portsip_extension_call_state{extension="103",state="on_call",`+t1+`} 1
portsip_extensions{`+t1+`} 3
portsip_extensions_online{`+t1+`} 1
`, "portsip_extension_online", "portsip_extension_presence", "portsip_extension_call_state",
		"portsip_extensions", "portsip_extensions_online")
}

// A tenant's extension gauges wait for the tenant's first extension event
// of the session: the zeros a scrape would find between a reconnect and
// the extension_status snapshot are a mass logout that never happened, and
// a tenant known only from queues or calls has no extensions we know of.
func TestExtensionGaugesWaitForTheSessionsFirstExtensionEvent(t *testing.T) {
	h := newHarness(t)
	h.apply(vendorExtensionStatus(),
		&wsi.CallStart{Header: hdr(wsi.TypeCallStart), SessionID: "c1"})
	extGauges := []string{"portsip_extensions", "portsip_extensions_online",
		"portsip_extensions_by_presence", "portsip_extensions_by_call_state"}
	const t1 = `tenant_id="794493068765036544"`
	h.expect(t, `portsip_extensions{`+t1+`} 2`, "portsip_extensions")
	h.SessionDown(nil)
	h.SessionUp(wsi.Session{})
	for _, g := range extGauges {
		if n := h.series(t, g); n != 0 {
			t.Errorf("%s: %d series before any extension event of the session", g, n)
		}
	}
	h.apply(&wsi.ExtensionStatus{Header: extHdr(wsi.TypeExtensionStatus), Status: []wsi.ExtensionState{
		{Extension: "sip:101@test.io", Online: true}}})
	h.expect(t, `
portsip_extensions{`+t1+`} 1
portsip_extensions_online{`+t1+`} 1
`, "portsip_extensions", "portsip_extensions_online")
}

func TestExtensionManagement(t *testing.T) {
	h := newHarness(t)
	mgmt := func(typ, n string) *wsi.ExtensionManagement {
		return &wsi.ExtensionManagement{Header: wsi.Header{EventType: typ, TenantID: "883634229655633920"},
			ExtensionNumber: n}
	}
	const t1 = `tenant_id="883634229655633920"`
	// From the first event every type is there, so rate() sees the first
	// of each other type.
	h.apply(mgmt(wsi.TypeExtensionCreated, "1001"))
	h.expect(t, `
portsip_extension_management_events_total{event_type="extension_created",`+t1+`} 1
portsip_extension_management_events_total{event_type="extension_updated",`+t1+`} 0
portsip_extension_management_events_total{event_type="extension_destroyed",`+t1+`} 0
`, "portsip_extension_management_events_total")
	h.apply(mgmt(wsi.TypeExtensionCreated, "1002"), mgmt(wsi.TypeExtensionUpdated, "1001"), mgmt(wsi.TypeExtensionDestroyed, "1002"))
	h.expect(t, `
portsip_extension_management_events_total{event_type="extension_created",`+t1+`} 2
portsip_extension_management_events_total{event_type="extension_updated",`+t1+`} 1
portsip_extension_management_events_total{event_type="extension_destroyed",`+t1+`} 1
portsip_extensions{`+t1+`} 1
portsip_extension_call_state{extension="1001",state="idle",`+t1+`} 1
`, "portsip_extension_management_events_total", "portsip_extensions", "portsip_extension_call_state", "portsip_extension_online")
}

func TestExtensionAgentStatusSetsStateInNamedQueues(t *testing.T) {
	h := newHarness(t)
	h.apply(&wsi.ExtensionAgentStatus{Header: wsi.Header{EventType: wsi.TypeExtensionAgentStatus, TenantID: "806406773714976768"},
		Extension: "sip:102@test.io", AgentStatus: []wsi.AgentQueueState{{QueueNumber: "8002", Status: "READY"}, {QueueNumber: "8003", Status: "Not Ready"}}})
	h.expect(t, `
portsip_queue_agent_state{agent="102",queue="8002",state="ready",tenant_id="806406773714976768"} 1
portsip_queue_agent_state{agent="102",queue="8003",state="not_ready",tenant_id="806406773714976768"} 1
`, "portsip_queue_agent_state")
}

const tenantC = "798119491077668864"

func cdrHdr(typ string) wsi.Header { return wsi.Header{EventType: typ, TenantID: tenantC} }

// callsLines renders a tenant's portsip_calls_total: every known direction
// and status, with the counts given (others 0).
func callsLines(labels string, counts map[callKey]int) string {
	var b strings.Builder
	for _, d := range directions {
		for _, s := range callStatuses {
			fmt.Fprintf(&b, "portsip_calls_total{%s,direction=%q,status=%q} %d\n", labels, d, s, counts[callKey{d, s}])
		}
	}
	return b.String()
}

// dirLines renders a tenant's talk or ring histograms, every known
// direction with the observations given for it (none: empty).
func dirLines(name, labels string, buckets []float64, obs map[string][]float64) string {
	var b strings.Builder
	for _, d := range directions {
		b.WriteString(histLines(name, `direction="`+d+`",`+labels, buckets, obs[d]...))
	}
	return b.String()
}

func TestCallsStartAndCDR(t *testing.T) {
	h := newHarness(t)
	// PBX times are near the vendor's sample's.
	const base = 1705051422
	h.clock.t = time.Unix(base, 0)
	h.apply(
		// The vendor's call_start sample.
		&wsi.CallStart{Header: cdrHdr(wsi.TypeCallStart), CallID: "Q0sX",
			CDRID: "798119942409949185", Direction: "ext", SessionID: "798119942409949184", Time: 1705051422},
		&wsi.CallStart{Header: cdrHdr(wsi.TypeCallStart), SessionID: "s2", Direction: "in"},
		&wsi.CallStart{Header: cdrHdr(wsi.TypeCallUpdateInfo), SessionID: "s2", Direction: "in"},
		&wsi.CallStart{Header: cdrHdr(wsi.TypeCallUpdateInfo), SessionID: "s3", Direction: "out"}, // start missed
	)
	const t1 = `tenant_id="798119491077668864"`
	h.expect(t, `portsip_calls_active{`+t1+`} 3`, "portsip_calls_active")

	h.apply(
		&wsi.CallCDR{Header: cdrHdr(wsi.TypeCallCDR), SessionID: "798119942409949184", TenantName: "Test Co",
			RingTime: base + 1001, AnsweredTime: base + 1005, EndedTime: base + 1026,
			RingDuration: wsi.OptInt{Value: 4, Set: true}, TalkDuration: wsi.OptInt{Value: 21, Set: true},
			CallStatus: "answered", EndedReason: "callee_disconnected", Direction: "ext", TrunkName: ""},
		// Oldest servers: no durations, no call_status; derived from times.
		&wsi.CallCDR{Header: cdrHdr(wsi.TypeCallCDR), SessionID: "s2", RingTime: base + 2002,
			AnsweredTime: base + 2010, EndedTime: base + 2100, EndedReason: "callee_disconnect", Direction: "in",
			TrunkName: "122:883631675865563136"},
		&wsi.CallCDR{Header: cdrHdr(wsi.TypeCallCDR), SessionID: "s3", RingTime: base + 3001,
			AnsweredTime: 0, EndedTime: base + 3031, EndedReason: "None", Direction: "out", TrunkName: "122:1"},
		// A call that never rang and failed; status as sent.
		&wsi.CallCDR{Header: cdrHdr(wsi.TypeCallCDR), SessionID: "s4", EndedTime: base + 4000,
			CallStatus: "fail", Direction: "inbound_outbound", RingDuration: wsi.OptInt{Set: true}},
	)
	h.expect(t, `
portsip_calls_active{`+t1+`} 0
portsip_tenant_info{tenant_id="798119491077668864",tenant_name="Test Co"} 1
portsip_call_end_reasons_total{reason="callee_disconnected",`+t1+`} 2
portsip_call_end_reasons_total{reason="none",`+t1+`} 1
portsip_call_end_reasons_total{reason="unknown",`+t1+`} 1
portsip_trunk_calls_total{direction="inbound",status="answered",trunk="122",`+t1+`} 1
portsip_trunk_calls_total{direction="outbound",status="noanswer",trunk="122",`+t1+`} 1
`+callsLines(t1, map[callKey]int{{"internal", "answered"}: 1, {"inbound", "answered"}: 1,
		{"outbound", "noanswer"}: 1, {"inbound_outbound", "fail"}: 1})+
		dirLines("portsip_call_talk_seconds", t1, TalkBuckets, map[string][]float64{"internal": {21}, "inbound": {90}})+
		dirLines("portsip_call_ring_seconds", t1, RingBuckets, map[string][]float64{"internal": {4}, "inbound": {8}, "outbound": {30}}),
		"portsip_calls_active", "portsip_tenant_info", "portsip_calls_total", "portsip_call_end_reasons_total",
		"portsip_trunk_calls_total", "portsip_call_talk_seconds", "portsip_call_ring_seconds")
}

// TestDurations: the talk and ring time a CDR gives (whether a call was
// answered decides elsewhere whether its talk is observed). Times are
// seconds after t0; values no PBX can mean are not used and mark the event
// implausible.
func TestDurations(t *testing.T) {
	opt := func(v int64) wsi.OptInt { return wsi.OptInt{Value: v, Set: true} }
	base := t0.Unix()
	for _, tc := range []struct {
		name             string
		cdr              wsi.CallCDR
		talk, ring       int64
		hasTalk, hasRing bool
		implausible      bool
	}{
		{"keys win over times", wsi.CallCDR{RingTime: 10, AnsweredTime: 20, EndedTime: 100, RingDuration: opt(3), TalkDuration: opt(50)}, 50, 3, true, true, false},
		{"times when keys missing", wsi.CallCDR{RingTime: 10, AnsweredTime: 20, EndedTime: 100}, 80, 10, true, true, false},
		{"unanswered rings until the end", wsi.CallCDR{RingTime: 10, EndedTime: 25}, 0, 15, false, true, false},
		{"zero keys", wsi.CallCDR{TalkDuration: opt(0), RingDuration: opt(0)}, 0, 0, true, false, false},
		{"times out of order", wsi.CallCDR{RingTime: 50, AnsweredTime: 40, EndedTime: 30}, -10, -10, false, false, true},
		{"negative keys", wsi.CallCDR{AnsweredTime: 1, RingTime: 1, TalkDuration: opt(-1), RingDuration: opt(-1)}, -1, -1, false, false, true},
		{"2^63 talk", wsi.CallCDR{AnsweredTime: 1, TalkDuration: opt(math.MaxInt64)}, math.MaxInt64, 0, false, false, true},
		{"a day and a second", wsi.CallCDR{RingTime: 1, RingDuration: opt(maxPlausible + 1)}, 0, maxPlausible + 1, false, false, true},
		{"a day", wsi.CallCDR{AnsweredTime: 1, TalkDuration: opt(maxPlausible)}, maxPlausible, 0, true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(Config{}, nil)
			c.setWindow(t0)
			at := func(v int64) int64 {
				if v == 0 {
					return 0
				}
				return c.stamp(base + v)
			}
			ringAt, answeredAt, endedAt := at(tc.cdr.RingTime), at(tc.cdr.AnsweredTime), at(tc.cdr.EndedTime)
			talk, ok := c.talkSeconds(&tc.cdr, answeredAt, endedAt)
			if ok != tc.hasTalk || talk != tc.talk {
				t.Errorf("talk = %d, %v; want %d, %v", talk, ok, tc.talk, tc.hasTalk)
			}
			ring, ok := c.ringSeconds(&tc.cdr, ringAt, answeredAt, endedAt)
			if ok != tc.hasRing || (ok || tc.ring != 0) && ring != tc.ring {
				t.Errorf("ring = %d, %v; want %d, %v", ring, ok, tc.ring, tc.hasRing)
			}
			if c.bad != tc.implausible {
				t.Errorf("implausible = %v, want %v", c.bad, tc.implausible)
			}
		})
	}
}

// call_status decides whether a call was answered when it is sent: talk
// the PBX reports for a noanswer or failed call (an IVR or voicemail took
// it) must not enter the answered calls' talk time. Without call_status
// the times decide.
func TestCallStatusDecidesTalk(t *testing.T) {
	h := newHarness(t)
	h.apply(
		&wsi.CallCDR{Header: hdr(wsi.TypeCallCDR), SessionID: "c1", Direction: "in", CallStatus: "noanswer",
			AnsweredTime: t0.Unix() + 100, EndedTime: t0.Unix() + 130},
		&wsi.CallCDR{Header: hdr(wsi.TypeCallCDR), SessionID: "c2", Direction: "in", CallStatus: "fail",
			TalkDuration: wsi.OptInt{Value: 12, Set: true}},
		&wsi.CallCDR{Header: hdr(wsi.TypeCallCDR), SessionID: "c3", Direction: "in", AnsweredTime: t0.Unix() + 100, EndedTime: t0.Unix() + 145},
	)
	const t1 = `tenant_id="676398719834259456"`
	h.expect(t, callsLines(t1, map[callKey]int{{"inbound", "noanswer"}: 1, {"inbound", "fail"}: 1, {"inbound", "answered"}: 1})+
		dirLines("portsip_call_talk_seconds", t1, TalkBuckets, map[string][]float64{"inbound": {45}}),
		"portsip_calls_total", "portsip_call_talk_seconds")
}

// A series born at 1 shows rate() no increase: a tenant's first call of
// each direction and status would be invisible to the call failure rule.
// At the tenant's first call event they are all there, at 0; a tenant
// whose calls we do not receive has none, rather than claiming no calls.
func TestFirstCallEventStartsCallSeriesAtZero(t *testing.T) {
	h := newHarness(t)
	h.apply(queueStatus("8001", "Q1", nil))
	for _, name := range []string{"portsip_calls_total", "portsip_call_talk_seconds", "portsip_call_ring_seconds"} {
		if n := h.series(t, name); n != 0 {
			t.Errorf("%s: %d series for a tenant without calls", name, n)
		}
	}
	h.apply(&wsi.CallStart{Header: cdrHdr(wsi.TypeCallStart), SessionID: "s1", Direction: "in"})
	const t1 = `tenant_id="798119491077668864"`
	h.expect(t, callsLines(t1, nil)+
		dirLines("portsip_call_talk_seconds", t1, TalkBuckets, nil)+
		dirLines("portsip_call_ring_seconds", t1, RingBuckets, nil),
		"portsip_calls_total", "portsip_call_talk_seconds", "portsip_call_ring_seconds")
	// A CDR with no call_start before it starts them too.
	h.apply(&wsi.CallCDR{Header: hdr(wsi.TypeCallCDR), SessionID: "s2", Direction: "out", CallStatus: "fail"})
	h.expect(t, callsLines(t1, nil)+callsLines(`tenant_id="676398719834259456"`, map[callKey]int{{"outbound", "fail"}: 1}),
		"portsip_calls_total")
}

func TestActiveCallsExpire(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.CallExpiry = time.Hour })
	h.apply(&wsi.CallStart{Header: cdrHdr(wsi.TypeCallStart), SessionID: "old"})
	h.clock.Advance(50 * time.Minute)
	h.apply(&wsi.CallStart{Header: cdrHdr(wsi.TypeCallStart), SessionID: "new"})
	const t1 = `tenant_id="798119491077668864"`
	h.expect(t, `portsip_calls_active{`+t1+`} 2`, "portsip_calls_active")
	h.clock.Advance(10 * time.Minute)
	h.expect(t, `portsip_calls_active{`+t1+`} 1`, "portsip_calls_active")
	// Its late CDR still counts the call.
	h.apply(&wsi.CallCDR{Header: cdrHdr(wsi.TypeCallCDR), SessionID: "old", Direction: "in", CallStatus: "answered"})
	h.clock.Advance(50 * time.Minute)
	h.expect(t, `
portsip_calls_active{`+t1+`} 0
`+callsLines(t1, map[callKey]int{{"inbound", "answered"}: 1}), "portsip_calls_active", "portsip_calls_total")
}

func TestSwitchesOffKeepAggregates(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.AgentState, c.ExtensionState = false, false })
	h.apply(queueStatus("8001", "Q1", nil, ag("101", "READY")), vendorExtensionStatus())
	for _, name := range []string{"portsip_queue_agent_state", "portsip_extension_online", "portsip_extension_presence", "portsip_extension_call_state"} {
		if n := h.series(t, name); n != 0 {
			t.Errorf("%s: %d series with its switch off", name, n)
		}
	}
	if got := h.value(t, "portsip_queue_agents", "state", "ready"); got != 1 {
		t.Errorf("portsip_queue_agents{state=ready} = %v, want 1", got)
	}
	if got := h.value(t, "portsip_extensions", "tenant_id", tenantE); got != 2 {
		t.Errorf("portsip_extensions = %v, want 2", got)
	}
}

// Events the catalogue has no use for change nothing (the client counts
// them in portsip_wsi_events_total).
func TestIgnoredEventsChangeNothing(t *testing.T) {
	h := newHarness(t)
	before, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	h.HandleEvent(nil)
	h.apply(
		&wsi.Unknown{Header: hdr("brand_new_event")},
		&wsi.CDRTarget{Header: hdr(wsi.TypeCDRTargetAnswer)},
	)
	after, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != len(after) {
		t.Fatalf("families %d -> %d", len(before), len(after))
	}
	for i := range before {
		if before[i].String() != after[i].String() {
			t.Errorf("%s changed", before[i].GetName())
		}
	}
}
