package bench

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/portsip-exporter/portsip_exporter/collector"
	"github.com/portsip-exporter/portsip_exporter/wsi"
	"github.com/portsip-exporter/portsip_exporter/wsi/wsitest"
)

// trafficFrames is what the simulated contact centre sends a system
// administrator from the first subscribe on: the snapshots, then queue
// caller and agent updates, extension call, presence and status changes,
// call_start and call_cdr with call_targets, management events. 10,000
// frames make the snapshots a small share, as they are on a live session.
func trafficFrames(b *testing.B) [][]byte {
	b.Helper()
	frames := wsitest.Frames(wsitest.TrafficConfig{
		Seed: 1, Tenants: 2, QueuesPerTenant: 4, Start: trafficStart,
	}, 10_000)
	if len(frames) == 0 {
		b.Fatal("no frames")
	}
	return frames
}

// trafficStart is when the benchmark's simulated traffic starts: fixed,
// so that the frames are the same at every run.
var trafficStart = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// newCollector is a Collector whose clock is the traffic's, so that the
// PBX times in the frames are plausible, as a live PBX's are.
func newCollector() *collector.Collector {
	now := func() time.Time { return trafficStart }
	c := collector.New(collector.Config{AgentState: true, ExtensionState: true, Now: now}, nil)
	c.SessionUp(wsi.Session{})
	return c
}

// BenchmarkIngest is one frame per op, from raw WebSocket frame bytes to
// applied state: wsi.Decode, then Collector.HandleEvent. naive_map is the
// consumer a user would write by hand, json.Unmarshal of the same frames
// into map[string]any, and does not even apply them: the exporter must be
// cheaper than that alone.
func BenchmarkIngest(b *testing.B) {
	frames := trafficFrames(b)
	b.Run("exporter", func(b *testing.B) {
		c := newCollector()
		ingest := func(frame []byte) {
			ev, _, err := wsi.Decode(frame)
			if err != nil {
				b.Fatal(err)
			}
			c.HandleEvent(ev)
		}
		// Steady state: every entity the stream names is tracked before
		// the clock starts, so the benchmark measures updates, not growth.
		for _, f := range frames {
			ingest(f)
		}
		cycle(b, frames, ingest)
	})
	b.Run("naive_map", func(b *testing.B) {
		cycle(b, frames, func(frame []byte) {
			var m map[string]any
			if err := json.Unmarshal(frame, &m); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// cycle hands one frame per op to fn, cycling through frames, and reports
// the mean frame size.
func cycle(b *testing.B, frames [][]byte, fn func([]byte)) {
	total := 0
	for _, f := range frames {
		total += len(f)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		fn(frames[n%len(frames)])
		n++
	}
	// After the loop: b.Loop's start clears metrics reported before it.
	b.ReportMetric(float64(total)/float64(len(frames)), "B/frame")
}
