package wsitest

import (
	"math"
	"time"
)

// Scenario is a script played over the traffic.
type Scenario string

const (
	// Calm is the traffic alone: busy hours, no incident.
	Calm Scenario = "calm"
	// Incident is an afternoon that goes wrong, on the simulated clock
	// from TrafficConfig.Start:
	//
	//	 2:00  every agent of the last queue of the first tenant goes not
	//	       ready, and stays so while callers keep arriving (and wait,
	//	       patiently); the first queue of the first tenant gets three
	//	       times its callers while half its agents are at lunch: waits
	//	       pass its SLA time, callers abandon; the first trunk of the
	//	       last tenant carries all its external calls and fails every
	//	       third of them
	//	 3:00  40 % of the last tenant's reachable extensions (registered
	//	       or push-reachable) drop off and stay off
	//	15:00  queues, extensions and trunk recover; the PBX drops every
	//	       session, and again at 15:45, 16:30 and 17:15
	//	18:00  the system administrator is refused global_cdr_events from
	//	       now on, and the sessions are dropped so that it resubscribes
	//	23:30  the PBX goes down (Stop)
	//	26:30  it comes back (Resume) with every topic granted; the traffic
	//	       is calm from here on
	//
	// With a default TrafficConfig the queues are 8001 and 8002 of tenant
	// 883634229655633920 (Acme Retail), the extensions and trunk those of
	// tenant 794493068765036544 (Globex Health).
	Incident Scenario = "incident"
)

// The incident's timeline, from TrafficConfig.Start.
const (
	incidentStart    = 2 * time.Minute
	incidentOutage   = 3 * time.Minute
	incidentRecovery = 15 * time.Minute
	incidentFlapGap  = 45 * time.Second
	incidentRefusal  = 18 * time.Minute
	incidentDown     = 23*time.Minute + 30*time.Second
	incidentOver     = 26*time.Minute + 30*time.Second
)

// incident is what the scenario changed, to undo it.
type incident struct {
	queues []*simQueue // the queues with held agents, and their profiles
	saved  []queueProfile
	tenant *simTenant // registrations and trunk
	down   []*simExt
	pushed []*simExt // mobile users whose push was lost
}

func (t *Traffic) scheduleIncident() {
	first, last := t.tenants[0], t.tenants[len(t.tenants)-1]
	inc := &incident{tenant: last}
	t.after(incidentStart, func() {
		overload := first.queues[0]
		inc.save(overload)
		for i, a := range overload.agents {
			if i%2 == 1 {
				t.hold(a, "LUNCH")
			}
		}
		t.arrivals(overload, overload.interArrival/2, incidentRecovery)
		if n := len(first.queues); n > 1 {
			q := first.queues[n-1]
			inc.save(q)
			q.patience, q.maxWait = 20*time.Minute, 20*time.Minute
			for _, a := range q.agents {
				t.hold(a, "NOT_READY")
			}
			t.arrivals(q, q.interArrival, incidentRecovery)
		}
		last.failTrunk = last.trunks[0]
	})
	t.after(incidentOutage, func() { t.dropRegistrations(inc) })
	t.after(incidentRecovery, func() { t.recover(inc) })
	for i := range 4 {
		t.after(incidentRecovery+time.Duration(i)*incidentFlapGap, func() { t.fault(FaultDrop) })
	}
	t.after(incidentRefusal, func() {
		t.refused = []string{"global_cdr_events"}
		t.fault(FaultDrop)
	})
	t.after(incidentDown, func() { t.fault(FaultStop) })
	t.after(incidentOver, func() {
		t.refused = nil
		t.fault(FaultResume)
	})
}

// SessionFault is what a scenario did to the PBX's sessions.
type SessionFault struct {
	Kind string // FaultDrop, FaultStop or FaultResume
	// Refused are the topics the system administrator is refused from
	// now on.
	Refused []string
}

// Kinds of SessionFault.
const (
	FaultDrop   = "drop"   // every session dropped (DropSessions); the PBX takes new ones
	FaultStop   = "stop"   // the PBX went down (Stop)
	FaultResume = "resume" // the PBX is back (Resume)
)

// TapSessions makes fn see, with the simulated time, each fault a
// scenario does to the PBX's sessions. Tap's subscriber stands for a
// session that subscribes again at once: after a drop or a resume it gets
// the snapshots of that subscribe, right after fn returns. fn runs on the
// goroutine stepping the traffic, which waits for it.
func (t *Traffic) TapSessions(fn func(at time.Time, f SessionFault)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.onFault = fn
}

func (t *Traffic) fault(kind string) {
	s := t.s
	s.SetDenied(adminUser, t.refused...)
	switch kind {
	case FaultDrop:
		s.DropSessions()
	case FaultStop:
		s.Stop()
	case FaultResume:
		_ = s.Resume() // fails only on a server never started: a test stepping the traffic without one
	}
	if t.onFault != nil {
		t.onFault(t.Now(), SessionFault{Kind: kind, Refused: t.refused})
	}
	if kind != FaultStop {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.tap != nil {
			s.snapshotsLocked(func(v any) { s.tap(mustMarshal(v)) })
		}
	}
}

func (inc *incident) save(q *simQueue) {
	inc.queues = append(inc.queues, q)
	inc.saved = append(inc.saved, q.queueProfile)
}

// hold keeps an agent in state until the incident is over: now if it is
// ready, else as soon as it would be.
func (t *Traffic) hold(a *simAgent, state string) {
	a.held = state
	if a.state == "READY" && !a.ext.busy {
		t.setAgent(a, state)
	}
}

// arrivals adds a Poisson stream of callers of the given mean to a queue
// until end (from the traffic's start).
func (t *Traffic) arrivals(q *simQueue, mean, end time.Duration) {
	mean = time.Duration(float64(mean) / t.cfg.Load)
	until := t.cfg.Start.Add(end)
	var next func()
	next = func() {
		if !t.Now().Before(until) {
			return
		}
		t.arrive(q, t.Now(), false)
		t.dispatch(q)
		t.after(t.exp(mean), next)
	}
	t.after(t.exp(mean), next)
}

// dropRegistrations takes 40 % of a tenant's reachable extensions
// (registered, or reachable by push) off, extensions that are not agents
// first, and keeps them off.
func (t *Traffic) dropRegistrations(inc *incident) {
	st := inc.tenant
	st.outage = true
	var reachable, cands []*simExt
	for _, e := range st.exts {
		if e.online || e.mobile {
			reachable = append(reachable, e)
		}
	}
	// Idle phones first; a phone on a call loses it (the model lets the
	// call end as planned).
	for _, agents := range []bool{false, true} {
		for _, busy := range []bool{false, true} {
			for _, e := range reachable {
				if (e.agent != nil) == agents && e.busy == busy {
					cands = append(cands, e)
				}
			}
		}
	}
	for _, e := range cands[:int(math.Ceil(0.4*float64(len(reachable))))] {
		e.down = true
		inc.down = append(inc.down, e)
		if e.mobile {
			inc.pushed = append(inc.pushed, e)
			t.s.SetPushOnline(st.id, e.number, false)
		}
		if e.agent != nil {
			t.hold(e.agent, "OFFLINE")
			if !e.busy && e.agent.state != "OFFLINE" {
				t.setAgent(e.agent, "OFFLINE")
			}
		}
		if e.online {
			e.online = false
			t.s.SetExtensionOnline(st.id, e.number, false)
		}
	}
}

// recover ends the incident's queue, extension and trunk trouble.
func (t *Traffic) recover(inc *incident) {
	st := inc.tenant
	st.outage, st.failTrunk = false, ""
	for _, e := range inc.down {
		e.down = false
		if e.agent == nil {
			e.online = true
			t.s.SetExtensionOnline(st.id, e.number, true)
		}
	}
	for _, e := range inc.pushed {
		t.s.SetPushOnline(st.id, e.number, true)
	}
	for _, e := range inc.down {
		if a := e.agent; a != nil {
			a.held = ""
			t.agentReady(a) // registers it again
		}
	}
	for i, q := range inc.queues {
		q.queueProfile = inc.saved[i]
		q.patience = 0
		for _, a := range q.agents {
			if a.held != "" {
				a.held = ""
				t.agentReady(a)
			}
		}
	}
}

// trunk is the trunk of a tenant's next external call: any of its trunks,
// or the failing one during an incident.
func (t *Traffic) trunk(st *simTenant) string {
	if st.failTrunk != "" {
		return st.failTrunk
	}
	return pick(t, st.trunks)
}

// trunkFails counts a call through a failing trunk and reports whether it
// fails: every third does.
func (t *Traffic) trunkFails(st *simTenant) bool {
	if st.failTrunk == "" {
		return false
	}
	st.trunkCalls++
	return st.trunkCalls%3 == 0
}

// failArrival ends an inbound call at the trunk before it reaches the
// queue.
func (t *Traffic) failArrival(c *simCaller) {
	c.gone = true
	st := c.q.t
	t.after(t.between(0, 2*time.Second), func() {
		t.endCall(st, c.call, c.arrived, time.Time{}, "fail", pick(t, []int{502, 503, 408}), "None", st.failTrunk, []CallTarget{})
	})
}

// Tap makes fn see what a system administrator subscribed to every global
// topic of every tenant receives, without a network: at once the
// snapshots of that subscribe, then every frame the PBX publishes, each
// with the simulated time it was sent. fn runs on the goroutine stepping
// the traffic, which waits for it. It is how a test runs the traffic on
// its own clock, and how Frames records it.
func (t *Traffic) Tap(fn func(at time.Time, frame []byte)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snapshotsLocked(func(v any) { fn(t.Now(), mustMarshal(v)) })
	s.tap = func(frame []byte) { fn(t.Now(), frame) }
}

// snapshotsLocked emits the snapshots of a subscribe to every global topic
// of every tenant.
func (s *Server) snapshotsLocked(emit func(any)) {
	for _, id := range s.tenantIDs {
		for _, ti := range []topicInfo{{famQueue, true}, {famExt, true}, {famQueueMgmt, true}} {
			s.snapshotLocked(emit, ti, []string{id}, nil, nil)
		}
	}
}
