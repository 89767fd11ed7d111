package capture

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portsip-exporter/portsip_exporter/internal/secret"
	"github.com/portsip-exporter/portsip_exporter/wsi"
	"github.com/portsip-exporter/portsip_exporter/wsi/wsitest"
)

var testKey = []byte("a fixed key, so that tests see the same pseudonyms")

// people are the names, numbers and addresses of personal frames: none may
// be in an anonymised capture.
var people = []string{"4930111222", "Maria Garcia", "0049301234567", "Jason Smith", "Tom Young", "00431334081002",
	"jason@acme.example.com", "jsmith", "Chen, Wei", "5551234", "+4930555000", "in a meeting with Omar", "crm:778899", "0043222"}

var personal = []string{
	// A snapshot: waiting callers and an agent talking to one.
	`{"event_type":"queue_status","tenant_id":"1","queue_id":"77","queue_number":"8001","queue_name":"Sales",` +
		`"waiting_list":[{"position":"1","session_id":"s1","caller_number":"4930111222","caller_name":"Maria Garcia","timestamp":"1700000000","type":"normal"},` +
		`{"position":"2","session_id":"","caller_number":"","caller_name":"","timestamp":"1700000001","type":"normal"}],` +
		`"agents":[{"state":"QUEUE_CALL","agent_extension_number":"101","session_id":"s0","caller_number":"0049301234567","caller_name":"Jason Smith","timestamp":"1700000000"}]}`,
	// Extensions: their URIs are labels, and teach the anonymiser 101 and 102.
	`{"event_type":"extension_status","tenant_id":"1","status":[{"extension":"sip:101@acme.example.com","online":true},{"extension":"sip:102@acme.example.com","online":true}]}`,
	// An internal call (kept) and an external one, spaced and ordered as no
	// encoder would, a key repeated.
	`{ "event_type" : "call_start",  "caller":"sip:101@acme.example.com", "callee" : "sip:0049301234567@acme.example.com",` +
		` "caller_display_name":"Tom Young","callee_display_name":"Jason Smith","callee_display_name":"Jason Smith",` +
		` "did":"0800123","outbound_caller_id":"+4930555000","session_id":"c1","tenant_id":"1","time":"1700000002"}`,
	`{"event_type":"extension_created","extension_number":"103","disp_name":"Chen, Wei","email":"jason@acme.example.com",` +
		`"username":"jsmith","username":"jsmith","tenant_id":"1","enabled":true}`,
	`{"event_type":"extension_presence","extension":"sip:102@acme.example.com","presence":"AWAY","presence_note":"in a meeting with Omar","tenant_id":"1"}`,
	`{"event_type":"queue_sla_breached","queue_id":"77","tenant_id":"1","caller":"00431334081002","sla_time_secs":20,"timestamp":"1700000003"}`,
	// A CDR: the queue's number in a target is a label; the people are not.
	`{"event_type":"call_cdr","session_id":"c2","call_id":"x","tenant_id":"1","tenant_name":"Acme","caller":"sip:0049301234567@trunk.example",` +
		`"callee":"8001","user_data":"crm:778899","trunk_name":"Telia","call_targets":[{"callee":"8001","caller":"0049301234567",` +
		`"destination":"sip:0043222@pbx","did":"0800123","cli":"\"Maria Garcia\" <sip:4930111222@trunk.example>"}]}`,
	// Another version's spelling: a number where a string is documented.
	`{"event_type":"queue_caller_status","queue_id":"77","tenant_id":"1","updated_callers":[{"caller_number":5551234,"session_id":"s2","reason":"enqueue"}]}`,
	// Malformed (a full-width comma): still anonymised, still malformed.
	`{"event_type":"queue_caller_status","caller_name":"Maria Garcia"，"caller_number":"4930111222"}`,
}

func anonymize(t *testing.T, key []byte, frames ...string) []string {
	t.Helper()
	s := newScrubber(nil, true, key, nil, nil)
	out := make([]string, len(frames))
	for i, f := range frames {
		b, _ := s.frame([]byte(f))
		out[i] = string(b)
	}
	return out
}

var (
	jsonString = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	digits     = regexp.MustCompile(`[0-9]+`)
)

// skeleton is a frame without the content of its strings and numbers:
// what anonymisation must leave byte for byte.
func skeleton(f string) string {
	return digits.ReplaceAllString(jsonString.ReplaceAllString(f, `""`), "0")
}

type token struct {
	key, value string
}

// tokens are a frame's values with the key each belongs to (an array's
// values the array's key), in order, as encoding/json reads them.
func tokens(t *testing.T, f string) []token {
	t.Helper()
	type level struct {
		object, wantKey bool
		key             string
	}
	dec := json.NewDecoder(strings.NewReader(f))
	dec.UseNumber()
	var stack []*level
	var out []token
	done := func() { // a value ended
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].wantKey = true
		}
	}
	key := func() string {
		if len(stack) == 0 {
			return ""
		}
		return stack[len(stack)-1].key
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			if k, ok := tok.(string); ok {
				stack[n-1].key, stack[n-1].wantKey = k, false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &level{object: true, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &level{key: key()})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			done()
		default:
			out = append(out, token{key(), fmt.Sprint(tok)})
			done()
		}
	}
}

// Anonymising rewrites the values of the listed keys and nothing else: the
// frame keeps its bytes (key order, repeated keys, spacing, malformed
// spots); no name, number or address of a person stays; extension and
// queue numbers (labels) and empty values stay; a number stays a number.
func TestAnonymize(t *testing.T) {
	out := anonymize(t, testKey, personal...)
	all := strings.Join(out, "\n")
	for _, p := range people {
		if strings.Contains(all, p) {
			t.Errorf("%q is in the anonymised frames", p)
		}
	}
	for _, kept := range []string{`"caller":"sip:101@acme.example.com"`, `"callee":"8001"`, `"did":"0800123"`,
		`"agent_extension_number":"101"`, `"tenant_name":"Acme"`, `"trunk_name":"Telia"`, `"queue_name":"Sales"`,
		`"caller_number":"","caller_name":""`, `@trunk.example"`, `"extension":"sip:102@acme.example.com"`} {
		if !strings.Contains(all, kept) {
			t.Errorf("%s was changed", kept)
		}
	}
	for i := range personal {
		if skeleton(out[i]) != skeleton(personal[i]) {
			t.Errorf("frame %d changed beyond its values:\n got %s\nwant %s", i, out[i], personal[i])
		}
		in, got := tokens(t, personal[i]), tokens(t, out[i])
		if len(in) != len(got) {
			t.Errorf("frame %d: %d values, want %d:\n%s", i, len(got), len(in), out[i])
			continue
		}
		for j := range in {
			anon := slices.Contains(AnonymizedKeys, in[j].key) && in[j].value != "" &&
				!strings.Contains(in[j].value, "sip:10") && in[j].value != "8001"
			if changed := in[j] != got[j]; changed != anon || in[j].key != got[j].key {
				t.Errorf("frame %d: %v became %v", i, in[j], got[j])
			}
		}
	}
	if !strings.Contains(out[7], `"caller_number":999`) {
		t.Errorf("a numeric caller number did not stay a number: %s", out[7])
	}
	if _, _, err := wsi.Decode([]byte(out[8])); err == nil {
		t.Errorf("the malformed frame became well-formed: %s", out[8])
	}
}

// The same input gets the same pseudonym everywhere in a capture (a
// number as a caller_number and in a SIP URI alike); another capture's
// key gives others.
func TestPseudonymsAreStable(t *testing.T) {
	frames := []string{
		`{"caller_number":"0049301234567"}`,
		`{"callee":"sip:0049301234567@acme.example.com","caller_name":"Maria Garcia"}`,
		`{"call_targets":[{"caller":"0049301234567"}],"callee_display_name":"Maria Garcia"}`,
	}
	out := anonymize(t, testKey, frames...)
	number := regexp.MustCompile(`999[0-9]{12}`)
	name := regexp.MustCompile(`anon-[a-z2-7]{13}`)
	n := number.FindString(out[0])
	if n == "" || number.FindString(out[1]) != n || number.FindString(out[2]) != n {
		t.Errorf("one number, several pseudonyms: %q", out)
	}
	if m := name.FindString(out[1]); m == "" || name.FindString(out[2]) != m {
		t.Errorf("one name, several pseudonyms: %q", out)
	}
	if again := anonymize(t, testKey, frames...); !slices.Equal(again, out) {
		t.Errorf("the same key gave other pseudonyms")
	}
	if other := anonymize(t, []byte("another key"), frames...); number.FindString(other[0]) == n {
		t.Errorf("another key gave the same pseudonym")
	}
}

// A number that got a pseudonym keeps it even after an event names it as
// an extension: the same caller must stay the same caller.
func TestPseudonymSticks(t *testing.T) {
	out := anonymize(t, testKey,
		`{"caller_number":"555"}`,
		`{"event_type":"extension_created","extension_number":"555"}`,
		`{"caller_number":"555"}`)
	if out[0] != out[2] || strings.Contains(out[2], `"555"`) || !strings.Contains(out[1], `"555"`) {
		t.Errorf("%q", out)
	}
}

// What wsi decodes from a frame (event, quirks, errors) is the same
// after anonymising it, a caller number aside: for every vendor sample and
// every frame of the simulator speaking every quirk.
func TestAnonymizedFramesDecodeAlike(t *testing.T) {
	var frames [][]byte
	for _, dir := range []string{"vendor", "frames", "fixed"} {
		files, _ := filepath.Glob(filepath.Join("..", "wsi", "testdata", dir, "*.json"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			frames = append(frames, b)
		}
	}
	if len(frames) < 30 {
		t.Fatalf("found only %d samples", len(frames))
	}
	for _, q := range []wsitest.Quirks{wsitest.AllQuirks(), {Spelling: wsitest.SpellingLowerCase, EndReasonsPastTense: true}} {
		frames = append(frames, wsitest.Frames(wsitest.TrafficConfig{Seed: 3, Start: start, Quirks: q}, 400)...)
	}
	for _, f := range personal {
		frames = append(frames, []byte(f))
	}
	s := newScrubber([]string{"A1s2d3f4"}, true, testKey, nil, nil)
	callerNumber := regexp.MustCompile(`"CallerNumber":"[^"]*"`)
	for _, f := range frames {
		out, _ := s.frame(f)
		ev1, rep1, err1 := wsi.Decode(f)
		ev2, rep2, err2 := wsi.Decode(out)
		if fmt.Sprint(err1) != fmt.Sprint(err2) && (err1 == nil || err2 == nil) {
			t.Errorf("decoding %s: %v; anonymised %s: %v", f, err1, out, err2)
			continue
		}
		j1, _ := json.Marshal([]any{ev1, rep1})
		j2, _ := json.Marshal([]any{ev2, rep2})
		j1, j2 = callerNumber.ReplaceAll(j1, nil), callerNumber.ReplaceAll(j2, nil)
		if !bytes.Equal(j1, j2) {
			t.Errorf("decoded differently:\n%s\n%s", j1, j2)
		}
	}
}

// The password never reaches a capture, wherever the PBX puts it: a
// reply's text, a key, an escaped form, a value of a secret's key, text
// that is not JSON. A password that merely looks like part of a number is
// no echo: numbers stay.
func TestSecretsAreRemoved(t *testing.T) {
	const pw = `A1s2 "d3f4"`
	for _, tc := range []struct{ in, want string }{
		{`{"command":"auth","error":"password A1s2 \"d3f4\" is wrong","id":"2","status":-1}`,
			`{"command":"auth","error":"password <redacted> is wrong","id":"2","status":-1}`},
		{`{"command":"auth","echo":{"password":"anything","access_token":"eyJhbGci","refresh_token":""}}`,
			`{"command":"auth","echo":{"password":"<redacted>","access_token":"<redacted>","refresh_token":""}}`},
		{`{"A1s2 \"d3f4\"":1}`, `{"<redacted>":1}`},
		{`{"error":"\u0041\u0031s2 \"d3f4\""}`, `{"error":"<redacted>"}`},
		{`{"error":"A1s2%20%22d3f4%22"}`, `{"error":"<redacted>"}`},
		{`login failed for A1s2 "d3f4"`, `login failed for <redacted>`},
		{"\xef\xbb\xbf{\"e\":\"A1s2 \\\"d3f4\\\"\"}", "\xef\xbb\xbf{\"e\":\"<redacted>\"}"},
		{`{"time":1700000000,"note":"fine"}`, `{"time":1700000000,"note":"fine"}`},
	} {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, header(), Options{Secrets: []string{pw}})
		if err != nil {
			t.Fatal(err)
		}
		w.Record(wsi.Record{Time: start, Frame: []byte(tc.in)})
		_, entries, _ := readAll(t, &buf)
		if got := string(entries[0].Record.Frame); got != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.in, got, tc.want)
		}
		if redacted := w.Summary().Redacted == 1; redacted != (tc.in != tc.want) {
			t.Errorf("%s: Summary.Redacted %d", tc.in, w.Summary().Redacted)
		}
	}
}

// Whatever a frame holds, the scrubbed frame has no password in it, and
// decodes as well or as badly as the frame did.
func FuzzScrub(f *testing.F) {
	for _, p := range personal {
		f.Add([]byte(p))
	}
	f.Add([]byte(`{"error":"pa55word!","x":["pa55word!",{"caller":"pa55word!"}]}`))
	f.Add([]byte(`{"caller_name":"a\u0000","caller":"x` + "\x01" + `"}`))
	f.Add([]byte(`{"caller":"unterminated`))
	f.Add([]byte(`pa55word!{"a":"b"}`))
	const pw = "pa55word!"
	red := secret.NewRedactor(pw)
	f.Fuzz(func(t *testing.T, frame []byte) {
		s := newScrubber([]string{pw}, true, testKey, nil, nil)
		out, _ := s.frame(frame)
		if red.String(string(out)) != string(out) {
			t.Errorf("the password is in %q (from %q)", out, frame)
		}
		_, _, err1 := wsi.Decode(frame)
		_, _, err2 := wsi.Decode(out)
		if (err1 == nil) != (err2 == nil) {
			t.Errorf("%q decodes with %v, scrubbed %q with %v", frame, err1, out, err2)
		}
	})
}

func BenchmarkScrub(b *testing.B) {
	frames := wsitest.Frames(wsitest.TrafficConfig{Seed: 1, Start: time.Unix(1700000000, 0)}, 1000)
	s := newScrubber([]string{"A1s2d3f4"}, true, testKey, nil, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.frame(frames[i%len(frames)])
	}
}
