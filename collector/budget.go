package collector

import (
	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// The series budget (Config.MaxSeries, --collector.max-series) bounds what
// /metrics can hold whatever the PBX sends. The limits bound one dimension
// at a time (queues, agents per queue, values of an enum); their product
// does not: 10,000 queues each with 64 invented agent states and caller
// reasons would be millions of series. So every series the Collector can
// render is paid for when the entity or label value that makes it appears,
// and given back when it is forgotten; what does not fit is refused and
// counted in portsip_exporter_dropped_entities_total{entity="series"}.
//
// What is counted is the lines of the text exposition: a gauge or counter
// is one, a histogram one per classic bucket plus +Inf, _sum and _count,
// and one more for its native buckets, which Prometheus stores as one
// series whatever their number (at most 160). A series is paid for while
// it can be rendered, shown or not at the moment: a queue's gauges while
// no session is up, an extension's presence before one is known. The
// Collector's own series (portsip_up, portsip_wsi_*, the quirks, the
// dropped entities) are paid for at the start. So a scrape never holds
// more of the Collector's samples than MaxSeries; the Go runtime's and
// the process's series, a fixed few dozen, come on top.
//
// What a refusal does:
//   - a tenant, queue, extension or agent that does not fit is not tracked
//     (its event is applied to the rest);
//   - a new label value of a counter or histogram (a caller reason, a
//     direction, a status, an end reason, a trunk, a management event
//     type) is not counted or observed;
//   - an agent or extension whose new state would need a new series is
//     no longer tracked rather than shown in a state it left.
//
// Agents are paid for even with --no-collector.agent-state, and waiting
// callers, which make no series, are bounded in all queues together by
// Limits.ActiveCalls (they are calls): so the memory the PBX can make the
// Collector hold is bounded too, not only the series. ARCHITECTURE.md,
// "Decisions and their measured reasons", has what the budget bought.

// EntitySeries is the entity of portsip_exporter_dropped_entities_total
// that counts series the budget refused.
const EntitySeries = "series"

// histSeries is what one histogram costs.
func histSeries(buckets []float64) int { return len(buckets) + 4 }

var (
	// ownSeries are the Collector's own: portsip_up, portsip_wsi_* (at
	// most five subscribed topics), the quirks and the dropped entities.
	ownSeries = 1 + 1 + len(wsi.Stages) + 5 + len(wsi.KnownEventTypes) + 1 + len(wsi.InvalidReasons) + 1 +
		len(wsi.IgnoredReasons) + 1 + len(wsi.Quirks) + 1 + len(Entities)
	// tenantSeries: calls_active, tenant_info, and the extension
	// aggregates with every documented presence and call state.
	tenantSeries = 2 + 3 + len(presences) + len(callStates)
	// callSeries: a tenant's calls_total for every documented direction and
	// status, and the talk and ring histograms of each direction, which
	// appear with its first call event.
	callSeries = len(directions) * (len(callStatuses) + histSeries(TalkBuckets) + histSeries(RingBuckets))
	// queueSeries: callers_total for every documented reason, SLA
	// breaches, answered within SLA, the wait histogram of each outcome,
	// queue_info, waiting callers of both kinds, oldest wait, the agents
	// of every documented state, the SLA threshold. Each state an agent
	// of the queue takes adds agent_state_seconds_total (and, when it is
	// not documented, its portsip_queue_agents).
	queueSeries = len(callerReasons) + 2 + len(outcomes)*histSeries(WaitBuckets) + 1 + 2 + 1 + len(agentStates) + 1
	// agentSeries: an agent's state and when it changed.
	agentSeries = 2
)

// extensionSeries is what one extension costs: online, presence and call
// state, when they are rendered; memory is bounded by Limits.Extensions.
func (c *Collector) extensionSeries() int {
	if c.cfg.ExtensionState {
		return 3
	}
	return 0
}

// reserve pays for n series, refusing them when the budget is spent.
func (c *Collector) reserve(n int) bool {
	if c.series+n > c.cfg.MaxSeries {
		c.drop(EntitySeries)
		return false
	}
	c.series += n
	return true
}

// release gives back n series.
func (c *Collector) release(n int) { c.series -= n }

// reserveIn pays for n series of queue q.
func (c *Collector) reserveIn(q *queue, n int) bool {
	if !c.reserve(n) {
		return false
	}
	q.cost += n
	return true
}

// queueCost is what q costs from what it holds: what reserveIn paid for
// it, recomputed after a merge.
func (c *Collector) queueCost(q *queue) int {
	n := queueSeries + len(q.agents)*agentSeries
	for r := range q.callers {
		if !isCallerReason(r) {
			n++
		}
	}
	for st := range q.seconds {
		n++
		if !c.enums.agentState.documented(st) {
			n++
		}
	}
	return n
}

// count adds one to m[v], paying for the series when v is new to m.
func (c *Collector) count(m map[string]uint64, v string) {
	if n, ok := m[v]; ok {
		m[v] = n + 1
	} else if c.reserve(1) {
		m[v] = 1
	}
}

// startMgmt gives a tenant's management event counter m every documented
// type, at 0, at its first event, so that rate() sees the first of each.
func (c *Collector) startMgmt(m map[string]uint64, types []string) {
	if len(m) > 0 || !c.reserve(len(types)) {
		return
	}
	for _, typ := range types {
		m[typ] = 0
	}
}
