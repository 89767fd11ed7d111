// Package benchpbx builds the state of a PBX of a given size from events,
// for the benchmarks and memory tests of the collector and of the whole
// exporter: both measure the same PBX.
package benchpbx

import (
	"fmt"
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// Size sizes a simulated PBX in state.
type Size struct {
	Tenants, Queues, Agents, Callers, Extensions int // queues and extensions in all
}

// Large is the large PBX of BENCHMARKS.md: 1,000 queues of 12 agents and 5
// waiting callers, 30,000 extensions, 50 tenants.
var Large = Size{Tenants: 50, Queues: 1000, Agents: 12, Callers: 5, Extensions: 30_000}

// Times scales the queues and the extensions (agents and callers are per
// queue): Large.Times(3) is three times the large PBX.
func (p Size) Times(n int) Size {
	p.Queues *= n
	p.Extensions *= n
	return p
}

// AgentStatesOnWire are agent states as PBXs of several versions spell them.
var AgentStatesOnWire = []string{"READY", "Not Ready", "QUEUE_CALL", "Other Call", "Wrap Up", "BREAK", "LUNCH"}

// Load applies the snapshots a PBX of this size pushes on subscribe, and
// a little of every other event type, so that every family has series.
func (p Size) Load(h interface{ HandleEvent(wsi.Event) }, now time.Time) {
	ts := now.Unix()
	tenant := func(i int) string { return fmt.Sprint(880000000000000000 + i) }
	for q := range p.Queues {
		t := tenant(q % p.Tenants)
		st := &wsi.QueueStatus{Header: wsi.Header{EventType: wsi.TypeQueueStatus, TenantID: t},
			QueueID: fmt.Sprint(770000000000000000 + q), QueueNumber: fmt.Sprint(8000 + q), QueueName: fmt.Sprint("Queue ", q)}
		for a := range p.Agents {
			st.Agents = append(st.Agents, wsi.QueueAgent{Extension: fmt.Sprint(100 + a + q%10*p.Agents), State: AgentStatesOnWire[(a+q)%len(AgentStatesOnWire)]})
		}
		for k := range p.Callers {
			typ := "normal"
			if k == 0 {
				typ = "callback"
			}
			st.Waiting = append(st.Waiting, wsi.QueueCaller{SessionID: fmt.Sprint("w", q, "-", k), Timestamp: ts - int64(10*k), Type: typ})
		}
		h.HandleEvent(st)
		h.HandleEvent(&wsi.QueueCallerStatus{Header: wsi.Header{EventType: wsi.TypeQueueCallerStatus, TenantID: t}, QueueID: st.QueueID,
			Callers: []wsi.QueueCaller{{SessionID: fmt.Sprint("w", q, "-1"), Reason: "agent_answered", Timestamp: ts + 5}}})
		h.HandleEvent(&wsi.QueueSLABreached{Header: wsi.Header{EventType: wsi.TypeQueueSLABreached, TenantID: t}, QueueID: st.QueueID, SLATimeSecs: 20})
		h.HandleEvent(&wsi.QueueManagement{Header: wsi.Header{EventType: wsi.TypeQueueUpdated, TenantID: t}, QueueNumber: st.QueueNumber, QueueName: "renamed"})
	}
	presences := []string{"ONLINE", "AVAILABLE", "AWAY", "LUNCH", "DO_NOT_DISTURB"}
	calls := []string{"", "ON_CALL", "RINGING"}
	perTenant := p.Extensions / p.Tenants
	for ti := range p.Tenants {
		t := tenant(ti)
		st := &wsi.ExtensionStatus{Header: wsi.Header{EventType: wsi.TypeExtensionStatus, TenantID: t}}
		for e := range perTenant {
			st.Status = append(st.Status, wsi.ExtensionState{Extension: fmt.Sprintf("sip:%d@t%d.example.com", 1000+e, ti),
				Online: e%4 != 0, Presence: presences[e%len(presences)], CallStatus: calls[e%len(calls)]})
		}
		h.HandleEvent(st)
		h.HandleEvent(&wsi.ExtensionManagement{Header: wsi.Header{EventType: wsi.TypeExtensionCreated, TenantID: t}, ExtensionNumber: "99999"})
		for k, dir := range []string{"ext", "in", "out", "in2out"} {
			sid := fmt.Sprint("call", ti, "-", k)
			h.HandleEvent(&wsi.CallStart{Header: wsi.Header{EventType: wsi.TypeCallStart, TenantID: t}, SessionID: sid, Direction: dir})
			h.HandleEvent(&wsi.CallStart{Header: wsi.Header{EventType: wsi.TypeCallStart, TenantID: t}, SessionID: sid + "x", Direction: dir})
			h.HandleEvent(&wsi.CallCDR{Header: wsi.Header{EventType: wsi.TypeCallCDR, TenantID: t}, TenantName: fmt.Sprint("Tenant ", ti),
				SessionID: sid, Direction: dir, RingTime: ts + 1, AnsweredTime: ts + 6, EndedTime: ts + 100,
				EndedReason: "caller_disconnected", TrunkName: "trunk1:123"})
		}
	}
}
