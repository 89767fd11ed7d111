package collector

import (
	"strings"
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
	retired bool // destroyed: forgotten soon, or first when room is needed
	cost    int  // series paid for (budget.go)

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

// newQueue makes the queue stored under k (made by key or find) in t.
func (c *Collector) newQueue(t *tenant, k string, now time.Time) *queue {
	if c.nQueues >= c.cfg.Limits.Queues && !c.evictRetired() {
		c.drop(EntityQueue)
		return nil
	}
	for c.series+queueSeries > c.cfg.MaxSeries && c.evictRetired() {
	}
	if !c.reserve(queueSeries) {
		return nil
	}
	q := &queue{
		t:       t,
		label:   strings.Clone(k),
		waiting: make(map[string]caller),
		agents:  make(map[string]*agent),
		callers: make(map[string]uint64),
		seconds: make(map[string]float64),
		left:    recent{size: recentLeavers},
		cost:    queueSeries,
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

// evictRetired forgets the destroyed queue destroyed first, counters
// included, to make room for a live one.
func (c *Collector) evictRetired() bool {
	var first *queue
	var at time.Time
	for q, t := range c.retired {
		if first == nil || t.Before(at) {
			first, at = q, t
		}
	}
	if first == nil {
		return false
	}
	c.forget(first)
	return true
}

// forget drops a queue and everything it counted, and gives back what it
// cost.
func (c *Collector) forget(q *queue) {
	t := q.t
	if t.queues[q.label] == q {
		delete(t.queues, q.label)
	}
	if q.id != "" && t.byID[q.id] == q {
		delete(t.byID, q.id)
	}
	delete(c.retired, q)
	c.nWaiting -= len(q.waiting)
	c.release(q.cost)
	c.nQueues--
}

// How long a queue the PBX no longer has keeps its counters: long enough
// for scrapes to take their last values. A queue the PBX destroyed is
// forgotten retiredTTL after it; a queue the PBX did not name in a session
// (the PBX lists its queues, and their state, at every subscribe) once
// that session has been up for unseenTTL. A queue the PBX still has is
// named by the snapshot of every session and never forgotten however
// quiet it is; one forgotten and named again later starts from zero, which
// rate() and increase() read as a counter reset.
const (
	retiredTTL = 10 * time.Minute
	unseenTTL  = 10 * time.Minute
	// expiryEvery: expire walks every queue, at most this often.
	expiryEvery = time.Minute
)

// expire forgets the queues the PBX no longer has.
func (c *Collector) expire(now time.Time) {
	if d := now.Sub(c.lastExpiry); d >= 0 && d < expiryEvery {
		return
	}
	c.lastExpiry = now
	for q, at := range c.retired {
		if now.Sub(at) >= retiredTTL {
			c.forget(q)
		}
	}
	if !c.up || now.Sub(c.upSince) < unseenTTL {
		return
	}
	for _, t := range c.tenants {
		for _, q := range t.queues {
			if !q.live {
				c.forget(q)
			}
		}
	}
}

// findQueue looks a queue up by number, else by id, without creating it.
func (c *Collector) findQueue(t *tenant, number, id string) *queue {
	if number != "" {
		_, q, _ := find(c, t.queues, number)
		return q
	}
	_, q, _ := find(c, t.byID, id)
	return q
}

// queueFor returns the queue an event is about, creating it. With a number
// it learns the id -> number mapping; with only an id it falls back to a
// queue labelled "id:<queue_id>" until the number is learnt.
func (c *Collector) queueFor(t *tenant, id, number string, now time.Time) *queue {
	if number != "" {
		return c.queueByNumber(t, number, id, now)
	}
	idKey, q, _ := find(c, t.byID, id)
	if idKey != "" && (q == nil || q.number == "") {
		c.quirk(wsi.QuirkQueueIDOnly)
	}
	if q != nil {
		return q
	}
	k, q, _ := find(c, t.queues, "id:"+id)
	if q == nil {
		if q = c.newQueue(t, k, now); q == nil {
			return nil
		}
	}
	c.setQueueID(t, q, idKey)
	return q
}

// setQueueID makes id (a key of t.byID, as find gives it) the queue's id,
// forgetting the id it had.
func (c *Collector) setQueueID(t *tenant, q *queue, id string) {
	if q.id != id {
		if q.id != "" && t.byID[q.id] == q {
			delete(t.byID, q.id)
		}
		q.id = strings.Clone(id)
	}
	t.byID[q.id] = q
}

// queueByNumber returns the queue of a number and, given its id, merges
// the queue known so far only by that id into it: from then on nothing is
// rendered under the id.
func (c *Collector) queueByNumber(t *tenant, number, id string, now time.Time) *queue {
	k, q, _ := find(c, t.queues, number)
	var old *queue
	if id != "" {
		id, old, _ = find(c, t.byID, id)
	}
	if id == "" || old == q {
		old = nil
	}
	switch {
	case q == nil && old != nil && old.number == "":
		// The common case: the id-derived queue becomes the numbered one,
		// counters, histograms and all.
		delete(t.queues, old.label)
		old.label = strings.Clone(k)
		old.number = old.label
		t.queues[old.label] = old
		q, old = old, nil
	case q == nil:
		if q = c.newQueue(t, k, now); q == nil {
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
			c.nWaiting++
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
	// What both paid for covers what q holds now: the union of their
	// label values, their agents but those q had no room for.
	c.release(q.cost)
	q.cost = c.queueCost(q)
	c.series += q.cost
	c.forget(old)
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
	c.retired[q] = now
}

// clearQueue drops a queue's live state, accruing agent time up to now.
func (c *Collector) clearQueue(q *queue, now time.Time) {
	for _, a := range q.agents {
		q.accrue(a, now)
	}
	c.release(len(q.agents) * agentSeries)
	q.cost -= len(q.agents) * agentSeries
	clear(q.agents)
	c.clearWaiting(q)
	q.live = false
}

// clearWaiting empties a queue's waiting list.
func (c *Collector) clearWaiting(q *queue) {
	c.nWaiting -= len(q.waiting)
	clear(q.waiting)
}

func (c *Collector) setName(q *queue, name string) {
	if name == "" {
		return
	}
	// A name cut, or the password taken out of, differs from what was
	// sent: it is made again at each event, which only such a name pays
	// for.
	if name != q.name {
		q.name = c.key(name)
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
	c.clearWaiting(q)
	for i := range e.Waiting {
		w := &e.Waiting[i]
		k, _, _ := findKey(c, q.waiting, callerKey(w))
		if k != "" {
			q.left.forget(c.hash(k)) // waiting again
		}
		c.addCaller(q, k, w, c.stamp(w.Timestamp), arrival)
	}
	for _, a := range q.agents {
		a.seen = false
	}
	for i := range e.Agents {
		a := &e.Agents[i]
		// A snapshot's agent timestamp is read as when the agent entered
		// its state (a guess: the page does not say).
		c.setAgent(q, extensionNumber(a.Extension), c.agentState(a.State), now, c.changedAt(arrived, a.Timestamp))
	}
	for ext, a := range q.agents {
		if !a.seen {
			c.removeAgent(q, ext, a, now)
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
	if s := e.SLATimeSecs; s != 0 && c.duration(s) && s > 0 {
		q.slaSecs, q.slaSet = float64(s), true
	}
}

func (c *Collector) queueManagement(e *wsi.QueueManagement, now time.Time) {
	t := c.tenant(e.TenantID)
	if t == nil {
		return
	}
	// The first is usually the list replayed on subscribe. From then
	// every type is there, at 0, so rate() sees the first real one.
	c.startMgmt(t.queueMgmt, queueMgmtTypes)
	typ := c.enum(c.enums.mgmtType, e.EventType).v
	known := c.findQueue(t, e.QueueNumber, e.QueueID)
	if e.EventType == wsi.TypeQueueDestroy {
		c.count(t.queueMgmt, typ)
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
		c.count(t.queueMgmt, typ)
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
