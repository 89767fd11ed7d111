package collector

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// clientGolang is the histogram hist stands in for: what the exporter
// exposed before, and what scrapers and Prometheus know.
func clientGolang(buckets []float64) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Help: "h", Buckets: buckets,
		NativeHistogramBucketFactor: 1.1, NativeHistogramMaxBucketNumber: nativeMaxBuckets})
}

func writeHist(t *testing.T, h *hist, buckets []float64) *dto.Histogram {
	t.Helper()
	var s histSlabs
	c := s.copy(h)
	var d dtoHistSlabs
	return d.write(&c, buckets)
}

func writeClientGolang(t *testing.T, h prometheus.Histogram) *dto.Histogram {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram()
}

// sameHistogram compares everything but the created timestamp.
func sameHistogram(t *testing.T, got, want *dto.Histogram) {
	t.Helper()
	got, want = proto.Clone(got).(*dto.Histogram), proto.Clone(want).(*dto.Histogram)
	got.CreatedTimestamp, want.CreatedTimestamp = nil, nil
	if !proto.Equal(got, want) {
		t.Errorf("histogram\n%v\nwant (client_golang)\n%v", got, want)
	}
}

// hist renders what client_golang renders for the same observations:
// classic and native buckets, the zero bucket, spans with small gaps
// filled, and the halving of the resolution past 160 buckets.
func TestHistMatchesClientGolang(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		gen  func() float64
	}{
		{"whole seconds of a wait", func() float64 { return float64(r.IntN(700)) }},
		{"sparse", func() float64 { return float64(r.IntN(4) * 1000) }},
		{"fractions", func() float64 { return r.Float64() * 30 }},
		{"zero only", func() float64 { return 0 }},
		{"wide enough to widen", func() float64 { return r.ExpFloat64() * float64(int64(1)<<r.IntN(60)) / 1e6 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := clientGolang(WaitBuckets)
			got := newHist(WaitBuckets, time.Now())
			for range 5000 {
				v := tc.gen()
				want.Observe(v)
				got.observe(v, WaitBuckets)
			}
			if tc.name == "wide enough to widen" && got.schema >= nativeSchema {
				t.Fatalf("schema %d: the test did not make the buckets widen", got.schema)
			}
			sameHistogram(t, writeHist(t, &got, WaitBuckets), writeClientGolang(t, want))
		})
	}
	// An empty histogram too.
	h := newHist(TalkBuckets, time.Now())
	sameHistogram(t, writeHist(t, &h, TalkBuckets), writeClientGolang(t, clientGolang(TalkBuckets)))
}

// Two histograms merged are the histogram of all their observations, at
// whichever resolution the union needs.
func TestHistMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name   string
		genA   func() float64
		genB   func() float64
		narrow bool // a's resolution halved before the merge
	}{
		{"same range", func() float64 { return float64(r.IntN(300)) }, func() float64 { return float64(r.IntN(300)) }, false},
		{"b needs a coarser schema", func() float64 { return float64(r.IntN(60)) },
			func() float64 { return r.ExpFloat64() * float64(int64(1)<<r.IntN(60)) / 1e6 }, false},
		{"a needs a coarser schema", func() float64 { return r.ExpFloat64() * float64(int64(1)<<r.IntN(60)) / 1e6 },
			func() float64 { return float64(r.IntN(60)) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all := clientGolang(WaitBuckets)
			a, b := newHist(WaitBuckets, time.Now()), newHist(WaitBuckets, time.Now())
			for range 3000 {
				v := tc.genA()
				a.observe(v, WaitBuckets)
				all.Observe(v)
			}
			for range 2000 {
				v := tc.genB()
				b.observe(v, WaitBuckets)
				all.Observe(v)
			}
			if tc.narrow && a.schema >= b.schema {
				t.Fatalf("the test's a has schema %d, b %d", a.schema, b.schema)
			}
			a.merge(&b)
			sameHistogram(t, writeHist(t, &a, WaitBuckets), writeClientGolang(t, all))
		})
	}
}
