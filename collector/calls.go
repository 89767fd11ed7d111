package collector

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// callKey and trunkKey are the label values of a tenant's call counters.
type callKey struct{ direction, status string }
type trunkKey struct{ trunk, direction, status string }

func activeKey(session, cdr, call string) string {
	switch {
	case session != "":
		return session
	case cdr != "":
		return cdr
	}
	return call
}

// callTenant is the tenant of a call event. At its first, the tenant's
// calls_total and talk and ring series start at 0 for every known
// direction and status, so rate() sees its first call: a series born at 1
// shows no increase. Not before: a tenant whose calls we do not receive
// shows no data rather than zero calls.
func (c *Collector) callTenant(id string) *tenant {
	t := c.tenant(id)
	if t == nil || t.callsTotal != nil {
		return t
	}
	t.callsTotal = make(map[callKey]uint64, len(directions)*len(callStatuses))
	t.talk = make(map[string]prometheus.Observer, len(directions))
	t.ring = make(map[string]prometheus.Observer, len(directions))
	for _, d := range directions {
		for _, s := range callStatuses {
			t.callsTotal[callKey{d, s}] = 0
		}
		t.talk[d] = c.talk.WithLabelValues(t.id, d)
		t.ring[d] = c.ring.WithLabelValues(t.id, d)
	}
	return t
}

// callStart handles call_start and call_update_info: an update for a call
// we missed the start of (we reconnected meanwhile) makes it active too.
func (c *Collector) callStart(e *wsi.CallStart, now time.Time) {
	t := c.callTenant(e.TenantID)
	if t == nil {
		return
	}
	c.sweepCalls(now)
	k := c.label(activeKey(e.SessionID, e.CDRID, e.CallID))
	if k == "" {
		return
	}
	if _, ok := t.calls[k]; ok {
		return
	}
	if c.nCalls >= c.cfg.Limits.ActiveCalls {
		c.drop(EntityCall)
		return
	}
	t.calls[c.key(k)] = now
	c.nCalls++
}

func (c *Collector) callCDR(e *wsi.CallCDR, now time.Time) {
	t := c.callTenant(e.TenantID)
	if t == nil {
		return
	}
	if k := c.label(activeKey(e.SessionID, e.CDRID, e.CallID)); k != "" {
		if _, ok := t.calls[k]; ok {
			delete(t.calls, k)
			c.nCalls--
		}
	}
	if e.TenantName != "" {
		if n := c.label(e.TenantName); n != t.name {
			t.name = c.key(n)
		}
	}

	// call_status decides when sent: a call the PBX calls noanswer or
	// fail may still carry an answered_time or talk_duration (an IVR or
	// voicemail took it), and that talk is not an answered call's.
	answered := e.AnsweredTime > 0 || e.TalkDuration.Value > 0
	dir := c.enum(c.enums.direction, e.Direction)
	status := "noanswer"
	switch {
	case e.CallStatus != "":
		status = c.enum(c.enums.callStatus, e.CallStatus)
		answered = status == "answered"
	case answered:
		status = "answered"
	}
	t.callsTotal[callKey{dir, status}]++
	t.endReasons[c.enum(c.enums.endReason, e.EndedReason)]++

	if tr := trunkName(e.TrunkName); tr != "" {
		k := trunkKey{c.label(tr), dir, status}
		if _, ok := t.trunks[k]; ok {
			t.trunks[k]++
		} else if c.nTrunks < c.cfg.Limits.TrunkSeries {
			k.trunk = c.key(k.trunk)
			t.trunks[k] = 1
			c.nTrunks++
		} else {
			c.drop(EntityTrunk)
		}
	}

	if talk, ok := talkSeconds(e, answered); ok {
		observe(t.talk, c.talk, t.id, dir, talk)
	}
	if ring, ok := ringSeconds(e); ok {
		observe(t.ring, c.ring, t.id, dir, ring)
	}
}

func observe(obs map[string]prometheus.Observer, vec *prometheus.HistogramVec, tenant, dir string, v int64) {
	o := obs[dir]
	if o == nil {
		o = vec.WithLabelValues(tenant, dir)
		obs[dir] = o
	}
	o.Observe(float64(v))
}

// talkSeconds is the talk time of an answered call: talk_duration when
// sent, else ended_time - answered_time. Unanswered calls have none, so the
// histogram's average is the average talk time of answered calls.
func talkSeconds(e *wsi.CallCDR, answered bool) (int64, bool) {
	if !answered {
		return 0, false
	}
	if e.TalkDuration.Set {
		return validDuration(e.TalkDuration.Value)
	}
	if e.AnsweredTime > 0 && e.EndedTime >= e.AnsweredTime {
		return e.EndedTime - e.AnsweredTime, true
	}
	return 0, false
}

// ringSeconds is the ring time of a call that rang (ring_time set or a
// positive ring_duration): ring_duration when sent, else from ring_time to
// answered_time, or to ended_time when unanswered.
func ringSeconds(e *wsi.CallCDR) (int64, bool) {
	if e.RingTime <= 0 && e.RingDuration.Value <= 0 {
		return 0, false
	}
	if e.RingDuration.Set {
		return validDuration(e.RingDuration.Value)
	}
	end := e.AnsweredTime
	if end <= 0 {
		end = e.EndedTime
	}
	if end >= e.RingTime {
		return end - e.RingTime, true
	}
	return 0, false
}

func validDuration(v int64) (int64, bool) {
	if v < 0 {
		return 0, false
	}
	return v, true
}

// sweepCalls forgets active calls older than CallExpiry. It walks every
// call, so it runs at most every minute (sooner for a short expiry).
func (c *Collector) sweepCalls(now time.Time) {
	every := min(time.Minute, c.cfg.CallExpiry/4)
	if d := now.Sub(c.lastSweep); d >= 0 && d < every {
		return
	}
	c.lastSweep = now
	for _, t := range c.tenants {
		for k, at := range t.calls {
			if now.Sub(at) >= c.cfg.CallExpiry {
				delete(t.calls, k)
				c.nCalls--
			}
		}
	}
}
