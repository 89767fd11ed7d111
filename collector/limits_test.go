package collector

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

func TestLimitsDropAndCount(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Limits = Limits{Tenants: 2, Queues: 2, CallersPerQueue: 2, AgentsPerQueue: 2, Extensions: 2, ActiveCalls: 2, TrunkSeries: 1}
	})
	h.apply(queueStatus("8001", "Q1", []wsi.QueueCaller{{SessionID: "a"}, {SessionID: "b"}, {SessionID: "c"}},
		ag("101", "READY"), ag("102", "READY"), ag("103", "READY")))
	h.apply(queueStatus("8002", "Q2", nil), queueStatus("8003", "Q3", nil))
	h.apply(&wsi.ExtensionStatus{Header: hdr(wsi.TypeExtensionStatus), Status: []wsi.ExtensionState{
		{Extension: "1"}, {Extension: "2"}, {Extension: "3"}}})
	for _, tr := range []string{"a:1", "a:2", "b:1"} {
		h.apply(&wsi.CallCDR{Header: hdr(wsi.TypeCallCDR), TrunkName: tr, Direction: "in", CallStatus: "fail"})
	}
	for i := range 2 { // the second is one tenant too many
		h.apply(&wsi.CallStart{Header: wsi.Header{EventType: wsi.TypeCallStart, TenantID: fmt.Sprint("t", i)}, SessionID: "s"})
	}
	h.expect(t, `
portsip_exporter_dropped_entities_total{entity="tenant"} 1
portsip_exporter_dropped_entities_total{entity="queue"} 1
portsip_exporter_dropped_entities_total{entity="caller"} 1
portsip_exporter_dropped_entities_total{entity="agent"} 1
portsip_exporter_dropped_entities_total{entity="extension"} 1
portsip_exporter_dropped_entities_total{entity="call"} 0
portsip_exporter_dropped_entities_total{entity="trunk"} 1
portsip_exporter_dropped_entities_total{entity="label_value"} 0
portsip_exporter_dropped_entities_total{entity="series"} 0
portsip_queue_waiting_callers{`+q8001+`,kind="normal"} 2
portsip_queue_waiting_callers{`+q8001+`,kind="callback"} 0
portsip_queue_waiting_callers{queue="8002",tenant_id="676398719834259456",kind="normal"} 0
portsip_queue_waiting_callers{queue="8002",tenant_id="676398719834259456",kind="callback"} 0
portsip_extensions{tenant_id="676398719834259456"} 2
portsip_trunk_calls_total{direction="inbound",status="fail",tenant_id="676398719834259456",trunk="a"} 2
`, "portsip_exporter_dropped_entities_total", "portsip_queue_waiting_callers", "portsip_extensions", "portsip_trunk_calls_total")

	// A destroyed queue makes room; active calls are bounded overall.
	h.apply(&wsi.QueueManagement{Header: hdr(wsi.TypeQueueDestroy), QueueNumber: "8002"}, queueStatus("8003", "Q3", nil))
	h.apply(&wsi.CallStart{Header: hdr(wsi.TypeCallStart), SessionID: "x"}, &wsi.CallStart{Header: hdr(wsi.TypeCallStart), SessionID: "y"})
	if got := h.value(t, "portsip_exporter_dropped_entities_total", "entity", "call"); got != 1 {
		t.Errorf("dropped calls = %v, want 1", got)
	}
	if got := h.value(t, "portsip_queue_info", "queue", "8003"); got != 1 {
		t.Errorf("queue 8003 not tracked after 8002 was destroyed")
	}
	if n := h.series(t, "portsip_queue_info"); n != 2 {
		t.Errorf("%d queues rendered, want 2", n)
	}
}

func TestEnumsAreBounded(t *testing.T) {
	h := newHarness(t)
	for i := range maxEnumValues + 10 {
		h.apply(&wsi.CallCDR{Header: hdr(wsi.TypeCallCDR), EndedReason: fmt.Sprint("reason ", i)})
	}
	if n := h.series(t, "portsip_call_end_reasons_total"); n > maxEnumValues+1 {
		t.Errorf("%d end reason series, want at most %d", n, maxEnumValues+1)
	}
	// The documented end reasons take their places first.
	want := float64(10 + len(endReasons))
	if got := h.value(t, "portsip_call_end_reasons_total", "reason", "other"); got != want {
		t.Errorf("other = %v, want %v", got, want)
	}
	if got := h.value(t, "portsip_exporter_dropped_entities_total", "entity", "label_value"); got != want {
		t.Errorf("dropped label values = %v, want %v", got, want)
	}
}

func TestLabelValuesAreBounded(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Limits.LabelLength = 16 })
	long := strings.Repeat("é", 20) // 40 bytes
	h.apply(&wsi.QueueStatus{Header: wsi.Header{EventType: wsi.TypeQueueStatus, TenantID: long + "\xff"},
		QueueNumber: long, QueueID: "id", QueueName: "bad\xffutf8 " + long, Agents: []wsi.QueueAgent{{Extension: "sip:" + long + "@x", State: "READY"}}})
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "quirk" {
					continue // the exporter's own values, not the PBX's
				}
				if len(l.GetValue()) > 16 || !utf8.ValidString(l.GetValue()) {
					t.Errorf("%s: label %s=%q not bounded", mf.GetName(), l.GetName(), l.GetValue())
				}
				seen++
			}
		}
	}
	if got := h.value(t, "portsip_queue_info", "queue", strings.Repeat("é", 8)); got != 1 {
		t.Errorf("queue_info = %v", got)
	}
	if seen == 0 {
		t.Fatal("no labels gathered")
	}
}

func TestNormalizeEnum(t *testing.T) {
	for in, want := range map[string]string{
		"QUEUE_CALL": "queue_call", "Not Ready": "not_ready", "Wrap Up": "wrap_up", " -READY- ": "ready",
		"ON_ACLL": "on_acll", "a  b": "a_b", "Ünïcode": "n_code", strings.Repeat("ab ", 20): "ab_ab_ab_ab_ab_ab_ab_ab_ab_ab_ab",
	} {
		if got := normalizeEnum(in); got != want {
			t.Errorf("normalizeEnum(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"sip:101@test.io": "101", "101": "101", "SIPS:7@x": "7", "102@test.io": "102", "": "",
	} {
		if got := extensionNumber(in); got != want {
			t.Errorf("extensionNumber(%q) = %q, want %q", in, got, want)
		}
	}
	if got := trunkName("122:883631675865563136"); got != "122" {
		t.Errorf("trunkName = %q", got)
	}
	e := newEnums().direction
	for in, want := range map[string]string{"EXT": "internal", "in2out": "inbound_outbound", "": "unknown", "inbound": "inbound"} {
		if got, q, _ := e.value(in); got != want || q != noQuirk {
			t.Errorf("direction %q = %q (quirk %d), want %q", in, got, q, want)
		}
	}
}

// Spellings of other server versions become the documented value, never a
// label value of their own, each counted as the quirk it is.
func TestSpellingsOfOtherVersions(t *testing.T) {
	vs, po, er := wsi.QuirkVersionSpelling, wsi.QuirkPresenceOnline, wsi.QuirkEndReasonSpelling
	e := newEnums()
	for _, tc := range []struct {
		enum  *enum
		raw   string
		want  string
		quirk wsi.Quirk
	}{
		{e.callState, "ON_CALL", "on_call", noQuirk},
		{e.callState, "RINGING", "ringing", noQuirk},
		{e.callState, "", "idle", noQuirk},
		{e.callState, "On Call", "on_call", vs},
		{e.callState, "Ringing", "ringing", vs},
		{e.callState, "on_call", "on_call", vs},
		{e.callState, "none", "idle", vs},
		{e.callState, "true", "on_call", vs},
		{e.callState, "false", "idle", vs},
		{e.callState, "ON_ACLL", "on_call", vs},
		{e.presence, "AVAILABLE", "available", noQuirk},
		{e.presence, "ONLINE", "available", po},
		{e.presence, "Online", "available", po},
		{e.presence, "BREAK", "break", noQuirk},
		{e.presence, "Do Not Disturb", "do_not_disturb", vs},
		{e.presence, "away", "away", vs},
		{e.agentState, "NOT_READY", "not_ready", noQuirk},
		{e.agentState, "Not Ready", "not_ready", vs},
		{e.agentState, "Queue Call", "queue_call", vs},
		{e.agentState, "ready", "ready", vs},
		{e.agentState, "Logout", "logged_out", vs},
		{e.agentState, "On Break Now", "on_break_now", noQuirk}, // unknown: passes through
		{e.endReason, "callee_disconnected", "callee_disconnected", noQuirk},
		{e.endReason, "CALLEE_DISCONNECTED", "callee_disconnected", noQuirk},
		{e.endReason, "callee_disconnect", "callee_disconnected", er},
		{e.endReason, "caller_disconnect", "caller_disconnected", er},
		{e.endReason, "blind_transfer_completed", "blind_transfer_complete", er},
		{e.endReason, "canceled", "cancelled", er},
		{e.endReason, "None", "none", noQuirk},
	} {
		// Twice: the second time from the cache of spellings.
		for range 2 {
			if got, q, _ := tc.enum.value(tc.raw); got != tc.want || q != tc.quirk {
				t.Errorf("%q = %q (quirk %d), want %q (quirk %d)", tc.raw, got, q, tc.want, tc.quirk)
			}
		}
	}
}
