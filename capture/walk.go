package capture

import "bytes"

// tokenKind is what walk hands to its visitor.
type tokenKind int

const (
	tokenKey    tokenKind = iota // an object's key (a string before a colon)
	tokenString                  // a string value
	tokenNumber                  // a number value
)

// maxDepth bounds the nesting walk remembers keys for: a frame of a
// million brackets must not grow a million-entry stack. Deeper values are
// visited with no key, so nothing there is rewritten.
const maxDepth = 256

// walk visits the keys, strings and numbers of a frame with the key each
// value belongs to: the key before it, or for a value in an array the key
// of the array, "" at the top level. visit returns a token to put in
// place of tok, or nil to keep it. walk returns the frame with the
// replacements (frame itself when there are none), and whether it holds
// text that is no JSON token at all (a byte order mark, a full-width
// comma, text that is not JSON).
//
// walk is a scanner, not a parser: it reads malformed JSON as far as its
// tokens go, so that a frame's strings are found (and rewritten) in a
// frame the decoder will refuse, and everything around them is copied as
// it was.
func walk(frame []byte, visit func(kind tokenKind, key string, tok []byte) []byte) (out []byte, garbage bool) {
	var (
		rewritten []byte // frame[:copied] with the replacements, once there is one
		copied    int
		stack     []string // per open bracket: the key of an array ("" for objects)
		arrays    []bool
		deep      int // brackets open beyond maxDepth
		key       string
		afterKey  bool // the next value is key's
	)
	replace := func(start, end int, tok []byte) {
		if rewritten == nil {
			rewritten = make([]byte, 0, len(frame)+64)
		}
		rewritten = append(append(rewritten, frame[copied:start]...), tok...)
		copied = end
	}
	valueKey := func() string {
		switch {
		case afterKey:
			return key
		case deep == 0 && len(arrays) > 0 && arrays[len(arrays)-1]:
			return stack[len(stack)-1]
		}
		return ""
	}
	open := func(array bool) {
		k := ""
		if array {
			k = valueKey()
		}
		if len(stack) >= maxDepth || deep > 0 {
			deep++
		} else {
			stack, arrays = append(stack, k), append(arrays, array)
		}
		afterKey = false
	}
	for i := 0; i < len(frame); {
		c := frame[i]
		switch {
		case c == '"':
			end, closed := stringEnd(frame, i)
			tok := frame[i:end]
			j := end
			for j < len(frame) && isSpace(frame[j]) {
				j++
			}
			if closed && !afterKey && j < len(frame) && frame[j] == ':' {
				k, ok := decodeString(tok)
				if !ok {
					k = string(tok)
				}
				if rep := visit(tokenKey, k, tok); rep != nil {
					replace(i, end, rep)
				}
				key, afterKey, i = k, true, j+1
				continue
			}
			if rep := visit(tokenString, valueKey(), tok); rep != nil {
				replace(i, end, rep)
			}
			afterKey, i = false, end
		case c == '-' || c >= '0' && c <= '9':
			end := i + 1
			for end < len(frame) && bytes.IndexByte([]byte("0123456789+-.eE"), frame[end]) >= 0 {
				end++
			}
			if rep := visit(tokenNumber, valueKey(), frame[i:end]); rep != nil {
				replace(i, end, rep)
			}
			afterKey, i = false, end
		case c == '{' || c == '[':
			open(c == '[')
			i++
		case c == '}' || c == ']':
			if deep > 0 {
				deep--
			} else if len(stack) > 0 {
				stack, arrays = stack[:len(stack)-1], arrays[:len(arrays)-1]
			}
			afterKey = false
			i++
		case c == ',':
			afterKey = false
			i++
		case isSpace(c):
			i++
		default:
			lit := 0
			for _, l := range []string{"true", "false", "null"} {
				if bytes.HasPrefix(frame[i:], []byte(l)) {
					lit = len(l)
				}
			}
			if lit == 0 {
				garbage, lit = true, 1
			}
			afterKey = false
			i += lit
		}
	}
	if rewritten == nil {
		return frame, garbage
	}
	return append(rewritten, frame[copied:]...), garbage
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// stringEnd is the index after the string token starting at frame[i] (a
// quote), and whether it has its closing quote; an unclosed string runs
// to the end of the frame.
func stringEnd(frame []byte, i int) (end int, closed bool) {
	for j := i + 1; j < len(frame); {
		k := bytes.IndexAny(frame[j:], `"\`)
		if k < 0 {
			break
		}
		j += k
		if frame[j] == '\\' {
			j += 2
			continue
		}
		return j + 1, true
	}
	return len(frame), false
}
