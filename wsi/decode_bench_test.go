package wsi

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi/wsitest"
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
	b.Run("mix", func(b *testing.B) { benchCycle(b, frames, decode) })
	// What the simulated contact centre sends, snapshots included.
	b.Run("traffic", func(b *testing.B) {
		traffic := wsitest.Frames(wsitest.TrafficConfig{Seed: 1, Start: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}, 2000)
		benchCycle(b, traffic, decode)
	})
}

// benchCycle decodes one frame per op, cycling through frames.
func benchCycle(b *testing.B, frames [][]byte, decode func([]byte) error) {
	n := 0
	for b.Loop() {
		if err := decode(frames[n%len(frames)]); err != nil {
			b.Fatal(err)
		}
		n++
	}
}
