package collector

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// Churn at a steady entity count keeps the heap flat: nothing is retained
// per event, and what ends is deleted.
func TestChurnKeepsMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("soak")
	}
	h := newHarness(t)
	pbx{tenants: 5, queues: 50, agents: 10, callers: 3, extensions: 500}.load(h.Collector, h.clock.t)
	const tn = "880000000000000001"
	hd := func(typ string) wsi.Header { return wsi.Header{EventType: typ, TenantID: tn} }
	presences := []string{"AWAY", "ONLINE"}
	i := 0
	churn := func(n int) {
		for range n / 8 {
			i++
			ts := h.clock.Unix(0)
			sid, qid := fmt.Sprint("churn-", i), fmt.Sprint(770000000000000000+1+5*(i%10))
			ext := fmt.Sprintf("sip:%d@t1.example.com", 1000+i%100)
			h.apply(
				&wsi.QueueCallerStatus{Header: hd(wsi.TypeQueueCallerStatus), QueueID: qid,
					Callers: []wsi.QueueCaller{{SessionID: sid, Reason: "enqueue", Timestamp: ts}}},
				&wsi.QueueAgentStatus{Header: hd(wsi.TypeQueueAgentStatus), QueueID: qid,
					Updated: []wsi.QueueAgent{{Extension: fmt.Sprint(100 + i%10), State: agentStatesOnWire[i%len(agentStatesOnWire)]}}},
				&wsi.QueueCallerStatus{Header: hd(wsi.TypeQueueCallerStatus), QueueID: qid,
					Callers: []wsi.QueueCaller{{SessionID: sid, Reason: []string{"agent_answered", "hangup"}[i%2], Timestamp: ts + int64(i%90)}}},
				&wsi.CallStart{Header: hd(wsi.TypeCallStart), SessionID: sid, Direction: "in"},
				&wsi.ExtensionStatus{Header: hd(wsi.TypeExtensionStatus), Status: []wsi.ExtensionState{{Extension: ext, Online: i%2 == 0}}},
				&wsi.ExtensionPresence{Header: hd(wsi.TypeExtensionPresence), Extension: ext, Presence: presences[i%2]},
				&wsi.ExtensionCall{Header: hd(wsi.TypeExtensionCall), Extension: ext, CallStatus: "ON_CALL"},
				&wsi.CallCDR{Header: hd(wsi.TypeCallCDR), SessionID: sid, Direction: "in", AnsweredTime: ts, EndedTime: ts + int64(i%600),
					EndedReason: "caller_disconnected", TrunkName: "t:1"},
			)
			h.clock.Advance(time.Second)
		}
	}
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	churn(200_000) // reach steady state: maps at their working size
	before := heap()
	churn(400_000)
	after := heap()
	t.Logf("heap %d -> %d bytes over 400,000 events", before, after)
	if after > before+256<<10 {
		t.Errorf("heap grew %d bytes over 400,000 events at a steady entity count", after-before)
	}
	checkBounded(t, h.Collector)
	if h.nCalls != 0 {
		t.Errorf("%d calls still active", h.nCalls)
	}
}
