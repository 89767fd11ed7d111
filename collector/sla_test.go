package collector

import (
	"strconv"
	"testing"
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

func breach(id string, secs int64) *wsi.QueueSLABreached {
	return &wsi.QueueSLABreached{Header: hdr(wsi.TypeQueueSLABreached), QueueID: id, SLATimeSecs: secs}
}

// Every live queue has its SLA time in force: the default until the PBX
// sends the queue's own with a breach.
func TestSLAThresholdOfEveryQueue(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.DefaultSLATime = 30 * time.Second })
	h.apply(queueStatus("8001", "Q1", nil), queueStatus("8002", "Q2", nil), breach("Q2", 45))
	h.expect(t, `
portsip_queue_sla_threshold_seconds{`+q8001+`} 30
portsip_queue_sla_threshold_seconds{queue="8002",tenant_id="676398719834259456"} 45
`, "portsip_queue_sla_threshold_seconds")

	// Without a configured default: 20 s.
	h = newHarness(t)
	h.apply(queueStatus("8001", "Q1", nil))
	h.expect(t, `portsip_queue_sla_threshold_seconds{`+q8001+`} 20`, "portsip_queue_sla_threshold_seconds")
}

// Answered callers whose wait was within the SLA time in force when they
// were answered (a wait equal to it included); abandoned callers never.
func TestAnsweredWithinSLA(t *testing.T) {
	h := newHarness(t)
	ts := h.clock.Unix(0)
	h.apply(queueStatus("8001", "Q1", nil))
	answer := func(s string, wait int64, reason string) {
		h.apply(callers("Q1", callerEv(s, "enqueue", ts)))
		h.apply(callers("Q1", callerEv(s, reason, ts+wait)))
	}
	answer("a", 10, "agent_answered") // within the default 20 s
	answer("b", 20, "agent_answered") // exactly at it
	answer("c", 25, "agent_answered") // beyond
	answer("d", 5, "hangup")          // abandoned: never
	h.expect(t, `portsip_queue_answered_within_sla_total{`+q8001+`} 2`, "portsip_queue_answered_within_sla_total")
	h.apply(breach("Q1", 30))
	answer("e", 25, "agent_answered") // within the queue's own 30 s
	answer("f", 31, "agent_answered")
	h.expect(t, `
portsip_queue_answered_within_sla_total{`+q8001+`} 3
portsip_queue_sla_threshold_seconds{`+q8001+`} 30
`, "portsip_queue_answered_within_sla_total", "portsip_queue_sla_threshold_seconds")
	// A counter: it stays while the session is down.
	h.SessionDown(nil)
	h.expect(t, `portsip_queue_answered_within_sla_total{`+q8001+`} 3`, "portsip_queue_answered_within_sla_total")
}

// A queue's answered_within_sla series exists, at 0, from its first event,
// so rate() sees its first answered caller.
func TestAnsweredWithinSLAStartsAtZero(t *testing.T) {
	h := newHarness(t)
	h.apply(agentsEv("Q7", nil, ag("101", "READY")))
	h.expect(t, `portsip_queue_answered_within_sla_total{queue="id:Q7",tenant_id="676398719834259456"} 0`,
		"portsip_queue_answered_within_sla_total")
}

// When each agent entered its state, on our clock: the PBX's time of the
// change corrected by the clock offset (here the PBX is 120 s behind),
// else when the change arrived. A state repeated keeps its time.
func TestAgentStateChangedTimestamp(t *testing.T) {
	h := newHarness(t)
	// A fresh event tells the offset: 120 s.
	h.apply(&wsi.ExtensionCall{Header: at(wsi.TypeExtensionCall, h.clock.t), Extension: "999", Time: h.clock.Unix(-120)})
	snap := queueStatus("8001", "Q1", nil, ag("101", "READY"), ag("102", "QUEUE_CALL"))
	snap.Agents[1].Timestamp = h.clock.Unix(-120 - 300) // on the call for 5 minutes
	snap.Header.Received = h.clock.t
	h.apply(snap)
	start := float64(h.clock.t.Unix())
	h.expect(t, `
portsip_queue_agent_state_changed_timestamp_seconds{agent="101",`+q8001+`} `+ftoa(start)+`
portsip_queue_agent_state_changed_timestamp_seconds{agent="102",`+q8001+`} `+ftoa(start-300)+`
`, "portsip_queue_agent_state_changed_timestamp_seconds")

	h.clock.Advance(10 * time.Second)
	h.apply(&wsi.QueueAgentStatus{Header: at(wsi.TypeQueueAgentStatus, h.clock.t), QueueID: "Q1",
		Updated: []wsi.QueueAgent{{Extension: "101", State: "QUEUE_CALL"}, {Extension: "102", State: "QUEUE_CALL"}}})
	h.clock.Advance(10 * time.Second)
	// extension_agent_status carries its time: 3 s before it arrived.
	h.apply(&wsi.ExtensionAgentStatus{Header: at(wsi.TypeExtensionAgentStatus, h.clock.t), Extension: "sip:102@x",
		Time: h.clock.Unix(-120 - 3), AgentStatus: []wsi.AgentQueueState{{QueueNumber: "8001", Status: "WRAP_UP"}}})
	h.expect(t, `
portsip_queue_agent_state_changed_timestamp_seconds{agent="101",`+q8001+`} `+ftoa(start+10)+`
portsip_queue_agent_state_changed_timestamp_seconds{agent="102",`+q8001+`} `+ftoa(start+17)+`
`, "portsip_queue_agent_state_changed_timestamp_seconds")

	// A state gauge: gone while the session is down, and with the switch off.
	h.SessionDown(nil)
	if n := h.series(t, "portsip_queue_agent_state_changed_timestamp_seconds"); n != 0 {
		t.Errorf("%d series while down", n)
	}
	h = newHarness(t, func(c *Config) { c.AgentState = false })
	h.apply(queueStatus("8001", "Q1", nil, ag("101", "READY")))
	if n := h.series(t, "portsip_queue_agent_state_changed_timestamp_seconds"); n != 0 {
		t.Errorf("%d series with --no-collector.agent-state", n)
	}
}

func ftoa(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
