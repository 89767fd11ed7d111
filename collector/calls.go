package collector

import (
	"strings"
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
	if !c.reserve(callSeries) {
		return nil
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
	k, _, ok := findKey(c, t.calls, activeKey(e.SessionID, e.CDRID, e.CallID))
	if ok || k == "" {
		return
	}
	if c.nCalls >= c.cfg.Limits.ActiveCalls {
		c.drop(EntityCall)
		return
	}
	t.calls[strings.Clone(k)] = now
	c.nCalls++
}

func (c *Collector) callCDR(e *wsi.CallCDR, now time.Time) {
	t := c.callTenant(e.TenantID, now)
	if t == nil {
		return
	}
	if k, _, ok := findKey(c, t.calls, activeKey(e.SessionID, e.CDRID, e.CallID)); ok {
		delete(t.calls, k)
		c.nCalls--
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
	// As a queue's name: made again at each event only when it had to be
	// cut or the password taken out of it.
	if e.TenantName != "" && e.TenantName != t.name {
		t.name = c.key(e.TenantName)
	}

	// Times that are not plausible are taken as not sent.
	answeredAt, endedAt, ringAt := c.stamp(e.AnsweredTime), c.stamp(e.EndedTime), c.stamp(e.RingTime)
	talk, talkOK := c.talkSeconds(e, answeredAt, endedAt)
	// call_status decides when sent: a call the PBX calls noanswer or
	// fail may still carry an answered_time or talk_duration (an IVR or
	// voicemail took it), and that talk is not an answered call's.
	answered := answeredAt > 0 || talkOK && talk > 0
	dir := c.enum(c.enums.direction, e.Direction)
	status := enumHit{v: "noanswer", known: true}
	switch {
	case e.CallStatus != "":
		status = c.enum(c.enums.callStatus, e.CallStatus)
		answered = status.v == "answered"
	case answered:
		status.v = "answered"
	}
	ck := callKey{dir.v, status.v}
	if n, ok := t.callsTotal[ck]; ok {
		t.callsTotal[ck] = n + 1
	} else if c.reserve(1) {
		t.callsTotal[ck] = 1
	}
	c.count(t.endReasons, c.enum(c.enums.endReason, e.EndedReason).v)

	if tr := trunkName(e.TrunkName); tr != "" {
		c.countTrunk(t, tr, dir.v, status.v)
	}

	if answered && talkOK {
		c.observe(t.talk, TalkBuckets, dir.v, talk, now)
	}
	if ring, ok := c.ringSeconds(e, ringAt, answeredAt, endedAt); ok {
		c.observe(t.ring, RingBuckets, dir.v, ring, now)
	}
}

// countTrunk counts a call of a trunk. Trunk series are bounded by
// Limits.TrunkSeries and paid for like any other.
func (c *Collector) countTrunk(t *tenant, trunk, dir, status string) {
	// Found as sent, as a label, or as the label with the password taken
	// out, as find does.
	k := trunkKey{trunk, dir, status}
	if _, ok := t.trunks[k]; !ok {
		if k.trunk = c.label(trunk); t.trunks[k] == 0 && c.cfg.Redactor != nil {
			k.trunk = c.show(trunk)
		}
	}
	switch {
	case t.trunks[k] > 0:
		t.trunks[k]++
	case c.nTrunks >= c.cfg.Limits.TrunkSeries:
		c.drop(EntityTrunk)
	case c.reserve(1):
		k.trunk = strings.Clone(k.trunk)
		t.trunks[k] = 1
		c.nTrunks++
	}
}

// observe adds v to the histogram of a direction, making it, paid for,
// for a direction not seen before.
func (c *Collector) observe(hs map[string]*hist, buckets []float64, dir string, v int64, now time.Time) {
	h := hs[dir]
	if h == nil {
		if !c.reserve(histSeries(buckets)) {
			return
		}
		h = newHistPtr(buckets, now)
		hs[dir] = h
	}
	h.observe(float64(v), buckets)
}

// talkSeconds is the talk time of a call if it was answered:
// talk_duration when sent, else ended_time - answered_time (times
// already checked, 0 when not sent). Unanswered calls have none, so the
// histogram's average is the average talk time of answered calls.
func (c *Collector) talkSeconds(e *wsi.CallCDR, answeredAt, endedAt int64) (int64, bool) {
	if e.TalkDuration.Set {
		return e.TalkDuration.Value, c.duration(e.TalkDuration.Value)
	}
	if answeredAt > 0 && endedAt > 0 {
		d := endedAt - answeredAt
		return d, c.duration(d)
	}
	return 0, false
}

// ringSeconds is the ring time of a call that rang (ring_time set or a
// positive ring_duration): ring_duration when sent, else from ring_time to
// answered_time, or to ended_time when unanswered.
func (c *Collector) ringSeconds(e *wsi.CallCDR, ringAt, answeredAt, endedAt int64) (int64, bool) {
	if ringAt <= 0 && e.RingDuration.Value <= 0 {
		if e.RingDuration.Value < 0 {
			c.bad = true
		}
		return 0, false
	}
	if e.RingDuration.Set {
		return e.RingDuration.Value, c.duration(e.RingDuration.Value)
	}
	end := answeredAt
	if end <= 0 {
		end = endedAt
	}
	if ringAt > 0 && end > 0 {
		d := end - ringAt
		return d, c.duration(d)
	}
	return 0, false
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
