package collector

import (
	"testing"
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// The vendor's samples (wsi-pubsub.md), with their JSON mistakes fixed and
// the "a/b" placeholders replaced by one value each, decoded by wsi.Decode.
var vendorFrames = []string{
	`{"event_type":"queue_status","tenant_id":"676398719834259456","queue_id":"677046776364007424",
	  "queue_number":"8001","queue_name":"Sales Department",
	  "waiting_list":[{"position":"2","session_id":"6763987198342","caller_number":"123456",
	     "caller_name":"Thomas Young","timestamp":"1676206249","type":"normal"}],
	  "agents":[{"state":"QUEUE_CALL","agent_extension_number":"101","session_id":"677046776364007",
	     "caller_number":"123456","caller_name":"Thomas Young","timestamp":"1676206249"}]}`,
	`{"event_type":"queue_agent_status","queue_id":"677046776364007424","tenant_id":"676398719834259456",
	  "updated_agents":[{"state":"QUEUE_CALL","agent_extension_number":"101","session_id":"677046776364007",
	     "caller_number":"123456","caller_name":"Thomas Young","timestamp":"1676206249"}],
	  "removed_agents":[{"agent_extension_number":"102"}]}`,
	`{"event_type":"queue_sla_breached","queue_id":"677046776364007424","tenant_id":"676398719834259456",
	  "caller":"00431334081002","total_callers_breached":6,"sla_time_secs":90,"waiting_callers":100,
	  "timestamp":"1676206249"}`,
	`{"event_type":"queue_caller_status","tenant_id":"676398719834259456","queue_id":"677046776364007424",
	  "updated_callers":[{"position":"2","session_id":"6763987198342","caller_number":"123456",
	     "reason":"agent_answered","timestamp":"1676206279","type":"normal"}]}`,
}

func TestVendorSamplesGiveDocumentedValues(t *testing.T) {
	h := newHarness(t)
	h.clock.t = time.Unix(1676206249+25, 0)
	for _, f := range vendorFrames[:3] {
		ev, _, err := wsi.Decode([]byte(f))
		if err != nil {
			t.Fatalf("decode %.40s: %v", f, err)
		}
		h.HandleEvent(ev)
	}
	const q = `queue="8001",tenant_id="676398719834259456"`
	h.expect(t, `
portsip_queue_info{`+q+`,queue_id="677046776364007424",queue_name="Sales Department"} 1
portsip_queue_waiting_callers{`+q+`,kind="normal"} 1
portsip_queue_waiting_callers{`+q+`,kind="callback"} 0
portsip_queue_oldest_wait_seconds{`+q+`} 25
portsip_queue_agent_state{agent="101",`+q+`,state="queue_call"} 1
portsip_queue_sla_breaches_total{`+q+`} 1
portsip_queue_sla_threshold_seconds{`+q+`} 90
`+agentsLines(q, map[string]int{"queue_call": 1}),
		"portsip_queue_info", "portsip_queue_waiting_callers", "portsip_queue_oldest_wait_seconds",
		"portsip_queue_agent_state", "portsip_queue_sla_breaches_total", "portsip_queue_sla_threshold_seconds",
		"portsip_queue_agents")

	ev, _, err := wsi.Decode([]byte(vendorFrames[3]))
	if err != nil {
		t.Fatal(err)
	}
	h.HandleEvent(ev)
	// Enqueued per the snapshot's waiting_list at ...249, answered at ...279.
	h.expect(t, callersTotal(q, 0, 1, 0, 0, 0)+
		waitLines(q, map[string][]float64{"answered": {30}}),
		"portsip_queue_callers_total", "portsip_queue_wait_seconds")
}
