package collector

import (
	"fmt"
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

type statsFunc func() wsi.Stats

func (f statsFunc) Stats() wsi.Stats { return f() }

func someStats() wsi.Stats {
	return wsi.Stats{
		Up: true, ConnectionAttempts: 3,
		ConnectionErrors: map[string]uint64{wsi.StageDial: 2},
		InvalidMessages:  map[string]uint64{wsi.ReasonMalformedJSON: 1},
		Ignored:          map[string]uint64{wsi.IgnoredOtherTenant: 4},
		Events:           map[string]uint64{wsi.TypeQueueStatus: 5, wsi.TypeOther: 1, "brand_new": 2},
		LastEvent:        time.Unix(1_700_000_000, 500_000_000),
		Subscriptions:    map[string]bool{wsi.TopicGlobalQueueEvents: true, wsi.TopicGlobalCDREvents: false},
	}
}

// pbx sizes a simulated PBX in state.
type pbx struct {
	tenants, queues, agents, callers, extensions int // queues and extensions in all
}

var largePBX = pbx{tenants: 50, queues: 1000, agents: 12, callers: 5, extensions: 30_000}

var agentStatesOnWire = []string{"READY", "Not Ready", "QUEUE_CALL", "Other Call", "Wrap Up", "BREAK", "LUNCH"}

// load applies the snapshots a PBX of this size pushes on subscribe, and
// a little of every other event type, so that every family has series.
func (p pbx) load(c *Collector, now time.Time) {
	ts := now.Unix()
	tenant := func(i int) string { return fmt.Sprint(880000000000000000 + i) }
	for q := range p.queues {
		t := tenant(q % p.tenants)
		st := &wsi.QueueStatus{Header: wsi.Header{EventType: wsi.TypeQueueStatus, TenantID: t},
			QueueID: fmt.Sprint(770000000000000000 + q), QueueNumber: fmt.Sprint(8000 + q), QueueName: fmt.Sprint("Queue ", q)}
		for a := range p.agents {
			st.Agents = append(st.Agents, wsi.QueueAgent{Extension: fmt.Sprint(100 + a + q%10*p.agents), State: agentStatesOnWire[(a+q)%len(agentStatesOnWire)]})
		}
		for k := range p.callers {
			typ := "normal"
			if k == 0 {
				typ = "callback"
			}
			st.Waiting = append(st.Waiting, wsi.QueueCaller{SessionID: fmt.Sprint("w", q, "-", k), Timestamp: ts - int64(10*k), Type: typ})
		}
		c.HandleEvent(st)
		c.HandleEvent(&wsi.QueueCallerStatus{Header: wsi.Header{EventType: wsi.TypeQueueCallerStatus, TenantID: t}, QueueID: st.QueueID,
			Callers: []wsi.QueueCaller{{SessionID: fmt.Sprint("w", q, "-1"), Reason: "agent_answered", Timestamp: ts + 5}}})
		c.HandleEvent(&wsi.QueueSLABreached{Header: wsi.Header{EventType: wsi.TypeQueueSLABreached, TenantID: t}, QueueID: st.QueueID, SLATimeSecs: 20})
		c.HandleEvent(&wsi.QueueManagement{Header: wsi.Header{EventType: wsi.TypeQueueUpdated, TenantID: t}, QueueNumber: st.QueueNumber, QueueName: "renamed"})
	}
	presences := []string{"ONLINE", "AVAILABLE", "AWAY", "LUNCH", "DO_NOT_DISTURB"}
	calls := []string{"", "ON_CALL", "RINGING"}
	perTenant := p.extensions / p.tenants
	for ti := range p.tenants {
		t := tenant(ti)
		st := &wsi.ExtensionStatus{Header: wsi.Header{EventType: wsi.TypeExtensionStatus, TenantID: t}}
		for e := range perTenant {
			st.Status = append(st.Status, wsi.ExtensionState{Extension: fmt.Sprintf("sip:%d@t%d.example.com", 1000+e, ti),
				Online: e%4 != 0, Presence: presences[e%len(presences)], CallStatus: calls[e%len(calls)]})
		}
		c.HandleEvent(st)
		c.HandleEvent(&wsi.ExtensionManagement{Header: wsi.Header{EventType: wsi.TypeExtensionCreated, TenantID: t}, ExtensionNumber: "99999"})
		for k, dir := range []string{"ext", "in", "out", "in2out"} {
			sid := fmt.Sprint("call", ti, "-", k)
			c.HandleEvent(&wsi.CallStart{Header: wsi.Header{EventType: wsi.TypeCallStart, TenantID: t}, SessionID: sid, Direction: dir})
			c.HandleEvent(&wsi.CallStart{Header: wsi.Header{EventType: wsi.TypeCallStart, TenantID: t}, SessionID: sid + "x", Direction: dir})
			c.HandleEvent(&wsi.CallCDR{Header: wsi.Header{EventType: wsi.TypeCallCDR, TenantID: t}, TenantName: fmt.Sprint("Tenant ", ti),
				SessionID: sid, Direction: dir, StartTime: ts, RingTime: ts + 1, AnsweredTime: ts + 6, EndedTime: ts + 100,
				EndedReason: "caller_disconnected", TrunkName: "trunk1:123"})
		}
	}
}

func sessionWith() wsi.Session {
	return wsi.Session{Topics: map[string]bool{wsi.TopicGlobalQueueEvents: true}}
}
