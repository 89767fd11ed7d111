package wsi

import "iter"

// A Quirk is one compensation for a reading of the vendor's protocol page
// where it is silent or contradicts itself, counted in
// portsip_wsi_quirks_total{quirk} so an operator can see which reading
// their PBX follows. The decoder detects some (they travel in
// Header.Quirks); the collector detects the others and counts them all.
type Quirk uint8

// The quirks, in the order of Quirks. Who detects each is in brackets.
const (
	// A leave's timestamp is not after the caller's enqueue timestamp:
	// the wait ends when the event arrived (PBX clock). [collector]
	QuirkLeaveTimeRepeated Quirk = iota
	// An event named a queue only by queue_id before its number was known.
	// [collector]
	QuirkQueueIDOnly
	// An object repeated a key; the last value wins. [decoder]
	QuirkDuplicateKey
	// Presence ONLINE read as available. [collector]
	QuirkPresenceOnline
	// An extension not registered but push_online. [collector]
	QuirkPushOnline
	// A caller change for a waiting session that is neither an enqueue nor
	// a leave updated the caller instead of removing it. [collector]
	QuirkCallerUpdate
	// An end reason differing only by tense or suffix was normalised.
	// [collector]
	QuirkEndReasonSpelling
	// A second call_cdr for a recorded call, or a second leave of a caller
	// already gone: not counted again. [collector]
	QuirkDuplicateEvent
	// A value in another server version's spelling was normalised: a JSON
	// number where the page documents a string (ids before v16, the
	// extension id of extension_agent_status before v22.2.11) [decoder];
	// older call status, presence or agent state spellings [collector].
	QuirkVersionSpelling
	// A session came up with at least one topic refused. [collector]
	QuirkTopicsRefused

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

// Add puts q in the set.
func (s *QuirkSet) Add(q Quirk) { *s |= 1 << q }

// Has reports whether q is in the set.
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
