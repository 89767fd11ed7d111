package collector

import (
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// queue holds a queue's live state and its counters. Live state is
// dropped on session down and replaced by queue_status; counters stay.
type queue struct {
	t       *tenant
	label   string // the queue number, or "id:<queue_id>" until the number is known
	number  string // "" for an id-derived queue
	id      string
	name    string
	live    bool // touched in this session: its gauges are rendered
	retired bool // destroyed: the first to be evicted when full

	waiting map[string]caller // by session_id (or caller number)
	agents  map[string]*agent // by extension number
	slaSecs float64           // the last sla_time_secs the PBX sent
	slaSet  bool

	callers       map[string]uint64 // by reason
	breaches      uint64
	answeredInSLA uint64
	seconds       map[string]float64 // agent time accrued, by state
	wait          [len(outcomes)]hist
	left          recent // the last callers who left: a repeated leave is not counted
}

// slaTime is the queue's SLA time in force, in seconds: the last the PBX
// sent, else the configured default.
func (q *queue) slaTime(def time.Duration) float64 {
	if q.slaSet {
		return q.slaSecs
	}
	return def.Seconds()
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
		left:    recent{size: recentLeavers},
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

// evictRetired forgets one destroyed queue, counters
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
// it learns the id -> number mapping; with only an id it falls back to a
// queue labelled "id:<queue_id>" until the number is learnt.
func (c *Collector) queueFor(t *tenant, id, number string, now time.Time) *queue {
	if number != "" {
		return c.queueByNumber(t, number, id, now)
	}
	id = c.label(id)
	q := t.byID[id]
	if id != "" && (q == nil || q.number == "") {
		c.quirk(wsi.QuirkQueueIDOnly)
	}
	if q != nil {
		return q
	}
	label := c.label("id:" + id)
	q = t.queues[label]
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

// queueByNumber returns the queue of a number and, given its id, merges
// the queue known so far only by that id into it: from then on nothing is
// rendered under the id.
func (c *Collector) queueByNumber(t *tenant, number, id string, now time.Time) *queue {
	number = c.label(number)
	if id != "" {
		id = c.label(id)
	}
	q := t.queues[number]
	old := t.byID[id]
	if id == "" || old == q {
		old = nil
	}
	switch {
	case q == nil && old != nil && old.number == "":
		// The common case: the id-derived queue becomes the numbered one,
		// counters, histograms and all.
		delete(t.queues, old.label)
		old.label = c.key(number)
		old.number = old.label
		t.queues[old.label] = old
		q, old = old, nil
	case q == nil:
		if q = c.newQueue(t, number, now); q == nil {
			return nil
		}
		q.number = q.label
	}
	if old != nil {
		if old.number == "" {
			c.merge(old, q, now)
		} else {
			old.id = "" // the PBX gave the id to another number
		}
	}
	if id != "" {
		c.setQueueID(t, q, id)
	}
	return q
}

// merge moves everything an id-derived queue knows into the queue whose
// number was just learnt, counters and histograms included, and forgets
// the id-derived queue: no count is lost or doubled, and no series of it
// outlives the merge.
func (c *Collector) merge(old, q *queue, now time.Time) {
	for k, w := range old.waiting {
		if _, ok := q.waiting[k]; !ok && len(q.waiting) < c.cfg.Limits.CallersPerQueue {
			q.waiting[k] = w
		}
	}
	for ext, a := range old.agents {
		old.accrue(a, now)
		if _, ok := q.agents[ext]; !ok && len(q.agents) < c.cfg.Limits.AgentsPerQueue {
			q.agents[ext] = a
		}
	}
	if old.slaSet && !q.slaSet {
		q.slaSecs, q.slaSet = old.slaSecs, true
	}
	if q.name == "" {
		q.name = old.name
	}
	for r, n := range old.callers {
		q.callers[r] += n
	}
	for st, v := range old.seconds {
		q.seconds[st] += v
	}
	q.breaches += old.breaches
	q.answeredInSLA += old.answeredInSLA
	for o := range q.wait {
		q.wait[o].merge(&old.wait[o])
	}
	q.left.merge(&old.left)
	for k := range q.waiting {
		q.left.forget(c.hash(k)) // a waiting caller is never one who left
	}
	if old.live {
		c.touch(q)
	}
	t := old.t
	delete(t.queues, old.label)
	if t.byID[old.id] == old {
		delete(t.byID, old.id)
	}
	if old.retired {
		delete(c.retired, old)
	}
	c.nQueues--
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
	arrived := received(&e.Header, now)
	arrival := pbxSeconds(c.clock.pbx(arrived))
	// A snapshot replaces: callers who left meanwhile are never counted.
	clear(q.waiting)
	for i := range e.Waiting {
		w := &e.Waiting[i]
		k := c.label(callerKey(w))
		if k != "" {
			q.left.forget(c.hash(k)) // waiting again
		}
		c.addCaller(q, k, w, arrival)
	}
	for _, a := range q.agents {
		a.seen = false
	}
	for i := range e.Agents {
		a := &e.Agents[i]
		// A snapshot's agent timestamp is read as when the agent entered
		// its state (a guess: the page does not say).
		c.setAgent(q, c.agentExt(a.Extension), c.agentState(a.State), now, c.changedAt(arrived, a.Timestamp))
	}
	for ext, a := range q.agents {
		if !a.seen {
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
