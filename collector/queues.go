package collector

import (
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// Reasons of queue_caller_status and the outcome each leave counts as.
const (
	reasonEnqueue  = "enqueue"
	reasonAnswered = "agent_answered"
	reasonOverflow = "overflow"
	reasonHangup   = "hangup"
	reasonCallback = "callback"
)

var callerReasons = []string{reasonEnqueue, reasonAnswered, reasonOverflow, reasonHangup, reasonCallback}

var outcomes = [...]string{"answered", "abandoned", "overflow", "callback"}

func outcomeOf(reason string) int {
	switch reason {
	case reasonAnswered:
		return 0
	case reasonHangup:
		return 1
	case reasonOverflow:
		return 2
	case reasonCallback:
		return 3
	}
	return -1
}

// queue holds a queue's live state and its counters. Live state is
// dropped on session down and replaced by queue_status; counters stay.
type queue struct {
	t       *tenant
	label   string // the queue number, or "id:<queue_id>" until the number is known
	number  string // "" for an id-derived queue
	id      string
	name    string
	live    bool // touched in this session: its gauges are rendered
	retired bool // destroyed or superseded: the first to be evicted when full

	waiting map[string]caller // by session_id (or caller number)
	agents  map[string]*agent // by extension number
	slaSecs float64
	slaSet  bool

	callers  map[string]uint64 // by reason
	breaches uint64
	seconds  map[string]float64 // agent time accrued, by state
	wait     [len(outcomes)]hist
}

type caller struct {
	enqueued int64 // UNIX seconds, PBX clock
	callback bool
}

type agent struct {
	state string
	since time.Time // our clock
	seen  bool      // scratch for snapshot replacement
}

func (c *Collector) newQueue(t *tenant, label string, now time.Time) *queue {
	if c.nQueues >= c.cfg.Limits.Queues && !c.evictRetired() {
		c.drop(EntityQueue)
		return nil
	}
	q := &queue{
		t:       t,
		label:   c.key(label),
		waiting: make(map[string]caller),
		agents:  make(map[string]*agent),
		callers: make(map[string]uint64),
		seconds: make(map[string]float64),
	}
	// Every outcome starts at 0: a series born at 1 by the queue's first
	// answered or abandoned caller shows rate() no increase.
	for o := range outcomes {
		q.wait[o] = newHist(WaitBuckets, now)
	}
	t.queues[q.label] = q
	c.nQueues++
	return q
}

// evictRetired forgets one destroyed or superseded queue, counters
// included, to make room for a live one.
func (c *Collector) evictRetired() bool {
	for q := range c.retired {
		delete(c.retired, q)
		delete(q.t.queues, q.label)
		if q.id != "" && q.t.byID[q.id] == q {
			delete(q.t.byID, q.id)
		}
		c.nQueues--
		return true
	}
	return false
}

// findQueue looks a queue up by number, else by id, without creating it.
func (c *Collector) findQueue(t *tenant, number, id string) *queue {
	if number != "" {
		return t.queues[c.label(number)]
	}
	return t.byID[c.label(id)]
}

// queueFor returns the queue an event is about, creating it. With a number
// it learns the id -> number mapping; with only an id it falls back to an
// id-derived queue until the number is learnt.
func (c *Collector) queueFor(t *tenant, id, number string, now time.Time) *queue {
	if number != "" {
		return c.queueByNumber(t, number, id, now)
	}
	id = c.label(id)
	if q := t.byID[id]; q != nil {
		return q
	}
	label := c.label("id:" + id)
	q := t.queues[label]
	if q == nil {
		if q = c.newQueue(t, label, now); q == nil {
			return nil
		}
	}
	c.setQueueID(t, q, id)
	return q
}

// setQueueID makes id the queue's id, forgetting the id it had.
func (c *Collector) setQueueID(t *tenant, q *queue, id string) {
	if q.id != id {
		if q.id != "" && t.byID[q.id] == q {
			delete(t.byID, q.id)
		}
		q.id = c.key(id)
	}
	t.byID[q.id] = q
}

func (c *Collector) queueByNumber(t *tenant, number, id string, now time.Time) *queue {
	number = c.label(number)
	q := t.queues[number]
	if q == nil {
		if q = c.newQueue(t, number, now); q == nil {
			return nil
		}
		q.number = q.label
	}
	if id == "" {
		return q
	}
	id = c.label(id)
	if old := t.byID[id]; old != nil && old != q {
		if old.number == "" {
			c.supersede(old, q, now)
		} else {
			old.id = "" // the PBX gave the id to another number
		}
	}
	c.setQueueID(t, q, id)
	return q
}

// supersede moves what an id-derived queue knows into the queue whose
// number was just learnt. Its counters stay under the id-derived label.
func (c *Collector) supersede(old, q *queue, now time.Time) {
	for k, w := range old.waiting {
		if _, ok := q.waiting[k]; !ok && len(q.waiting) < c.cfg.Limits.CallersPerQueue {
			q.waiting[k] = w
		}
	}
	for ext, a := range old.agents {
		if _, ok := q.agents[ext]; !ok {
			c.setAgent(q, ext, a.state, now)
		}
	}
	if old.slaSet && !q.slaSet {
		q.slaSecs, q.slaSet = old.slaSecs, true
	}
	if old.live {
		c.touch(q)
	}
	c.retire(old, now)
}

func (c *Collector) touch(q *queue) {
	q.live = true
	if q.retired {
		q.retired = false
		delete(c.retired, q)
	}
}

func (c *Collector) retire(q *queue, now time.Time) {
	c.clearQueue(q, now)
	q.retired = true
	c.retired[q] = struct{}{}
}

// clearQueue drops a queue's live state, accruing agent time up to now.
func (c *Collector) clearQueue(q *queue, now time.Time) {
	for _, a := range q.agents {
		q.accrue(a, now)
	}
	clear(q.agents)
	clear(q.waiting)
	q.live = false
}

func (c *Collector) setName(q *queue, name string) {
	if name == "" {
		return
	}
	if n := c.label(name); n != q.name {
		q.name = c.key(n)
	}
}

func (q *queue) accrue(a *agent, now time.Time) {
	if d := now.Sub(a.since); d > 0 {
		q.seconds[a.state] += d.Seconds()
	}
	a.since = now
}

func (c *Collector) setAgent(q *queue, ext, state string, now time.Time) {
	if ext == "" {
		return
	}
	if a := q.agents[ext]; a != nil {
		if a.state != state {
			q.accrue(a, now)
			a.state = state
		}
		a.seen = true
	} else {
		if len(q.agents) >= c.cfg.Limits.AgentsPerQueue {
			c.drop(EntityAgent)
			return
		}
		q.agents[c.key(ext)] = &agent{state: state, since: now, seen: true}
	}
	if _, ok := q.seconds[state]; !ok {
		q.seconds[state] = 0
	}
}

func (c *Collector) agentExt(s string) string { return c.label(extensionNumber(s)) }

func callerKey(w *wsi.QueueCaller) string {
	if w.SessionID != "" {
		return w.SessionID
	}
	return w.CallerNumber
}

// addCaller puts a caller on the waiting list. A caller with neither a
// session id nor a number cannot be followed to its leave, so it is not
// tracked (its reason is still counted).
func (c *Collector) addCaller(q *queue, w *wsi.QueueCaller, now time.Time) {
	k := c.label(callerKey(w))
	if k == "" {
		return
	}
	at := w.Timestamp
	if at <= 0 {
		at = now.Unix()
	}
	cb := w.Type == "callback"
	if old, ok := q.waiting[k]; ok {
		old.callback = cb
		q.waiting[k] = old
		return
	}
	if len(q.waiting) >= c.cfg.Limits.CallersPerQueue {
		c.drop(EntityCaller)
		return
	}
	q.waiting[c.key(k)] = caller{enqueued: at, callback: cb}
}

// queueEvent returns the live queue a queue event is about, creating its
// tenant and itself as needed; nil when a limit leaves no room.
func (c *Collector) queueEvent(tenantID, queueID, number string, now time.Time) *queue {
	t := c.tenant(tenantID)
	if t == nil {
		return nil
	}
	q := c.queueFor(t, queueID, number, now)
	if q != nil {
		c.touch(q)
	}
	return q
}

func (c *Collector) queueStatus(e *wsi.QueueStatus, now time.Time) {
	q := c.queueEvent(e.TenantID, e.QueueID, e.QueueNumber, now)
	if q == nil {
		return
	}
	c.setName(q, e.QueueName)
	// A snapshot replaces: callers who left meanwhile are never counted.
	clear(q.waiting)
	for i := range e.Waiting {
		c.addCaller(q, &e.Waiting[i], now)
	}
	for _, a := range q.agents {
		a.seen = false
	}
	for i := range e.Agents {
		a := &e.Agents[i]
		c.setAgent(q, c.agentExt(a.Extension), c.enum(c.enums.agentState, a.State), now)
	}
	for ext, a := range q.agents {
		if !a.seen {
			q.accrue(a, now)
			delete(q.agents, ext)
		}
	}
}

func (c *Collector) queueCallerStatus(e *wsi.QueueCallerStatus, now time.Time) {
	q := c.queueEvent(e.TenantID, e.QueueID, e.QueueNumber, now)
	if q == nil {
		return
	}
	for i := range e.Callers {
		u := &e.Callers[i]
		reason := c.enum(c.enums.callerReason, u.Reason)
		q.callers[reason]++
		if reason == reasonEnqueue {
			c.addCaller(q, u, now)
			continue
		}
		// Any other change takes the caller off the waiting list, even
		// under a reason we do not know: kept there, it would age until the
		// next snapshot and page someone about a wait that ended.
		k := c.label(callerKey(u))
		w, ok := q.waiting[k]
		if !ok {
			continue // enqueued before we were listening: no wait to observe
		}
		delete(q.waiting, k)
		o := outcomeOf(reason)
		if o < 0 {
			continue // no outcome to observe the wait under
		}
		left := u.Timestamp
		if left <= 0 {
			left = now.Unix()
		}
		q.wait[o].observe(float64(max(0, left-w.enqueued)), WaitBuckets)
	}
}

func (c *Collector) queueAgentStatus(e *wsi.QueueAgentStatus, now time.Time) {
	q := c.queueEvent(e.TenantID, e.QueueID, e.QueueNumber, now)
	if q == nil {
		return
	}
	for i := range e.Updated {
		a := &e.Updated[i]
		c.setAgent(q, c.agentExt(a.Extension), c.enum(c.enums.agentState, a.State), now)
	}
	for _, r := range e.Removed {
		ext := c.agentExt(r)
		if a := q.agents[ext]; a != nil {
			q.accrue(a, now)
			delete(q.agents, ext)
		}
	}
}

func (c *Collector) queueSLABreached(e *wsi.QueueSLABreached, now time.Time) {
	q := c.queueEvent(e.TenantID, e.QueueID, e.QueueNumber, now)
	if q == nil {
		return
	}
	q.breaches++
	// An absent sla_time_secs decodes as 0, which no queue has.
	if e.SLATimeSecs > 0 {
		q.slaSecs, q.slaSet = float64(e.SLATimeSecs), true
	}
}

func (c *Collector) queueManagement(e *wsi.QueueManagement, now time.Time) {
	t := c.tenant(e.TenantID)
	if t == nil {
		return
	}
	if len(t.queueMgmt) == 0 {
		// The first is usually the list replayed on subscribe. From then
		// every type is there, at 0, so rate() sees the first real one.
		for _, typ := range queueMgmtTypes {
			t.queueMgmt[typ] = 0
		}
	}
	typ := c.enum(c.enums.mgmtType, e.EventType)
	known := c.findQueue(t, e.QueueNumber, e.QueueID)
	if e.EventType == wsi.TypeQueueDestroy {
		t.queueMgmt[typ]++
		if known != nil {
			c.retire(known, now)
		}
		return
	}
	// The PBX replays its queue list as queue_created on every subscribe:
	// a creation of a queue we already know is that replay, not activity.
	// An update is always a change, even one carrying no more than the
	// number, as the vendor documents it.
	if e.EventType != wsi.TypeQueueCreated || known == nil || known.retired {
		t.queueMgmt[typ]++
	}
	if e.QueueNumber == "" && e.QueueID == "" {
		return
	}
	q := c.queueFor(t, e.QueueID, e.QueueNumber, now)
	if q == nil {
		return
	}
	c.touch(q)
	c.setName(q, e.QueueName)
}
