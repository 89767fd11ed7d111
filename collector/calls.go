package collector

import (
	"time"

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
func (c *Collector) callTenant(id string, now time.Time) *tenant {
	t := c.tenant(id)
	if t == nil || t.callsTotal != nil {
		return t
	}
	t.callsTotal = make(map[callKey]uint64, len(directions)*len(callStatuses))
	t.talk = make(map[string]*hist, len(directions))
	t.ring = make(map[string]*hist, len(directions))
	for _, d := range directions {
		for _, s := range callStatuses {
			t.callsTotal[callKey{d, s}] = 0
		}
		t.talk[d] = newHistPtr(TalkBuckets, now)
		t.ring[d] = newHistPtr(RingBuckets, now)
	}
	return t
}

// callStart handles call_start and call_update_info: an update for a call
// we missed the start of (we reconnected meanwhile) makes it active too.
func (c *Collector) callStart(e *wsi.CallStart, now time.Time) {
	t := c.callTenant(e.TenantID, now)
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
	t := c.callTenant(e.TenantID, now)
	if t == nil {
		return
	}
	if k := c.label(activeKey(e.SessionID, e.CDRID, e.CallID)); k != "" {
		if _, ok := t.calls[k]; ok {
			delete(t.calls, k)
			c.nCalls--
		}
	}
	// The same record again (same session_id and call_id) is not another
	// call.
	if e.SessionID != "" || e.CallID != "" {
		k := c.hash3(t.id, e.SessionID, e.CallID)
		if c.cdrs.has(k) {
			c.quirk(wsi.QuirkDuplicateEvent)
			return
		}
		c.cdrs.add(k, 0)
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
		observe(t.talk, TalkBuckets, dir, talk, now)
	}
	if ring, ok := ringSeconds(e); ok {
		observe(t.ring, RingBuckets, dir, ring, now)
	}
}

// observe adds v to the histogram of a direction, making it for a
// direction not seen before.
func observe(hs map[string]*hist, buckets []float64, dir string, v int64, now time.Time) {
	h := hs[dir]
	if h == nil {
		h = newHistPtr(buckets, now)
		hs[dir] = h
	}
	h.observe(float64(v), buckets)
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
