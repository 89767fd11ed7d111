package wsitest

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Quirks are the readings of the vendor's silent or contradictory spots
// that the simulated PBX can speak instead of its default one. Each is
// something a real PBX plausibly sends; nobody outside PortSIP knows
// which. The zero value is the reading the simulator has always spoken
// (the vendor's samples taken at their word). Set them with
// Server.SetQuirks or TrafficConfig.Quirks; AllQuirks turns every one on.
//
// The quirks change only what goes on the wire. The state and the truth
// (QueueTruth, ExtensionTruth, CallTruth) stay what really happened, in
// true time: that is what an exporter's numbers are compared with
// (ARCHITECTURE.md, "The simulated PBX").
type Quirks struct {
	// LeaveRepeatsEnqueueTime: a caller's leave (agent_answered, hangup,
	// overflow, callback) carries the caller's enqueue timestamp, not the
	// time it left: the page never says which, and its samples reuse one
	// value.
	LeaveRepeatsEnqueueTime bool

	// ClockSkew is added to every time the PBX sends (timestamps, times,
	// CDR times): -2*time.Minute is a PBX clock two minutes behind.
	// Durations are not skewed.
	ClockSkew time.Duration

	// NewQueueIDOnly: a queue created after a session subscribed sends no
	// queue_status to it. The session learns the queue's number from
	// queue_created (which has no queue_id) while the queue's events name
	// it by queue_id alone, as they always do: the id and the number are
	// paired only by the snapshot of a later subscribe. Traffic then sends
	// a caller to each campaign queue it creates.
	NewQueueIDOnly bool

	// DuplicateKeys: objects repeat a key and the last value is the true
	// one. Extension management events repeat username with the same value
	// (as the vendor's extension_created sample does); extension_presence
	// sends presence, and call_cdr call_status, first with a stale value.
	DuplicateKeys bool

	// PresenceOnline: the available presence is sent as ONLINE (the v22.3
	// list) wherever it would be AVAILABLE (v22.2, and the v22.3 sample).
	PresenceOnline bool

	// PushOnly is read by Traffic only: every third extension that is not
	// an agent is a mobile-app user, reachable by push (push_online true)
	// whenever it is not registered. A Server sends push_online as
	// SetPushOnline set it, whatever this says.
	PushOnly bool

	// AdminGlobalsRefused: a system administrator is refused every global
	// topic but global_extension_management_events, as the page says in
	// one place ("can currently subscribe only to extension management
	// events") and contradicts in others.
	AdminGlobalsRefused bool

	// CallerUpdates: when a caller leaves a queue, the callers behind it
	// move up, and the PBX tells so with a queue_caller_status whose
	// callers have reason ReasonUpdate and their new positions. They keep
	// waiting.
	CallerUpdates bool

	// EndReasonsPastTense: the end reasons caller_disconnect and
	// callee_disconnect are sent as caller_disconnected and
	// callee_disconnected (the page lists both spellings).
	EndReasonsPastTense bool

	// Duplicates: every call_cdr and every leave of a queue caller is
	// delivered twice, the copy after the next event to the same session
	// (the vendor says of the same events' webhooks that order is not
	// guaranteed and duplicates happen).
	Duplicates bool

	// Spelling is the vocabulary of call status, agent state and extension
	// ids: the documented one, or another server version's.
	Spelling Spelling
}

// Spelling is the vocabulary one server version uses for enumerated values
// and ids.
type Spelling int

const (
	// SpellingDocumented is the page's: call_status ON_CALL, RINGING or
	// empty; agent states READY, NOT_READY, QUEUE_CALL, ...; ids as
	// strings.
	SpellingDocumented Spelling = iota
	// SpellingTitleCase is late v16's call_status ("On Call", "Ringing",
	// empty) and the prose's agent states ("Ready", "Not Ready", "Queue
	// Call", "Wrap Up", ...); extension ids are JSON numbers, as
	// extension_agent_status sent them before v22.2.11. Traffic also sends
	// presence BREAK for an agent on a break (an early v22.3 list).
	SpellingTitleCase
	// SpellingLowerCase is earlier v16's call_status (on_call, ringing,
	// none for no call) and agent states in lower case; extension ids are
	// JSON numbers.
	SpellingLowerCase
)

// ReasonUpdate is the reason of a caller update (Quirks.CallerUpdates):
// none the vendor documents, as a PBX sending updates would have to use.
const ReasonUpdate = "update"

// AllQuirks is every reading on at once, with the PBX clock two minutes
// behind and the title-case spelling: what `demo --demo.quirks` serves.
// One is left off: the exporter exports the past tense of end reasons and
// counts the present tense, which the PBX speaks by default, as the quirk
// end_reason_spelling.
func AllQuirks() Quirks {
	return Quirks{
		LeaveRepeatsEnqueueTime: true,
		ClockSkew:               -2 * time.Minute,
		NewQueueIDOnly:          true,
		DuplicateKeys:           true,
		PresenceOnline:          true,
		PushOnly:                true,
		AdminGlobalsRefused:     true,
		CallerUpdates:           true,
		Duplicates:              true,
		Spelling:                SpellingTitleCase,
	}
}

// SetQuirks makes the PBX speak q from now on. Frames already sent stay
// as they were; subscriptions already accepted stay accepted.
func (s *Server) SetQuirks(q Quirks) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quirks = q
	if !q.Duplicates {
		s.held = nil
	}
}

// Quirks returns the readings the PBX speaks now.
func (s *Server) Quirks() Quirks {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.quirks
}

// ---- spelling on the wire (called with s.mu held) ----

// stamp is a time as the PBX sends it: UNIX seconds of its own clock, "0"
// for a time that did not happen.
func (s *Server) stamp(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(t.Add(s.quirks.ClockSkew).Unix(), 10)
}

// agentState spells a documented agent state (READY, NOT_READY, ...).
func (s *Server) agentState(state string) string {
	switch s.quirks.Spelling {
	case SpellingTitleCase:
		return titleCase(state)
	case SpellingLowerCase:
		return strings.ToLower(state)
	}
	return state
}

// callStatus spells a documented call status (ON_CALL, RINGING, "").
func (s *Server) callStatus(status string) string {
	switch s.quirks.Spelling {
	case SpellingTitleCase:
		return titleCase(status)
	case SpellingLowerCase:
		if status == "" {
			return "none"
		}
		return strings.ToLower(status)
	}
	return status
}

func (s *Server) presence(p string) string {
	if s.quirks.PresenceOnline && p == "AVAILABLE" {
		return "ONLINE"
	}
	return p
}

func (s *Server) endReason(r string) string {
	if s.quirks.EndReasonsPastTense && (r == "caller_disconnect" || r == "callee_disconnect") {
		return r + "ed"
	}
	return r
}

// extID is an extension id: a JSON string, or a JSON number in the
// spellings of servers before v22.2.11 (ids that are not decimal stay
// strings: a test chose them).
func (s *Server) extID(id string) json.RawMessage {
	if s.quirks.Spelling != SpellingDocumented && id != "" && strings.Trim(id, "0123456789") == "" {
		return json.RawMessage(id)
	}
	return mustMarshal(id)
}

// titleCase turns NOT_READY into "Not Ready".
func titleCase(v string) string {
	words := strings.Split(strings.ToLower(v), "_")
	for i, w := range words {
		if w != "" {
			words[i] = strings.ToUpper(w[:1]) + w[1:]
		}
	}
	return strings.Join(words, " ")
}

// withDecoy repeats key in a JSON object: "key":decoy goes right before
// the key's first occurrence, so that the true value comes last. The
// payloads it is used on have the key once, at the top level.
func withDecoy(frame []byte, key string, decoy any) []byte {
	k := []byte(strconv.Quote(key) + ":")
	i := bytes.Index(frame, k)
	if i < 0 {
		return frame
	}
	out := make([]byte, 0, len(frame)+len(k)+32)
	out = append(out, frame[:i]...)
	out = append(out, k...)
	out = append(out, mustMarshal(decoy)...)
	out = append(out, ',')
	return append(out, frame[i:]...)
}
