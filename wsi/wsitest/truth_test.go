package wsitest

import (
	"encoding/json"
	"maps"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// wireTally is what a subscriber to everything can count from the frames
// of the default reading.
type wireTally struct {
	enqueued map[string]int64                // session -> enqueue timestamp
	left     map[string]map[string]Durations // queue id -> reason -> waits
	calls    map[CallKey]int
	talk     map[string]Durations
}

func tally(t *testing.T, frames [][]byte) wireTally {
	t.Helper()
	w := wireTally{enqueued: map[string]int64{}, left: map[string]map[string]Durations{}, calls: map[CallKey]int{}, talk: map[string]Durations{}}
	for _, f := range frames {
		var m struct {
			EventType      string `json:"event_type"`
			QueueID        string `json:"queue_id"`
			UpdatedCallers []struct {
				SessionID string `json:"session_id"`
				Reason    string
				Timestamp string
			} `json:"updated_callers"`
			WaitingList []struct {
				SessionID string `json:"session_id"`
				Timestamp string
			} `json:"waiting_list"`
			Direction    string          `json:"direction"`
			CallStatus   string          `json:"call_status"`
			TalkDuration json.RawMessage `json:"talk_duration"` // a number in call_cdr, a string elsewhere
		}
		if err := json.Unmarshal(f, &m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		num := func(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
		switch m.EventType {
		case "queue_status":
			for _, c := range m.WaitingList {
				w.enqueued[c.SessionID] = num(c.Timestamp)
			}
		case "queue_caller_status":
			for _, c := range m.UpdatedCallers {
				if c.Reason == "enqueue" {
					w.enqueued[c.SessionID] = num(c.Timestamp)
					continue
				}
				if w.left[m.QueueID] == nil {
					w.left[m.QueueID] = map[string]Durations{}
				}
				d := w.left[m.QueueID][c.Reason]
				d.add(time.Duration(num(c.Timestamp)-w.enqueued[c.SessionID]) * time.Second)
				w.left[m.QueueID][c.Reason] = d
			}
		case "call_cdr":
			k := CallKey{directions[m.Direction], m.CallStatus}
			if k.Direction == "" {
				k.Direction = m.Direction
			}
			w.calls[k]++
			if m.CallStatus == "answered" {
				d := w.talk[k.Direction]
				d.add(time.Duration(num(string(m.TalkDuration))) * time.Second)
				w.talk[k.Direction] = d
			}
		}
	}
	return w
}

// closeEnough: the wire has whole seconds, so each of n durations may be
// a second off.
func closeEnough(wire, truth Durations) bool {
	diff := wire.Sum - truth.Sum
	return wire.Count == truth.Count && diff <= time.Duration(wire.Count)*time.Second && -diff <= time.Duration(wire.Count)*time.Second
}

// Without quirks the wire tells the truth: the truth is kept apart from
// the frames, and this checks it against them.
func TestTruthMatchesTheWireWithoutQuirks(t *testing.T) {
	s := NewUnstartedServer()
	tr := NewTraffic(s, TrafficConfig{Seed: 5, Start: trafficStart})
	var frames [][]byte
	tr.Tap(func(_ time.Time, f []byte) { frames = append(frames, f) })
	for now := trafficStart; now.Before(trafficStart.Add(10 * time.Minute)); {
		now = now.Add(time.Second)
		tr.Step(now)
	}
	w := tally(t, frames)
	for _, id := range tr.TenantIDs() {
		for i, q := range s.Queues(id) {
			truth := s.QueueTruth(id, q.Number)
			for reason, outcome := range outcomes {
				if !closeEnough(w.left[q.ID][reason], truth.Left[outcome]) {
					t.Errorf("queue %s %s: wire %+v, truth %+v", q.Number, outcome, w.left[q.ID][reason], truth.Left[outcome])
				}
			}
			if i == 0 && truth.Left["answered"].Count < 20 {
				t.Errorf("queue %s: %d answered in 10 minutes", q.Number, truth.Left["answered"].Count)
			}
		}
	}
	// Calls per tenant: the two tenants spell directions differently, so
	// the sum over tenants is the wire's.
	sum := map[CallKey]int{}
	talk := map[string]Durations{}
	for _, id := range tr.TenantIDs() {
		c := s.CallTruth(id)
		for k, n := range c.Ended {
			sum[k] += n
		}
		for d, x := range c.Talk {
			y := talk[d]
			y.Count += x.Count
			y.Sum += x.Sum
			talk[d] = y
		}
	}
	if !reflect.DeepEqual(sum, w.calls) {
		t.Errorf("calls: wire %v, truth %v", w.calls, sum)
	}
	for d := range talk {
		if !closeEnough(w.talk[d], talk[d]) {
			t.Errorf("talk %s: wire %+v, truth %+v", d, w.talk[d], talk[d])
		}
	}
}

// Quirks change what is sent, never what happens: the same seed gives the
// same truth about queues and calls with every quirk on.
func TestQuirksChangeTheWireNotTheTruth(t *testing.T) {
	type run struct {
		s      *Server
		t      *Traffic
		frames int
		push   map[string]int // the most push-only extensions seen, by tenant
	}
	start := func(q Quirks) *run {
		s := NewUnstartedServer()
		tr := NewTraffic(s, TrafficConfig{Seed: 9, Start: trafficStart, Quirks: q})
		r := &run{s: s, t: tr, push: map[string]int{}}
		tr.Tap(func(time.Time, []byte) { r.frames++ })
		for now := trafficStart; now.Before(trafficStart.Add(5 * time.Minute)); {
			now = now.Add(time.Second)
			tr.Step(now)
			for _, id := range tr.TenantIDs() {
				r.push[id] = max(r.push[id], s.ExtensionTruth(id).PushOnline)
			}
		}
		return r
	}
	plain, quirky := start(Quirks{}), start(AllQuirks())
	if quirky.frames <= plain.frames {
		t.Errorf("%d frames with every quirk, %d without: want more (duplicates, updates)", quirky.frames, plain.frames)
	}
	for _, id := range plain.t.TenantIDs() {
		for _, q := range plain.s.Queues(id) {
			if strings.HasPrefix(q.Name, "Campaign") {
				continue // with NewQueueIDOnly it gets a caller
			}
			a, b := plain.s.QueueTruth(id, q.Number), quirky.s.QueueTruth(id, q.Number)
			for _, w := range [][]WaitingCaller{a.Waiting, b.Waiting} {
				for i := range w {
					w[i].SessionID = "" // ids are drawn from one sequence with the campaign's
				}
			}
			if !reflect.DeepEqual(a, b) {
				t.Errorf("queue %s: truth without quirks %+v, with %+v", q.Number, a, b)
			}
		}
		if a, b := plain.s.CallTruth(id), quirky.s.CallTruth(id); !reflect.DeepEqual(a, b) {
			t.Errorf("tenant %s calls: truth without quirks %+v, with %+v", id, a, b)
		}
		a, b := plain.s.ExtensionTruth(id), quirky.s.ExtensionTruth(id)
		if quirky.push[id] == 0 || plain.push[id] != 0 {
			t.Errorf("tenant %s: at most %d push-only extensions with Quirks.PushOnly, %d without", id, quirky.push[id], plain.push[id])
		}
		if a.Known != b.Known || a.Registered != b.Registered || !maps.Equal(a.ByCallState, b.ByCallState) {
			t.Errorf("tenant %s extensions: truth without quirks %+v, with %+v", id, a, b)
		}
	}
}
