package collector

import (
	"math"
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// The PBX stamps events with its own clock, in whole seconds, and that
// clock may be minutes off ours. pbxClock estimates the offset (our clock
// minus the PBX's) so that every age or duration that compares now with a
// PBX timestamp is measured on the PBX's clock.
//
// Each event that carries the time it happened gives a sample: when we
// received it minus that time. A sample is the offset plus the delivery
// delay plus the part of a second the PBX's stamp dropped, so never below
// the offset: the estimate is the smallest sample of the last ten minutes,
// kept while no event brings a new one. Only times the page documents as
// the time of the event are used; a time that may be older (a leave may
// repeat the enqueue time, a breach's timestamp equals the caller's in the
// sample) would make the estimate too large whenever it is the only one in
// the window. A PBX clock set forward shows with its first sample; one
// set back once the window has passed the smaller samples before it.
// (ARCHITECTURE.md, "Readings of the vendor's silent spots".)
type pbxClock struct {
	slots  [clockSlots]clockSlot
	known  bool
	offset time.Duration
}

type clockSlot struct {
	minute int64 // UNIX minute of our clock, +1 (0: empty)
	min    time.Duration
}

const (
	clockSlots = 10 // one a minute: the window is ten minutes
	// maxClockOffset: a sample further off than this is not a clock that
	// is off but a time that is wrong.
	maxClockOffset = 24 * time.Hour
)

// sample adds what one event says: received at our time, stamped pbx
// (UNIX seconds) by the PBX.
func (k *pbxClock) sample(received time.Time, pbx int64) {
	if pbx <= 0 || pbx > math.MaxInt64/int64(time.Second) {
		return
	}
	d := received.Sub(time.Unix(pbx, 0))
	if d > maxClockOffset || d < -maxClockOffset {
		return
	}
	m := received.Unix()/60 + 1
	s := &k.slots[m%clockSlots]
	switch {
	case s.minute != m:
		*s = clockSlot{minute: m, min: d}
	case d < s.min:
		s.min = d
	default:
		return // changes nothing
	}
	best := d
	for _, s := range k.slots {
		if s.minute > m-clockSlots && s.minute <= m && s.min < best {
			best = s.min
		}
	}
	k.offset, k.known = best, true
}

// pbx converts a time of our clock to the PBX's clock.
func (k *pbxClock) pbx(t time.Time) time.Time { return t.Add(-k.offset) }

// ours converts a PBX timestamp (UNIX seconds) to our clock.
func (k *pbxClock) ours(pbx int64) time.Time { return time.Unix(pbx, 0).Add(k.offset) }

// eventTime is the latest time an event says it happened at the PBX
// (UNIX seconds), 0 when it carries none.
func eventTime(ev wsi.Event) int64 {
	switch e := ev.(type) {
	case *wsi.QueueCallerStatus:
		var t int64
		for i := range e.Callers {
			if e.Callers[i].Reason == reasonEnqueue {
				t = max(t, e.Callers[i].Timestamp)
			}
		}
		return t
	case *wsi.ExtensionStatus:
		var t int64
		for i := range e.Status {
			t = max(t, e.Status[i].Time)
		}
		return t
	case *wsi.ExtensionCall:
		return e.Time
	case *wsi.ExtensionPresence:
		return e.Time
	case *wsi.ExtensionAgentStatus:
		return e.Time
	case *wsi.CallStart:
		return e.Time
	case *wsi.CallCDR:
		return e.EndedTime
	}
	return 0
}
