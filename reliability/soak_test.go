//go:build !race

// The race detector slows this tenfold and adds its own shadow memory, so
// the soak runs without it, as its own step of .ci/run.

package reliability

import (
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portsip-exporter/portsip_exporter/collector"
	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// liveHeap is the heap still reachable after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC() // the first may leave finalizer-held objects for the second
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestSoakMillionEvents streams a million frames of churn through the
// decoder and the collector, as the client's session loop does, with a
// scrape every 10,000 events, and checks that live memory stays flat once
// the entity count is steady.
func TestSoakMillionEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: a million events")
	}
	const (
		events     = 1_000_000
		warmUp     = 200_000 // by then every bounded entity has reached its steady count
		checkpoint = 100_000
		scrapeEach = 10_000
		// Allowed growth from the first checkpoint after warm-up to the
		// last: 10% plus 1 MiB of noise (pools, map buckets). A leak of one
		// string per event would add tens of MiB.
		slack = 1 << 20
	)
	col := collector.New(collector.Config{AgentState: true, ExtensionState: true}, nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(col)
	col.SessionUp(wsi.Session{})
	g := newChurn(1)

	var heaps []uint64
	var series, firstSeries int
	start := time.Now()
	for i := 1; i <= events; i++ {
		frame, _, _ := g.next()
		ev, _, err := wsi.Decode(frame)
		if err != nil {
			t.Fatalf("frame %d does not decode: %v\n%s", i, err, frame)
		}
		col.HandleEvent(ev)
		if i%scrapeEach == 0 {
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			series = countSeries(mfs)
		}
		if i%checkpoint == 0 && i >= warmUp {
			h := liveHeap()
			heaps = append(heaps, h)
			if firstSeries == 0 {
				firstSeries = series
			}
			t.Logf("%7d events: live heap %6.2f MiB, %d series", i, float64(h)/(1<<20), series)
		}
	}
	elapsed := time.Since(start)
	t.Logf("%d events in %s (%.0f events/s, frames generated and decoded included)", events, elapsed.Round(time.Millisecond), events/elapsed.Seconds())

	first, last := heaps[0], heaps[len(heaps)-1]
	if limit := first + first/10 + slack; last > limit {
		t.Errorf("live heap grew from %.2f MiB to %.2f MiB over %d events at a steady entity count (limit %.2f MiB)",
			float64(first)/(1<<20), float64(last)/(1<<20), events-warmUp, float64(limit)/(1<<20))
	}

	// The page does not grow either: ids never become labels.
	if series > firstSeries+firstSeries/10 {
		t.Errorf("a scrape grew from %d to %d series at a steady entity count", firstSeries, series)
	}

	// Nothing was lost on the way: every caller change and call counted.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for reason, want := range g.reasons {
		if got := sumFamily(mfs, "portsip_queue_callers_total", "reason", reason); got != float64(want) {
			t.Errorf("portsip_queue_callers_total{reason=%q} = %v, want %d", reason, got, want)
		}
	}
	if got, want := sumFamily(mfs, "portsip_calls_total"), g.sent[wsi.TypeCallCDR]; got != float64(want) {
		t.Errorf("portsip_calls_total = %v, want %d", got, want)
	}
	// The live entities are the generator's, not an accumulation.
	var calls int
	for _, ct := range g.tenants {
		calls += len(ct.calls)
	}
	if got := sumFamily(mfs, "portsip_calls_active"); got != float64(calls) {
		t.Errorf("portsip_calls_active = %v, want the %d calls in progress", got, calls)
	}
	var waiting int
	for _, ct := range g.tenants {
		for _, q := range append(slices.Clone(ct.queues), ct.campaign) {
			if q != nil {
				waiting += len(q.waiting)
			}
		}
	}
	if got := sumFamily(mfs, "portsip_queue_waiting_callers"); got != float64(waiting) {
		t.Errorf("portsip_queue_waiting_callers = %v, want the %d callers waiting", got, waiting)
	}
	if got, want := sumFamily(mfs, "portsip_queue_agents"), float64(churnTenants*churnQueues*churnAgents); got < want || got > want+churnTenants*3 {
		t.Errorf("portsip_queue_agents = %v, want %v plus at most the campaign queues' agents", got, want)
	}
	if got, want := sumFamily(mfs, "portsip_extensions"), float64(churnTenants*churnExts); got < want || got > want+churnTenants*churnMaxTemp {
		t.Errorf("portsip_extensions = %v, want %v plus at most the temporary ones", got, want)
	}
}
