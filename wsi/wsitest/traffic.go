package wsitest

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// TrafficConfig shapes the simulated contact centre. Zero values take the
// defaults: 2 tenants with a busy and a quiet queue each, about 10 events
// a second. Large PBXs for benchmarks (say 50 tenants of 20 queues) work
// too.
type TrafficConfig struct {
	// Seed makes the traffic reproducible: the same seed and the same
	// sequence of Step times give the same events.
	Seed int64
	// Tenants (default 2) and QueuesPerTenant (default 2). Queues cycle
	// through profiles: busy, quiet, medium, quiet.
	Tenants         int
	QueuesPerTenant int
	// Extensions per tenant that are not agents (default 16).
	Extensions int
	// Load multiplies every queue's arrival rate (default 1).
	Load float64
	// Start is the simulated time at NewTraffic (default time.Now()).
	Start time.Time
	// Tick is how often Run steps the model (default 100ms).
	Tick time.Duration
	// Quirks are the readings the PBX speaks (Server.SetQuirks); PushOnly
	// and the title-case Spelling also shape the traffic.
	Quirks Quirks
	// Scenario is played over the traffic: Calm (the default) or Incident.
	Scenario Scenario
}

// Traffic is a contact centre driving a Server: callers arrive in queues
// (Poisson), wait, are answered by agents, abandon, overflow or schedule
// callbacks; agents go through READY, QUEUE_CALL, WRAP_UP, NOT_READY,
// OTHER_CALL, BREAK and LUNCH; extensions register, drop, change presence
// and make calls with CDRs; queues and extensions are occasionally edited.
//
// It is a discrete-event simulation: Step(now) runs everything scheduled
// up to now, each change at its own simulated time, so the events do not
// depend on how often Step is called. The Server's clock is set to the
// simulated clock.
type Traffic struct {
	s   *Server
	cfg TrafficConfig

	clock atomic.Int64 // simulated now, UNIX nanoseconds; read by the Server's Now

	mu      sync.Mutex // serialises Step
	rng     *rand.Rand
	events  eventQueue
	seq     uint64
	tenants []*simTenant
	tempExt int // temporary extensions created so far
	// A scenario's session faults (scenario.go).
	refused []string // the topics the system administrator is refused
	onFault func(at time.Time, f SessionFault)
}

const (
	adminUser     = "admin"
	demoPassword  = "portsip-demo"
	maxWaiting    = 25               // callers beyond this overflow at once
	callbackLimit = 10 * time.Minute // a callback not served by then is dropped
	patienceMean  = 90 * time.Second
)

type queueProfile struct {
	name         string
	sla, maxWait time.Duration
	interArrival time.Duration // mean
	agents       int
	talkMedian   time.Duration
	firstReady   time.Duration // no agent is ready before this, so the queue builds up at start
}

// Profiles in the order queues take them: a busy queue, a quiet one, ...
var queueProfiles = []queueProfile{
	{"Sales", 20 * time.Second, 90 * time.Second, 3500 * time.Millisecond, 19, 30 * time.Second, 2 * time.Second},
	{"Returns", 60 * time.Second, 150 * time.Second, 30 * time.Second, 5, 45 * time.Second, 25 * time.Second},
	{"Appointments", 30 * time.Second, 180 * time.Second, 6 * time.Second, 14, 40 * time.Second, 2 * time.Second},
	{"Billing", 45 * time.Second, 150 * time.Second, 30 * time.Second, 5, 45 * time.Second, 25 * time.Second},
}

var tenantNames = []struct{ id, name, domain string }{
	{"883634229655633920", "Acme Retail", "acme.example.com"},
	{"794493068765036544", "Globex Health", "globex.example.com"},
	{"806406773714976768", "Initech Travel", "initech.example.com"},
	{"676398719834259456", "Umbrella Energy", "umbrella.example.com"},
}

var (
	firstNames  = []string{"Thomas", "Maria", "Wei", "Aisha", "James", "Sofia", "Lukas", "Yuki", "Omar", "Emma", "Raj", "Olivia", "Carlos", "Ingrid", "Kofi", "Chloe"}
	lastNames   = []string{"Young", "Garcia", "Chen", "Khan", "Smith", "Rossi", "Müller", "Tanaka", "Haddad", "Dubois", "Patel", "Brown", "Silva", "Larsen", "Mensah", "Martin"}
	presences   = []string{"AVAILABLE", "AVAILABLE", "AVAILABLE", "AWAY", "DO_NOT_DISTURB", "BUSINESS_TRIP", "LUNCH"}
	notes       = map[string]string{"AWAY": "back soon", "DO_NOT_DISTURB": "in a meeting", "BUSINESS_TRIP": "travelling", "LUNCH": "lunch"}
	trunkNames  = []string{"Telia", "BT-SIP", "Twilio", "Colt"}
	departments = []string{"Sales", "Support", "Finance", "Operations"}
)

type simTenant struct {
	id, name, domain string
	legacy           bool   // old direction spelling (ext/in/out/in2out)
	available        string // AVAILABLE (v22.2) or ONLINE (v22.3): PBXs send either
	did              string
	trunks           []string
	queues           []*simQueue
	agents           []*simAgent
	exts             []*simExt // all extensions, agents first
	calls            int       // extension calls placed: every third is internal
	temp             *simExt   // a temporary extension while it exists
	tempQueue        string    // a temporary queue's number while it exists
	tempQueues       int       // temporary queues created so far
	// An incident (scenario.go): failTrunk carries every external call and
	// fails every third of them; outage stops registrations flapping.
	failTrunk  string
	trunkCalls int
	outage     bool
}

type simQueue struct {
	t *simTenant
	queueProfile
	number   string
	waiting  []*simCaller // arrival order; callers being connected stay until answered
	agents   []*simAgent
	answered int
	patience time.Duration // mean; 0 is patienceMean
}

type simCaller struct {
	q          *simQueue
	call       Call
	name       string
	number     string
	callback   bool
	arrived    time.Time
	connecting bool // an agent's phone rings for this caller
	scripted   bool // not answered: it is there to leave otherwise at start
	gone       bool
}

type simAgent struct {
	ext     *simExt
	q       *simQueue
	state   string
	since   time.Time // in this state since
	removed bool      // logged out of the queue
	held    string    // an incident keeps the agent in this state
}

type simExt struct {
	number   string
	agent    *simAgent
	online   bool
	presence string
	busy     bool // on or setting up a call
	mobile   bool // reachable by push while not registered (Quirks.PushOnly)
	down     bool // unregistered by an incident until it ends
}

// NewTraffic populates s with tenants, queues, agents, extensions and
// users, replaces its clock with the simulated one, and schedules the
// traffic. s may be started, but should not have other traffic.
func NewTraffic(s *Server, cfg TrafficConfig) *Traffic {
	if cfg.Tenants <= 0 {
		cfg.Tenants = 2
	}
	if cfg.QueuesPerTenant <= 0 {
		cfg.QueuesPerTenant = 2
	}
	if cfg.Extensions <= 0 {
		cfg.Extensions = 16
	}
	if cfg.Load <= 0 {
		cfg.Load = 1
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Now()
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 100 * time.Millisecond
	}
	t := &Traffic{s: s, cfg: cfg, rng: rand.New(rand.NewPCG(uint64(cfg.Seed), 0x9e3779b97f4a7c15))}
	t.clock.Store(cfg.Start.UnixNano())
	s.mu.Lock()
	s.Now = t.Now
	s.mu.Unlock()
	s.SetQuirks(cfg.Quirks)
	s.AddUser(User{Username: adminUser, Password: demoPassword, Role: SystemAdmin})

	t.mu.Lock()
	defer t.mu.Unlock()
	for i := 0; i < cfg.Tenants; i++ {
		t.setUpTenant(i)
	}
	if cfg.Scenario == Incident {
		t.scheduleIncident()
	}
	return t
}

// Credentials are the system administrator's, able to subscribe every
// global topic for every tenant.
func (t *Traffic) Credentials() (username, password string) { return adminUser, demoPassword }

// TenantCredentials are a tenant administrator's: username, password and
// the tenant's domain. Every agent may also authenticate with its
// extension number and the same password.
func (t *Traffic) TenantCredentials(tenantID string) (username, password, domain string) {
	for _, st := range t.tenants {
		if st.id == tenantID {
			return "manager", demoPassword, st.domain
		}
	}
	return "", "", ""
}

// TenantIDs lists the simulated tenants.
func (t *Traffic) TenantIDs() []string {
	ids := make([]string, len(t.tenants))
	for i, st := range t.tenants {
		ids[i] = st.id
	}
	return ids
}

// Now is the simulated clock.
func (t *Traffic) Now() time.Time { return time.Unix(0, t.clock.Load()) }

// Run steps the model with the wall clock every TrafficConfig.Tick until
// ctx is done, then returns nil.
func (t *Traffic) Run(ctx context.Context) error {
	tick := time.NewTicker(t.cfg.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			t.Step(now)
		}
	}
}

// Step runs everything scheduled up to now, in order, and leaves the
// simulated clock at now. A now before the clock does nothing.
func (t *Traffic) Step(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.events) > 0 && !t.events[0].at.After(now) {
		e := heap.Pop(&t.events).(simEvent)
		if e.at.After(t.Now()) {
			t.clock.Store(e.at.UnixNano())
		}
		e.fn()
	}
	if now.After(t.Now()) {
		t.clock.Store(now.UnixNano())
	}
}

// ---- scheduling and chance ----

type simEvent struct {
	at  time.Time
	seq uint64
	fn  func()
}

type eventQueue []simEvent

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(simEvent)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = simEvent{}
	*q = old[:len(old)-1]
	return e
}

// after schedules fn d from the simulated now.
func (t *Traffic) after(d time.Duration, fn func()) {
	t.seq++
	heap.Push(&t.events, simEvent{at: t.Now().Add(d), seq: t.seq, fn: fn})
}

// every runs fn at exponentially distributed intervals of the given mean:
// a Poisson process.
func (t *Traffic) every(mean time.Duration, fn func()) {
	var next func()
	next = func() {
		fn()
		t.after(t.exp(mean), next)
	}
	t.after(t.exp(mean), next)
}

func (t *Traffic) exp(mean time.Duration) time.Duration {
	return time.Duration(t.rng.ExpFloat64() * float64(mean))
}

func (t *Traffic) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(t.rng.Int64N(int64(hi-lo)+1))
}

// lognormal has the given median and a long right tail, as talk times do.
func (t *Traffic) lognormal(median time.Duration) time.Duration {
	return time.Duration(float64(median) * math.Exp(0.6*t.rng.NormFloat64()))
}

func (t *Traffic) chance(p float64) bool { return t.rng.Float64() < p }

func pick[T any](t *Traffic, s []T) T { return s[t.rng.IntN(len(s))] }

func (t *Traffic) person() (number, name string) {
	return fmt.Sprintf("0044207946%04d", t.rng.IntN(10000)), pick(t, firstNames) + " " + pick(t, lastNames)
}

// ---- set-up ----

func (t *Traffic) setUpTenant(i int) {
	s := t.s
	st := &simTenant{legacy: i%2 == 0, available: "ONLINE"}
	if st.legacy {
		st.available = "AVAILABLE"
	}
	if i < len(tenantNames) {
		st.id, st.name, st.domain = tenantNames[i].id, tenantNames[i].name, tenantNames[i].domain
	} else {
		st.id = strconv.FormatInt(900000000000000000+int64(i), 10)
		st.name, st.domain = fmt.Sprintf("Tenant %d", i+1), fmt.Sprintf("tenant%d.example.com", i+1)
	}
	st.did = fmt.Sprintf("08008%02d000", i)
	for j := 0; j < 2; j++ {
		st.trunks = append(st.trunks, trunkNames[(i+j)%len(trunkNames)]+":"+strconv.FormatInt(883631675865563136+int64(10*i+j), 10))
	}
	t.tenants = append(t.tenants, st)
	s.AddTenant(Tenant{ID: st.id, Name: st.name, Domain: st.domain})
	s.AddUser(User{Username: "manager", Password: demoPassword, Role: TenantAdmin, TenantID: st.id})

	ext := 100
	for j := 0; j < t.cfg.QueuesPerTenant; j++ {
		p := queueProfiles[(i*t.cfg.QueuesPerTenant+j)%len(queueProfiles)]
		q := &simQueue{t: st, queueProfile: p, number: strconv.Itoa(8000 + 100*i + j + 1)}
		if j >= len(queueProfiles) {
			q.name = fmt.Sprintf("%s %d", p.name, j/len(queueProfiles)+1)
		}
		st.queues = append(st.queues, q)
		s.AddQueue(st.id, Queue{Number: q.number, Name: q.name, SLASeconds: int(p.sla / time.Second)})
		for k := 0; k < p.agents; k++ {
			ext++
			e := &simExt{number: strconv.Itoa(ext), online: true, presence: st.available}
			a := &simAgent{ext: e, q: q}
			e.agent = a
			q.agents = append(q.agents, a)
			st.agents = append(st.agents, a)
			st.exts = append(st.exts, e)
			first, last := pick(t, firstNames), pick(t, lastNames)
			s.AddExtensionInfo(st.id, Extension{Number: e.number, DisplayName: first + " " + last,
				Username: fmt.Sprintf("%s.%s", first, last), Department: p.name})
			s.AddUser(User{Username: "agent" + e.number, ExtensionNumber: e.number, Password: demoPassword,
				Role: ExtensionUser, TenantID: st.id, Queues: []string{q.number}})
			s.SetExtensionOnline(st.id, e.number, true)
			s.SetPresence(st.id, e.number, e.presence, "")
		}
	}
	first := (ext/100 + 1) * 100 // the next hundred after the agents
	for k := 0; k < t.cfg.Extensions; k++ {
		e := &simExt{number: strconv.Itoa(first + k + 1), online: t.chance(0.75), presence: st.presence(pick(t, presences))}
		st.exts = append(st.exts, e)
		s.AddExtensionInfo(st.id, Extension{Number: e.number, DisplayName: pick(t, firstNames) + " " + pick(t, lastNames),
			Department: pick(t, departments)})
		s.SetPresence(st.id, e.number, e.presence, notes[e.presence])
		if e.online {
			s.SetExtensionOnline(st.id, e.number, true)
		}
		if t.cfg.Quirks.PushOnly && k%3 == 0 {
			e.mobile = true
			s.SetPushOnline(st.id, e.number, true)
		}
	}
	for _, q := range st.queues {
		t.startQueue(q)
	}
	t.startTenant(st)
}

// startQueue puts agents in their opening states and callers who called
// before the start in the queue, and starts the arrivals. A queue opens
// understaffed so that waits, SLA breaches, abandons, callbacks and
// overflows all happen in the first half minute.
func (t *Traffic) startQueue(q *simQueue) {
	st := q.t
	for k, a := range q.agents {
		switch {
		case k < 2 && q.firstReady < 10*time.Second:
			t.setAgent(a, "READY")
		case k == 2:
			// Takes a personal call soon after the start.
			t.setAgent(a, "NOT_READY")
			t.after(t.between(time.Second, 10*time.Second), func() {
				t.setAgent(a, "OTHER_CALL")
				a.ext.busy = true
				t.extCall(st, a.ext, nil, t.between(5*time.Second, 30*time.Second), "answered", func() {
					t.agentIdle(a)
				})
			})
		case k == 3:
			// Back from a break to paperwork, then ready.
			t.setAgent(a, "BREAK")
			t.after(t.between(time.Second, 10*time.Second), func() { t.setAgent(a, "NOT_READY") })
			t.after(q.firstReady+t.between(10*time.Second, 40*time.Second), func() { t.agentReady(a) })
		default:
			state := pick(t, []string{"NOT_READY", "NOT_READY", "BREAK", "LUNCH"})
			t.setAgent(a, state)
			back := q.firstReady + t.between(0, 40*time.Second)
			t.after(back, func() { t.agentReady(a) })
		}
	}

	now := t.Now()
	// Callers already waiting. The first three are scripted to overflow,
	// abandon and ask for a callback early on; agents of a quiet queue are
	// not back before they do.
	n := 3 + int(12*time.Second/q.interArrival)
	for k := 0; k < n; k++ {
		var waited time.Duration
		switch k {
		case 0:
			waited = q.maxWait - t.between(8*time.Second, 20*time.Second)
		default:
			waited = t.between(time.Second, q.sla+10*time.Second)
		}
		c := t.arrive(q, now.Add(-waited), k < 3)
		switch k {
		case 1:
			t.after(t.between(3*time.Second, 15*time.Second), func() { t.abandon(c) })
		case 2:
			t.after(t.between(5*time.Second, 18*time.Second), func() { t.chooseCallback(c) })
		}
	}
	t.every(time.Duration(float64(q.interArrival)/t.cfg.Load), func() {
		t.arrive(q, t.Now(), false)
		t.dispatch(q)
	})
	t.after(0, func() { t.dispatch(q) })
	// Now and then a surge (a campaign, an outage elsewhere) triples the
	// arrivals for a minute or two: long waits and overflows follow.
	t.every(12*time.Minute, func() {
		until := t.Now().Add(t.between(time.Minute, 2*time.Minute))
		var extra func()
		extra = func() {
			if t.Now().After(until) {
				return
			}
			t.arrive(q, t.Now(), false)
			t.dispatch(q)
			t.after(t.exp(time.Duration(float64(q.interArrival)/(2*t.cfg.Load))), extra)
		}
		extra()
	})
}

// startTenant schedules the extension and management traffic. The first
// of each kind of event comes early and at a random time.
func (t *Traffic) startTenant(st *simTenant) {
	// Three calls that end answered, unanswered and failed, then random ones.
	for k, outcome := range []string{"answered", "noanswer", "fail"} {
		t.after(t.between(time.Duration(k)*5*time.Second, time.Duration(k+1)*5*time.Second), func() {
			t.randomCall(st, outcome)
		})
	}
	t.every(6*time.Second, func() {
		outcome := "answered"
		switch r := t.rng.Float64(); {
		case r < 0.08:
			outcome = "fail"
		case r < 0.25:
			outcome = "noanswer"
		}
		t.randomCall(st, outcome)
	})
	t.after(t.between(time.Second, 8*time.Second), func() { t.changePresence(st) })
	t.every(12*time.Second, func() { t.changePresence(st) })
	t.after(t.between(2*time.Second, 10*time.Second), func() { t.flap(st) })
	t.every(15*time.Second, func() { t.flap(st) })
	t.every(time.Minute, func() { t.agentAside(st) })
	t.every(45*time.Second, func() { t.agentOtherCall(st) })
	t.every(3*time.Minute, func() { t.agentLogsOut(st) })

	t.after(t.between(8*time.Second, 20*time.Second), func() { t.editQueue(st) })
	t.every(2*time.Minute, func() { t.editQueue(st) })
	t.after(t.between(10*time.Second, 25*time.Second), func() { t.editExtension(st) })
	t.every(2*time.Minute, func() { t.editExtension(st) })
	t.after(t.between(30*time.Second, 90*time.Second), func() { t.tempExtension(st) })
	t.every(8*time.Minute, func() { t.tempExtension(st) })
	t.after(t.between(10*time.Second, 25*time.Second), func() { t.tempQueue(st) })
	t.every(6*time.Minute, func() { t.tempQueue(st) })
}

// ---- queues ----

func (st *simTenant) dir(d string) string {
	if !st.legacy {
		return d
	}
	switch d {
	case "internal":
		return "ext"
	case "inbound":
		return "in"
	case "outbound":
		return "out"
	case "inbound_outbound":
		return "in2out"
	}
	return d
}

func (st *simTenant) uri(number string) string { return "sip:" + number + "@" + st.domain }

// arrive puts a new caller in the queue. A full queue overflows at once.
// A scripted caller leaves only as its script says (or overflows).
func (t *Traffic) arrive(q *simQueue, at time.Time, scripted bool) *simCaller {
	st := q.t
	number, name := t.person()
	c := &simCaller{q: q, number: number, name: name, arrived: at}
	c.call = t.s.StartCall(st.id, Call{
		Direction: st.dir("inbound"), Caller: number, CallerDisplayName: name,
		Callee: st.uri(q.number), CalleeDisplayName: q.name, DID: st.did,
	})
	if st.failTrunk != "" && t.trunkFails(st) {
		t.failArrival(c)
		return c
	}
	t.s.Enqueue(st.id, q.number, Caller{SessionID: c.call.SessionID, Number: number, Name: name, Since: at})
	q.waiting = append(q.waiting, c)
	if len(q.waiting) > maxWaiting {
		t.overflow(c)
		return c
	}
	// The queue's timers run from the arrival, which may be in the past.
	now := t.Now()
	sinceArrival := now.Sub(at)
	clamp := func(d time.Duration) time.Duration { return max(d-sinceArrival, time.Duration(0)) }
	t.after(clamp(q.sla), func() {
		if !c.gone && !c.connecting {
			t.s.BreachSLA(st.id, q.number, c.number)
		}
	})
	t.after(clamp(q.maxWait), func() { t.overflow(c) })
	if scripted {
		c.scripted = true
		return c
	}
	// Patience is memoryless: a caller who has waited still has the
	// same expected patience left.
	patience := q.patience
	if patience == 0 {
		patience = patienceMean
	}
	t.after(t.exp(patience), func() { t.abandon(c) })
	if t.chance(0.12) {
		t.after(clamp(t.between(25*time.Second, 60*time.Second)), func() { t.chooseCallback(c) })
	}
	return c
}

// leave takes a caller out of the queue with a reason; false if it had
// already left or is being connected to an agent.
func (t *Traffic) leave(c *simCaller, reason string) bool {
	if c.gone || (c.connecting && reason != ReasonAgentAnswered) {
		return false
	}
	c.gone = true
	q := c.q
	for i, x := range q.waiting {
		if x == c {
			q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
			break
		}
	}
	t.s.Dequeue(q.t.id, q.number, c.call.SessionID, reason)
	return true
}

func (t *Traffic) abandon(c *simCaller) {
	if c.callback || !t.leave(c, ReasonHangup) {
		return
	}
	t.endCall(c.q.t, c.call, c.arrived, time.Time{}, "noanswer", 487, "caller_disconnect", "", []CallTarget{
		t.queueTarget(c, nil, time.Time{}),
	})
}

// overflow sends a caller to the queue's overflow destination: an
// external number through a trunk.
func (t *Traffic) overflow(c *simCaller) {
	if c.callback || !t.leave(c, ReasonOverflow) {
		return
	}
	st := c.q.t
	trunk := t.trunk(st)
	forwarded := t.Now()
	ring := t.between(2*time.Second, 10*time.Second)
	talk := t.lognormal(30 * time.Second)
	t.after(ring+talk, func() {
		c.call.Direction = st.dir("inbound_outbound")
		t.endCall(st, c.call, c.arrived, forwarded.Add(ring), "answered", 0, "callee_disconnect", trunk, []CallTarget{
			t.queueTarget(c, nil, time.Time{}),
			{CallType: "normal_call", Caller: c.number, Callee: "00441632960" + c.number[len(c.number)-3:],
				Start: forwarded, Ring: forwarded, Answered: forwarded.Add(ring), Ended: t.Now(),
				Status: "answered", TrunkName: trunk, EndReason: "callee_disconnect"},
		})
	})
}

// chooseCallback: the caller asks to be called back and hangs up; a
// callback entry waits in the queue for an agent.
func (t *Traffic) chooseCallback(c *simCaller) {
	if c.callback || !t.leave(c, ReasonCallback) {
		return
	}
	q, st := c.q, c.q.t
	t.endCall(st, c.call, c.arrived, time.Time{}, "noanswer", 0, "caller_disconnect", "", []CallTarget{
		t.queueTarget(c, nil, time.Time{}),
	})
	cb := &simCaller{q: q, number: c.number, name: c.name, callback: true, arrived: t.Now()}
	cb.call = Call{SessionID: t.s.NewID(), Direction: st.dir("outbound"), Callee: c.number, CalleeDisplayName: c.name}
	t.s.Enqueue(st.id, q.number, Caller{SessionID: cb.call.SessionID, Number: c.number, Name: c.name, Callback: true})
	q.waiting = append(q.waiting, cb)
	t.after(callbackLimit, func() {
		if !cb.connecting {
			t.leave(cb, ReasonHangup) // expired unserved
		}
	})
	t.dispatch(q)
}

// dispatch connects waiting callers (callers on the line first, then
// callbacks) to the ready agents who have waited longest.
func (t *Traffic) dispatch(q *simQueue) {
	for _, callbacks := range []bool{false, true} {
		for _, c := range q.waiting {
			if c.connecting || c.scripted || c.callback != callbacks {
				continue
			}
			a := q.longestReady()
			if a == nil {
				return
			}
			t.connect(a, c)
		}
	}
}

func (q *simQueue) longestReady() *simAgent {
	var best *simAgent
	for _, a := range q.agents {
		if a.state == "READY" && !a.removed && !a.ext.busy && a.ext.online && (best == nil || a.since.Before(best.since)) {
			best = a
		}
	}
	return best
}

// connect rings the agent for a caller (or, for a callback, the agent
// calls the customer) and starts the queue call.
func (t *Traffic) connect(a *simAgent, c *simCaller) {
	st, q := c.q.t, c.q
	c.connecting = true
	a.ext.busy = true
	ringStart := t.Now()
	if c.callback {
		t.s.SetCallStatus(st.id, a.ext.number, "ON_CALL") // the agent dials
		c.call.Caller, c.call.CallerDisplayName = st.uri(a.ext.number), "Callback "+q.name
		c.call = t.s.StartCall(st.id, c.call)
	} else {
		t.s.SetCallStatus(st.id, a.ext.number, "RINGING")
	}
	ring := t.between(2*time.Second, 8*time.Second)
	if c.callback {
		ring = t.between(5*time.Second, 20*time.Second)
	}
	t.after(ring, func() {
		t.leave(c, ReasonAgentAnswered)
		answered := t.Now()
		t.s.SetAgent(st.id, q.number, Agent{Extension: a.ext.number, State: "QUEUE_CALL",
			SessionID: c.call.SessionID, CallerNumber: c.number, CallerName: c.name})
		a.state, a.since = "QUEUE_CALL", answered
		t.s.SetCallStatus(st.id, a.ext.number, "ON_CALL")
		if !c.callback {
			upd := c.call
			upd.Callee, upd.CalleeDisplayName = st.uri(a.ext.number), q.name+" agent "+a.ext.number
			t.s.UpdateCall(st.id, upd)
		}
		talk := t.lognormal(q.talkMedian)
		if q.answered++; q.answered <= 2 {
			talk = t.between(5*time.Second, 15*time.Second) // wrap-up shows early
		}
		t.after(talk, func() {
			reason := "caller_disconnect"
			if t.chance(0.4) {
				reason = "callee_disconnect"
			}
			trunk := t.trunk(st)
			if c.callback {
				t.endCall(st, c.call, ringStart, answered, "answered", 0, reason, trunk, []CallTarget{
					{CallType: "queue_callback_call", Caller: st.uri(a.ext.number), Callee: c.number, Destination: c.number,
						Start: ringStart, Ring: ringStart, Answered: answered, Ended: t.Now(), Status: "answered",
						EndReason: reason, TrunkName: trunk},
				})
			} else {
				t.endCall(st, c.call, c.arrived, answered, "answered", 0, reason, trunk, []CallTarget{
					t.queueTarget(c, a, answered),
				})
			}
			t.s.SetCallStatus(st.id, a.ext.number, "")
			a.ext.busy = false
			t.setAgent(a, "WRAP_UP")
			t.after(t.between(5*time.Second, 20*time.Second), func() { t.afterWork(a) })
		})
	})
}

// queueTarget is the queue leg of a caller's CDR.
func (t *Traffic) queueTarget(c *simCaller, a *simAgent, answered time.Time) CallTarget {
	tg := CallTarget{CallType: "queue_call", Caller: c.number, Callee: c.q.number, Destination: c.q.number,
		Start: c.arrived, Ring: c.arrived, Answered: answered, Ended: t.Now(), Status: "noanswer", EndReason: "caller_disconnect"}
	if a != nil {
		tg.Destination, tg.Status, tg.EndReason = a.ext.number, "answered", "callee_disconnect"
	}
	return tg
}

// endCall publishes a call's CDR. The start of an inbound queue call is
// its arrival; ring is when the caller started waiting.
func (t *Traffic) endCall(st *simTenant, call Call, start, answered time.Time, status string, code int, reason, trunk string, targets []CallTarget) {
	t.s.EndCall(st.id, CDR{
		Call: call, Start: start, Ring: start, Answered: answered, Ended: t.Now(),
		CallStatus: status, StatusCode: code, EndedReason: reason, TrunkName: trunk,
		CallerDomain: st.domain, CalleeDomain: st.domain, Targets: targets,
	})
}

// ---- agents ----

func (t *Traffic) setAgent(a *simAgent, state string) {
	a.state, a.since = state, t.Now()
	t.s.SetAgentState(a.q.t.id, a.q.number, a.ext.number, state)
	// An early v22.3 list has a BREAK presence: a PBX of that time shows
	// an agent's break in the presence too.
	if state == "BREAK" && t.cfg.Quirks.Spelling == SpellingTitleCase && a.ext.presence != "BREAK" {
		a.ext.presence = "BREAK"
		t.s.SetPresence(a.q.t.id, a.ext.number, "BREAK", "")
	}
}

// afterWork: most agents take the next call, some step away.
func (t *Traffic) afterWork(a *simAgent) {
	switch r := t.rng.Float64(); {
	case r < 0.08:
		t.aside(a, "NOT_READY", t.between(20*time.Second, 90*time.Second))
	case r < 0.11:
		t.aside(a, "BREAK", t.between(2*time.Minute, 6*time.Minute))
	default:
		t.agentReady(a)
	}
}

func (t *Traffic) aside(a *simAgent, state string, d time.Duration) {
	t.setAgent(a, state)
	if state == "LUNCH" {
		a.ext.presence = "LUNCH"
		t.s.SetPresence(a.q.t.id, a.ext.number, "LUNCH", notes["LUNCH"])
	}
	t.after(d, func() { t.agentReady(a) })
}

func (t *Traffic) agentReady(a *simAgent) {
	if a.removed || a.ext.busy {
		return
	}
	if a.held != "" {
		if a.state != a.held {
			t.setAgent(a, a.held)
		}
		return
	}
	if st := a.q.t; a.ext.presence != st.available {
		a.ext.presence = st.available
		t.s.SetPresence(st.id, a.ext.number, st.available, "")
	}
	if !a.ext.online {
		a.ext.online = true
		t.s.SetExtensionOnline(a.q.t.id, a.ext.number, true)
	}
	t.setAgent(a, "READY")
	t.dispatch(a.q)
}

// agentIdle is the end of a personal call: back to ready.
func (t *Traffic) agentIdle(a *simAgent) {
	a.ext.busy = false
	t.agentReady(a)
}

func (st *simTenant) readyAgent(t *Traffic) *simAgent {
	var ready []*simAgent
	for _, a := range st.agents {
		if a.state == "READY" && !a.removed && !a.ext.busy {
			ready = append(ready, a)
		}
	}
	if len(ready) == 0 {
		return nil
	}
	return pick(t, ready)
}

func (t *Traffic) agentAside(st *simTenant) {
	switch r := t.rng.Float64(); {
	case r < 0.6:
		t.agentAsideAs(st, "NOT_READY")
	case r < 0.9:
		t.agentAsideAs(st, "BREAK")
	default:
		t.agentAsideAs(st, "LUNCH")
	}
}

// agentAsideAs sends a ready agent away, if one is ready.
func (t *Traffic) agentAsideAs(st *simTenant, state string) {
	a := st.readyAgent(t)
	if a == nil {
		return
	}
	switch state {
	case "NOT_READY":
		t.aside(a, state, t.between(20*time.Second, 2*time.Minute))
	case "BREAK":
		t.aside(a, state, t.between(2*time.Minute, 5*time.Minute))
	default:
		t.aside(a, state, t.between(5*time.Minute, 15*time.Minute))
	}
}

// agentOtherCall puts a ready agent on a personal call, if one is ready.
func (t *Traffic) agentOtherCall(st *simTenant) {
	a := st.readyAgent(t)
	if a == nil {
		return
	}
	t.setAgent(a, "OTHER_CALL")
	a.ext.busy = true
	t.extCall(st, a.ext, nil, t.lognormal(45*time.Second), "answered", func() { t.agentIdle(a) })
}

// agentLogsOut removes an idle agent from its queue for a while.
func (t *Traffic) agentLogsOut(st *simTenant) {
	a := st.readyAgent(t)
	if a == nil {
		return
	}
	a.removed = true
	t.s.RemoveAgent(st.id, a.q.number, a.ext.number)
	t.after(t.between(time.Minute, 3*time.Minute), func() {
		a.removed = false
		t.agentReady(a)
	})
}

// ---- extensions ----

// idleExt is a registered extension that is not an agent and not on a call.
func (st *simTenant) idleExt(t *Traffic, except *simExt) *simExt {
	var idle []*simExt
	for _, e := range st.exts {
		if e.agent == nil && e.online && !e.busy && e != except {
			idle = append(idle, e)
		}
	}
	if len(idle) == 0 {
		return nil
	}
	return pick(t, idle)
}

func (t *Traffic) randomCall(st *simTenant, outcome string) {
	from := st.idleExt(t, nil)
	if from == nil {
		return
	}
	var to *simExt
	if st.calls%3 == 0 {
		to = st.idleExt(t, from) // internal
	}
	st.calls++
	from.busy = true
	if to != nil {
		to.busy = true
	}
	t.extCall(st, from, to, t.lognormal(90*time.Second), outcome, func() {
		from.busy = false
		if to != nil {
			to.busy = false
		}
	})
}

// extCall is a call of ext: internal to other, otherwise outbound or
// inbound through a trunk. done runs when it has ended.
func (t *Traffic) extCall(st *simTenant, ext, other *simExt, talk time.Duration, outcome string, done func()) {
	number, name := t.person()
	trunk := t.trunk(st)
	c := Call{Direction: st.dir("outbound"), Caller: st.uri(ext.number), Callee: number, CalleeDisplayName: name,
		OutboundCallerID: st.did}
	ringing := ext // whose phone rings
	switch {
	case other != nil:
		c.Direction, c.Callee, c.CalleeDisplayName, c.OutboundCallerID = st.dir("internal"), st.uri(other.number), "Extension "+other.number, ""
		ringing, trunk = other, ""
	case t.chance(0.4):
		c.Direction, c.Caller, c.CallerDisplayName, c.Callee, c.CalleeDisplayName = st.dir("inbound"), number, name, st.uri(ext.number), ""
		c.DID, c.OutboundCallerID = st.did, ""
	default:
		ringing = nil
	}
	if trunk != "" && t.trunkFails(st) {
		outcome = "fail"
	}
	c = t.s.StartCall(st.id, c)
	start := t.Now()
	// Newer PBXs (the tenant not on the legacy spelling) also report the
	// call's leg as it progresses.
	leg := CallTarget{ID: t.s.NewID(), CallType: "normal_call", Caller: c.Caller, Callee: c.Callee,
		Destination: c.Callee, DID: c.DID, Start: start, Ring: start, TrunkName: trunk}
	progress := func(typ string) {
		if !st.legacy {
			t.s.PublishCDRTarget(st.id, typ, c, leg)
		}
	}
	progress(TargetAdd)
	progress(TargetRinging)
	if ringing != ext {
		t.s.SetCallStatus(st.id, ext.number, "ON_CALL")
	}
	if ringing != nil {
		t.s.SetCallStatus(st.id, ringing.number, "RINGING")
	}
	code, reason := 0, "caller_disconnect"
	var ring time.Duration
	switch outcome {
	case "fail":
		ring = t.between(0, 2*time.Second)
		code, reason = pick(t, []int{404, 486, 503, 403}), "None"
	case "noanswer":
		ring = t.between(15*time.Second, 30*time.Second)
		code, reason = pick(t, []int{480, 487}), "cancelled"
	default:
		ring = t.between(time.Second, 12*time.Second)
		if t.chance(0.5) {
			reason = "callee_disconnect"
		}
	}
	t.after(ring, func() {
		var answered time.Time
		end := func() {
			t.s.SetCallStatus(st.id, ext.number, "")
			if other != nil {
				t.s.SetCallStatus(st.id, other.number, "")
			}
			leg.Ended, leg.EndReason = t.Now(), reason
			progress(TargetEnd)
			t.s.EndCall(st.id, CDR{Call: c, Start: start, Ring: start, Answered: answered, Ended: t.Now(),
				CallStatus: outcome, StatusCode: code, EndedReason: reason, TrunkName: trunk,
				CallerDomain: st.domain, CalleeDomain: st.domain, Targets: []CallTarget{leg}})
			done()
		}
		leg.StatusCode = code
		switch outcome {
		case "fail":
			leg.Status = "noanswer"
			progress(TargetFail)
		case "noanswer":
			leg.Status = "noanswer"
			progress(TargetNoAnswer)
		default:
			answered = t.Now()
			leg.Status, leg.Answered = "answered", answered
			progress(TargetAnswer)
		}
		if outcome != "answered" {
			end()
			return
		}
		if ringing != nil {
			t.s.SetCallStatus(st.id, ringing.number, "ON_CALL")
		}
		t.after(talk, end)
	})
}

func (t *Traffic) changePresence(st *simTenant) {
	var cands []*simExt
	for _, e := range st.exts {
		if e.agent == nil {
			cands = append(cands, e)
		}
	}
	if len(cands) == 0 {
		return
	}
	e := pick(t, cands)
	i := t.rng.IntN(len(presences))
	if st.presence(presences[i]) == e.presence {
		i = (i + 3) % len(presences)
	}
	p := st.presence(presences[i])
	e.presence = p
	t.s.SetPresence(st.id, e.number, p, notes[p])
}

// presence spells p as the tenant's PBX version does.
func (st *simTenant) presence(p string) string {
	if p == "AVAILABLE" {
		return st.available
	}
	return p
}

// flap registers an offline extension or drops an idle one; a quarter of
// the registered ones stay down, as phones do.
func (t *Traffic) flap(st *simTenant) {
	if st.outage {
		return
	}
	var cands []*simExt
	for _, e := range st.exts {
		if e.agent == nil && !e.busy {
			cands = append(cands, e)
		}
	}
	if len(cands) == 0 {
		return
	}
	e := pick(t, cands)
	e.online = !e.online
	t.s.SetExtensionOnline(st.id, e.number, e.online)
}

func (t *Traffic) editQueue(st *simTenant) {
	t.s.UpdateQueue(st.id, pick(t, st.queues).number)
}

func (t *Traffic) editExtension(st *simTenant) {
	e := pick(t, st.exts)
	t.s.AddExtensionInfo(st.id, Extension{Number: e.number, Department: pick(t, departments)})
}

// tempExtension creates an extension and deletes it a few minutes later.
func (t *Traffic) tempExtension(st *simTenant) {
	if st.temp != nil {
		return
	}
	t.tempExt++
	e := &simExt{number: strconv.Itoa(90000 + t.tempExt%10000)}
	st.temp = e
	t.s.AddExtensionInfo(st.id, Extension{Number: e.number, DisplayName: "Temp " + e.number})
	t.after(t.between(time.Minute, 4*time.Minute), func() {
		t.s.RemoveExtension(st.id, e.number)
		st.temp = nil
	})
}

// Frames returns the first n frames that a system administrator
// subscribed to every global topic of every tenant receives from a
// contact centre simulated with cfg: the snapshots first, then the
// traffic. No network is involved. With the same cfg and a fixed
// cfg.Start the bytes are the same on every call, so benchmarks can feed
// identical input to competing consumers.
func Frames(cfg TrafficConfig, n int) [][]byte {
	t := NewTraffic(NewUnstartedServer(), cfg) // the set-up happens before anyone subscribes
	out := make([][]byte, 0, n)
	t.Tap(func(_ time.Time, frame []byte) {
		if len(out) < n {
			out = append(out, frame)
		}
	})
	for now := t.Now(); len(out) < n; {
		now = now.Add(time.Second)
		t.Step(now)
	}
	return out
}

// tempQueue creates a queue for a short campaign and deletes it a few
// minutes later, as administrators do.
func (t *Traffic) tempQueue(st *simTenant) {
	if st.tempQueue != "" {
		return
	}
	st.tempQueues++
	i := indexOfTenant(t.tenants, st)
	number := strconv.Itoa(8000 + 100*i + 90 + st.tempQueues%10)
	st.tempQueue = number
	t.s.AddQueue(st.id, Queue{Number: number, Name: fmt.Sprintf("Campaign %d", st.tempQueues), SLASeconds: 30})
	if t.cfg.Quirks.NewQueueIDOnly {
		// A caller tries the campaign at once: events that name the new
		// queue by its id alone.
		t.after(5*time.Second, func() {
			if st.tempQueue != number {
				return
			}
			id := t.s.NewID()
			t.s.Enqueue(st.id, number, Caller{SessionID: id, Number: "00442079460000", Name: "Early Bird"})
			t.after(20*time.Second, func() {
				if st.tempQueue == number {
					t.s.Dequeue(st.id, number, id, ReasonHangup)
				}
			})
		})
	}
	t.after(t.between(2*time.Minute, 5*time.Minute), func() {
		t.s.RemoveQueue(st.id, number)
		st.tempQueue = ""
	})
}

func indexOfTenant(ts []*simTenant, st *simTenant) int {
	for i, x := range ts {
		if x == st {
			return i
		}
	}
	return 0
}
