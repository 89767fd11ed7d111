package wsi

import (
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// Reasons a frame is rejected, as counted by portsip_wsi_invalid_messages_total.
const (
	ReasonMalformedJSON = "malformed_json" // not a JSON object
	ReasonInvalidEvent  = "invalid_event"  // no event_type/command, or a key of the wrong type
	ReasonBinaryFrame   = "binary_frame"   // a binary WebSocket frame
	ReasonOversized     = "oversized"      // larger than the configured limit
)

// InvalidReasons lists every reason, in a stable order.
var InvalidReasons = []string{ReasonMalformedJSON, ReasonInvalidEvent, ReasonBinaryFrame, ReasonOversized}

// DecodeError says why a frame was rejected.
type DecodeError struct {
	Reason string // one of the Reason* constants
	Err    error
}

func (e *DecodeError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *DecodeError) Unwrap() error { return e.Err }

// Decode decodes one text frame. Exactly one of the results is non-nil: an
// event, a command reply, or a *DecodeError.
//
// A frame that is not exactly one JSON object (RFC 8259, nesting at most
// 10000 deep, as encoding/json accepts) is rejected as ReasonMalformedJSON.
// A JSON object is rejected as ReasonInvalidEvent when it has neither a
// non-empty string event_type nor command, or when a key the package knows
// holds a value of the wrong JSON type.
//
// Decoding is tolerant where PBX versions differ:
//   - ids and other string keys accept JSON numbers (as their literal text);
//   - integer keys accept JSON integers and strings holding one ("21"); an
//     empty string or null means absent (OptInt.Set false);
//   - booleans accept true/false, 1/0 and those as strings;
//   - null is the same as an absent key; unknown keys are ignored;
//   - a key repeated in one object takes its last value, as encoding/json
//     does (the vendor's own extension_created sample repeats username),
//     and the event carries QuirkDuplicateKey;
//   - a JSON number read into a string (an id or number the vendor
//     documents as a string) marks the event QuirkVersionSpelling;
//   - did_cid and end_reason are older spellings of did and ended_reason
//     (call_targets document end_reason); when a frame has both, the
//     documented spelling wins;
//   - user_data may be any JSON value; a non-string is kept as its JSON text.
//
// Enumerations are passed as sent, except QueueCaller.Type and Reason,
// which are lower-cased; there a value listing alternatives ("normal/callback",
// the vendor sample's placeholder) names no single value and decodes as "".
//
// Strings are unescaped like encoding/json does, invalid UTF-8 included
// (replaced by U+FFFD). Decode is safe for concurrent use and keeps no
// reference to data.
func Decode(data []byte) (ev Event, rep *Reply, err error) {
	ev, rep, _, err = decode(data, false)
	return ev, rep, err
}

// utf8BOM is the byte order mark some JSON producers put first.
const utf8BOM = "\xef\xbb\xbf"

// decodeNext decodes the first JSON object of a text frame and returns the
// rest of the frame after it. It is what the Client reads frames with,
// more forgiving than Decode where the undocumented framing might differ
// on a PBX: a leading byte order mark is skipped (RFC 8259 allows a parser
// to ignore one), and objects sent back to back in one frame, with or
// without white space between them, are each decoded. rest is empty when
// the frame is done, and always after a ReasonMalformedJSON error: after a
// syntax error nothing in the frame can be trusted.
func decodeNext(frame []byte) (ev Event, rep *Reply, rest []byte, err error) {
	if len(frame) >= len(utf8BOM) && string(frame[:len(utf8BOM)]) == utf8BOM {
		frame = frame[len(utf8BOM):]
	}
	return decode(frame, true)
}

func decode(data []byte, several bool) (ev Event, rep *Reply, rest []byte, err error) {
	d := decoder{data: data, several: several}
	defer func() {
		if r := recover(); r != nil {
			se, ok := r.(*SyntaxError)
			if !ok {
				panic(r)
			}
			ev, rep, rest, err = nil, nil, nil, &DecodeError{Reason: ReasonMalformedJSON, Err: se}
		}
	}()
	ev, rep = d.frame()
	rest = data[d.pos:]
	if d.invalid != nil {
		return nil, nil, rest, &DecodeError{Reason: ReasonInvalidEvent, Err: d.invalid}
	}
	if ev != nil {
		ev.Head().Quirks = d.quirks
	}
	return ev, rep, rest, nil
}

// SyntaxError is why a frame is not JSON, with the byte offset it was
// found at. It is the Err of a ReasonMalformedJSON DecodeError.
type SyntaxError struct {
	Offset int
	msg    string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("offset %d: %s", e.Offset, e.msg) }

// maxDepth is encoding/json's nesting limit: frames it calls invalid are
// rejected here too, and the skipper's recursion stays bounded.
const maxDepth = 10000

// decoder reads one frame. Syntax errors panic with *SyntaxError (recovered
// in Decode) because nothing after one can be trusted; type errors are
// recorded in invalid and decoding goes on, so that a frame which is also
// not JSON is counted as malformed_json.
type decoder struct {
	data    []byte
	pos     int
	depth   int
	invalid error
	scratch []byte // unescaped strings; valid until the next string is read
	name    []byte // the key of the member being read
	several bool   // another object may follow the first (decodeNext)
	quirks  QuirkSet

	// The event_type of the last occurrence of the key: when a frame
	// repeats it, the last one decides the event's type.
	lastType  string
	typeCount int
}

func (d *decoder) fail(msg string) {
	panic(&SyntaxError{Offset: d.pos, msg: msg})
}

func (d *decoder) invalidf(format string, args ...any) {
	if d.invalid == nil {
		d.invalid = fmt.Errorf(format, args...)
	}
}

// frame decodes the whole frame. A frame's event_type may come after the
// keys it governs, so a first pass finds it (cheap when it is the first key,
// as PBXs send it) and a second pass decodes the keys for that type.
func (d *decoder) frame() (Event, *Reply) {
	d.ws()
	if d.pos >= len(d.data) || d.data[d.pos] != '{' {
		d.skipValue()
		d.ws()
		if d.pos != len(d.data) {
			d.fail("data after the JSON value")
		}
		d.fail("frame is not a JSON object")
	}
	start := d.pos
	typ, found, command := d.peek()
	d.pos, d.depth = start, 0

	var ev Event
	var rep *Reply
	switch {
	case typ != "":
		ev = d.event(typ)
		if d.typeCount > 1 && d.lastType != typ {
			// A repeated event_type whose last value differs: decode again
			// as that type, whose last occurrence then agrees.
			d.pos, d.depth, d.invalid, d.quirks = start, 0, nil, 0
			if d.lastType == "" {
				d.invalidf("event_type: want a non-empty string")
			}
			ev = d.event(d.lastType)
		}
	case command && !found:
		rep = d.reply()
	default:
		if !found {
			d.invalidf("neither event_type nor command")
		}
		d.event("") // validate the rest
	}
	d.ws()
	if d.pos != len(d.data) && !(d.several && d.data[d.pos] == '{') {
		d.fail("data after the JSON object")
	}
	return ev, rep
}

// peek finds the event_type at the top level of the object at d.pos: the
// first one that is a non-empty string (the decoding pass sees a later
// one). found reports whether the key exists; typ is empty when no value is
// a non-empty string (recorded as invalid). command reports whether a
// command key was seen before (or without) it.
func (d *decoder) peek() (typ string, found, command bool) {
	var o object
	d.openTop()
	for d.member(&o.n) {
		switch string(d.name) {
		case "event_type":
			found = true
			if d.peekByte() == '"' {
				if typ = internType(d.strBytes()); typ != "" {
					return typ, found, command
				}
				continue
			}
		case "command":
			command = true
		}
		d.skipValue()
	}
	if found {
		d.invalidf("event_type: want a non-empty string")
	}
	return "", found, command
}

// event decodes the object at d.pos as an event of type typ. An empty typ
// only validates the frame.
func (d *decoder) event(typ string) Event {
	switch typ {
	case TypeQueueStatus:
		e := &QueueStatus{Header: Header{EventType: typ}}
		d.queueStatus(e)
		return e
	case TypeQueueCallerStatus:
		e := &QueueCallerStatus{Header: Header{EventType: typ}}
		d.queueCallerStatus(e)
		return e
	case TypeQueueAgentStatus:
		e := &QueueAgentStatus{Header: Header{EventType: typ}}
		d.queueAgentStatus(e)
		return e
	case TypeQueueSLABreached:
		e := &QueueSLABreached{Header: Header{EventType: typ}}
		d.queueSLABreached(e)
		return e
	case TypeQueueCreated, TypeQueueUpdated, TypeQueueDestroy:
		e := &QueueManagement{Header: Header{EventType: typ}}
		d.queueManagement(e)
		return e
	case TypeExtensionStatus:
		e := &ExtensionStatus{Header: Header{EventType: typ}}
		d.extensionStatus(e)
		return e
	case TypeExtensionCall:
		e := &ExtensionCall{Header: Header{EventType: typ}}
		d.extensionCall(e)
		return e
	case TypeExtensionPresence:
		e := &ExtensionPresence{Header: Header{EventType: typ}}
		d.extensionPresence(e)
		return e
	case TypeExtensionAgentStatus:
		e := &ExtensionAgentStatus{Header: Header{EventType: typ}}
		d.extensionAgentStatus(e)
		return e
	case TypeExtensionCreated, TypeExtensionUpdated, TypeExtensionDestroyed:
		e := &ExtensionManagement{Header: Header{EventType: typ}}
		d.extensionManagement(e)
		return e
	case TypeCallStart, TypeCallUpdateInfo:
		e := &CallStart{Header: Header{EventType: typ}}
		d.callStart(e)
		return e
	case TypeCallCDR:
		e := &CallCDR{Header: Header{EventType: typ}}
		d.callCDR(e)
		return e
	case TypeCDRTargetAdd, TypeCDRTargetRinging, TypeCDRTargetAnswer,
		TypeCDRTargetNoAnswer, TypeCDRTargetFail, TypeCDRTargetEnd:
		e := &CDRTarget{Header: Header{EventType: typ}}
		d.cdrTarget(e)
		return e
	}
	e := &Unknown{Header: Header{EventType: typ}}
	var o object
	d.openTop()
	for d.next(&o) {
		d.header(&e.Header, o.id)
	}
	if typ == "" {
		return nil
	}
	return e
}

func (d *decoder) reply() *Reply {
	r := &Reply{}
	statusSet := false
	var o object
	d.openTop()
	for d.next(&o) {
		switch o.id {
		case kCommand:
			if d.peekByte() == '"' {
				r.Command = string(d.strBytes())
			} else {
				d.skipValue()
			}
			if r.Command == "" {
				d.invalidf("command: want a non-empty string")
			}
		case kID:
			r.ID = d.str(o.id)
		case kStatus:
			r.Status, statusSet = d.int(o.id)
		case kError:
			// The shape of an error is undocumented; whatever it is, it
			// is the text an operator needs to see.
			r.Error = d.any(o.id)
		case kTopics:
			r.Topics = d.topics(o.id)
		default:
			d.skipValue()
		}
	}
	if !statusSet && r.Error != "" {
		r.Status = -1
	}
	return r
}

// topics reads the topics a reply names: an array of strings, or one
// string.
func (d *decoder) topics(id key) []string {
	if d.peekByte() == '"' {
		return []string{d.str(id)}
	}
	var a array
	var out []string
	if d.openArray(&a, id) {
		for d.elem(&a) {
			if t := d.str(id); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// header decodes the keys every event has, and skips any other.
func (d *decoder) header(h *Header, id key) {
	switch id {
	case kTenantID:
		h.TenantID = d.str(id)
	case kEventType: // peek read the type; note which value is the last
		d.typeCount++
		d.lastType = ""
		if d.peekByte() == '"' {
			d.lastType = internType(d.strBytes())
		} else {
			d.skipValue()
		}
	default:
		d.skipValue()
	}
}

// ---- queue events ----

func (d *decoder) queueStatus(e *QueueStatus) {
	var o object
	d.openTop()
	for d.next(&o) {
		switch o.id {
		case kQueueID:
			e.QueueID = d.str(o.id)
		case kQueueNumber:
			e.QueueNumber = d.str(o.id)
		case kQueueName:
			e.QueueName = d.str(o.id)
		case kWaitingList:
			e.Waiting = d.queueCallers(o.id, nil)
		case kAgents:
			e.Agents = d.queueAgents(o.id, nil)
		default:
			d.header(&e.Header, o.id)
		}
	}
}

func (d *decoder) queueCallerStatus(e *QueueCallerStatus) {
	var o object
	d.openTop()
	for d.next(&o) {
		switch o.id {
		case kQueueID:
			e.QueueID = d.str(o.id)
		case kQueueNumber:
			e.QueueNumber = d.str(o.id)
		case kUpdatedCallers:
			e.Callers = d.queueCallers(o.id, nil)
		default:
			d.header(&e.Header, o.id)
		}
	}
}

func (d *decoder) queueAgentStatus(e *QueueAgentStatus) {
	var o object
	d.openTop()
	for d.next(&o) {
		switch o.id {
		case kQueueID:
			e.QueueID = d.str(o.id)
		case kQueueNumber:
			e.QueueNumber = d.str(o.id)
		case kUpdatedAgents:
			e.Updated = d.queueAgents(o.id, nil)
		case kRemovedAgents:
			e.Removed = d.removedAgents(o.id, nil)
		default:
			d.header(&e.Header, o.id)
		}
	}
}

func (d *decoder) queueSLABreached(e *QueueSLABreached) {
	var o object
	d.openTop()
	for d.next(&o) {
		switch o.id {
		case kQueueID:
			e.QueueID = d.str(o.id)
		case kQueueNumber:
			e.QueueNumber = d.str(o.id)
		case kCaller:
			e.Caller = d.str(o.id)
		case kTotalCallersBreached:
			e.TotalCallersBreached, _ = d.int(o.id)
		case kSLATimeSecs:
			e.SLATimeSecs, _ = d.int(o.id)
		case kWaitingCallers:
			e.WaitingCallers, _ = d.int(o.id)
		case kTimestamp:
			e.Timestamp, _ = d.int(o.id)
		default:
			d.header(&e.Header, o.id)
		}
	}
}

func (d *decoder) queueCallers(id key, dst []QueueCaller) []QueueCaller {
	var a array
	if !d.openArray(&a, id) {
		return dst
	}
	for d.elem(&a) {
		var o object
		if !d.open(&o, id) {
			continue
		}
		var c QueueCaller
		for d.next(&o) {
			switch o.id {
			case kPosition:
				c.Position, _ = d.int(o.id)
			case kSessionID:
				c.SessionID = d.str(o.id)
			case kCallerNumber:
				c.CallerNumber = d.str(o.id)
			case kCallerName:
				c.CallerName = d.str(o.id)
			case kTimestamp:
				c.Timestamp, _ = d.int(o.id)
			case kType:
				c.Type = d.lowerEnum(o.id)
			case kReason:
				c.Reason = d.lowerEnum(o.id)
			default:
				d.skipValue()
			}
		}
		dst = append(dst, c)
	}
	return dst
}

func (d *decoder) queueAgents(id key, dst []QueueAgent) []QueueAgent {
	var a array
	if !d.openArray(&a, id) {
		return dst
	}
	for d.elem(&a) {
		var o object
		if !d.open(&o, id) {
			continue
		}
		var ag QueueAgent
		for d.next(&o) {
			switch o.id {
			case kState:
				ag.State = d.enum(o.id)
			case kAgentExtensionNumber:
				ag.Extension = d.str(o.id)
			case kSessionID:
				ag.SessionID = d.str(o.id)
			case kCallerNumber:
				ag.CallerNumber = d.str(o.id)
			case kCallerName:
				ag.CallerName = d.str(o.id)
			case kTimestamp:
				ag.Timestamp, _ = d.int(o.id)
			default:
				d.skipValue()
			}
		}
		dst = append(dst, ag)
	}
	return dst
}

// removedAgents reads removed_agents: objects with agent_extension_number,
// or, tolerated, the bare extension numbers.
func (d *decoder) removedAgents(id key, dst []string) []string {
	var a array
	if !d.openArray(&a, id) {
		return dst
	}
	for d.elem(&a) {
		switch d.peekByte() {
		case '"', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			dst = append(dst, d.str(id))
			continue
		}
		var o object
		if !d.open(&o, id) {
			continue
		}
		ext := ""
		for d.next(&o) {
			if o.id == kAgentExtensionNumber {
				ext = d.str(o.id)
			} else {
				d.skipValue()
			}
		}
		if ext != "" {
			dst = append(dst, ext)
		}
	}
	return dst
}

func (d *decoder) queueManagement(e *QueueManagement) {
	var o object
	d.openTop()
	for d.next(&o) {
		switch o.id {
		case kQueueNumber:
			e.QueueNumber = d.str(o.id)
		case kQueueID:
			e.QueueID = d.str(o.id)
		case kQueueName:
			e.QueueName = d.str(o.id)
		default:
			d.header(&e.Header, o.id)
		}
	}
}

// ---- extension events ----

func (d *decoder) extensionStatus(e *ExtensionStatus) {
	var o object
	d.openTop()
	for d.next(&o) {
		if o.id == kStatus {
			e.Status = d.extensionStates(o.id, nil)
		} else {
			d.header(&e.Header, o.id)
		}
	}
}

func (d *decoder) extensionStates(id key, dst []ExtensionState) []ExtensionState {
	var a array
	if !d.openArray(&a, id) {
		return dst
	}
	for d.elem(&a) {
		var o object
		if !d.open(&o, id) {
			continue
		}
		var s ExtensionState
		for d.next(&o) {
			switch o.id {
			case kExtension:
				s.Extension = d.str(o.id)
			case kExtensionID:
				s.ExtensionID = d.str(o.id)
			case kCallStatus:
				s.CallStatus = d.enum(o.id)
			case kOnline:
				s.Online, _ = d.bool(o.id)
			case kPushOnline:
				s.PushOnline, _ = d.bool(o.id)
			case kPresence:
				s.Presence = d.enum(o.id)
			case kPresenceNote:
				s.PresenceNote = d.str(o.id)
			case kTime:
				s.Time, _ = d.int(o.id)
			default:
				d.skipValue()
			}
		}
		dst = append(dst, s)
	}
	return dst
}

func (d *decoder) extensionCall(e *ExtensionCall) {
	var o object
	d.openTop()
	for d.next(&o) {
		switch o.id {
		case kExtension:
			e.Extension = d.str(o.id)
		case kExtensionID:
			e.ExtensionID = d.str(o.id)
		case kCallStatus:
			e.CallStatus = d.enum(o.id)
		case kTime:
			e.Time, _ = d.int(o.id)
		default:
			d.header(&e.Header, o.id)
		}
	}
}

func (d *decoder) extensionPresence(e *ExtensionPresence) {
	var o object
	d.openTop()
	for d.next(&o) {
		switch o.id {
		case kExtension:
			e.Extension = d.str(o.id)
		case kExtensionID:
			e.ExtensionID = d.str(o.id)
		case kPresence:
			e.Presence = d.enum(o.id)
		case kPresenceNote:
			e.PresenceNote = d.str(o.id)
		case kTime:
			e.Time, _ = d.int(o.id)
		default:
			d.header(&e.Header, o.id)
		}
	}
}

func (d *decoder) extensionAgentStatus(e *ExtensionAgentStatus) {
	var o object
	d.openTop()
	for d.next(&o) {
		switch o.id {
		case kExtension:
			e.Extension = d.str(o.id)
		case kExtensionID:
			e.ExtensionID = d.str(o.id)
		case kTime:
			e.Time, _ = d.int(o.id)
		case kAgentStatus:
			e.AgentStatus = d.agentQueueStates(o.id, nil)
		default:
			d.header(&e.Header, o.id)
		}
	}
}

func (d *decoder) agentQueueStates(id key, dst []AgentQueueState) []AgentQueueState {
	var a array
	if !d.openArray(&a, id) {
		return dst
	}
	for d.elem(&a) {
		var o object
		if !d.open(&o, id) {
			continue
		}
		var s AgentQueueState
		for d.next(&o) {
			switch o.id {
			case kQueueNumber:
				s.QueueNumber = d.str(o.id)
			case kStatus:
				s.Status = d.enum(o.id)
			default:
				d.skipValue()
			}
		}
		dst = append(dst, s)
	}
	return dst
}

func (d *decoder) extensionManagement(e *ExtensionManagement) {
	var o object
	d.openTop()
	for d.next(&o) {
		switch o.id {
		case kExtensionNumber:
			e.ExtensionNumber = d.str(o.id)
		case kExtensionID:
			e.ExtensionID = d.str(o.id)
		case kDispName:
			e.DisplayName = d.str(o.id)
		case kEmail:
			e.Email = d.str(o.id)
		case kUsername:
			e.Username = d.str(o.id)
		case kDepartment:
			e.Department = d.str(o.id)
		case kEnabled:
			if v, ok := d.bool(o.id); ok {
				e.Enabled = OptInt{Set: true}
				if v {
					e.Enabled.Value = 1
				}
			}
		default:
			d.header(&e.Header, o.id)
		}
	}
}

// ---- CDR events ----

func (d *decoder) callStart(e *CallStart) {
	var o object
	d.openTop()
	for d.next(&o) {
		switch o.id {
		case kTime:
			e.Time, _ = d.int(o.id)
		case kSessionID:
			e.SessionID = d.str(o.id)
		case kCDRID:
			e.CDRID = d.str(o.id)
		case kCallID:
			e.CallID = d.str(o.id)
		case kDirection:
			e.Direction = d.enum(o.id)
		case kCaller:
			e.Caller = d.str(o.id)
		case kCallerDisplayName:
			e.CallerDisplayName = d.str(o.id)
		case kCallee:
			e.Callee = d.str(o.id)
		case kCalleeDisplayName:
			e.CalleeDisplayName = d.str(o.id)
		case kDID:
			e.DID = d.str(o.id)
		case kDIDCID:
			if v := d.str(o.id); !o.seen.has(kDID) {
				e.DID = v
			}
		case kOutboundCallerID:
			e.OutboundCallerID = d.str(o.id)
		case kUserData:
			e.UserData = d.any(o.id)
		default:
			d.header(&e.Header, o.id)
		}
	}
}

func (d *decoder) callCDR(e *CallCDR) {
	var o object
	d.openTop()
	for d.next(&o) {
		switch o.id {
		case kTenantName:
			e.TenantName = d.str(o.id)
		case kSessionID:
			e.SessionID = d.str(o.id)
		case kCallID:
			e.CallID = d.str(o.id)
		case kCDRID:
			e.CDRID = d.str(o.id)
		case kStartTime:
			e.StartTime, _ = d.int(o.id)
		case kRingTime:
			e.RingTime, _ = d.int(o.id)
		case kAnsweredTime:
			e.AnsweredTime, _ = d.int(o.id)
		case kEndedTime:
			e.EndedTime, _ = d.int(o.id)
		case kRingDuration:
			e.RingDuration = d.optInt(o.id)
		case kTalkDuration:
			e.TalkDuration = d.optInt(o.id)
		case kCaller:
			e.Caller = d.str(o.id)
		case kCallerDisplayName:
			e.CallerDisplayName = d.str(o.id)
		case kCallerDomain:
			e.CallerDomain = d.str(o.id)
		case kCallee:
			e.Callee = d.str(o.id)
		case kCalleeDomain:
			e.CalleeDomain = d.str(o.id)
		case kDID:
			e.DID = d.str(o.id)
		case kDIDCID:
			if v := d.str(o.id); !o.seen.has(kDID) {
				e.DID = v
			}
		case kOutboundCallerID:
			e.OutboundCallerID = d.str(o.id)
		case kCallStatus:
			e.CallStatus = d.enum(o.id)
		case kStatusCode:
			e.StatusCode, _ = d.int(o.id)
		case kEndedReason:
			e.EndedReason = d.enum(o.id)
		case kEndReason:
			if v := d.enum(o.id); !o.seen.has(kEndedReason) {
				e.EndedReason = v
			}
		case kDirection:
			e.Direction = d.enum(o.id)
		case kTrunkName:
			e.TrunkName = d.str(o.id)
		case kUserData:
			e.UserData = d.any(o.id)
		case kCallTargets:
			e.Targets = d.callTargets(o.id, nil)
		default:
			d.header(&e.Header, o.id)
		}
	}
}

func (d *decoder) callTargets(id key, dst []CallTarget) []CallTarget {
	var a array
	if !d.openArray(&a, id) {
		return dst
	}
	for d.elem(&a) {
		var o object
		if !d.open(&o, id) {
			continue
		}
		var t CallTarget
		for d.next(&o) {
			if !d.callTarget(&t, &o) {
				d.skipValue()
			}
		}
		dst = append(dst, t)
	}
	return dst
}

// callTarget decodes the member o.id of a call target; false when the key
// is not a target's.
func (d *decoder) callTarget(t *CallTarget, o *object) bool {
	switch o.id {
	case kID:
		t.ID = d.str(o.id)
	case kCallType:
		t.CallType = d.enum(o.id)
	case kCaller:
		t.Caller = d.str(o.id)
	case kCallee:
		t.Callee = d.str(o.id)
	case kDestination:
		t.Destination = d.str(o.id)
	case kDID:
		t.DID = d.str(o.id)
	case kDIDCID:
		if v := d.str(o.id); !o.seen.has(kDID) {
			t.DID = v
		}
	case kOutboundCallerID:
		t.OutboundCallerID = d.str(o.id)
	case kStartTime:
		t.StartTime, _ = d.int(o.id)
	case kRingTime:
		t.RingTime, _ = d.int(o.id)
	case kAnsweredTime:
		t.AnsweredTime, _ = d.int(o.id)
	case kEndedTime:
		t.EndedTime, _ = d.int(o.id)
	case kRingDuration:
		t.RingDuration = d.optInt(o.id)
	case kTalkDuration:
		t.TalkDuration = d.optInt(o.id)
	case kStatus:
		t.Status = d.enum(o.id)
	case kStatusCode:
		t.StatusCode, _ = d.int(o.id)
	case kEndReason:
		t.EndReason = d.enum(o.id)
	case kEndedReason:
		if v := d.enum(o.id); !o.seen.has(kEndReason) {
			t.EndReason = v
		}
	case kTrunkName:
		t.TrunkName = d.str(o.id)
	case kCost:
		t.Cost = d.str(o.id)
	default:
		return false
	}
	return true
}

func (d *decoder) cdrTarget(e *CDRTarget) {
	var o object
	d.openTop()
	for d.next(&o) {
		switch o.id {
		case kSessionID:
			e.SessionID = d.str(o.id)
		case kCDRID:
			e.CDRID = d.str(o.id)
		case kCallID:
			e.CallID = d.str(o.id)
		default:
			if !d.callTarget(&e.Target, &o) {
				d.header(&e.Header, o.id)
			}
		}
	}
}

// ---- typed values ----

// str reads a string. JSON numbers are accepted as their literal text
// (ids were int64 before v16) and null as "".
func (d *decoder) str(id key) string {
	switch c := d.peekByte(); {
	case c == '"':
		return string(d.strBytes())
	case c == '-' || c >= '0' && c <= '9':
		d.quirks.Add(QuirkVersionSpelling)
		return string(d.number())
	case c == 'n':
		d.literal("null")
		return ""
	}
	d.wrongType(id, "a string")
	return ""
}

// enum reads a string from a small set of known values without
// allocating for them.
func (d *decoder) enum(id key) string {
	if d.peekByte() == '"' {
		return intern(d.strBytes())
	}
	return d.str(id)
}

// lowerEnum is enum lower-cased, with a list of alternatives ("a/b", the
// vendor sample's placeholder) read as no value.
func (d *decoder) lowerEnum(id key) string {
	if d.peekByte() != '"' {
		return d.str(id)
	}
	b := d.strBytes()
	for i, c := range b {
		if c == '/' {
			return ""
		}
		if 'A' <= c && c <= 'Z' {
			// b is either d.data or d.scratch; never write to d.data.
			lower := make([]byte, len(b))
			copy(lower, b)
			for j := i; j < len(lower); j++ {
				if c := lower[j]; 'A' <= c && c <= 'Z' {
					lower[j] = c + 'a' - 'A'
				} else if c == '/' {
					return ""
				}
			}
			return intern(lower)
		}
	}
	return intern(b)
}

// any reads a value of any type: strings as their text, anything else as
// its JSON text as sent.
func (d *decoder) any(id key) string {
	switch d.peekByte() {
	case '{', '[', 't', 'f':
		start := d.pos
		d.skipValue()
		return string(d.data[start:d.pos])
	}
	return d.str(id)
}

// int reads an integer from a JSON integer or a string holding one. ok is
// false when the key is null or "".
func (d *decoder) int(id key) (v int64, ok bool) {
	var b []byte
	switch c := d.peekByte(); {
	case c == '"':
		b = d.strBytes()
		if len(b) == 0 {
			return 0, false
		}
	case c == '-' || c >= '0' && c <= '9':
		b = d.number()
	case c == 'n':
		d.literal("null")
		return 0, false
	default:
		d.wrongType(id, "an integer")
		return 0, false
	}
	v, ok = parseInt(b)
	if !ok {
		d.invalidf("%s: %q is not an integer", keyNames[id], b)
	}
	return v, ok
}

func (d *decoder) optInt(id key) OptInt {
	v, ok := d.int(id)
	return OptInt{Value: v, Set: ok}
}

// bool reads true/false, 1/0, or those as strings ("true" in any case).
// ok is false when the key is null or "".
func (d *decoder) bool(id key) (v, ok bool) {
	var b []byte
	switch c := d.peekByte(); {
	case c == 't':
		d.literal("true")
		return true, true
	case c == 'f':
		d.literal("false")
		return false, true
	case c == 'n':
		d.literal("null")
		return false, false
	case c == '"':
		b = d.strBytes()
		if len(b) == 0 {
			return false, false
		}
	case c == '-' || c >= '0' && c <= '9':
		b = d.number()
	default:
		d.wrongType(id, "a boolean")
		return false, false
	}
	switch {
	case len(b) == 1 && b[0] == '1', equalFold(b, "true"):
		return true, true
	case len(b) == 1 && b[0] == '0', equalFold(b, "false"):
		return false, true
	}
	d.invalidf("%s: %q is not a boolean", keyNames[id], b)
	return false, false
}

func (d *decoder) wrongType(id key, want string) {
	d.invalidf("%s: want %s, got %s", keyNames[id], want, d.kind())
	d.skipValue()
}

// kind names the JSON type of the value at d.pos, for errors.
func (d *decoder) kind() string {
	switch d.peekByte() {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// parseInt parses an optionally negative decimal integer that fits int64.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	// 19 digits cannot overflow uint64; they can overflow int64.
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}

func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// ---- objects and arrays ----

// object is the state of an object being read: members read so far, which
// known keys were seen, and the current key.
type object struct {
	n    int
	seen keySet
	id   key
}

type array struct{ n int }

// openTop enters the top-level object; the caller checked it is one.
func (d *decoder) openTop() {
	d.pos++
	d.depth = 1
}

// open enters an object at d.pos. It returns false for null, and for
// anything else that is not an object (recorded as invalid and skipped).
func (d *decoder) open(o *object, id key) bool {
	switch d.peekByte() {
	case '{':
		d.push()
		return true
	case 'n':
		d.literal("null")
		return false
	}
	d.invalidf("%s: want an object, got %s", keyNames[id], d.kind())
	d.skipValue()
	return false
}

func (d *decoder) openArray(a *array, id key) bool {
	switch d.peekByte() {
	case '[':
		d.push()
		return true
	case 'n':
		d.literal("null")
		return false
	}
	d.wrongType(id, "an array")
	return false
}

func (d *decoder) push() {
	d.pos++
	d.depth++
	if d.depth > maxDepth {
		d.fail("nested too deep")
	}
}

// next advances to the next member of o, leaving d.pos at its value and
// o.id set (kUnknown for keys the package does not know: the caller skips
// them). A repeated known key is decoded again, so its last value wins.
// It returns false after the closing '}'.
func (d *decoder) next(o *object) bool {
	if !d.member(&o.n) {
		return false
	}
	o.id = keyID(d.name)
	if o.id != kUnknown {
		if o.seen.has(o.id) {
			d.quirks.Add(QuirkDuplicateKey)
		}
		o.seen.add(o.id)
	}
	return true
}

// member reads the separator and the key of the next member of an object
// and the ':' after it, leaving the key in d.name. n counts the members.
// It returns false after the closing '}'.
func (d *decoder) member(n *int) bool {
	d.ws()
	if d.pos >= len(d.data) {
		d.fail("unexpected end of object")
	}
	c := d.data[d.pos]
	if c == '}' {
		d.pos++
		d.depth--
		return false
	}
	if *n > 0 {
		if c != ',' {
			d.fail("want ',' or '}' after an object member")
		}
		d.pos++
		d.ws()
		if d.pos >= len(d.data) {
			d.fail("unexpected end of object")
		}
	}
	if d.data[d.pos] != '"' {
		d.fail("want a string key")
	}
	d.name = d.strBytes()
	d.ws()
	if d.pos >= len(d.data) || d.data[d.pos] != ':' {
		d.fail("want ':' after an object key")
	}
	d.pos++
	*n++
	return true
}

// elem moves to the next element of an array, returning false after the
// closing ']'.
func (d *decoder) elem(a *array) bool {
	d.ws()
	if d.pos >= len(d.data) {
		d.fail("unexpected end of array")
	}
	if d.data[d.pos] == ']' {
		d.pos++
		d.depth--
		return false
	}
	if a.n > 0 {
		if d.data[d.pos] != ',' {
			d.fail("want ',' or ']' after an array element")
		}
		d.pos++
	}
	a.n++
	return true
}

// ---- lexical level ----

func (d *decoder) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peekByte skips white space and returns the byte that starts the next
// value, or 0 at the end of the input.
func (d *decoder) peekByte() byte {
	d.ws()
	if d.pos >= len(d.data) {
		return 0
	}
	return d.data[d.pos]
}

// skipValue validates and skips one value of any type.
func (d *decoder) skipValue() {
	switch c := d.peekByte(); {
	case c == '"':
		d.skipString()
	case c == '{':
		d.push()
		var n int
		for d.member(&n) {
			d.skipValue()
		}
	case c == '[':
		d.push()
		var a array
		for d.elem(&a) {
			d.skipValue()
		}
	case c == 't':
		d.literal("true")
	case c == 'f':
		d.literal("false")
	case c == 'n':
		d.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		d.number()
	case d.pos >= len(d.data):
		d.fail("unexpected end of input")
	default:
		d.fail(fmt.Sprintf("invalid character %q looking for a value", c))
	}
}

func (d *decoder) literal(lit string) {
	if len(d.data)-d.pos < len(lit) || string(d.data[d.pos:d.pos+len(lit)]) != lit {
		d.fail("invalid literal, want " + lit)
	}
	d.pos += len(lit)
}

// number validates the JSON number at d.pos and returns its text.
func (d *decoder) number() []byte {
	start, i, data := d.pos, d.pos, d.data
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && data[i] >= '1' && data[i] <= '9':
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
	default:
		d.pos = i
		d.fail("invalid number")
	}
	if i < len(data) && data[i] == '.' {
		i++
		j := i
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
		if i == j {
			d.pos = i
			d.fail("invalid number: no digit after '.'")
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := i
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
		if i == j {
			d.pos = i
			d.fail("invalid number: no digit in exponent")
		}
	}
	d.pos = i
	return data[start:i]
}

// plain marks the bytes a string can hold that need no attention: not a
// quote, a backslash, a control character or a non-ASCII byte.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// skipString validates and skips the string at d.pos.
func (d *decoder) skipString() {
	i, data := d.pos+1, d.data
	for {
		for i < len(data) && (plain[data[i]] || data[i] >= 0x80) {
			i++
		}
		if i >= len(data) {
			d.pos = i
			d.fail("unterminated string")
		}
		switch c := data[i]; {
		case c == '"':
			d.pos = i + 1
			return
		case c == '\\':
			d.pos = i
			i = d.escapeLen(i) + i
		default:
			d.pos = i
			d.fail("control character in string")
		}
	}
}

// strBytes reads the string at d.pos and returns its unescaped text, which
// aliases d.data (plain strings, the common case) or d.scratch: valid only
// until the next string is read.
func (d *decoder) strBytes() []byte {
	start := d.pos + 1
	i, data := start, d.data
	ascii := true
	for {
		for i < len(data) && plain[data[i]] {
			i++
		}
		if i >= len(data) {
			d.pos = i
			d.fail("unterminated string")
		}
		switch c := data[i]; {
		case c == '"':
			d.pos = i + 1
			if !ascii && !utf8.Valid(data[start:i]) {
				return d.unquote(start)
			}
			return data[start:i]
		case c == '\\':
			return d.unquote(start)
		case c >= 0x80:
			ascii = false
			i++
		default:
			d.pos = i
			d.fail("control character in string")
		}
	}
}

// unquote decodes the string whose text starts at start into d.scratch,
// replacing invalid UTF-8 and lone surrogates with U+FFFD as
// encoding/json does.
func (d *decoder) unquote(start int) []byte {
	b := d.scratch[:0]
	i, data := start, d.data
	for {
		if i >= len(data) {
			d.pos = i
			d.fail("unterminated string")
		}
		c := data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			d.scratch = b
			return b
		case c == '\\':
			d.pos = i
			n := d.escapeLen(i)
			switch data[i+1] {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(data[i+2 : i+6])
				if utf16.IsSurrogate(r) {
					if len(data)-i >= 12 && data[i+6] == '\\' && data[i+7] == 'u' && isHex4(data[i+8:i+12]) {
						if r2 := utf16.DecodeRune(r, hex4(data[i+8:i+12])); r2 != utf8.RuneError {
							r, n = r2, 12
						} else {
							r = utf8.RuneError
						}
					} else {
						r = utf8.RuneError
					}
				}
				b = utf8.AppendRune(b, r)
			default: // '"', '\\', '/'
				b = append(b, data[i+1])
			}
			i += n
		case c < 0x20:
			d.pos = i
			d.fail("control character in string")
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, data[i:i+size]...)
			}
			i += size
		}
	}
}

// escapeLen validates the escape sequence at data[i] (a backslash) and
// returns its length.
func (d *decoder) escapeLen(i int) int {
	data := d.data
	if i+1 >= len(data) {
		d.fail("unterminated string")
	}
	switch data[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
		if len(data)-i < 6 || !isHex4(data[i+2:i+6]) {
			d.fail(`invalid \u escape`)
		}
		return 6
	}
	d.fail("invalid escape in string")
	return 0
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
