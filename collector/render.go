package collector

import (
	"math"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// Collect renders the state for a registry: the reference the exposition
// (Snapshot.WriteTo) is tested against, and what check uses. The lock is
// held only while the values are copied.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	sn := c.Snapshot()
	fams := sn.MetricFamilies(nil)
	i := 0
	for _, f := range byName {
		if i == len(fams) || fams[i].GetName() != f.name {
			continue
		}
		for _, m := range fams[i].Metric {
			ch <- constMetric{f.desc, m}
		}
		i++
	}
}

// constMetric is a series copied for a registry.
type constMetric struct {
	desc *prometheus.Desc
	m    *dto.Metric
}

func (m constMetric) Desc() *prometheus.Desc { return m.desc }

func (m constMetric) Write(out *dto.Metric) error {
	out.Label, out.Gauge, out.Counter, out.Histogram = m.m.Label, m.m.Gauge, m.m.Counter, m.m.Histogram
	return nil
}

// copyState copies what a scrape renders. Only this holds the lock, so
// only this stalls ingest (BenchmarkScrapeCopy).
func (c *Collector) copyState() *samples {
	var last []int
	if p := c.lastRows.Load(); p != nil {
		last = *p
	}
	s := newSamples(last)
	c.mu.Lock()
	// Read under the lock: the client publishes its subscriptions before
	// it calls SessionUp, which waits for this lock, so a scrape that sees
	// the session up also sees what it subscribed. (The client never holds
	// its own lock while calling the Handler: no lock-order cycle.)
	if c.stats != nil {
		c.renderStats(s, c.stats.Stats())
	}
	now := c.cfg.Now()
	c.sweepCalls(now)
	c.render(s, now)
	c.mu.Unlock()
	counts := s.counts()
	c.lastRows.Store(&counts)
	return s
}

// renderStats renders what the client counted, and beside it the events
// the Collector did not apply.
func (c *Collector) renderStats(s *samples, st wsi.Stats) {
	s.add(mWSIAttempts, float64(st.ConnectionAttempts))
	addAll(s, mIgnored, wsi.IgnoredReasons, st.Ignored)
	s.add(mIgnored, float64(c.implausible), IgnoredImplausible)
	addAll(s, mWSIErrors, wsi.Stages, st.ConnectionErrors)
	addAll(s, mWSIInvalid, wsi.InvalidReasons, st.InvalidMessages)
	other := st.Events[wsi.TypeOther]
	for typ, n := range st.Events {
		if typ != wsi.TypeOther && !slices.Contains(wsi.KnownEventTypes, typ) {
			other += n
		}
	}
	for _, typ := range wsi.KnownEventTypes {
		s.add(mWSIEvents, float64(st.Events[typ]), typ)
	}
	s.add(mWSIEvents, float64(other), wsi.TypeOther)
	last := 0.0
	if !st.LastEvent.IsZero() {
		last = float64(st.LastEvent.UnixNano()) / 1e9
	}
	s.add(mWSILast, last)
	for topic, ok := range st.Subscriptions {
		s.add(mWSISubs, b2f(ok), topic)
	}
}

// addAll renders every known label value (zeros included) and any other
// the client counted.
func addAll(s *samples, d *family, known []string, m map[string]uint64) {
	for _, k := range known {
		s.add(d, float64(m[k]), k)
	}
	for k, n := range m {
		if !slices.Contains(known, k) {
			s.add(d, float64(n), k)
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
	s.add(mUp, b2f(c.up))
	c.renderQuirks(s)
	if c.clock.known {
		s.add(mClockOffset, c.clock.offset.Seconds())
	}
	for _, e := range Entities {
		s.add(mDropped, float64(c.dropped[e]), e)
	}
	var (
		inProgress = make(map[string]float64)
		byState    = make(map[string]int)
	)
	for _, t := range c.tenants {
		if t.name != "" {
			s.add(mTenantInfo, 1, t.id, t.name)
		}
		for typ, n := range t.queueMgmt {
			s.add(mQueueMgmt, float64(n), t.id, typ)
		}
		for typ, n := range t.extMgmt {
			s.add(mExtMgmt, float64(n), t.id, typ)
		}
		for k, n := range t.callsTotal {
			s.add(mCallsTotal, float64(n), t.id, k.direction, k.status)
		}
		for r, n := range t.endReasons {
			s.add(mEndReasons, float64(n), t.id, r)
		}
		for k, n := range t.trunks {
			s.add(mTrunkCalls, float64(n), t.id, k.trunk, k.direction, k.status)
		}
		for dir, h := range t.talk {
			s.addHist(mTalk, h, t.id, dir)
		}
		for dir, h := range t.ring {
			s.addHist(mRing, h, t.id, dir)
		}
		for _, q := range t.queues {
			c.renderQueue(s, t, q, now, inProgress, byState)
		}
		if c.up && t.extsLive {
			c.renderExtensions(s, t, byState)
		}
		if c.up {
			s.add(mCallsActive, float64(len(t.calls)), t.id)
		}
	}
}

func (c *Collector) renderQueue(s *samples, t *tenant, q *queue, now time.Time, inProgress map[string]float64, byState map[string]int) {
	// Counters: every known reason from zero, so the first increase shows.
	for _, r := range callerReasons {
		s.add(mQueueCallers, float64(q.callers[r]), t.id, q.label, r)
	}
	for r, n := range q.callers {
		if !slices.Contains(callerReasons, r) {
			s.add(mQueueCallers, float64(n), t.id, q.label, r)
		}
	}
	s.add(mSLABreaches, float64(q.breaches), t.id, q.label)
	s.add(mAnsweredInSLA, float64(q.answeredInSLA), t.id, q.label)
	for o := range q.wait {
		s.addHist(mQueueWait, &q.wait[o], t.id, q.label, outcomes[o])
	}

	clear(inProgress)
	for _, a := range q.agents {
		if d := now.Sub(a.since); d > 0 {
			inProgress[a.state] += d.Seconds()
		}
	}
	for state, v := range q.seconds {
		s.add(mAgentSeconds, v+inProgress[state], t.id, q.label, state)
	}

	if !c.up || !q.live {
		return
	}
	s.add(mQueueInfo, 1, t.id, q.label, q.id, q.name)
	var normal, callback int
	oldest := math.Inf(1)
	for _, w := range q.waiting {
		if w.callback {
			callback++
		} else {
			normal++
		}
		oldest = min(oldest, w.enqueued)
	}
	s.add(mQueueWaiting, float64(normal), t.id, q.label, "normal")
	s.add(mQueueWaiting, float64(callback), t.id, q.label, "callback")
	wait := 0.0
	if len(q.waiting) > 0 {
		wait = max(0, pbxSeconds(c.clock.pbx(now))-oldest)
	}
	s.add(mQueueOldest, wait, t.id, q.label)

	clear(byState)
	for _, st := range agentStates {
		byState[st] = 0
	}
	for ext, a := range q.agents {
		byState[a.state]++
		if c.cfg.AgentState {
			s.add(mAgentState, 1, t.id, q.label, ext, a.state)
			s.add(mAgentChanged, float64(a.changed.UnixNano())/1e9, t.id, q.label, ext)
		}
	}
	for st, n := range byState {
		s.add(mQueueAgents, float64(n), t.id, q.label, st)
	}
	s.add(mSLAThreshold, q.slaTime(c.cfg.DefaultSLATime), t.id, q.label)
}

func (c *Collector) renderExtensions(s *samples, t *tenant, byState map[string]int) {
	var online, push int
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
		if x.push {
			push++
		}
		if x.presence != "" {
			presence[x.presence]++
		}
		if !c.cfg.ExtensionState {
			continue
		}
		if x.online >= 0 {
			s.add(mExtOnline, float64(x.online), t.id, n)
		}
		if x.presence != "" {
			s.add(mExtPresence, 1, t.id, n, x.presence)
		}
		s.add(mExtCallState, 1, t.id, n, x.state)
	}
	s.add(mExts, float64(len(t.exts)), t.id)
	s.add(mExtsOnline, float64(online), t.id)
	s.add(mExtsPush, float64(push), t.id)
	for p, n := range presence {
		s.add(mExtsByPresence, float64(n), t.id, p)
	}
	for st, n := range byState {
		s.add(mExtsByCall, float64(n), t.id, st)
	}
}
