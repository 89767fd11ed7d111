package collector

import (
	"strings"
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// agent is one agent's live state in one queue.
type agent struct {
	state string
	// since is when the agent's time in state was last accrued (our
	// clock); changed is when it entered the state (our clock: the PBX's
	// time of the change corrected by the offset, when the PBX sends one).
	since, changed time.Time
	seen           bool // scratch for snapshot replacement
}

// accrue adds the agent's time in its state up to now to the queue's.
func (q *queue) accrue(a *agent, now time.Time) {
	if d := now.Sub(a.since); d > 0 {
		q.seconds[a.state] += d.Seconds()
	}
	a.since = now
}

// setAgent puts an agent in a state; changed is when it entered it, as
// agentChange makes it. A state the agent is already in keeps its times.
// An agent the budget has no room for is not tracked, and one whose new
// state would need a series it has no room for is no longer tracked.
func (c *Collector) setAgent(q *queue, ext string, state enumHit, now, changed time.Time) {
	if ext == "" {
		return
	}
	k, a, _ := find(c, q.agents, ext)
	if a == nil && len(q.agents) >= c.cfg.Limits.AgentsPerQueue {
		c.drop(EntityAgent)
		return
	}
	if _, ok := q.seconds[state.v]; !ok {
		n := 1 // its agent_state_seconds_total
		if !state.known {
			n++ // and its portsip_queue_agents
		}
		if !c.reserveIn(q, n) {
			if a != nil {
				c.removeAgent(q, k, a, now)
			}
			return
		}
		q.seconds[state.v] = 0
	}
	if a != nil {
		if a.state != state.v {
			q.accrue(a, now)
			a.state, a.changed = state.v, changed
		}
		a.seen = true
		return
	}
	if !c.reserveIn(q, agentSeries) {
		return
	}
	q.agents[strings.Clone(k)] = &agent{state: state.v, since: now, changed: changed, seen: true}
}

// removeAgent takes an agent (stored under ext) out of a queue, accruing
// its time in state up to now.
func (c *Collector) removeAgent(q *queue, ext string, a *agent, now time.Time) {
	q.accrue(a, now)
	delete(q.agents, ext)
	c.release(agentSeries)
	q.cost -= agentSeries
}

// changedAt is when an agent entered the state an event gives, on our
// clock: the PBX's time of the change (pbx, UNIX seconds) corrected by the
// clock offset, or when the event arrived if the PBX gives none or one
// after that.
func (c *Collector) changedAt(arrived time.Time, pbx int64) time.Time {
	if pbx = c.stamp(pbx); pbx > 0 {
		if t := c.clock.ours(pbx); t.Before(arrived) {
			return t
		}
	}
	return arrived
}

func (c *Collector) queueAgentStatus(e *wsi.QueueAgentStatus, now time.Time) {
	q := c.queueEvent(e.TenantID, e.QueueID, e.QueueNumber, now)
	if q == nil {
		return
	}
	arrived := received(&e.Header, now)
	for i := range e.Updated {
		a := &e.Updated[i]
		// A change the PBX pushes happened as it was sent: its arrival is
		// a safer time than the entry's timestamp, which the page does not
		// explain (the sample's is the caller's).
		c.setAgent(q, extensionNumber(a.Extension), c.agentState(a.State), now, arrived)
	}
	for _, r := range e.Removed {
		if k, a, _ := find(c, q.agents, extensionNumber(r)); a != nil {
			c.removeAgent(q, k, a, now)
		}
	}
}
