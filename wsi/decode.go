package wsi

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
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
// event, a command reply, or a *DecodeError: ReasonMalformedJSON unless the
// frame is exactly one JSON object (RFC 8259, as encoding/json accepts it);
// ReasonInvalidEvent for an object with neither a non-empty string
// event_type nor command, or with a key the package decodes holding a value
// of the wrong JSON type. Every spelling PBX versions are known to send is
// accepted (ARCHITECTURE.md, Readings of the vendor's silent spots). Decode
// is safe for concurrent use, keeps no reference to data, and allocates at
// most eight times data's size.
func Decode(data []byte) (ev Event, rep *Reply, err error) {
	ev, rep, _, err = decode(data, false)
	return ev, rep, err
}

// decodeNext decodes the first JSON object of a text frame and returns the
// rest of the frame: the Client's reading, which also skips a byte order mark
// and takes objects sent back to back (ARCHITECTURE.md, Decoding frames).
// rest is empty after a ReasonMalformedJSON error: nothing after a syntax
// error can be trusted.
func decodeNext(frame []byte) (ev Event, rep *Reply, rest []byte, err error) {
	return decode(bytes.TrimPrefix(frame, []byte("\xef\xbb\xbf")), true)
}

// decoders are reused: the tables' function values put a decoder on the
// heap, and a frame should not pay its allocation.
var decoders = sync.Pool{New: func() any { return new(decoder) }}

func decode(data []byte, several bool) (ev Event, rep *Reply, rest []byte, err error) {
	d := decoders.Get().(*decoder)
	scratch := d.scratch
	if cap(scratch) > 4096 {
		scratch = nil // a huge string once is no reason to keep its buffer
	}
	*d = decoder{lexer: lexer{data: data, scratch: scratch}, several: several}
	defer func() {
		r := recover()
		d.data = nil
		decoders.Put(d)
		if se, ok := r.(*SyntaxError); ok {
			ev, rep, rest, err = nil, nil, nil, &DecodeError{Reason: ReasonMalformedJSON, Err: se}
		} else if r != nil {
			panic(r)
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

// decoder reads one frame into an event or reply. A type error is recorded
// in invalid and decoding goes on, so that a frame which is also not JSON
// is counted as malformed_json.
type decoder struct {
	lexer
	several bool // another object may follow the first (decodeNext)
	invalid error
	quirks  QuirkSet
	key     key    // the key whose value is being read, for errors
	seen    keySet // the keys read so far in the object being read

	typeCount int    // event_type keys read
	lastType  string // the last one read ("" when not a string) decides
	lastDec   eventDecoder
}

func (d *decoder) invalidf(format string, args ...any) {
	if d.invalid == nil {
		d.invalid = fmt.Errorf(format, args...)
	}
}

// frame decodes the whole frame: a first pass finds the event_type (cheap
// when it is the first key, as PBXs send it), a second decodes the keys for
// that type. A repeated event_type: the last one decides, like any key.
func (d *decoder) frame() (ev Event, rep *Reply) {
	if d.peekByte() != '{' {
		d.fail("frame is not a JSON object")
	}
	start := d.pos
	typ, dec, found, command := d.peek()
	switch {
	case dec != nil:
		d.pos, d.depth = start, 0
		if ev = dec(d, typ); d.typeCount > 1 && d.lastType != typ {
			if d.lastType == "" {
				d.invalidf("event_type: want a non-empty string")
				break
			}
			d.pos, d.depth, d.invalid, d.quirks, d.typeCount = start, 0, nil, 0, 0
			ev = d.lastDec(d, d.lastType)
		}
	case command && !found:
		d.pos, d.depth = start, 0
		rep = d.reply()
	case !found:
		d.invalidf("neither event_type nor command")
	}
	if c := d.peekByte(); d.pos != len(d.data) && !(d.several && c == '{') {
		d.fail("data after the JSON object")
	}
	return ev, rep
}

// peek finds the first event_type at the top level of the object at pos
// whose value is a non-empty string, and the decoder for its type. found
// reports whether the key exists (without a usable value, recorded as
// invalid); command whether a command key came before it. Without a usable
// event_type it reads the whole object.
func (d *decoder) peek() (typ string, dec eventDecoder, found, command bool) {
	d.push()
	for n := 0; ; n++ {
		name, ok := d.member(n)
		if !ok {
			break
		}
		switch string(name) {
		case "event_type":
			found = true
			if d.peekByte() == '"' {
				if typ, dec = eventType(d.strBytes()); typ != "" {
					return typ, dec, found, command
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
	return "", nil, found, command
}

// noteType reads an event_type in the decoding pass; only a repeated one
// needs its value.
func (d *decoder) noteType() {
	if d.typeCount++; d.typeCount == 1 || d.peekByte() != '"' {
		d.lastType = ""
		d.skipValue()
		return
	}
	d.lastType, d.lastDec = eventType(d.strBytes())
}

// A plan says how to decode an object into a T: the function reading each
// key's value (nil: skip it), and, for array entries, which keys make an
// entry worth keeping and how a bare string or number entry is read. An
// array's entries are objects when ids names keys, bare values when bare is
// set, or either.
type plan[T any] struct {
	read [256]func(*decoder, *T) // by key: indexing needs no bounds check
	ids  keySet
	bare func(*decoder, *T)
}

// object decodes the object at pos into t. A repeated key is read again, so
// its last value wins. kept reports whether one of p.ids held something
// other than null or "".
func object[T any](d *decoder, t *T, p *plan[T]) (kept bool) {
	d.push()
	outer := d.seen
	d.seen = keySet{}
	for n := 0; ; n++ {
		name, ok := d.member(n)
		if !ok {
			break
		}
		k := lookup(name)
		if k != kUnknown {
			if d.seen.has(k) {
				d.quirks.Add(QuirkDuplicateKey)
			}
			d.seen.add(k)
			kept = kept || p.ids.has(k) && d.holdsValue()
		}
		if read := p.read[k]; read != nil {
			d.key = k
			read(d, t)
		} else {
			d.skipValue()
		}
	}
	d.seen = outer
	return kept
}

func (d *decoder) holdsValue() bool { // neither null nor ""
	c := d.peekByte()
	return c != 'n' && (c != '"' || d.pos+1 < len(d.data) && d.data[d.pos+1] != '"')
}

// entries decodes an array of objects (or of bare values, when p allows
// them) by p, keeping only entries holding one of p.ids: an entry the
// collector cannot key is useless, and [{},{},...] must cost nothing. Past
// 64 entries the slice is sized once from a count of the rest, so that its
// allocation stays proportional to what it holds (ARCHITECTURE.md, Decoding
// frames).
func entries[T any](d *decoder, p *plan[T]) (dst []T) {
	arrayKey, want := d.key, "an object"
	if p.ids == (keySet{}) {
		want = "a string"
	}
	switch d.peekByte() {
	case '[':
		d.push()
	case 'n':
		d.literal("null")
		return nil
	default:
		d.wrongType("an array")
		return nil
	}
	for n := 0; d.elem(&n); {
		c := d.peekByte()
		bare := p.bare != nil && isBare(c)
		if c == 'n' {
			d.literal("null")
			continue
		}
		if !bare && (c != '{' || p.ids == keySet{}) {
			d.key = arrayKey
			d.wrongType(want)
			continue
		}
		if len(dst) == cap(dst) {
			if cap(dst) < 64 {
				dst = append(dst, *new(T))[:len(dst)]
			} else {
				grown := make([]T, len(dst), len(dst)+1+d.countRest(p.ids, p.bare != nil))
				dst = grown[:copy(grown, dst)]
			}
		}
		dst = dst[:len(dst)+1]
		e := &dst[len(dst)-1]
		kept := false
		if bare {
			kept, d.key = d.holdsValue(), arrayKey
			p.bare(d, e)
		} else {
			kept = object(d, e, p)
		}
		if !kept {
			*e, dst = *new(T), dst[:len(dst)-1]
		}
	}
	if len(dst) == 0 {
		return nil
	}
	return dst
}

func isBare(c byte) bool   { return c == '"' || isNumber(c) }
func isNumber(c byte) bool { return c == '-' || c >= '0' && c <= '9' }

// countRest counts the entries from pos to the end of the array that
// entries would keep.
func (d *decoder) countRest(ids keySet, bare bool) (n int) {
	pos, depth := d.pos, d.depth
	probe := plan[struct{}]{ids: ids} // reads nothing: notes which keys hold values
	for m := 0; d.elem(&m); {
		if c := d.peekByte(); c == '{' {
			if object(d, &struct{}{}, &probe) {
				n++
			}
		} else {
			if bare && isBare(c) && d.holdsValue() {
				n++
			}
			d.skipValue()
		}
	}
	d.pos, d.depth = pos, depth
	return n
}

// ---- typed values ----

// str reads a string. A JSON number reads as its literal text (ids were
// numbers before v16: a version spelling), null as "".
func (d *decoder) str() string {
	switch c := d.peekByte(); {
	case c == '"':
		return string(d.strBytes())
	case isNumber(c):
		d.quirks.Add(QuirkVersionSpelling)
		return string(d.number())
	case c == 'n':
		d.literal("null")
	default:
		d.wrongType("a string")
	}
	return ""
}

// enum reads a string, without allocating for the values PBXs send.
func (d *decoder) enum() string {
	if d.peekByte() == '"' {
		return intern(d.strBytes())
	}
	return d.str()
}

// callStatus is enum, with a boolean (early v16's on_call) read as its
// text: the collector decides what it means.
func (d *decoder) callStatus() string {
	if c := d.peekByte(); c == 't' || c == 'f' {
		return intern(d.scalar(""))
	}
	return d.enum()
}

// lowerEnum is enum lower-cased, with a list of alternatives ("a/b", the
// vendor sample's placeholder) read as no value.
func (d *decoder) lowerEnum() string {
	if d.peekByte() != '"' {
		return d.str()
	}
	var buf [32]byte
	lower := append(buf[:0], d.strBytes()...) // which may alias data: never written
	for i, c := range lower {
		switch {
		case c == '/':
			return ""
		case 'A' <= c && c <= 'Z':
			lower[i] = c + 'a' - 'A'
		}
	}
	return intern(lower)
}

// scalar reads the text of a number, a string, true or false; nil for null.
func (d *decoder) scalar(want string) []byte {
	switch c := d.peekByte(); {
	case c == '"':
		return d.strBytes()
	case c == 'n':
		d.literal("null")
	case isNumber(c) || c == 't' || c == 'f':
		start := d.pos
		d.skipValue()
		return d.data[start:d.pos]
	default:
		d.wrongType(want)
	}
	return nil
}

// int reads an integer from a JSON integer or a string holding one. ok is
// false when the key is null or "".
func (d *decoder) int() (v int64, ok bool) {
	b := d.scalar("an integer")
	if len(b) == 0 {
		return 0, false
	}
	if v, ok = parseInt(b); !ok {
		d.invalidf("%s: %q is not an integer", keyNames[d.key], b)
	}
	return v, ok
}

// bool reads true/false, 1/0, or those as strings ("true" in any case);
// null or "" is false.
func (d *decoder) bool() bool {
	switch b := d.scalar("a boolean"); {
	case string(b) == "1" || bytes.EqualFold(b, []byte("true")):
		return true
	case len(b) != 0 && string(b) != "0" && !bytes.EqualFold(b, []byte("false")):
		d.invalidf("%s: %q is not a boolean", keyNames[d.key], b)
	}
	return false
}

// idOnly skips an id no event carries, noting a number as an older
// server's spelling.
func (d *decoder) idOnly() {
	if isNumber(d.peekByte()) {
		d.quirks.Add(QuirkVersionSpelling)
	}
	d.skipValue()
}

func (d *decoder) wrongType(want string) {
	got := "a number"
	if i := strings.IndexByte(`{["tfn`, d.peekByte()); i >= 0 {
		got = [...]string{"an object", "an array", "a string", "a boolean", "a boolean", "null"}[i]
	}
	d.invalidf("%s: want %s, got %s", keyNames[d.key], want, got)
	d.skipValue()
}

// parseInt parses an optionally negative decimal integer that fits int64.
func parseInt(b []byte) (int64, bool) {
	neg := b[0] == '-'
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
	if neg && u <= 1<<63 {
		return -int64(u), true
	}
	return int64(u), !neg && u <= 1<<63-1
}
