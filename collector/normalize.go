package collector

import (
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// The documented values of each enumeration the PBX sends, as exported.
var (
	agentStates = []string{"ready", "not_ready", "queue_call", "other_call", "wrap_up",
		"break", "lunch", "logged_out", "offline", "online"}
	callStates = []string{"on_call", "ringing", "idle"}
	// Both spellings of the available state are real (v22.2, v22.3).
	presences    = []string{"online", "available", "away", "lunch", "business_trip", "do_not_disturb"}
	directions   = []string{"internal", "inbound", "outbound", "inbound_outbound"}
	callStatuses = []string{"answered", "noanswer", "fail"}

	queueMgmtTypes = []string{wsi.TypeQueueCreated, wsi.TypeQueueUpdated, wsi.TypeQueueDestroy}
	extMgmtTypes   = []string{wsi.TypeExtensionCreated, wsi.TypeExtensionUpdated, wsi.TypeExtensionDestroyed}
)

// enums holds the interned values of every enumerated label: one set per
// Collector, so that a PBX inventing values fills each at most once.
type enums struct {
	agentState, presence, callState, direction, callStatus, endReason, callerReason, mgmtType *enum
}

func newEnums() enums {
	e := enums{
		agentState:   newEnum("unknown", agentStates...),
		presence:     newEnum("", presences...),
		callState:    newEnum("idle", callStates...),
		direction:    newEnum("unknown", directions...),
		callStatus:   newEnum("unknown", callStatuses...),
		endReason:    newEnum("unknown"),
		callerReason: newEnum("unknown", callerReasons...),
		mgmtType:     newEnum("unknown", slices.Concat(queueMgmtTypes, extMgmtTypes)...),
	}
	e.direction.alias = map[string]string{
		"ext": "internal", "in": "inbound", "out": "outbound", "in2out": "inbound_outbound",
	}
	// The vendor's own extension_status sample spells ON_CALL as ON_ACLL:
	// a supervisor counting extensions on a call must not miss those.
	e.callState.alias = map[string]string{"on_acll": "on_call"}
	return e
}

// maxEnumLength bounds an enum label value: unknown values pass through
// normalised, at most 32 characters.
const maxEnumLength = 32

// maxEnumValues bounds how many distinct values one enum label may take;
// beyond it a new value is counted as "other". It keeps a PBX that invents
// a new state per event from growing series without end.
const maxEnumValues = 64

// maxEnumRaw bounds the cache of raw spellings per enum.
const maxEnumRaw = 256

// enumOther is what a value becomes once its enum is full.
const enumOther = "other"

// normalizeEnum lower-cases s and turns every run of characters outside
// [a-z0-9_] into one '_', trimming them at both ends, then bounds the
// result: "Not Ready" -> "not_ready", "QUEUE_CALL" -> "queue_call".
func normalizeEnum(s string) string {
	var b strings.Builder
	b.Grow(min(len(s), maxEnumLength))
	pendingSep := false
	for i := 0; i < len(s) && b.Len() < maxEnumLength; i++ {
		ch := s[i]
		switch {
		case ch >= 'A' && ch <= 'Z':
			ch += 'a' - 'A'
		case ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9', ch == '_':
		default:
			pendingSep = true
			continue
		}
		if pendingSep && b.Len() > 0 && b.Len() < maxEnumLength-1 {
			b.WriteByte('_')
		}
		pendingSep = false
		b.WriteByte(ch)
	}
	return strings.TrimRight(b.String(), "_")
}

// enum interns the normalised values of one label. Lookups of a spelling
// seen before do not allocate.
type enum struct {
	empty  string            // what "" stands for
	alias  map[string]string // normalised spelling -> value
	byRaw  map[string]string // raw spelling -> value
	values map[string]struct{}
}

func newEnum(empty string, known ...string) *enum {
	e := &enum{empty: empty, byRaw: make(map[string]string), values: make(map[string]struct{})}
	for _, v := range known {
		e.values[v] = struct{}{}
		e.byRaw[v] = v
	}
	return e
}

// value returns the label value for raw and whether the enum was full so
// that it became "other".
func (e *enum) value(raw string) (v string, overflow bool) {
	if raw == "" {
		return e.empty, false
	}
	if v, ok := e.byRaw[raw]; ok {
		return v, false
	}
	v = normalizeEnum(raw)
	if a, ok := e.alias[v]; ok {
		v = a
	}
	if v == "" {
		v = e.empty
	}
	if _, ok := e.values[v]; !ok {
		if len(e.values) >= maxEnumValues {
			return enumOther, true
		}
		e.values[v] = struct{}{}
	}
	if len(e.byRaw) < maxEnumRaw {
		e.byRaw[strings.Clone(raw)] = v
	}
	return v, false
}

// boundLabel makes s a valid label value of at most n bytes, cutting at a
// rune boundary. Values already fine are returned as they are.
func boundLabel(s string, n int) string {
	if len(s) <= n && utf8.ValidString(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// extensionNumber is the user part of a SIP URI ("sip:101@test.io" ->
// "101"); a bare number is returned as it is.
func extensionNumber(s string) string {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		if scheme := s[:i]; strings.EqualFold(scheme, "sip") || strings.EqualFold(scheme, "sips") {
			s = s[i+1:]
		}
	}
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s = s[:i]
	}
	return s
}

// trunkName is the name part of a CDR trunk_name ("122:883631675865563136"
// -> "122").
func trunkName(s string) string {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		return s[:i]
	}
	return s
}
