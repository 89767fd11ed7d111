package wsitest

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The incident does, on the simulated clock, what its timeline says, in
// the truth an exporter is compared with; the session faults act on real
// sessions.
func TestIncidentScenario(t *testing.T) {
	s := NewServer()
	defer s.Close()
	tr := NewTraffic(s, TrafficConfig{Seed: 1, Start: trafficStart, Scenario: Incident})
	acme, globex := tr.TenantIDs()[0], tr.TenantIDs()[1]
	at := func(d time.Duration) time.Time { return trafficStart.Add(d) }
	step := func(to time.Duration, each func(now time.Time)) {
		for now := tr.Now(); now.Before(at(to)); {
			now = now.Add(time.Second)
			tr.Step(now)
			if each != nil {
				each(now)
			}
		}
	}
	reachable := func() int { e := s.ExtensionTruth(globex); return e.Registered + e.PushOnline }
	type mark struct {
		q    QueueTruth
		call CallTruth
	}
	snap := func() mark { return mark{s.QueueTruth(acme, "8001"), s.CallTruth(globex)} }

	step(incidentStart, nil)
	before, reachBefore := snap(), reachable()

	// The incident's trouble, second by second.
	var noReady, longestNoReady, oldest time.Duration
	lowest := reachBefore
	step(incidentRecovery-time.Second, func(now time.Time) {
		q := s.QueueTruth(acme, "8002")
		if q.Agents["ready"] == 0 && q.WaitingKind("normal") > 0 {
			noReady += time.Second
			longestNoReady = max(longestNoReady, noReady)
		} else {
			noReady = 0
		}
		oldest = max(oldest, q.OldestWait(now))
		if now.After(at(incidentOutage)) {
			lowest = min(lowest, reachable())
		}
	})
	during := snap()
	if longestNoReady < 5*time.Minute {
		t.Errorf("queue 8002 had callers and no ready agent for %s at most, want minutes", longestNoReady)
	}
	if oldest < 6*time.Minute {
		t.Errorf("queue 8002's oldest wait reached %s, want well over 5 minutes", oldest)
	}
	count := func(m mark, o string) int { return m.q.Left[o].Count }
	answered := count(during, "answered") - count(before, "answered")
	within := during.q.AnsweredWithinSLA - before.q.AnsweredWithinSLA
	abandoned := count(during, "abandoned") - count(before, "abandoned")
	var leavers int
	for o := range during.q.Left {
		leavers += count(during, o) - count(before, o)
	}
	if sl := float64(within) / float64(answered+abandoned); answered < 10 || sl > 0.6 {
		t.Errorf("queue 8001 during the incident: %d of %d answered and abandoned within its SLA, want a service level far below 80%%", within, answered+abandoned)
	}
	if ar := float64(abandoned) / float64(leavers); leavers < 10 || ar < 0.12 {
		t.Errorf("queue 8001 during the incident: %d of %d callers abandoned, want far above 10%%", abandoned, leavers)
	}
	if during.q.SLABreaches-before.q.SLABreaches < 20 {
		t.Errorf("queue 8001: %d SLA breaches during the incident", during.q.SLABreaches-before.q.SLABreaches)
	}
	if float64(lowest) > 0.65*float64(reachBefore) {
		t.Errorf("tenant %s: %d extensions reachable at the lowest, %d before: want 40%% fewer", globex, lowest, reachBefore)
	}
	var calls, failed, trunkCalls, trunkFailed, other int
	for k, n := range during.call.Ended {
		n -= before.call.Ended[k]
		calls += n
		if k.Status == "fail" {
			failed += n
		}
	}
	for k, n := range during.call.Trunks {
		n -= before.call.Trunks[k]
		if k.Trunk != "BT-SIP" { // the first trunk of the second tenant
			other += n // calls that took their trunk before 2:00
			continue
		}
		trunkCalls += n
		if k.Status == "fail" {
			trunkFailed += n
		}
	}
	if f := float64(failed) / float64(calls); calls < 50 || f < 0.25 {
		t.Errorf("tenant %s: %d of %d calls failed during the incident, want far above 20%%", globex, failed, calls)
	}
	if other > trunkCalls/10 {
		t.Errorf("%d calls through the other trunk while BT-SIP carries all", other)
	}
	// A third fail at the trunk, a few more for their own reasons.
	if f := float64(trunkFailed) / float64(trunkCalls); f < 0.3 || f > 0.5 {
		t.Errorf("trunk BT-SIP: %d of %d calls failed, want a third and a few", trunkFailed, trunkCalls)
	}

	// A session open at the recovery is dropped.
	c := dial(t, s)
	u, p := tr.Credentials()
	c.auth(u, p, "")
	step(incidentRecovery+time.Second, nil)
	// Agents busy on a call come back after it.
	if got := reachable(); got < reachBefore-4 {
		t.Errorf("tenant %s: %d extensions reachable after the recovery, %d before", globex, got, reachBefore)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.conn.ReadMessage(); err == nil {
		t.Error("the session survived the first drop")
	}
	step(incidentRecovery+time.Minute, nil)
	if q := s.QueueTruth(acme, "8002"); q.Agents["queue_call"]+q.Agents["wrap_up"]+q.Agents["ready"] == 0 {
		t.Errorf("queue 8002 a minute after the recovery: agents %v, want them back at work", q.Agents)
	}

	step(incidentRefusal+time.Second, nil)
	c = dial(t, s)
	c.auth(u, p, "")
	c.send(sub([]string{"global_cdr_events"}, "tenants", globex))
	c.expectReply("subscribe", -1, "permission denied: global_cdr_events")

	step(incidentDown+time.Second, nil)
	if conn, _, err := websocket.DefaultDialer.Dial(s.URL, nil); err == nil {
		conn.Close()
		t.Error("the PBX answers while it is down")
	}
	step(incidentOver+time.Second, nil)
	c = dial(t, s)
	c.auth(u, p, "")
	c.send(sub([]string{"global_cdr_events"}, "tenants", globex))
	c.expectReply("subscribe", 0, "")
}

// A Tap's subscriber learns of the session faults, and gets the snapshots
// of its next subscribe after a drop and after the PBX is back.
func TestIncidentTapSessions(t *testing.T) {
	tr := NewTraffic(NewUnstartedServer(), TrafficConfig{Seed: 1, Start: trafficStart, Scenario: Incident})
	var got []string
	afterFault := false
	tr.Tap(func(_ time.Time, frame []byte) {
		if afterFault {
			got = append(got, "then "+string(frame[:len(`{"event_type":"queue_status"`)]))
			afterFault = false
		}
	})
	tr.TapSessions(func(at time.Time, f SessionFault) {
		got = append(got, fmt.Sprintf("%s %s %v", at.Sub(trafficStart), f.Kind, f.Refused))
		afterFault = f.Kind != FaultStop
	})
	for now := trafficStart; now.Before(trafficStart.Add(30 * time.Minute)); {
		now = now.Add(time.Second)
		tr.Step(now)
	}
	snap := `then {"event_type":"queue_status"`
	want := []string{"15m0s drop []", snap, "15m45s drop []", snap, "16m30s drop []", snap, "17m15s drop []", snap,
		"18m0s drop [global_cdr_events]", snap, "23m30s stop [global_cdr_events]", "26m30s resume []", snap}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
