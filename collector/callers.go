package collector

import (
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

// addCaller puts a caller on the waiting list, enqueued at its timestamp
// or, without one, when the event arrived (PBX clock). A caller with
// neither a session id nor a number cannot be followed to its leave, so it
// is not tracked (its reason is still counted).
func (c *Collector) addCaller(q *queue, k string, w *wsi.QueueCaller, arrival float64) {
	if k == "" {
		return
	}
	at := float64(w.Timestamp)
	if w.Timestamp <= 0 {
		at = arrival
	}
	if len(q.waiting) >= c.cfg.Limits.CallersPerQueue {
		c.drop(EntityCaller)
		return
	}
	q.waiting[c.key(k)] = caller{enqueued: at, callback: w.Type == "callback"}
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
		k := c.label(callerKey(u))
		w, waiting := q.waiting[k]
		waiting = waiting && k != ""
		switch {
		case reason == reasonEnqueue:
			c.enqueue(q, k, u, w, waiting, arrival)
		case outcomeOf(reason) >= 0:
			c.leave(q, k, u, reason, w, waiting, arrival)
		default:
			// Neither an enqueue nor a leave: a change of a caller who
			// is still waiting (its kind, its position).
			q.callers[reason]++
			if waiting {
				w.callback = u.Type == "callback"
				q.waiting[k] = w
				c.quirk(wsi.QuirkCallerUpdate)
			}
		}
	}
}

func (c *Collector) enqueue(q *queue, k string, u *wsi.QueueCaller, w caller, waiting bool, arrival float64) {
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
		if u.Timestamp > 0 && u.Timestamp < q.left.vals[i] {
			// An enqueue older than the caller's leave came late: the
			// caller is counted, not made to wait again.
			return
		}
		q.left.drop(i) // it called again
	}
	c.addCaller(q, k, u, arrival)
}

// leave takes a caller off the waiting list and observes its wait: from
// its enqueue to the leave's timestamp, or to when the event arrived (PBX
// clock) if the timestamp is missing or not after the enqueue (the PBX
// repeated the enqueue time). A second leave of a caller already gone is
// not counted again; the leave of a caller enqueued before we listened is
// counted without a wait.
func (c *Collector) leave(q *queue, k string, u *wsi.QueueCaller, reason string, w caller, waiting bool, arrival float64) {
	if k != "" {
		h := c.hash(k)
		if q.left.has(h) {
			// Never a waiting caller's: forgotten when it called again.
			c.quirk(wsi.QuirkDuplicateEvent)
			return
		}
		at := u.Timestamp
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
	left := float64(u.Timestamp)
	switch {
	case u.Timestamp <= 0:
		left = arrival
	case left <= w.enqueued:
		left = arrival
		c.quirk(wsi.QuirkLeaveTimeRepeated)
	}
	wait := max(0, left-w.enqueued)
	o := outcomeOf(reason)
	q.wait[o].observe(wait, WaitBuckets)
	if o == outcomeAnswered && wait <= q.slaTime(c.cfg.DefaultSLATime) {
		q.answeredInSLA++
	}
}

// pbxSeconds is a time as UNIX seconds with their fraction.
func pbxSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
