package collector

import "time"

// Values no PBX can mean are not used. A timestamp further than a day from
// the PBX's clock (our clock corrected by the offset estimate, when the
// event arrived), a duration that is negative or longer than a day, an SLA
// time longer than a day: such a value is treated as not sent, and the
// event that carried it is counted once in
// portsip_wsi_events_ignored_total{reason="implausible"}. The rest of the
// event is applied, because the rest is what the PBX means:
//   - an enqueue time (queue_caller_status, a waiting_list entry of "1"
//     that showed a 56-year wait): the caller waits from when the event
//     arrived, as one sent without a timestamp;
//   - a leave time: the wait ends when the leave arrived; a wait that
//     would still be longer than a day is not observed (the leave counts);
//   - when an agent entered its state: when the event arrived;
//   - a call_cdr time or duration: the call is counted, a talk or ring
//     time built from it is not observed (talk_duration 2^63 froze
//     portsip_call_talk_seconds_sum: a float64 adds nothing to 2^63);
//     times out of order are a negative duration;
//   - sla_time_secs: the breach counts, the SLA time in force stays;
//   - an event's own time: no clock offset sample.
// A day keeps every value far below 2^53, where a float64 stops counting
// seconds exactly. A PBX whose clock is more than a day off has every time
// counted as implausible and its events timed by their arrival.

// maxPlausible is the longest duration, and the furthest a timestamp may
// be from the PBX's clock, in seconds.
const maxPlausible = int64(24 * time.Hour / time.Second)

// setWindow sets the PBX times the event that arrived at our time `at`
// may carry.
func (c *Collector) setWindow(at time.Time) {
	now := c.clock.pbx(at).Unix()
	c.window = [2]int64{now - maxPlausible, now + maxPlausible}
}

// stamp is a PBX timestamp (UNIX seconds) of the event being applied if
// it is plausible, else 0, which stands for not sent. 0 is not sent.
func (c *Collector) stamp(ts int64) int64 {
	if ts == 0 {
		return 0
	}
	if ts < c.window[0] || ts > c.window[1] {
		c.bad = true
		return 0
	}
	return ts
}

// duration reports whether d seconds is a plausible duration, marking the
// event being applied when it is not.
func (c *Collector) duration(d int64) bool {
	if d < 0 || d > maxPlausible {
		c.bad = true
		return false
	}
	return true
}
