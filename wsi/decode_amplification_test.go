package wsi

import (
	"math"
	"runtime"
	"strings"
	"testing"
)

// repeated returns a frame of about size bytes: head, s repeated with sep
// between, tail.
func repeated(size int, head, s, sep, tail string) []byte {
	n := (size - len(head) - len(tail)) / (len(s) + len(sep))
	return []byte(head + strings.Repeat(s+sep, n-1) + s + tail)
}

// amplificationFrames are frames built to make a decoder allocate far more
// than they weigh: under every key that holds an array, entries that carry
// nothing, entries as small as any the decoder keeps, and both; and long
// strings that decode to more bytes than they take.
func amplificationFrames(size int) map[string][]byte {
	frames := map[string][]byte{}
	for _, a := range []struct{ name, head, empty, kept string }{
		{"call_targets", `{"event_type":"call_cdr","call_targets":[`, `{}`, `{"id":1}`},
		{"agents", `{"event_type":"queue_status","agents":[`, `{}`, `{"agent_extension_number":1}`},
		{"waiting_list", `{"event_type":"queue_status","waiting_list":[`, `{}`, `{"reason":1}`},
		{"updated_callers", `{"event_type":"queue_caller_status","updated_callers":[`, `{}`, `{"session_id":1}`},
		{"updated_agents", `{"event_type":"queue_agent_status","updated_agents":[`, `{}`, `{"agent_extension_number":1}`},
		{"removed_agents", `{"event_type":"queue_agent_status","removed_agents":[`, `{}`, `1`},
		{"status", `{"event_type":"extension_status","status":[`, `{}`, `{"extension":1}`},
		{"agent_status", `{"event_type":"extension_agent_status","agent_status":[`, `{}`, `{"queue_number":1}`},
		{"topics", `{"command":"subscribe","topics":[`, `""`, `1`},
	} {
		frames[a.name+" empty"] = repeated(size, a.head, a.empty, ",", "]}")
		frames[a.name+" "+a.kept] = repeated(size, a.head, a.kept, ",", "]}")
		// Kept entries first, so that the decoder sizes its slice for the
		// rest of the array, which then holds only empty entries.
		half := strings.Repeat(a.kept+",", size/2/(len(a.kept)+1))
		frames[a.name+" mixed"] = repeated(size, a.head+half, a.empty, ",", "]}")
	}
	frames["escaped session_id"] = repeated(size, `{"event_type":"call_cdr","session_id":"`, `\n`, "", `"}`)
	frames["invalid UTF-8 session_id"] = repeated(size, `{"event_type":"call_cdr","session_id":"`, "\xff", "", `"}`)
	frames["unused nested arrays"] = repeated(size, `{"event_type":"call_cdr","user_data":[`, `[[[[[[[[1]]]]]]]]`, ",", "]}")
	return frames
}

// TestDecodeAmplification bounds what decoding a frame allocates, in all,
// by a small multiple of the frame's size: while a frame is decoded the
// exporter never holds more than maxAmplification times its size for it
// (frames are at most 16 MiB unless configured otherwise).
//
// The worst cases are arrays of the smallest entries the decoder keeps: a
// bare 1 in removed_agents takes 2 bytes and becomes a 16-byte string header
// (8x), {"reason":1} takes 13 and becomes an 80-byte QueueCaller (6.2x); a
// string of invalid UTF-8 triples in size, decoded once into scratch and
// once into the event (6x). Slices and strings are allocated at their final
// size, never at the several-fold that append's growth allocates on the way,
// and entries that carry nothing cost nothing.
func TestDecodeAmplification(t *testing.T) {
	const maxAmplification = 8
	const slack = 16 << 10 // the event, a decoder, the first 64 entries
	frames := amplificationFrames(256 << 10)
	// The frame of the report that asked for this bound: 16,000,000 bytes
	// of call_targets, which once became 5.3 million structs (2.1 GB).
	frames["16 MB of call_targets"] = repeated(16_000_000, `{"event_type":"call_cdr","call_targets":[`, "{}", ",", "]}")
	for name, frame := range frames {
		ev, rep, err := Decode(frame)
		if err != nil || ev == nil && rep == nil {
			t.Fatalf("%s: %v", name, err)
		}
		limit := maxAmplification*uint64(len(frame)) + slack
		unread := strings.HasSuffix(name, " empty") || strings.HasPrefix(name, "16 MB") || strings.HasPrefix(name, "unused")
		if unread {
			limit = slack
		}
		allocated := allocatedBy(func() { Decode(frame) }, limit)
		t.Logf("%-42s %5.2f bytes allocated per byte", name, float64(allocated)/float64(len(frame)))
		if allocated > limit && unread {
			t.Errorf("%s: decoding what nothing reads allocated %d bytes", name, allocated)
		} else if allocated > limit {
			t.Errorf("%s: decoding %d bytes allocated %d, more than %dx", name, len(frame), allocated, maxAmplification)
		}
	}
}

// allocatedBy returns the bytes f allocates. A goroutine an earlier test
// left winding down may allocate meanwhile, so a count over limit is taken
// again, and the least of three kept.
func allocatedBy(f func(), limit uint64) uint64 {
	least := uint64(math.MaxUint64)
	for i := 0; i < 3 && least > limit; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	return least
}
