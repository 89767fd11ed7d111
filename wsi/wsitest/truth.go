package wsitest

import (
	"maps"
	"strings"
	"time"
)

// The truth: what the simulated PBX really did and holds, kept apart from
// what it sends, so that a test compares an exporter's numbers with what
// happened rather than with the simulator's own reading of the wire. Times
// are true times (the Server's Now, never skewed by Quirks.ClockSkew);
// values are in the exporter's vocabulary (lower case; the outcome of a
// leave rather than its reason; both spellings of the available presence
// as "available"). Each thing is counted once, however often its event was
// sent. Events sent with PublishEvent, PublishRaw or SendRaw change nothing
// here.

// Durations is a count of things and the sum of how long they took.
type Durations struct {
	Count int
	Sum   time.Duration
}

func (d *Durations) add(x time.Duration) {
	d.Count++
	d.Sum += x
}

// QueueTruth is the truth about one queue.
type QueueTruth struct {
	ID, Number string
	SLA        time.Duration // the queue's SLA time (Queue.SLASeconds)
	// Left are the callers who left, by outcome (answered, abandoned,
	// overflow, callback; another reason given to Dequeue as is), with
	// their true waits.
	Left map[string]Durations
	// AnsweredWithinSLA counts the answered callers whose true wait was
	// at most the queue's SLA time when they were answered.
	AnsweredWithinSLA int
	// Waiting are the callers waiting now, in queue order.
	Waiting []WaitingCaller
	// Agents counts the queue's agents by state (ready, not_ready,
	// queue_call, ...).
	Agents map[string]int
	// SLABreaches counts the queue_sla_breached events published.
	SLABreaches int
}

// WaitingCaller is a caller waiting in a queue.
type WaitingCaller struct {
	SessionID string
	Kind      string    // normal or callback
	Since     time.Time // when it joined the queue, true time
}

// Outcomes of a leave, by the reason on the wire.
var outcomes = map[string]string{
	ReasonAgentAnswered: "answered",
	ReasonHangup:        "abandoned",
	ReasonOverflow:      "overflow",
	ReasonCallback:      "callback",
}

func (q *queue) recordLeave(reason string, wait time.Duration) {
	o, ok := outcomes[reason]
	if !ok {
		o = reason
	}
	d := q.left[o]
	d.add(wait)
	q.left[o] = d
	if o == "answered" && wait <= time.Duration(q.SLASeconds)*time.Second {
		q.withinSLA++
	}
}

// OldestWait is how long the longest-waiting caller (of either kind) has
// waited at now; 0 when nobody waits.
func (q QueueTruth) OldestWait(now time.Time) time.Duration {
	var oldest time.Duration
	for _, w := range q.Waiting {
		oldest = max(oldest, now.Sub(w.Since))
	}
	return oldest
}

// WaitingKind counts the waiting callers of a kind (normal, callback).
func (q QueueTruth) WaitingKind(kind string) int {
	n := 0
	for _, w := range q.Waiting {
		if w.Kind == kind {
			n++
		}
	}
	return n
}

// QueueTruth returns the truth about a queue. The queue must exist.
func (s *Server) QueueTruth(tenantID, number string) QueueTruth {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, q := s.queueLocked(tenantID, number)
	out := QueueTruth{
		ID: q.ID, Number: q.Number, SLA: time.Duration(q.SLASeconds) * time.Second,
		Left: maps.Clone(q.left), AnsweredWithinSLA: q.withinSLA,
		Agents: make(map[string]int), SLABreaches: q.breached,
	}
	for _, w := range q.waiting {
		kind := "normal"
		if w.Callback {
			kind = "callback"
		}
		out.Waiting = append(out.Waiting, WaitingCaller{SessionID: w.SessionID, Kind: kind, Since: w.since})
	}
	for _, a := range q.agents {
		out.Agents[strings.ToLower(a.State)]++
	}
	return out
}

// ExtensionTruth is the truth about a tenant's extensions.
type ExtensionTruth struct {
	Known      int
	Registered int
	// PushOnline counts the extensions not registered but reachable by
	// push (SetPushOnline).
	PushOnline int
	// ByPresence counts the extensions by presence: available, away,
	// lunch, business_trip, do_not_disturb, ...
	ByPresence map[string]int
	// ByCallState counts the extensions by call state: on_call, ringing,
	// idle.
	ByCallState map[string]int
}

// ExtensionTruth returns the truth about a tenant's extensions.
func (s *Server) ExtensionTruth(tenantID string) ExtensionTruth {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenantLocked(tenantID)
	out := ExtensionTruth{Known: len(t.exts), ByPresence: make(map[string]int), ByCallState: make(map[string]int)}
	for _, e := range t.exts {
		switch {
		case e.online:
			out.Registered++
		case e.pushOnline:
			out.PushOnline++
		}
		out.ByPresence[presenceTruth(e.presence)]++
		out.ByCallState[callStateTruth(e.callStatus)]++
	}
	return out
}

func presenceTruth(p string) string {
	if p == "ONLINE" || p == "AVAILABLE" {
		return "available"
	}
	return strings.ToLower(p)
}

func callStateTruth(s string) string {
	if s == "" {
		return "idle"
	}
	return strings.ToLower(s)
}

// CallTruth is the truth about a tenant's calls.
type CallTruth struct {
	Active int             // started and not ended
	Ended  map[CallKey]int // calls ended, by direction and status
	// Talk is the talk time of answered calls, Ring the ringing time of
	// calls that rang (from ringing until answered or ended), by
	// direction.
	Talk, Ring map[string]Durations
	EndReasons map[string]int // caller_disconnected, callee_disconnected, cancelled, none, ...
	Trunks     map[TrunkKey]int
}

// CallKey is a call's direction (internal, inbound, outbound,
// inbound_outbound, whichever spelling was sent) and status (answered,
// noanswer, fail).
type CallKey struct{ Direction, Status string }

// TrunkKey is CallKey for the calls of one trunk (the name part of
// trunk_name).
type TrunkKey struct{ Trunk, Direction, Status string }

var directions = map[string]string{"ext": "internal", "in": "inbound", "out": "outbound", "in2out": "inbound_outbound"}

func newCallTruth() CallTruth {
	return CallTruth{Ended: make(map[CallKey]int), Talk: make(map[string]Durations), Ring: make(map[string]Durations),
		EndReasons: make(map[string]int), Trunks: make(map[TrunkKey]int)}
}

// record keeps the truth of an ended call.
func (c *CallTruth) record(r CDR) {
	dir := r.Direction
	if d, ok := directions[dir]; ok {
		dir = d
	}
	status := r.CallStatus
	if status == "" {
		status = "noanswer"
		if !r.Answered.IsZero() {
			status = "answered"
		}
	}
	c.Ended[CallKey{dir, status}]++
	if status == "answered" && !r.Answered.IsZero() && r.Ended.After(r.Answered) {
		d := c.Talk[dir]
		d.add(r.Ended.Sub(r.Answered))
		c.Talk[dir] = d
	}
	if !r.Ring.IsZero() {
		until := r.Ended
		if !r.Answered.IsZero() {
			until = r.Answered
		}
		d := c.Ring[dir]
		d.add(max(until.Sub(r.Ring), 0))
		c.Ring[dir] = d
	}
	reason := strings.ToLower(r.EndedReason)
	if reason == "caller_disconnect" || reason == "callee_disconnect" {
		reason += "ed"
	}
	c.EndReasons[reason]++
	if r.TrunkName != "" {
		name, _, _ := strings.Cut(r.TrunkName, ":")
		c.Trunks[TrunkKey{name, dir, status}]++
	}
}

// CallTruth returns the truth about a tenant's calls.
func (s *Server) CallTruth(tenantID string) CallTruth {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenantLocked(tenantID)
	c := t.ended
	return CallTruth{
		Active: len(t.calls), Ended: maps.Clone(c.Ended), Talk: maps.Clone(c.Talk), Ring: maps.Clone(c.Ring),
		EndReasons: maps.Clone(c.EndReasons), Trunks: maps.Clone(c.Trunks),
	}
}
