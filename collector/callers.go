package collector

import (
	"strings"
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

const outcomeAnswered = 0

// outcomeOf is the outcome of a leave reason, -1 for a reason that is no
// leave.
func outcomeOf(reason string) int {
	switch reason {
	case reasonAnswered:
		return outcomeAnswered
	case reasonHangup:
		return 1
	case reasonOverflow:
		return 2
	case reasonCallback:
		return 3
	}
	return -1
}

// caller is one entry of a queue's waiting list.
type caller struct {
	enqueued float64 // UNIX seconds, PBX clock
	callback bool
}

func callerKey(w *wsi.QueueCaller) string {
	if w.SessionID != "" {
		return w.SessionID
	}
	return w.CallerNumber
}

// isCallerReason reports whether r is one of the documented reasons,
// whose series every queue has.
func isCallerReason(r string) bool { return outcomeOf(r) >= 0 || r == reasonEnqueue }

// addCaller puts a caller on the waiting list, enqueued at ts (a
// plausible PBX time, 0 when not sent) or, without one, when the event
// arrived (PBX clock). A caller with neither a session id nor a number
// cannot be followed to its leave, so it is not tracked (its reason is
// still counted). Waiting callers are calls: all queues together hold at
// most Limits.ActiveCalls.
func (c *Collector) addCaller(q *queue, k string, w *wsi.QueueCaller, ts int64, arrival float64) {
	if k == "" {
		return
	}
	at := float64(ts)
	if ts <= 0 {
		at = arrival
	}
	x := caller{enqueued: at, callback: w.Type == "callback"}
	if _, ok := q.waiting[k]; ok { // a snapshot listing it twice
		q.waiting[k] = x
		return
	}
	if len(q.waiting) >= c.cfg.Limits.CallersPerQueue || c.nWaiting >= c.cfg.Limits.ActiveCalls {
		c.drop(EntityCaller)
		return
	}
	q.waiting[strings.Clone(k)] = x
	c.nWaiting++
}

func (c *Collector) queueCallerStatus(e *wsi.QueueCallerStatus, now time.Time) {
	q := c.queueEvent(e.TenantID, e.QueueID, e.QueueNumber, now)
	if q == nil {
		return
	}
	arrival := pbxSeconds(c.clock.pbx(received(&e.Header, now)))
	for i := range e.Callers {
		u := &e.Callers[i]
		reason := c.enum(c.enums.callerReason, u.Reason)
		k, w, waiting := findKey(c, q.waiting, callerKey(u))
		waiting = waiting && k != ""
		ts := c.stamp(u.Timestamp)
		switch {
		case reason.v == reasonEnqueue:
			c.enqueue(q, k, u, ts, w, waiting, arrival)
		case outcomeOf(reason.v) >= 0:
			c.leave(q, k, ts, reason.v, w, waiting, arrival)
		default:
			// Neither an enqueue nor a leave: a change of a caller who
			// is still waiting (its kind, its position).
			c.countReason(q, reason.v)
			if waiting {
				w.callback = u.Type == "callback"
				q.waiting[k] = w
				c.quirk(wsi.QuirkCallerUpdate)
			}
		}
	}
}

// countReason counts a caller change under its reason, paying for the
// series of a reason the PBX invented.
func (c *Collector) countReason(q *queue, reason string) {
	if n, ok := q.callers[reason]; ok {
		q.callers[reason] = n + 1
	} else if isCallerReason(reason) || c.reserveIn(q, 1) {
		q.callers[reason] = 1
	}
}

func (c *Collector) enqueue(q *queue, k string, u *wsi.QueueCaller, ts int64, w caller, waiting bool, arrival float64) {
	if waiting {
		// The same enqueue again: counted once, its kind kept current.
		w.callback = u.Type == "callback"
		q.waiting[k] = w
		c.quirk(wsi.QuirkDuplicateEvent)
		return
	}
	q.callers[reasonEnqueue]++
	if k == "" {
		return
	}
	if i := q.left.find(c.hash(k)); i >= 0 {
		if ts > 0 && ts < q.left.vals[i] {
			// An enqueue older than the caller's leave came late: the
			// caller is counted, not made to wait again.
			return
		}
		q.left.drop(i) // it called again
	}
	c.addCaller(q, k, u, ts, arrival)
}

// repeatedMin is how much longer than the leave's timestamp says the wait
// from enqueue to the leave's arrival must be for the leave to count as
// one whose timestamp repeated the enqueue time: timestamps are whole
// seconds, and a leave of a caller who waited less than a second (an
// instant overflow) rightly has its enqueue time.
const repeatedMin = 2

// leave takes a caller off the waiting list and observes its wait: from
// its enqueue to the leave's timestamp ts, or to when the event arrived
// (PBX clock) if ts is missing or not after the enqueue (the PBX repeated
// the enqueue time). A second leave of a caller already gone is not
// counted again; the leave of a caller enqueued before we listened is
// counted without a wait.
func (c *Collector) leave(q *queue, k string, ts int64, reason string, w caller, waiting bool, arrival float64) {
	if k != "" {
		h := c.hash(k)
		if q.left.has(h) {
			// Never a waiting caller's: forgotten when it called again.
			c.quirk(wsi.QuirkDuplicateEvent)
			return
		}
		at := ts
		if at <= 0 {
			at = int64(arrival)
		}
		q.left.addNew(h, at)
	}
	q.callers[reason]++
	if !waiting {
		return
	}
	delete(q.waiting, k)
	c.nWaiting--
	left := float64(ts)
	switch {
	case ts <= 0:
		left = arrival
	case left <= w.enqueued:
		left = arrival
		if arrival-w.enqueued >= repeatedMin {
			c.quirk(wsi.QuirkLeaveTimeRepeated)
		}
	}
	wait := max(0, left-w.enqueued)
	if wait > float64(maxPlausible) {
		c.bad = true
		return
	}
	o := outcomeOf(reason)
	q.wait[o].observe(wait, WaitBuckets)
	if o == outcomeAnswered && wait <= q.slaTime(c.cfg.DefaultSLATime) {
		q.answeredInSLA++
	}
}

// pbxSeconds is a time as UNIX seconds with their fraction.
func pbxSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
