package bench

import (
	"encoding/json"
	"testing"

	"github.com/portsip-exporter/portsip_exporter/wsi"
	"github.com/portsip-exporter/portsip_exporter/wsi/wsitest"
)

// The ratios in BENCHMARKS.md only mean something if both sides do the
// work on every frame: a frame the decoder rejected would be cheap for the
// wrong reason, and one the naive consumer could not parse would flatter
// it. Every benchmark frame must be valid JSON, an event, and applied.
func TestBenchmarkFramesAreEvents(t *testing.T) {
	frames := wsitest.Frames(wsitest.TrafficConfig{
		Seed: 1, Tenants: 2, QueuesPerTenant: 4, Start: trafficStart,
	}, 2_000)
	if len(frames) != 2_000 {
		t.Fatalf("got %d frames, want 2000", len(frames))
	}
	c := newCollector()
	types := map[string]int{}
	for i, f := range frames {
		var m map[string]any
		if err := json.Unmarshal(f, &m); err != nil {
			t.Fatalf("frame %d is not JSON for the naive consumer: %v", i, err)
		}
		ev, reply, err := wsi.Decode(f)
		if err != nil || reply != nil {
			t.Fatalf("frame %d: not an event: reply %v, err %v", i, reply, err)
		}
		types[ev.Head().EventType]++
		c.HandleEvent(ev)
	}
	// The mix the issue names: queue caller and agent updates, extension
	// call and presence, call_start, call_cdr.
	for _, want := range []string{"queue_caller_status", "queue_agent_status", "extension_call",
		"extension_presence", "call_start", "call_cdr"} {
		if types[want] == 0 {
			t.Errorf("no %s among the benchmark frames: %v", want, types)
		}
	}
}
