package wsi

import (
	"maps"
	"slices"
	"strings"
)

// What the decoder reads: for each event type and array entry, the keys it
// decodes and into which field. Everything else is skipped unread.

// A key numbers a name the decoder knows (a key, an event type or an
// enumeration value), so that objects note the keys seen in a bit set and
// plans find a key's reader by index.
type key uint8

const kUnknown key = 0

var (
	keyNames = []string{""}
	keySlots [512]key // keys by keyHash, open addressing; 0 is free
)

// keyHash hashes a name's length and three of its bytes: a Go map, hashing
// every byte, took a fifth of decoding (ARCHITECTURE.md, Decisions and
// their measured reasons).
func keyHash(b []byte) uint32 {
	h := uint32(len(b)) << 24
	if len(b) > 0 {
		h ^= uint32(b[0])<<16 ^ uint32(b[len(b)/2])<<8 ^ uint32(b[len(b)-1])
	}
	return (h * 0x9e3779b1 >> 16) % uint32(len(keySlots))
}

// slot returns the index of the slot holding the name b, or of the free
// slot where it belongs.
func slot(b []byte) uint32 {
	i := keyHash(b)
	for keySlots[i] != kUnknown && keyNames[keySlots[i]] != string(b) {
		i = (i + 1) % uint32(len(keySlots))
	}
	return i
}

// lookup returns the number of the name b, kUnknown when it has none.
func lookup(b []byte) key { return keySlots[slot(b)] }

// keyOf returns the number of a name, numbering it on first use.
func keyOf(name string) key {
	i := slot([]byte(name))
	if keySlots[i] == kUnknown {
		if len(keyNames) > len(keySlots)/2 || len(keyNames) > 255 {
			panic("wsi: too many names")
		}
		keySlots[i] = key(len(keyNames))
		keyNames = append(keyNames, name)
	}
	return keySlots[i]
}

type keySet [4]uint64

func (s *keySet) has(k key) bool { return s[k/64]&(1<<(k%64)) != 0 }
func (s *keySet) add(k key)      { s[k/64] |= 1 << (k % 64) }

// fields maps each key an object's decoding reads to what reads it.
type fields[T any] map[string]func(*decoder, *T)

// compile makes the plan of fs. ids are the keys of which an array entry
// must hold one to be kept.
func compile[T any](fs fields[T], ids ...string) *plan[T] {
	p := new(plan[T])
	// In name order, not the map's: keys are numbered on first use, and
	// the same numbers in every run keep the tables, and benchmarks, alike.
	for _, name := range slices.Sorted(maps.Keys(fs)) {
		p.read[keyOf(name)] = fs[name]
	}
	for _, name := range ids {
		p.ids.add(keyOf(name))
	}
	return p
}

// The entries of arrays.
var (
	queueCallers = compile(fields[QueueCaller]{
		"session_id":    func(d *decoder, c *QueueCaller) { c.SessionID = d.str() },
		"caller_number": func(d *decoder, c *QueueCaller) { c.CallerNumber = d.str() },
		"timestamp":     func(d *decoder, c *QueueCaller) { c.Timestamp, _ = d.int() },
		"type":          func(d *decoder, c *QueueCaller) { c.Type = d.lowerEnum() },
		"reason":        func(d *decoder, c *QueueCaller) { c.Reason = d.lowerEnum() },
	}, "session_id", "caller_number", "reason")

	queueAgents = compile(fields[QueueAgent]{
		"state":                  func(d *decoder, a *QueueAgent) { a.State = d.enum() },
		"agent_extension_number": func(d *decoder, a *QueueAgent) { a.Extension = d.str() },
		"timestamp":              func(d *decoder, a *QueueAgent) { a.Timestamp, _ = d.int() },
	}, "agent_extension_number")

	// removed_agents: objects as documented, or (tolerated) bare numbers.
	removedAgents = bare(compile(fields[string]{"agent_extension_number": readStr}, "agent_extension_number"))

	extensionStates = compile(fields[ExtensionState]{
		"extension":    func(d *decoder, s *ExtensionState) { s.Extension = d.str() },
		"extension_id": func(d *decoder, _ *ExtensionState) { d.idOnly() },
		"call_status":  func(d *decoder, s *ExtensionState) { s.CallStatus = d.callStatus() },
		"online":       func(d *decoder, s *ExtensionState) { s.Online = d.bool() },
		"push_online":  func(d *decoder, s *ExtensionState) { s.PushOnline = d.bool() },
		"presence":     func(d *decoder, s *ExtensionState) { s.Presence = d.enum() },
		"time":         func(d *decoder, s *ExtensionState) { s.Time, _ = d.int() },
	}, "extension")

	agentQueueStates = compile(fields[AgentQueueState]{
		"queue_number": func(d *decoder, s *AgentQueueState) { s.QueueNumber = d.str() },
		"status":       func(d *decoder, s *AgentQueueState) { s.Status = d.enum() },
	}, "queue_number")
)

type eventDecoder func(d *decoder, typ string) Event

// event makes the decoder of an event type from the keys it reads, and the
// header's.
func event[T any, P interface {
	*T
	Event
}](fs fields[T]) eventDecoder {
	fs["tenant_id"] = func(d *decoder, e *T) { P(e).Head().TenantID = d.str() }
	fs["event_type"] = func(d *decoder, _ *T) { d.noteType() }
	p := compile(fs)
	return func(d *decoder, typ string) Event {
		e := P(new(T))
		e.Head().EventType = typ
		object(d, (*T)(e), p)
		return e
	}
}

// eventTypes lists every event type the package knows, in the order of
// KnownEventTypes: the tenant topic that carries it (the global one is
// "global_" and the same name), and what its events carry.
var eventTypes = []struct {
	topic  string
	types  []string
	decode eventDecoder
}{
	{TopicQueueEvents, []string{TypeQueueStatus}, event(fields[QueueStatus]{
		"queue_id":     func(d *decoder, e *QueueStatus) { e.QueueID = d.str() },
		"queue_number": func(d *decoder, e *QueueStatus) { e.QueueNumber = d.str() },
		"queue_name":   func(d *decoder, e *QueueStatus) { e.QueueName = d.str() },
		"waiting_list": func(d *decoder, e *QueueStatus) { e.Waiting = entries(d, queueCallers) },
		"agents":       func(d *decoder, e *QueueStatus) { e.Agents = entries(d, queueAgents) },
	})},
	{TopicQueueEvents, []string{TypeQueueCallerStatus}, event(fields[QueueCallerStatus]{
		"queue_id":        func(d *decoder, e *QueueCallerStatus) { e.QueueID = d.str() },
		"queue_number":    func(d *decoder, e *QueueCallerStatus) { e.QueueNumber = d.str() },
		"updated_callers": func(d *decoder, e *QueueCallerStatus) { e.Callers = entries(d, queueCallers) },
	})},
	{TopicQueueEvents, []string{TypeQueueAgentStatus}, event(fields[QueueAgentStatus]{
		"queue_id":       func(d *decoder, e *QueueAgentStatus) { e.QueueID = d.str() },
		"queue_number":   func(d *decoder, e *QueueAgentStatus) { e.QueueNumber = d.str() },
		"updated_agents": func(d *decoder, e *QueueAgentStatus) { e.Updated = entries(d, queueAgents) },
		"removed_agents": func(d *decoder, e *QueueAgentStatus) { e.Removed = entries(d, removedAgents) },
	})},
	{TopicQueueEvents, []string{TypeQueueSLABreached}, event(fields[QueueSLABreached]{
		"queue_id":      func(d *decoder, e *QueueSLABreached) { e.QueueID = d.str() },
		"queue_number":  func(d *decoder, e *QueueSLABreached) { e.QueueNumber = d.str() },
		"sla_time_secs": func(d *decoder, e *QueueSLABreached) { e.SLATimeSecs, _ = d.int() },
		"timestamp":     func(d *decoder, e *QueueSLABreached) { e.Timestamp, _ = d.int() },
	})},
	{TopicQueueManagementEvents, []string{TypeQueueCreated, TypeQueueUpdated, TypeQueueDestroy}, event(fields[QueueManagement]{
		"queue_id":     func(d *decoder, e *QueueManagement) { e.QueueID = d.str() },
		"queue_number": func(d *decoder, e *QueueManagement) { e.QueueNumber = d.str() },
		"queue_name":   func(d *decoder, e *QueueManagement) { e.QueueName = d.str() },
	})},
	{TopicExtensionEvents, []string{TypeExtensionStatus}, event(fields[ExtensionStatus]{
		"status": func(d *decoder, e *ExtensionStatus) { e.Status = entries(d, extensionStates) },
	})},
	{TopicExtensionEvents, []string{TypeExtensionCall}, event(fields[ExtensionCall]{
		"extension":    func(d *decoder, e *ExtensionCall) { e.Extension = d.str() },
		"extension_id": func(d *decoder, _ *ExtensionCall) { d.idOnly() },
		"call_status":  func(d *decoder, e *ExtensionCall) { e.CallStatus = d.callStatus() },
		"time":         func(d *decoder, e *ExtensionCall) { e.Time, _ = d.int() },
	})},
	{TopicExtensionEvents, []string{TypeExtensionPresence}, event(fields[ExtensionPresence]{
		"extension":    func(d *decoder, e *ExtensionPresence) { e.Extension = d.str() },
		"extension_id": func(d *decoder, _ *ExtensionPresence) { d.idOnly() },
		"presence":     func(d *decoder, e *ExtensionPresence) { e.Presence = d.enum() },
		"time":         func(d *decoder, e *ExtensionPresence) { e.Time, _ = d.int() },
	})},
	{TopicExtensionEvents, []string{TypeExtensionAgentStatus}, event(fields[ExtensionAgentStatus]{
		"extension":    func(d *decoder, e *ExtensionAgentStatus) { e.Extension = d.str() },
		"extension_id": func(d *decoder, _ *ExtensionAgentStatus) { d.idOnly() },
		"time":         func(d *decoder, e *ExtensionAgentStatus) { e.Time, _ = d.int() },
		"agent_status": func(d *decoder, e *ExtensionAgentStatus) { e.AgentStatus = entries(d, agentQueueStates) },
	})},
	{"extension_management_events", []string{TypeExtensionCreated, TypeExtensionUpdated, TypeExtensionDestroyed}, event(fields[ExtensionManagement]{
		"extension_number": func(d *decoder, e *ExtensionManagement) { e.ExtensionNumber = d.str() },
		"extension_id":     func(d *decoder, _ *ExtensionManagement) { d.idOnly() },
	})},
	{TopicCDREvents, []string{TypeCallStart, TypeCallUpdateInfo}, event(fields[CallStart]{
		"time":       func(d *decoder, e *CallStart) { e.Time, _ = d.int() },
		"session_id": func(d *decoder, e *CallStart) { e.SessionID = d.str() },
		"cdr_id":     func(d *decoder, e *CallStart) { e.CDRID = d.str() },
		"call_id":    func(d *decoder, e *CallStart) { e.CallID = d.str() },
		"direction":  func(d *decoder, e *CallStart) { e.Direction = d.enum() },
	})},
	{TopicCDREvents, []string{TypeCallCDR}, event(fields[CallCDR]{
		"tenant_name":   func(d *decoder, e *CallCDR) { e.TenantName = d.str() },
		"session_id":    func(d *decoder, e *CallCDR) { e.SessionID = d.str() },
		"call_id":       func(d *decoder, e *CallCDR) { e.CallID = d.str() },
		"cdr_id":        func(d *decoder, e *CallCDR) { e.CDRID = d.str() },
		"ring_time":     func(d *decoder, e *CallCDR) { e.RingTime, _ = d.int() },
		"answered_time": func(d *decoder, e *CallCDR) { e.AnsweredTime, _ = d.int() },
		"ended_time":    func(d *decoder, e *CallCDR) { e.EndedTime, _ = d.int() },
		"ring_duration": func(d *decoder, e *CallCDR) { e.RingDuration.Value, e.RingDuration.Set = d.int() },
		"talk_duration": func(d *decoder, e *CallCDR) { e.TalkDuration.Value, e.TalkDuration.Set = d.int() },
		"call_status":   func(d *decoder, e *CallCDR) { e.CallStatus = d.enum() },
		"ended_reason":  func(d *decoder, e *CallCDR) { e.EndedReason = d.enum() },
		"end_reason": func(d *decoder, e *CallCDR) {
			if v := d.enum(); !d.seen.has(kEndedReason) {
				e.EndedReason = v
			}
		},
		"direction":  func(d *decoder, e *CallCDR) { e.Direction = d.enum() },
		"trunk_name": func(d *decoder, e *CallCDR) { e.TrunkName = d.str() },
	})},
	{TopicCDREvents, []string{TypeCDRTargetAdd, TypeCDRTargetRinging, TypeCDRTargetAnswer,
		TypeCDRTargetNoAnswer, TypeCDRTargetFail, TypeCDRTargetEnd}, event(fields[CDRTarget]{
		"session_id": func(d *decoder, _ *CDRTarget) { d.idOnly() },
		"cdr_id":     func(d *decoder, _ *CDRTarget) { d.idOnly() },
		"call_id":    func(d *decoder, _ *CDRTarget) { d.idOnly() },
	})},
}

var (
	kEndedReason = keyOf("ended_reason")
	// Made in init: the decoders refer to them (noteType).
	eventDecoders [256]eventDecoder // by the key of the type's name
	eventTopics   [256]string
	unknownEvent  eventDecoder
)

func init() {
	for _, e := range eventTypes {
		KnownEventTypes = append(KnownEventTypes, e.types...)
		for _, typ := range e.types {
			eventDecoders[keyOf(typ)], eventTopics[keyOf(typ)] = e.decode, e.topic
		}
	}
	unknownEvent = event(fields[Unknown]{})
	// Documented keys no event carries, known so that a repeated one is
	// noticed (duplicate_key); and the values PBXs send, interned so that
	// decoding them allocates nothing.
	for _, name := range strings.Fields(`disp_name email username department enabled
		presence_note caller_name caller callee caller_display_name callee_display_name
		caller_domain callee_domain total_callers_breached waiting_callers did did_cid
		outbound_caller_id user_data status_code call_targets call_type destination cost

		READY NOT_READY QUEUE_CALL OTHER_CALL WRAP_UP BREAK LUNCH LOGGED_OUT OFFLINE
		ONLINE AVAILABLE BUSINESS_TRIP DO_NOT_DISTURB AWAY ON_CALL RINGING on_call none true false
		normal callback enqueue agent_answered overflow hangup
		answered noanswer fail ext in out in2out internal inbound outbound inbound_outbound
		None callee_disconnect callee_disconnected caller_disconnect caller_disconnected
		replaced referred redirected blind_transfer_complete attended_transfer_complete cancelled`) {
		keyOf(name)
	}
}

// eventType returns the type named b, as a constant when it is known, and
// its decoder; "" for an empty name.
func eventType(b []byte) (string, eventDecoder) {
	if k := lookup(b); eventDecoders[k] != nil {
		return keyNames[k], eventDecoders[k]
	}
	if len(b) == 0 {
		return "", nil
	}
	return string(b), unknownEvent
}

// intern returns the known name b as a constant, so that decoding the
// values PBXs send allocates nothing; anything else is copied.
func intern(b []byte) string {
	if k := lookup(b); k != kUnknown {
		return keyNames[k]
	}
	return string(b)
}

// reply is a Reply being decoded.
type reply struct {
	Reply
	statusSet bool
}

var replyKeys = compile(fields[reply]{
	"command": func(d *decoder, r *reply) {
		r.Command = ""
		if d.peekByte() == '"' {
			r.Command = string(d.strBytes())
		} else {
			d.skipValue()
		}
	},
	"id":     func(d *decoder, r *reply) { r.ID = d.str() },
	"status": func(d *decoder, r *reply) { r.Status, r.statusSet = d.int() },
	// The shape of an error is undocumented; whatever it is, it is the
	// text an operator needs to see: a string's text, or the JSON as sent.
	"error": func(d *decoder, r *reply) {
		if c := d.peekByte(); c == '"' || c == 'n' {
			r.Error = d.str()
			return
		}
		start := d.pos
		d.skipValue()
		r.Error = string(d.data[start:d.pos])
	},
	// An array of strings, or one string.
	"topics": func(d *decoder, r *reply) {
		if r.Topics = nil; d.peekByte() == '"' {
			r.Topics = []string{d.str()}
		} else {
			r.Topics = entries(d, replyTopics)
		}
	},
})

var replyTopics = bare(new(plan[string]))

// bare lets p's arrays hold bare strings and numbers.
func bare(p *plan[string]) *plan[string] {
	p.bare = readStr
	return p
}

func readStr(d *decoder, s *string) { *s = d.str() }

func (d *decoder) reply() *Reply {
	r := new(reply)
	object(d, r, replyKeys)
	if r.Command == "" {
		d.invalidf("command: want a non-empty string")
	}
	if !r.statusSet && r.Error != "" {
		r.Status = -1
	}
	return &r.Reply
}
