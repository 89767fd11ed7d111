package capture

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/portsip-exporter/portsip_exporter/internal/secret"
)

// AnonymizedKeys are the keys whose values Options.Anonymize replaces with
// pseudonyms, at any depth of a frame (call_targets included): what names
// or reaches a person on a call or in the PBX's user directory. Nothing
// the metrics use as a label or a key is among them: tenant, queue and
// extension numbers and ids, session and call ids, trunk, queue and tenant
// names, states, reasons and times stay as they were, so a replay of an
// anonymised capture gives the same numbers. caller_number is read, only
// to tell apart callers without a session id: a pseudonym tells them
// apart the same way.
var AnonymizedKeys = []string{
	"callee", "callee_display_name", "caller", "caller_display_name", "caller_name", "caller_number",
	"cli", "destiantion", "destination", "disp_name", "display_name", "email", "first_name",
	"last_name", "mobile_phone", "note", "outbound_caller_id", "presence_note", "user_data", "username",
}

// numberKeys name extension and queue numbers: labels of the metrics, and
// so never personal. A value of an anonymised key that is one of these
// numbers (an internal call's sip:101@domain) is kept.
var numberKeys = []string{"agent_extension_number", "extension", "extension_number", "queue_number", "removed_agents"}

// secretKey reports whether a key names a secret, whose string value is
// never recorded: the PBX has no reason to send one, but a reply echoing
// the login would.
func secretKey(key string) bool {
	k := strings.ToLower(key)
	return k == "passwd" || strings.HasSuffix(k, "password") || strings.HasSuffix(k, "token") || strings.HasSuffix(k, "secret")
}

// maxRemembered bounds each set of values a scrubber remembers: a PBX
// naming millions of numbers must not fill the memory. Past it, new
// extension numbers are no longer learnt (their calls' numbers get
// pseudonyms, the safe side).
const maxRemembered = 1 << 17

// scrubber rewrites frames before they are written: secrets out, and
// with anon the people's names and numbers replaced by pseudonyms. It
// changes only string (and number) tokens, one by one, so everything
// else in a frame (key order, repeated keys, white space, invalid JSON)
// stays byte for byte, and with it every quirk the decoder counts.
type scrubber struct {
	secrets []string
	red     *secret.Redactor
	anon    bool
	mac     []byte              // the pseudonyms' key
	known   map[string]struct{} // extension and queue numbers seen
	pseudo  map[string]struct{} // values given a pseudonym: never learnt as known after
	enc     *json.Encoder       // into encBuf
	encBuf  bytes.Buffer
}

func newScrubber(secrets []string, anon bool, key []byte, queues, extensions []string) *scrubber {
	s := &scrubber{red: secret.NewRedactor(secrets...), anon: anon, mac: key,
		known: map[string]struct{}{}, pseudo: map[string]struct{}{}}
	for _, sec := range secrets {
		if sec != "" {
			s.secrets = append(s.secrets, sec)
		}
	}
	s.enc = json.NewEncoder(&s.encBuf)
	s.enc.SetEscapeHTML(false)
	for _, n := range slices.Concat(queues, extensions) {
		s.learn(n)
	}
	return s
}

// frame returns the frame as it is written, and whether a secret was
// taken out of it.
func (s *scrubber) frame(b []byte) (out []byte, redacted bool) {
	if s.anon {
		walk(b, func(kind tokenKind, key string, tok []byte) []byte {
			if kind != tokenKey && slices.Contains(numberKeys, key) {
				if v, ok := tokenText(kind, tok); ok {
					s.learn(userPart(v))
				}
			}
			return nil
		})
	}
	out, garbage := walk(b, func(kind tokenKind, key string, tok []byte) []byte {
		switch {
		case kind == tokenString && secretKey(key) && len(tok) > 2:
			redacted = true
			return s.restring(tok, secret.Redacted)
		case kind != tokenKey && s.anon && slices.Contains(AnonymizedKeys, key):
			rep := s.anonymize(kind, key, tok)
			if rep == nil {
				rep = tok
			}
			if clean := s.secretFree(rep); clean != nil {
				redacted, rep = true, clean
			}
			if bytes.Equal(rep, tok) {
				return nil
			}
			return rep
		case kind != tokenNumber:
			if clean := s.secretFree(tok); clean != nil {
				redacted = true
				return clean
			}
		}
		return nil
	})
	// Text that is not JSON at all is not split into strings: a secret in
	// it goes wherever it is.
	if garbage && len(s.secrets) > 0 {
		if r := s.red.String(string(out)); r != string(out) {
			return []byte(r), true
		}
	}
	return out, redacted
}

// secretFree is a string token without the secrets, nil when it holds
// none. The secret is looked for in the token as written (every escaped
// form the Redactor knows) and, when it has escapes, as decoded.
func (s *scrubber) secretFree(tok []byte) []byte {
	if len(s.secrets) == 0 {
		return nil
	}
	raw := string(tok)
	found := s.red.String(raw) != raw
	v, valid := decodeString(tok)
	if !found && valid && bytes.IndexByte(tok, '\\') >= 0 {
		for _, sec := range s.secrets {
			found = found || strings.Contains(v, sec)
		}
	}
	if !found {
		return nil
	}
	if valid {
		return s.encode(s.red.String(v))
	}
	return []byte(s.red.String(raw)) // not a valid string: the frame is malformed anyway
}

// anonymize is the pseudonymised token of a value of an anonymised key,
// nil to keep it.
func (s *scrubber) anonymize(kind tokenKind, key string, tok []byte) []byte {
	if kind == tokenNumber {
		// A number where a string is documented (another version's
		// spelling): a numeric pseudonym keeps it a number, and keeps it
		// the same text as the string it may also come as.
		if !isDigits(string(tok)) {
			return nil
		}
		return []byte(s.word(string(tok)))
	}
	v, valid := decodeString(tok)
	if !valid {
		// A string the decoder refuses: a pseudonym of its raw text.
		v = strings.Trim(string(tok), `"`)
	}
	if v == "" {
		return nil // empty says "none"; a pseudonym would say someone
	}
	nv := s.value(key, v)
	if nv == v && valid {
		return nil
	}
	return s.restring(tok, nv)
}

// restring is a string token holding v in place of tok. A tok the decoder
// refuses gives a token it refuses too (with a control character, and
// unclosed if tok was), so that a malformed frame stays malformed.
func (s *scrubber) restring(tok []byte, v string) []byte {
	if _, valid := decodeString(tok); valid {
		return s.encode(v)
	}
	out := s.encode(v)
	out = append(out[:len(out)-1], "\x01\""...)
	if !stringClosed(tok) {
		out = out[:len(out)-1]
	}
	return out
}

// value is the pseudonymised value of an anonymised key.
func (s *scrubber) value(key, v string) string {
	if key == "email" {
		return s.pseudonym(strings.ToLower(v)) + "@anon.invalid"
	}
	if i := uriStart(v); i >= 0 {
		// sip:USER@host, tel:USER, possibly after a display name:
		// only the user and the name are a person's.
		prefix, rest := v[:i], v[i:]
		userStart := strings.IndexByte(rest, ':') + 1
		userEnd := len(rest)
		if j := strings.IndexAny(rest[userStart:], "@;>?"); j >= 0 {
			userEnd = userStart + j
		}
		if name := strings.Trim(prefix, ` "<`); name != "" {
			prefix = strings.Replace(prefix, name, s.pseudonym(name), 1)
		}
		return prefix + rest[:userStart] + s.word(rest[userStart:userEnd]) + rest[userEnd:]
	}
	return s.word(v)
}

// word is v's pseudonym, or v itself when it is an extension or queue
// number of the capture (a label anyway), or empty.
func (s *scrubber) word(v string) string {
	if v == "" {
		return v
	}
	if _, ok := s.known[v]; ok {
		return v
	}
	if len(s.pseudo) < maxRemembered {
		s.pseudo[v] = struct{}{}
	}
	return s.pseudonym(v)
}

// learn notes an extension or queue number. One that already got a
// pseudonym stays a pseudonym (the same input gives the same output
// everywhere in the file), and once the pseudonyms are too many to
// remember, nothing new is learnt, for the same reason.
func (s *scrubber) learn(n string) {
	if n == "" || len(s.known) >= maxRemembered || len(s.pseudo) >= maxRemembered {
		return
	}
	if _, ok := s.pseudo[n]; !ok {
		s.known[n] = struct{}{}
	}
}

var pseudonymText = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// pseudonym is v's stable stand-in: HMAC-SHA256 of v under the capture's
// key. A number (digits, maybe after a +) becomes 999 and 12 digits (999
// is no country's code, and the number stays below 2^53); anything else
// anon- and 13 letters or digits.
func (s *scrubber) pseudonym(v string) string {
	m := hmac.New(sha256.New, s.mac)
	m.Write([]byte(v))
	sum := m.Sum(nil)
	if isDigits(strings.TrimPrefix(v, "+")) {
		sign := ""
		if strings.HasPrefix(v, "+") {
			sign = "+"
		}
		return fmt.Sprintf("%s999%012d", sign, binary.BigEndian.Uint64(sum)%1e12)
	}
	return "anon-" + pseudonymText.EncodeToString(sum[:8])
}

func (s *scrubber) encode(v string) []byte {
	s.encBuf.Reset()
	_ = s.enc.Encode(v) // a string cannot fail
	return bytes.Clone(bytes.TrimSuffix(s.encBuf.Bytes(), []byte("\n")))
}

// uriStart is the index of a sip:, sips: or tel: URI in v, -1 if none.
func uriStart(v string) int {
	// Lower-case ASCII only: strings.ToLower turns each invalid UTF-8 byte
	// into three, and the index would no longer be v's.
	b := []byte(v)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	l := string(b)
	best := -1
	for _, scheme := range []string{"sip:", "sips:", "tel:"} {
		if i := strings.Index(l, scheme); i >= 0 && (best < 0 || i < best) {
			best = i
		}
	}
	return best
}

// userPart is the user of a SIP or tel URI, else v.
func userPart(v string) string {
	i := uriStart(v)
	if i < 0 {
		return v
	}
	rest := v[i:]
	rest = rest[strings.IndexByte(rest, ':')+1:]
	if j := strings.IndexAny(rest, "@;>?"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// tokenText is the text of a value token: a string decoded, a number as
// written.
func tokenText(kind tokenKind, tok []byte) (string, bool) {
	if kind == tokenNumber {
		return string(tok), true
	}
	return decodeString(tok)
}

// decodeString decodes a JSON string token as encoding/json (and the wsi
// decoder) do; false when it is not a valid one.
func decodeString(tok []byte) (string, bool) {
	if len(tok) >= 2 && tok[0] == '"' && tok[len(tok)-1] == '"' && bytes.IndexByte(tok[1:len(tok)-1], '\\') < 0 && bytes.IndexByte(tok[1:len(tok)-1], '"') < 0 {
		plain := true
		for _, c := range tok[1 : len(tok)-1] {
			if c < 0x20 || c >= 0x80 {
				plain = false
				break
			}
		}
		if plain {
			return string(tok[1 : len(tok)-1]), true
		}
	}
	var v string
	if err := json.Unmarshal(tok, &v); err != nil {
		return "", false
	}
	return v, true
}

// stringClosed reports whether a string token ends with its closing quote.
func stringClosed(tok []byte) bool {
	end, ok := stringEnd(tok, 0)
	return ok && end == len(tok)
}
