package wsi

import (
	"encoding/json"
	"testing"
)

// benchFrames is a realistic mix of what a busy contact centre sends: queue
// caller and agent updates, extension call and presence changes, call
// starts, final CDRs with two targets, and an extension status update.
var benchFrames = []string{
	"queue_caller_status",
	"queue_agent_status",
	"extension_call",
	"extension_presence",
	"call_start",
	"call_cdr",
	"extension_status",
}

func loadBenchFrames(b *testing.B) [][]byte {
	frames := make([][]byte, len(benchFrames))
	for i, name := range benchFrames {
		frames[i] = readTestdata(b, "frames/"+name+".json")
	}
	return frames
}

// BenchmarkDecode decodes each frame type, and the mix (one frame per op).
// Compare with BenchmarkDecodeNaiveMap, the consumer a user would write.
func BenchmarkDecode(b *testing.B) {
	benchFramesWith(b, func(frame []byte) error {
		_, _, err := Decode(frame)
		return err
	})
}

// BenchmarkDecodeNaiveMap is the baseline: encoding/json into a map.
func BenchmarkDecodeNaiveMap(b *testing.B) {
	benchFramesWith(b, func(frame []byte) error {
		var m map[string]any
		return json.Unmarshal(frame, &m)
	})
}

func benchFramesWith(b *testing.B, decode func([]byte) error) {
	frames := loadBenchFrames(b)
	for i, name := range benchFrames {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(frames[i])))
			for b.Loop() {
				if err := decode(frames[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("mix", func(b *testing.B) {
		n := 0
		for b.Loop() {
			if err := decode(frames[n%len(frames)]); err != nil {
				b.Fatal(err)
			}
			n++
		}
	})
}
