package wsitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

var trafficStart = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// recording is a Traffic on an unstarted server whose every frame
// published after the set-up is kept, as a subscriber to everything sees
// them.
type recording struct {
	s      *Server
	t      *Traffic
	frames [][]byte
}

func record(seed int64) *recording {
	r := &recording{s: NewUnstartedServer()}
	r.t = NewTraffic(r.s, TrafficConfig{Seed: seed, Start: trafficStart})
	// From the start on: the set-up is what the snapshots tell.
	r.s.tap = func(f []byte) { r.frames = append(r.frames, f) }
	return r
}

// run steps the model every tick for d of simulated time.
func (r *recording) run(d, tick time.Duration) {
	for now := r.t.Now(); now.Before(trafficStart.Add(d)); {
		now = now.Add(tick)
		r.t.Step(now)
	}
}

// kinds names each frame by event type and the value that matters for
// the metrics: reason, agent state, call status.
func kinds(t *testing.T, frames [][]byte) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, f := range frames {
		var m struct {
			EventType      string `json:"event_type"`
			CallStatus     string `json:"call_status"`
			Direction      string `json:"direction"`
			UpdatedCallers []struct {
				Reason string `json:"reason"`
			} `json:"updated_callers"`
			UpdatedAgents []struct {
				State string `json:"state"`
			} `json:"updated_agents"`
			RemovedAgents []struct{} `json:"removed_agents"`
		}
		if err := json.Unmarshal(f, &m); err != nil {
			t.Fatalf("frame %s: %v", f, err)
		}
		got[m.EventType]++
		switch m.EventType {
		case "queue_caller_status":
			for _, c := range m.UpdatedCallers {
				got["reason "+c.Reason]++
			}
		case "queue_agent_status":
			for _, a := range m.UpdatedAgents {
				got["agent "+a.State]++
			}
			if len(m.RemovedAgents) > 0 {
				got["agent removed"]++
			}
		case "call_cdr":
			got["call "+m.CallStatus]++
			got["direction "+m.Direction]++
		}
	}
	return got
}

func TestTrafficIsDeterministic(t *testing.T) {
	a, b, c := record(7), record(7), record(8)
	a.run(2*time.Minute, 100*time.Millisecond)
	b.run(2*time.Minute, time.Second) // the tick does not matter, only the time
	c.run(2*time.Minute, 100*time.Millisecond)
	if len(a.frames) < 500 {
		t.Fatalf("only %d frames in two minutes", len(a.frames))
	}
	if len(a.frames) != len(b.frames) {
		t.Fatalf("same seed: %d frames stepping by 100ms, %d by 1s", len(a.frames), len(b.frames))
	}
	for i := range a.frames {
		if !bytes.Equal(a.frames[i], b.frames[i]) {
			t.Fatalf("same seed, frame %d differs:\n%s\n%s", i, a.frames[i], b.frames[i])
		}
	}
	if fmt.Sprint(kinds(t, a.frames)) == fmt.Sprint(kinds(t, c.frames)) && len(a.frames) == len(c.frames) {
		t.Error("seeds 7 and 8 gave the same traffic")
	}
}

// What the collector needs to have every metric family filled.
var requiredKinds = []string{
	"queue_caller_status", "queue_agent_status", "queue_sla_breached", "queue_updated",
	"reason enqueue", "reason agent_answered", "reason overflow", "reason hangup", "reason callback",
	"agent READY", "agent QUEUE_CALL", "agent WRAP_UP", "agent NOT_READY", "agent OTHER_CALL",
	"queue_created", "extension_status", "extension_presence", "extension_call", "extension_agent_status", "extension_updated",
	"call_start", "call_update_info", "call_cdr", "call answered", "call noanswer", "call fail",
}

func TestTrafficProducesEveryEventTypeWithin30s(t *testing.T) {
	for seed := int64(1); seed <= 50; seed++ {
		r := record(seed)
		r.run(30*time.Second, 100*time.Millisecond)
		got := kinds(t, r.frames)
		for _, k := range requiredKinds {
			if got[k] == 0 {
				t.Errorf("seed %d: no %q in 30 s (%v)", seed, k, got)
			}
		}
		// And per tenant: each tenant's dashboards fill too.
		for _, id := range r.t.TenantIDs() {
			n := 0
			for _, f := range r.frames {
				if bytes.Contains(f, []byte(`"reason":"overflow"`)) && bytes.Contains(f, []byte(id)) {
					n++
				}
			}
			if n == 0 {
				t.Errorf("seed %d: tenant %s had no overflow", seed, id)
			}
		}
	}
}

func TestTrafficEventRate(t *testing.T) {
	r := record(1)
	r.run(10*time.Minute, time.Second)
	got := kinds(t, r.frames)
	perSec := float64(len(r.frames)) / 600
	// A few events per second per queue: lively dashboards, not a flood.
	if perSec < 4 || perSec > 60 {
		t.Errorf("%.1f events/s over 4 queues, want a few per queue (%v)", perSec, got)
	}
	for _, k := range []string{"agent BREAK", "agent removed", "direction in2out", "direction inbound_outbound",
		"direction ext", "direction internal", "direction out", "direction outbound", "direction in", "direction inbound",
		"extension_created", "extension_destroyed", "queue_destroy",
		"cdr_target_add", "cdr_target_ringing", "cdr_target_answer", "cdr_target_noanswer", "cdr_target_fail", "cdr_target_end"} {
		if got[k] == 0 {
			t.Errorf("no %q in 10 minutes", k)
		}
	}
	t.Logf("%.1f events/s; %v", perSec, got)
}

func TestTrafficStaysBounded(t *testing.T) {
	// No tap: with no subscriber the server does not even marshal, so
	// hours of traffic take a moment.
	tr := NewTraffic(NewUnstartedServer(), TrafficConfig{Seed: 3, Start: trafficStart})
	s := tr.s
	for h := 1; h <= 4; h++ {
		for now := tr.Now(); now.Before(trafficStart.Add(time.Duration(h) * time.Hour)); {
			now = now.Add(time.Second)
			tr.Step(now)
		}
		calls := 0
		for _, id := range tr.TenantIDs() {
			for _, q := range s.Queues(id) {
				if n := s.Waiting(id, q.Number); n > maxWaiting+5 {
					t.Errorf("hour %d: %d waiting in %s", h, n, q.Number)
				}
			}
			if n := len(s.Extensions(id)); n > 60 {
				t.Errorf("hour %d: %d extensions in %s", h, n, id)
			}
			calls += s.ActiveCalls(id)
		}
		if calls > 150 {
			t.Errorf("hour %d: %d calls started and never ended", h, calls)
		}
		if n := tr.events.Len(); n > 1000 {
			t.Errorf("hour %d: %d scheduled events", h, n)
		}
		t.Logf("hour %d: %d open calls, %d scheduled", h, calls, tr.events.Len())
	}
}

func TestFrames(t *testing.T) {
	cfg := TrafficConfig{Seed: 1, Start: trafficStart}
	a, b := Frames(cfg, 2000), Frames(cfg, 2000)
	if len(a) != 2000 {
		t.Fatalf("got %d frames", len(a))
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
	var first []string
	for _, f := range a[:10] {
		var m struct {
			EventType string `json:"event_type"`
		}
		_ = json.Unmarshal(f, &m)
		first = append(first, m.EventType)
	}
	snap := []string{"queue_status", "queue_status", "extension_status", "queue_created", "queue_created"}
	if want := append(snap, snap...); fmt.Sprint(first) != fmt.Sprint(want) {
		t.Errorf("first frames %v, want the snapshots of both tenants %v", first, want)
	}
	got := kinds(t, a[10:])
	for _, k := range requiredKinds {
		if got[k] == 0 {
			t.Errorf("no %q in the frames", k)
		}
	}
}

func TestTrafficRunServesSubscribers(t *testing.T) {
	s := NewServer()
	defer s.Close()
	tr := NewTraffic(s, TrafficConfig{Seed: 1, Tick: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- tr.Run(ctx) }()

	c := dial(t, s)
	user, pass := tr.Credentials()
	c.auth(user, pass, "")
	c.send(sub([]string{"global_queue_events", "global_extension_events", "global_cdr_events",
		"global_queue_management_events", "global_extension_management_events"}, "tenants", tr.TenantIDs()...))
	c.expectReply("subscribe", 0, "")
	seen := map[string]bool{}
	for !seen["queue_caller_status"] || !seen["call_start"] {
		seen[c.next()["event_type"].(string)] = true
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	// A tenant manager sees the tenant's topics too.
	id := tr.TenantIDs()[1]
	user, pass, domain := tr.TenantCredentials(id)
	m := dial(t, s)
	m.auth(user, pass, domain)
	m.send(sub([]string{"queue_management_events", "cdr_events"}, ""))
	m.expectReply("subscribe", 0, "")
	if e := m.nextEvent("queue_created"); e["tenant_id"] != id {
		t.Fatalf("got %v", e)
	}
}

// Large PBXs (for scrape benchmarks) keep numbers distinct.
func TestTrafficLargeConfig(t *testing.T) {
	s := NewUnstartedServer()
	tr := NewTraffic(s, TrafficConfig{Seed: 1, Start: trafficStart, Tenants: 6, QueuesPerTenant: 12, Extensions: 150})
	if n := len(tr.TenantIDs()); n != 6 {
		t.Fatalf("%d tenants", n)
	}
	ids := map[string]bool{}
	for _, id := range tr.TenantIDs() {
		if ids[id] {
			t.Fatalf("tenant id %s twice", id)
		}
		ids[id] = true
		qs := map[string]bool{}
		for _, q := range s.Queues(id) {
			if qs[q.Number] {
				t.Errorf("tenant %s: queue %s twice", id, q.Number)
			}
			qs[q.Number] = true
		}
		exts := map[string]bool{}
		for _, e := range s.Extensions(id) {
			if exts[e] {
				t.Errorf("tenant %s: extension %s twice", id, e)
			}
			exts[e] = true
		}
		if len(qs) != 12 || len(exts) < 150+12*3 {
			t.Errorf("tenant %s: %d queues, %d extensions", id, len(qs), len(exts))
		}
	}
	tr.Step(trafficStart.Add(5 * time.Minute)) // and it runs
}
