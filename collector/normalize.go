package collector

import (
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/portsip-exporter/portsip_exporter/internal/secret"
	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// The documented values of each enumeration the PBX sends, as exported.
var (
	agentStates = []string{"ready", "not_ready", "queue_call", "other_call", "wrap_up",
		"break", "lunch", "logged_out", "offline", "online"}
	callStates = []string{"on_call", "ringing", "idle"}
	// ONLINE (v22.3's list) and AVAILABLE (v22.2's list, v22.3's sample)
	// are one state; BREAK is in an early v22.3 revision.
	presences    = []string{"available", "away", "lunch", "business_trip", "do_not_disturb", "break"}
	directions   = []string{"internal", "inbound", "outbound", "inbound_outbound"}
	callStatuses = []string{"answered", "noanswer", "fail"}
	endReasons   = []string{"callee_disconnected", "caller_disconnected", "none", "replaced", "referred",
		"redirected", "blind_transfer_complete", "attended_transfer_complete", "cancelled"}

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
		agentState:   newEnum("unknown", agentStates...).spelledUpper(),
		presence:     newEnum("", presences...).spelledUpper(),
		callState:    newEnum("idle", callStates...).spelledUpper(),
		direction:    newEnum("unknown", directions...),
		callStatus:   newEnum("unknown", callStatuses...),
		endReason:    newEnum("unknown", endReasons...),
		callerReason: newEnum("unknown", callerReasons...),
		mgmtType:     newEnum("unknown", slices.Concat(queueMgmtTypes, extMgmtTypes)...),
	}
	// Both spellings of the directions are documented (call_cdr's table
	// and the newer reference tables): not a quirk.
	e.direction.alias = map[string]enumAlias{
		"ext": {"internal", noQuirk}, "in": {"inbound", noQuirk}, "out": {"outbound", noQuirk},
		"in2out": {"inbound_outbound", noQuirk},
	}
	e.presence.alias = map[string]enumAlias{"online": {"available", wsi.QuirkPresenceOnline}}
	// ON_ACLL is the typo of the vendor's own extension_status samples;
	// on_call/none and a boolean are v16's call status.
	vs := wsi.QuirkVersionSpelling
	e.callState.alias = map[string]enumAlias{
		"on_acll": {"on_call", vs}, "none": {"idle", vs}, "true": {"on_call", vs}, "false": {"idle", vs},
	}
	// "Logout" meant logged out of the queue until mid-2025.
	e.agentState.alias = map[string]enumAlias{"logout": {"logged_out", vs}}
	e.endReason.alias = tenses(endReasons)
	return e
}

// tenses maps the spellings of each end reason that differ only by tense
// or suffix (callee_disconnect, blind_transfer_completed, canceled) to the
// documented one.
func tenses(values []string) map[string]enumAlias {
	m := map[string]enumAlias{"canceled": {"cancelled", wsi.QuirkEndReasonSpelling}}
	for _, v := range values {
		for _, t := range []string{strings.TrimSuffix(v, "ed"), strings.TrimSuffix(v, "d"), v + "d", v + "ed"} {
			if t != v && !slices.Contains(values, t) {
				m[t] = enumAlias{v, wsi.QuirkEndReasonSpelling}
			}
		}
	}
	return m
}

func (c *Collector) agentState(raw string) enumHit { return c.enum(c.enums.agentState, raw) }

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
	empty  string               // what "" stands for
	alias  map[string]enumAlias // normalised spelling -> value
	byRaw  map[string]enumHit   // raw spelling -> value
	values map[string]bool      // value -> documented
	// wire holds the documented values when the page spells them in upper
	// case (ON_CALL, NOT_READY): any other spelling of one of them is
	// another server version's, counted as the quirk version_spelling.
	wire map[string]bool
}

// enumAlias maps a spelling to the value it stands for, and the quirk
// that reading is counted as.
type enumAlias struct {
	v     string
	quirk wsi.Quirk
}

// enumHit is what a spelling stands for.
type enumHit struct {
	v     string
	quirk wsi.Quirk // noQuirk when the spelling is the documented one
	// known: v is a documented value (its series exist from the start),
	// not one the PBX invented.
	known bool
}

// noQuirk marks a value read as documented.
const noQuirk = wsi.Quirk(255)

func newEnum(empty string, known ...string) *enum {
	e := &enum{empty: empty, byRaw: make(map[string]enumHit), values: make(map[string]bool)}
	for _, v := range known {
		e.values[v] = true
		e.byRaw[v] = enumHit{v, noQuirk, true}
	}
	return e
}

// documented reports whether v is one of the documented values.
func (e *enum) documented(v string) bool { return e.values[v] }

// spelledUpper makes e count the quirk version_spelling for any spelling
// of a known value but the upper-case one the page documents.
func (e *enum) spelledUpper() *enum {
	e.wire = make(map[string]bool, len(e.values))
	clear(e.byRaw)
	for v := range e.values {
		e.wire[v] = true
		if v != e.empty {
			e.byRaw[strings.ToUpper(v)] = enumHit{v, noQuirk, true}
		}
	}
	return e
}

// value returns the label value for raw, the quirk its spelling is
// counted as (noQuirk for none), and whether the enum was full so that
// it became "other".
func (e *enum) value(raw string) (v string, quirk wsi.Quirk, overflow bool) {
	h, overflow := e.lookup(raw, nil)
	return h.v, h.quirk, overflow
}

// lookup returns what raw stands for, and whether the enum was full so
// that it became "other". A spelling not seen before has the secrets red
// removes taken out, before and after it is normalised (a password in
// upper case would be normalised into itself).
func (e *enum) lookup(raw string, red *secret.Redactor) (h enumHit, overflow bool) {
	if raw == "" {
		return enumHit{e.empty, noQuirk, e.values[e.empty]}, false
	}
	if h, ok := e.byRaw[raw]; ok {
		return h, false
	}
	clean := red.String(raw)
	v, quirk := normalizeEnum(clean), noQuirk
	if r := red.String(v); r != v {
		v = normalizeEnum(r)
	}
	if a, ok := e.alias[v]; ok {
		v, quirk = a.v, a.quirk
	}
	if v == "" {
		v = e.empty
	}
	if quirk == noQuirk && e.wire[v] && clean != strings.ToUpper(v) {
		quirk = wsi.QuirkVersionSpelling
	}
	known, ok := e.values[v]
	if !ok {
		if len(e.values) >= maxEnumValues {
			return enumHit{enumOther, noQuirk, false}, true
		}
		e.values[v] = false
	}
	h = enumHit{v, quirk, known}
	if len(e.byRaw) < maxEnumRaw {
		e.byRaw[strings.Clone(raw)] = h
	}
	return h, false
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
