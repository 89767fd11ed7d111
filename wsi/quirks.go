package wsi

import "iter"

// A Quirk is one compensation for a reading of the vendor's protocol page
// where it is silent or contradicts itself, counted in
// portsip_wsi_quirks_total{quirk} so that an operator sees which reading
// their PBX follows. The decoder finds some (they travel in Header.Quirks),
// the collector the others; the collector counts them all.
type Quirk uint8

// The quirks, in the order of Quirks; who finds each is in brackets.
const (
	QuirkLeaveTimeRepeated Quirk = iota // a leave's timestamp is not after the enqueue's: the wait ends at arrival [collector]
	QuirkQueueIDOnly                    // a queue named only by queue_id before its number was known [collector]
	QuirkDuplicateKey                   // an object repeated a key; the last value wins [decoder]
	QuirkPresenceOnline                 // presence ONLINE read as available [collector]
	QuirkPushOnline                     // an extension not registered but push_online [collector]
	QuirkCallerUpdate                   // a caller change that is neither enqueue nor leave updated the caller [collector]
	QuirkEndReasonSpelling              // an end reason differing only by tense or suffix, normalised [collector]
	QuirkDuplicateEvent                 // a second call_cdr of a call, or a second leave of a caller: not counted again [collector]
	// A value in another server version's spelling, normalised: a JSON
	// number where the page documents a string (ids before v16; the
	// extension id of extension_agent_status before v22.2.11) [decoder];
	// older call status, presence or agent state spellings [collector].
	QuirkVersionSpelling
	QuirkTopicsRefused // a session came up with a topic refused [collector]

	numQuirks
)

// Quirks lists every quirk's label value, indexed by Quirk.
var Quirks = []string{
	QuirkLeaveTimeRepeated: "leave_time_repeated",
	QuirkQueueIDOnly:       "queue_id_only",
	QuirkDuplicateKey:      "duplicate_key",
	QuirkPresenceOnline:    "presence_online",
	QuirkPushOnline:        "push_online",
	QuirkCallerUpdate:      "caller_update",
	QuirkEndReasonSpelling: "end_reason_spelling",
	QuirkDuplicateEvent:    "duplicate_event",
	QuirkVersionSpelling:   "version_spelling",
	QuirkTopicsRefused:     "topics_refused",
}

// String returns the quirk's label value.
func (q Quirk) String() string { return Quirks[q] }

// QuirkSet is a set of quirks, small enough to travel in every event.
type QuirkSet uint16

func (s *QuirkSet) Add(q Quirk)     { *s |= 1 << q }
func (s QuirkSet) Has(q Quirk) bool { return s&(1<<q) != 0 }

// All yields the quirks in the set, in the order of Quirks.
func (s QuirkSet) All() iter.Seq[Quirk] {
	return func(yield func(Quirk) bool) {
		for q := range numQuirks {
			if s.Has(q) && !yield(q) {
				return
			}
		}
	}
}
