package collector

import (
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// family is a metric's Desc with its label names, which a Desc keeps to
// itself.
type family struct {
	desc  *prometheus.Desc
	names []string // variable labels, in the order values are given
	order []int    // indexes into names, sorted by name as the exposition wants
	ids   []int    // label ids (labelNames) of names
}

// labelNames numbers every label name the families use (a label id is an
// index), so a scrape can keep the pairs of each name in arrays. Names from
// firstBounded on take values from a bounded set: enumerations and lists.
var labelNames = [...]string{
	"tenant_id", "tenant_name", "queue", "queue_id", "queue_name", "agent", "extension", "trunk",
	"kind", "state", "reason", "event_type", "presence", "direction", "status", "stage", "topic", "entity",
}

const firstBounded = 8

func desc(name, help string, labels ...string) *family {
	order := make([]int, len(labels))
	ids := make([]int, len(labels))
	for i, l := range labels {
		order[i] = i
		ids[i] = slices.Index(labelNames[:], l)
		if ids[i] < 0 {
			panic("collector: label " + l + " of " + name + " missing from labelNames")
		}
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(labels[a], labels[b]) })
	return &family{desc: prometheus.NewDesc(name, help, labels, nil), names: labels, order: order, ids: ids}
}

var (
	descUp = desc("portsip_up", "1 while a WSI session is connected, authenticated and subscribed.")

	descWSIAttempts = desc("portsip_wsi_connection_attempts_total", "WSI session attempts (dial, auth, subscribe).")
	descWSIErrors   = desc("portsip_wsi_connection_errors_total", "WSI session attempts that failed and sessions that broke, by stage.", "stage")
	descWSISubs     = desc("portsip_wsi_subscription_active", "1 when the PBX accepted the topic in the current session.", "topic")
	descWSIEvents   = desc("portsip_wsi_events_total", "Events received, by event_type (unknown types as other).", "event_type")
	descWSIInvalid  = desc("portsip_wsi_invalid_messages_total", "Frames rejected, by reason.", "reason")
	descWSILast     = desc("portsip_wsi_last_event_timestamp_seconds", "When the last event was received (UNIX seconds; 0 before the first).")

	descTenantInfo = desc("portsip_tenant_info", "Tenant names learnt from call_cdr.", "tenant_id", "tenant_name")

	descQueueInfo      = desc("portsip_queue_info", "Queues known in the current session.", "tenant_id", "queue", "queue_id", "queue_name")
	descQueueWaiting   = desc("portsip_queue_waiting_callers", "Callers waiting in a queue, by kind.", "tenant_id", "queue", "kind")
	descQueueOldest    = desc("portsip_queue_oldest_wait_seconds", "Age of the longest-waiting entry of a queue; 0 when none waits.", "tenant_id", "queue")
	descQueueAgents    = desc("portsip_queue_agents", "Agents of a queue by state.", "tenant_id", "queue", "state")
	descAgentState     = desc("portsip_queue_agent_state", "The current state of each agent in each queue (always 1).", "tenant_id", "queue", "agent", "state")
	descAgentSeconds   = desc("portsip_queue_agent_state_seconds_total", "Time the agents of a queue spent in each state, summed.", "tenant_id", "queue", "state")
	descQueueCallers   = desc("portsip_queue_callers_total", "Caller changes of a queue, by reason.", "tenant_id", "queue", "reason")
	descSLABreaches    = desc("portsip_queue_sla_breaches_total", "queue_sla_breached events.", "tenant_id", "queue")
	descSLAThreshold   = desc("portsip_queue_sla_threshold_seconds", "The queue's SLA time, from the last queue_sla_breached.", "tenant_id", "queue")
	descQueueMgmt      = desc("portsip_queue_management_events_total", "Queue management events. A queue_created for a known queue is the list the PBX replays on subscribe and is not counted; at the first session that list sets the starting value.", "tenant_id", "event_type")
	descExtOnline      = desc("portsip_extension_online", "1 when the extension is registered.", "tenant_id", "extension")
	descExtPresence    = desc("portsip_extension_presence", "The extension's presence (always 1).", "tenant_id", "extension", "presence")
	descExtCallState   = desc("portsip_extension_call_state", "The extension's call state (always 1).", "tenant_id", "extension", "state")
	descExts           = desc("portsip_extensions", "Extensions known.", "tenant_id")
	descExtsOnline     = desc("portsip_extensions_online", "Extensions registered.", "tenant_id")
	descExtsByPresence = desc("portsip_extensions_by_presence", "Extensions by presence.", "tenant_id", "presence")
	descExtsByCall     = desc("portsip_extensions_by_call_state", "Extensions by call state.", "tenant_id", "state")
	descExtMgmt        = desc("portsip_extension_management_events_total", "Extension management events.", "tenant_id", "event_type")
	descCallsActive    = desc("portsip_calls_active", "Calls started and not yet ended (forgotten after the call expiry).", "tenant_id")
	descCallsTotal     = desc("portsip_calls_total", "Calls ended, from call_cdr.", "tenant_id", "direction", "status")
	descEndReasons     = desc("portsip_call_end_reasons_total", "Calls ended, by end reason.", "tenant_id", "reason")
	descTrunkCalls     = desc("portsip_trunk_calls_total", "Calls ended that used a trunk.", "tenant_id", "trunk", "direction", "status")

	descDropped = desc("portsip_exporter_dropped_entities_total",
		"Entities not tracked because a limit was reached (label_value: an enum label full of values, counted as other).", "entity")
)

var families = []*family{
	descUp,
	descWSIAttempts, descWSIErrors, descWSISubs, descWSIEvents, descWSIInvalid, descWSILast,
	descTenantInfo,
	descQueueInfo, descQueueWaiting, descQueueOldest, descQueueAgents, descAgentState, descAgentSeconds,
	descQueueCallers, descSLABreaches, descSLAThreshold, descQueueMgmt,
	descExtOnline, descExtPresence, descExtCallState, descExts, descExtsOnline, descExtsByPresence,
	descExtsByCall, descExtMgmt,
	descCallsActive, descCallsTotal, descEndReasons, descTrunkCalls,
	descDropped,
}

// MetricNames lists every metric family a Collector can emit: the
// catalogue for dashboards and documentation.
func MetricNames() []string {
	return []string{
		"portsip_up",
		"portsip_wsi_connection_attempts_total", "portsip_wsi_connection_errors_total",
		"portsip_wsi_subscription_active", "portsip_wsi_events_total",
		"portsip_wsi_invalid_messages_total", "portsip_wsi_last_event_timestamp_seconds",
		"portsip_tenant_info",
		"portsip_queue_info", "portsip_queue_waiting_callers", "portsip_queue_oldest_wait_seconds",
		"portsip_queue_agents", "portsip_queue_agent_state", "portsip_queue_agent_state_seconds_total",
		"portsip_queue_callers_total", "portsip_queue_wait_seconds", "portsip_queue_sla_breaches_total",
		"portsip_queue_sla_threshold_seconds", "portsip_queue_management_events_total",
		"portsip_extension_online", "portsip_extension_presence", "portsip_extension_call_state",
		"portsip_extensions", "portsip_extensions_online", "portsip_extensions_by_presence",
		"portsip_extensions_by_call_state", "portsip_extension_management_events_total",
		"portsip_calls_active", "portsip_calls_total", "portsip_call_talk_seconds",
		"portsip_call_ring_seconds", "portsip_call_end_reasons_total", "portsip_trunk_calls_total",
		"portsip_exporter_dropped_entities_total",
	}
}

var callerReasons = []string{reasonEnqueue, reasonAnswered, reasonOverflow, reasonHangup, reasonCallback}

// Describe lists every metric the Collector can emit.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range families {
		ch <- f.desc
	}
	c.wait.Describe(ch)
	c.talk.Describe(ch)
	c.ring.Describe(ch)
}

// sample is one gauge or counter, copied out under the lock and then
// handed to the registry as a prometheus.Metric.
//
// A large PBX renders ~10^5 series at every scrape, and the garbage they
// leave sets the exporter's resident size. prometheus.NewConstMetric makes
// a dozen small objects per series; here a series takes a slot in a few
// chunked slabs, and its label pairs are shared wherever they are equal:
// with the series before it (the tenant of every series of a tenant, the
// extension of an extension's three series) and, for labels with a
// bounded set of values (state, presence, ...), across the scrape. The
// registry and the encoders only read them. Label values were made valid
// at ingest.
type sample struct {
	f       *family
	val     float64
	labels  []*dto.LabelPair // sorted by name, as the exposition wants
	gauge   *dto.Gauge       // exactly one of gauge and counter is set
	counter *dto.Counter
}

func (m *sample) Desc() *prometheus.Desc { return m.f.desc }

func (m *sample) Write(out *dto.Metric) error {
	out.Label, out.Gauge, out.Counter = m.labels, m.gauge, m.counter
	return nil
}

// slab hands out slices of one scrape's objects from large blocks: a few
// allocations per scrape instead of one per object, and nothing handed out
// ever moves.
type slab[T any] struct{ free []T }

const slabBlock = 4096

func (s *slab[T]) take(n int) []T {
	if len(s.free) < n {
		s.free = make([]T, max(n, slabBlock))
	}
	t := s.free[:n:n]
	s.free = s.free[n:]
	return t
}

// samples is a scrape's copy of the state, built under the lock.
type samples struct {
	all      [][]sample // chunks of the series, in order
	n        int
	gauges   slab[dto.Gauge]
	counters slab[dto.Counter]
	ptrs     slab[*dto.LabelPair]
	pairs    slab[dto.LabelPair]
	values   slab[string] // label values the pairs point to

	last    [len(labelNames)]*dto.LabelPair            // by label id: the latest pair
	bounded [len(labelNames)]map[string]*dto.LabelPair // by label id, for bounded labels
}

func newSamples(hint int) *samples {
	return &samples{all: [][]sample{make([]sample, 0, hint)}}
}

func (s *samples) add(f *family, typ prometheus.ValueType, v float64, lv ...string) {
	if len(lv) != len(f.names) {
		panic("collector: wrong number of label values for " + f.desc.String())
	}
	chunk := &s.all[len(s.all)-1]
	if len(*chunk) == cap(*chunk) {
		s.all = append(s.all, make([]sample, 0, slabBlock))
		chunk = &s.all[len(s.all)-1]
	}
	*chunk = append(*chunk, sample{f: f, val: v})
	m := &(*chunk)[len(*chunk)-1]
	s.n++
	if typ == gauge {
		m.gauge = &s.gauges.take(1)[0]
		m.gauge.Value = &m.val
	} else {
		m.counter = &s.counters.take(1)[0]
		m.counter.Value = &m.val
	}
	m.labels = s.ptrs.take(len(lv))
	for j, idx := range f.order {
		m.labels[j] = s.pair(f.ids[idx], &f.names[idx], lv[idx])
	}
}

// pair returns a label pair, shared when an equal one exists.
func (s *samples) pair(id int, name *string, value string) *dto.LabelPair {
	if l := s.last[id]; l != nil && *l.Value == value {
		return l
	}
	b := id >= firstBounded
	if b {
		if l := s.bounded[id][value]; l != nil {
			s.last[id] = l
			return l
		}
	}
	l := &s.pairs.take(1)[0]
	v := &s.values.take(1)[0]
	*v = value
	l.Name, l.Value = name, v
	s.last[id] = l
	if b {
		if s.bounded[id] == nil {
			s.bounded[id] = make(map[string]*dto.LabelPair)
		}
		s.bounded[id][value] = l
	}
	return l
}

// Collect renders the state. The lock is held only while the values are
// copied; they are sent, and encoded, after it is released. The buffers
// are not reused: the metrics sent point into them until they are encoded.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.copyState()
	for _, chunk := range s.all {
		for i := range chunk {
			ch <- &chunk[i]
		}
	}
	c.wait.Collect(ch)
	c.talk.Collect(ch)
	c.ring.Collect(ch)
}

// copyState copies what a scrape renders. Only this holds the lock, so
// only this stalls ingest (BenchmarkScrapeCopy).
func (c *Collector) copyState() *samples {
	s := newSamples(int(c.lastRows.Load()) + 64)
	c.mu.Lock()
	// Read under the lock: the client publishes its subscriptions before
	// it calls SessionUp, which waits for this lock, so a scrape that sees
	// the session up also sees what it subscribed. (The client never holds
	// its own lock while calling the Handler: no lock-order cycle.)
	if c.stats != nil {
		renderStats(s, c.stats.Stats())
	}
	now := c.cfg.Now()
	c.sweepCalls(now)
	c.render(s, now)
	c.mu.Unlock()
	c.lastRows.Store(int64(s.n))
	return s
}

const (
	gauge   = prometheus.GaugeValue
	counter = prometheus.CounterValue
)

func renderStats(s *samples, st wsi.Stats) {
	s.add(descWSIAttempts, counter, float64(st.ConnectionAttempts))
	addAll(s, descWSIErrors, wsi.Stages, st.ConnectionErrors)
	addAll(s, descWSIInvalid, wsi.InvalidReasons, st.InvalidMessages)
	other := st.Events[wsi.TypeOther]
	for typ, n := range st.Events {
		if typ != wsi.TypeOther && !slices.Contains(wsi.KnownEventTypes, typ) {
			other += n
		}
	}
	for _, typ := range wsi.KnownEventTypes {
		s.add(descWSIEvents, counter, float64(st.Events[typ]), typ)
	}
	s.add(descWSIEvents, counter, float64(other), wsi.TypeOther)
	last := 0.0
	if !st.LastEvent.IsZero() {
		last = float64(st.LastEvent.UnixNano()) / 1e9
	}
	s.add(descWSILast, gauge, last)
	for topic, ok := range st.Subscriptions {
		s.add(descWSISubs, gauge, b2f(ok), topic)
	}
}

// addAll renders every known label value (zeros included) and any other
// the client counted.
func addAll(s *samples, d *family, known []string, m map[string]uint64) {
	for _, k := range known {
		s.add(d, counter, float64(m[k]), k)
	}
	for k, n := range m {
		if !slices.Contains(known, k) {
			s.add(d, counter, float64(n), k)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// render copies the state into s. Called with c.mu held.
func (c *Collector) render(s *samples, now time.Time) {
	s.add(descUp, gauge, b2f(c.up))
	for _, e := range Entities {
		s.add(descDropped, counter, float64(c.dropped[e]), e)
	}
	var (
		inProgress = make(map[string]float64)
		byState    = make(map[string]int)
	)
	for _, t := range c.tenants {
		if t.name != "" {
			s.add(descTenantInfo, gauge, 1, t.id, t.name)
		}
		for typ, n := range t.queueMgmt {
			s.add(descQueueMgmt, counter, float64(n), t.id, typ)
		}
		for typ, n := range t.extMgmt {
			s.add(descExtMgmt, counter, float64(n), t.id, typ)
		}
		for k, n := range t.callsTotal {
			s.add(descCallsTotal, counter, float64(n), t.id, k.direction, k.status)
		}
		for r, n := range t.endReasons {
			s.add(descEndReasons, counter, float64(n), t.id, r)
		}
		for k, n := range t.trunks {
			s.add(descTrunkCalls, counter, float64(n), t.id, k.trunk, k.direction, k.status)
		}
		for _, q := range t.queues {
			c.renderQueue(s, t, q, now, inProgress, byState)
		}
		if c.up && t.extsLive {
			c.renderExtensions(s, t, byState)
		}
		if c.up {
			s.add(descCallsActive, gauge, float64(len(t.calls)), t.id)
		}
	}
}

func (c *Collector) renderQueue(s *samples, t *tenant, q *queue, now time.Time, inProgress map[string]float64, byState map[string]int) {
	// Counters: every known reason from zero, so the first increase shows.
	for _, r := range callerReasons {
		s.add(descQueueCallers, counter, float64(q.callers[r]), t.id, q.label, r)
	}
	for r, n := range q.callers {
		if !slices.Contains(callerReasons, r) {
			s.add(descQueueCallers, counter, float64(n), t.id, q.label, r)
		}
	}
	s.add(descSLABreaches, counter, float64(q.breaches), t.id, q.label)

	clear(inProgress)
	for _, a := range q.agents {
		if d := now.Sub(a.since); d > 0 {
			inProgress[a.state] += d.Seconds()
		}
	}
	for state, v := range q.seconds {
		s.add(descAgentSeconds, counter, v+inProgress[state], t.id, q.label, state)
	}

	if !c.up || !q.live {
		return
	}
	s.add(descQueueInfo, gauge, 1, t.id, q.label, q.id, q.name)
	var normal, callback int
	oldest := int64(-1)
	for _, w := range q.waiting {
		if w.callback {
			callback++
		} else {
			normal++
		}
		if oldest < 0 || w.enqueued < oldest {
			oldest = w.enqueued
		}
	}
	s.add(descQueueWaiting, gauge, float64(normal), t.id, q.label, "normal")
	s.add(descQueueWaiting, gauge, float64(callback), t.id, q.label, "callback")
	wait := 0.0
	if oldest >= 0 {
		wait = max(0, now.Sub(time.Unix(oldest, 0)).Seconds())
	}
	s.add(descQueueOldest, gauge, wait, t.id, q.label)

	clear(byState)
	for _, st := range agentStates {
		byState[st] = 0
	}
	for ext, a := range q.agents {
		byState[a.state]++
		if c.cfg.AgentState {
			s.add(descAgentState, gauge, 1, t.id, q.label, ext, a.state)
		}
	}
	for st, n := range byState {
		s.add(descQueueAgents, gauge, float64(n), t.id, q.label, st)
	}
	if q.slaSet {
		s.add(descSLAThreshold, gauge, q.slaSecs, t.id, q.label)
	}
}

func (c *Collector) renderExtensions(s *samples, t *tenant, byState map[string]int) {
	var online int
	clear(byState)
	for _, st := range callStates {
		byState[st] = 0
	}
	presence := make(map[string]int, len(presences))
	for _, p := range presences {
		presence[p] = 0
	}
	for n, x := range t.exts {
		byState[x.state]++
		if x.online == 1 {
			online++
		}
		if x.presence != "" {
			presence[x.presence]++
		}
		if !c.cfg.ExtensionState {
			continue
		}
		if x.online >= 0 {
			s.add(descExtOnline, gauge, float64(x.online), t.id, n)
		}
		if x.presence != "" {
			s.add(descExtPresence, gauge, 1, t.id, n, x.presence)
		}
		s.add(descExtCallState, gauge, 1, t.id, n, x.state)
	}
	s.add(descExts, gauge, float64(len(t.exts)), t.id)
	s.add(descExtsOnline, gauge, float64(online), t.id)
	for p, n := range presence {
		s.add(descExtsByPresence, gauge, float64(n), t.id, p)
	}
	for st, n := range byState {
		s.add(descExtsByCall, gauge, float64(n), t.id, st)
	}
}
