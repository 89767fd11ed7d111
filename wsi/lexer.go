package wsi

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

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

// lexer reads RFC 8259 JSON, validating as it goes. A syntax error panics
// with *SyntaxError, recovered by decode: nothing after one can be trusted,
// and the path of valid frames carries no error checks.
type lexer struct {
	data    []byte
	pos     int
	depth   int
	scratch []byte // unescaped strings; valid until the next string is read
}

func (l *lexer) fail(msg string) {
	panic(&SyntaxError{Offset: l.pos, msg: msg})
}

// peekByte skips white space and returns the byte at pos, 0 at the end.
func (l *lexer) peekByte() byte {
	for ; l.pos < len(l.data); l.pos++ {
		switch c := l.data[l.pos]; c {
		case ' ', '\t', '\n', '\r':
		default:
			return c
		}
	}
	return 0
}

// push enters the object or array at pos.
func (l *lexer) push() {
	l.pos++
	if l.depth++; l.depth > maxDepth {
		l.fail("nested too deep")
	}
}

// member reads the separator, the key and the ':' of member n (from 0) of
// an object and returns the key; ok is false after the closing '}'. The key
// is returned, not kept: a pointer stored in the lexer, which lives on the
// heap, costs a write barrier while the GC runs.
func (l *lexer) member(n int) (name []byte, ok bool) {
	c := l.peekByte()
	if c == '}' {
		l.pos++
		l.depth--
		return nil, false
	}
	if n > 0 {
		if c != ',' {
			l.fail("want ',' or '}' after an object member")
		}
		l.pos++
		c = l.peekByte()
	}
	if c != '"' {
		l.fail("want a string key")
	}
	name = l.strBytes()
	if l.peekByte() != ':' {
		l.fail("want ':' after an object key")
	}
	l.pos++
	return name, true
}

// elem moves to the next element of an array, returning false after the
// closing ']'. n counts the elements.
func (l *lexer) elem(n *int) bool {
	switch c := l.peekByte(); {
	case c == ']':
		l.pos++
		l.depth--
		return false
	case *n > 0 && c != ',':
		l.fail("want ',' or ']' after an array element")
	case *n > 0:
		l.pos++
	}
	*n++
	return true
}

// skipValue validates and skips one value of any type.
func (l *lexer) skipValue() {
	switch c := l.peekByte(); {
	case c == '"':
		l.scanString()
	case c == '{':
		l.push()
		for n := 0; ; n++ {
			if _, ok := l.member(n); !ok {
				break
			}
			l.skipValue()
		}
	case c == '[':
		l.push()
		for n := 0; l.elem(&n); {
			l.skipValue()
		}
	case c == 't':
		l.literal("true")
	case c == 'f':
		l.literal("false")
	case c == 'n':
		l.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		l.number()
	case l.pos >= len(l.data):
		l.fail("unexpected end of input")
	default:
		l.fail(fmt.Sprintf("invalid character %q looking for a value", c))
	}
}

func (l *lexer) literal(lit string) {
	if len(l.data)-l.pos < len(lit) || string(l.data[l.pos:l.pos+len(lit)]) != lit {
		l.fail("invalid literal, want " + lit)
	}
	l.pos += len(lit)
}

// number validates the JSON number at pos and returns its text.
func (l *lexer) number() []byte {
	start, i, data := l.pos, l.pos, l.data
	digits := func(where string) {
		j := i
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
		if i == j {
			l.pos = i
			l.fail("invalid number" + where)
		}
	}
	if i < len(data) && data[i] == '-' {
		i++
	}
	if i < len(data) && data[i] == '0' {
		i++
	} else {
		digits("")
	}
	if i < len(data) && data[i] == '.' {
		i++
		digits(": no digit after '.'")
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		if i++; i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		digits(": no digit in exponent")
	}
	l.pos = i
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

// plainUntil returns the index of the first byte from i on that is not
// plain, looking at eight bytes at a time: most strings are ids and numbers
// a dozen bytes or more long, and scanning them is the decoder's main work.
func plainUntil(data []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(data); i += 8 {
		w := binary.LittleEndian.Uint64(data[i:])
		q, b := w^(ones*'"'), w^(ones*'\\')
		// The high bit of each byte that is below 0x20, a quote, a
		// backslash or non-ASCII; a borrow may mark a byte above the first
		// such one, never below.
		if m := ((w-ones*0x20)&^w | (q-ones)&^q | (b-ones)&^b | w) & highs; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for i < len(data) && plain[data[i]] {
		i++
	}
	return i
}

// scanString validates the string at pos and moves past it. end is the
// index of its closing quote; escaped and nonASCII say what it holds.
func (l *lexer) scanString() (end int, escaped, nonASCII bool) {
	data := l.data
	for i := l.pos + 1; ; {
		i = plainUntil(data, i)
		switch {
		case i >= len(data):
			l.pos = i
			l.fail("unterminated string")
		case data[i] == '"':
			l.pos = i + 1
			return i, escaped, nonASCII
		case data[i] == '\\':
			l.pos, escaped = i, true
			switch {
			case i+1 < len(data) && strings.IndexByte(`"\/bfnrt`, data[i+1]) >= 0:
				i += 2
			case len(data)-i >= 6 && data[i+1] == 'u' && hex4(data[i+2:]) >= 0:
				i += 6
			default:
				l.fail("invalid escape in string")
			}
		case data[i] >= utf8.RuneSelf:
			nonASCII = true
			i++
		default:
			l.pos = i
			l.fail("control character in string")
		}
	}
}

// strBytes reads the string at pos and returns its text, which aliases data
// (as most strings need no decoding) or scratch: valid only until the next
// string is read.
func (l *lexer) strBytes() []byte {
	start := l.pos + 1
	end, escaped, nonASCII := l.scanString()
	if !escaped && (!nonASCII || utf8.Valid(l.data[start:end])) {
		return l.data[start:end]
	}
	return l.unquote(start, end)
}

// unquote decodes data[start:end] into scratch, replacing invalid UTF-8
// and lone surrogates with U+FFFD as encoding/json does. scratch is sized
// once, for the worst case (each non-ASCII byte invalid, three bytes out):
// growing it as it fills would allocate several times a long string.
func (l *lexer) unquote(start, end int) []byte {
	data := l.data
	size := end - start
	for _, c := range data[start:end] {
		if c >= utf8.RuneSelf {
			size += 2
		}
	}
	if cap(l.scratch) < size {
		l.scratch = make([]byte, 0, size)
	}
	b := l.scratch[:0]
	for i := start; i < end; {
		switch c := data[i]; {
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(data[i:end])
			b = utf8.AppendRune(b, r) // U+FFFD for an invalid byte
			i += n
		case c != '\\':
			b = append(b, c)
			i++
		case data[i+1] == 'u':
			r, n := hex4(data[i+2:]), 6
			if utf16.IsSurrogate(r) && end-i >= 12 && data[i+6] == '\\' && data[i+7] == 'u' {
				if pair := utf16.DecodeRune(r, hex4(data[i+8:])); pair != utf8.RuneError {
					r, n = pair, 12
				}
			}
			b = utf8.AppendRune(b, r) // U+FFFD for a lone surrogate
			i += n
		default:
			if k := strings.IndexByte(`bfnrt`, data[i+1]); k >= 0 {
				b = append(b, "\b\f\n\r\t"[k])
			} else {
				b = append(b, data[i+1]) // '"', '\\', '/'
			}
			i += 2
		}
	}
	l.scratch = b
	return b
}

// hex4 returns the value of the four hex digits b starts with, or -1.
func hex4(b []byte) (r rune) {
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}
