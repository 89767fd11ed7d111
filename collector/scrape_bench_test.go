package collector

import "testing"

// BenchmarkScrapeCopy is the part of a scrape of the large PBX that holds
// the Collector's lock, and so stalls ingest: the copy of the state. The
// registry's work and the encoding follow after the lock is released;
// BenchmarkCollect is the whole scrape.
func BenchmarkScrapeCopy(b *testing.B) {
	c, _ := benchCollector(b, largePBX)
	rows := 0
	for b.Loop() {
		rows = c.copyState().n
	}
	b.ReportMetric(float64(rows), "series")
}
