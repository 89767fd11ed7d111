package collector

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/portsip-exporter/portsip_exporter/internal/benchpbx"
)

// BenchmarkScrape is the exporter's scrape of the large PBX without HTTP:
// the snapshot (copy and sort) and the text written from it. Beside
// BenchmarkCollect (a registry's Gather and expfmt's encoding, the way
// the exporter scraped before) and BenchmarkEncodeOnly (expfmt's encoding
// alone, the floor).
func BenchmarkScrape(b *testing.B) {
	c, _ := benchCollector(b, largePBX)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Snapshot().WriteTo(io.Discard, expfmt.NewFormat(expfmt.TypeTextPlain), nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// largePBXTimes is a Collector holding n times the large PBX, its limits
// lifted above it.
func largePBXTimes(n int) *Collector {
	c := New(Config{AgentState: true, ExtensionState: true, MaxSeries: 1 << 30,
		Limits: Limits{Queues: 1 << 20, Extensions: 1 << 20}}, statsFunc(someStats))
	c.SessionUp(sessionWith())
	benchpbx.Large.Times(n).Load(c, time.Now())
	return c
}

// BenchmarkScrapeCopy is the part of a scrape of the large PBX that holds
// the Collector's lock, and so stalls ingest: the copy of the state. The
// sort and the encoding follow after the lock is released;
// BenchmarkCollect is the whole scrape.
// At 1x and 3x the large PBX: the lock is held in proportion to the
// state.
func BenchmarkScrapeCopy(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("size=%dx", n), func(b *testing.B) {
			c := largePBXTimes(n)
			rows := 0
			b.ReportAllocs()
			for b.Loop() {
				rows = c.copyState().n
			}
			b.ReportMetric(float64(rows), "series")
		})
	}
}

// BenchmarkScrapeSort is the sort of a copy, as a registry orders the
// series, at 1x and 3x the large PBX.
func BenchmarkScrapeSort(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("size=%dx", n), func(b *testing.B) {
			c := largePBXTimes(n)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				s := c.copyState()
				b.StartTimer()
				s.sort()
			}
		})
	}
}

// BenchmarkScrapeWrite writes a snapshot of the large PBX in the text
// formats.
func BenchmarkScrapeWrite(b *testing.B) {
	c, _ := benchCollector(b, largePBX)
	sn := c.Snapshot()
	for name, f := range map[string]expfmt.Format{"text": expfmt.NewFormat(expfmt.TypeTextPlain), "openmetrics": expfmt.FmtOpenMetrics_1_0_0} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := sn.WriteTo(io.Discard, f, nil, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
