package collector

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// sample is one gauge, counter or histogram, copied out under the lock
// and then handed to the registry as a prometheus.Metric.
//
// A large PBX renders ~10^5 series at every scrape, and the garbage they
// leave sets the exporter's resident size. prometheus.NewConstMetric makes
// a dozen small objects per series; here a series takes a slot in a few
// chunked slabs, and its label pairs are shared wherever they are equal:
// with the series before it (the tenant of every series of a tenant, the
// extension of an extension's three series) and, for labels with a
// bounded set of values (state, presence, ...), across the scrape. The
// registry and the encoders only read them. Label values were made valid
// at ingest.
type sample struct {
	f       *family
	val     float64
	labels  []*dto.LabelPair // sorted by name, as the exposition wants
	gauge   *dto.Gauge       // exactly one of gauge, counter and hist is set
	counter *dto.Counter
	hist    *dto.Histogram
}

func (m *sample) Desc() *prometheus.Desc { return m.f.desc }

func (m *sample) Write(out *dto.Metric) error {
	out.Label, out.Gauge, out.Counter, out.Histogram = m.labels, m.gauge, m.counter, m.hist
	return nil
}

// slab hands out slices of one scrape's objects from blocks that grow to
// slabBlock: a few allocations per scrape instead of one per object, and
// nothing handed out ever moves.
type slab[T any] struct {
	free []T
	size int // of the last block
}

const slabBlock = 4096

func (s *slab[T]) take(n int) []T {
	if len(s.free) < n {
		s.size = min(max(2*s.size, 64), slabBlock)
		s.free = make([]T, max(n, s.size))
	}
	t := s.free[:n:n]
	s.free = s.free[n:]
	return t
}

// samples is a scrape's copy of the state, built under the lock.
type samples struct {
	all      [][]sample // chunks of the series, in order
	n        int
	gauges   slab[dto.Gauge]
	counters slab[dto.Counter]
	ptrs     slab[*dto.LabelPair]
	pairs    slab[dto.LabelPair]
	values   slab[string] // label values the pairs point to
	hists    histSlabs

	last    [numLabels]*dto.LabelPair            // by label: the latest pair
	bounded [numLabels]map[string]*dto.LabelPair // by label, for bounded labels
}

func newSamples(hint int) *samples {
	return &samples{all: [][]sample{make([]sample, 0, hint)}}
}

// add copies one series of a gauge or counter family.
func (s *samples) add(f *family, v float64, lv ...string) {
	if f.kind == histogram {
		panic("collector: add of histogram " + f.name)
	}
	m := s.next(f, lv)
	m.val = v
	if f.kind == gauge {
		m.gauge = &s.gauges.take(1)[0]
		m.gauge.Value = &m.val
	} else {
		m.counter = &s.counters.take(1)[0]
		m.counter.Value = &m.val
	}
}

// addHist copies one series of a histogram family.
func (s *samples) addHist(f *family, h *hist, lv ...string) {
	if f.kind != histogram {
		panic("collector: addHist of " + f.name)
	}
	s.next(f, lv).hist = s.hists.copy(h, f.buckets)
}

// next appends a series and gives it its label pairs.
func (s *samples) next(f *family, lv []string) *sample {
	if len(lv) != len(f.ids) {
		panic("collector: wrong number of label values for " + f.name)
	}
	chunk := &s.all[len(s.all)-1]
	if len(*chunk) == cap(*chunk) {
		s.all = append(s.all, make([]sample, 0, slabBlock))
		chunk = &s.all[len(s.all)-1]
	}
	*chunk = append(*chunk, sample{f: f})
	m := &(*chunk)[len(*chunk)-1]
	s.n++
	m.labels = s.ptrs.take(len(lv))
	for j, idx := range f.order {
		m.labels[j] = s.pair(f.ids[idx], &f.names[idx], lv[idx])
	}
	return m
}

// pair returns a label pair, shared when an equal one exists.
func (s *samples) pair(id labelID, name *string, value string) *dto.LabelPair {
	if l := s.last[id]; l != nil && *l.Value == value {
		return l
	}
	b := labels[id].bounded
	if b {
		if l := s.bounded[id][value]; l != nil {
			s.last[id] = l
			return l
		}
	}
	l := &s.pairs.take(1)[0]
	v := &s.values.take(1)[0]
	*v = value
	l.Name, l.Value = name, v
	s.last[id] = l
	if b {
		if s.bounded[id] == nil {
			s.bounded[id] = make(map[string]*dto.LabelPair)
		}
		s.bounded[id][value] = l
	}
	return l
}

// histSlabs hold the copies of a scrape's histograms.
type histSlabs struct {
	hists    slab[dto.Histogram]
	buckets  slab[dto.Bucket]
	bptrs    slab[*dto.Bucket]
	spans    slab[dto.BucketSpan]
	sptrs    slab[*dto.BucketSpan]
	deltas   slab[int64]
	uints    slab[uint64]
	floats   slab[float64]
	ints     slab[int32]
	u32s     slab[uint32]
	created  slab[timestamppb.Timestamp]
	zeroThld float64
}

// copy renders h as client_golang's Histogram.Write does: cumulative
// classic buckets (no +Inf bucket: the count is its value), native spans
// in which gaps of up to two buckets are filled rather than split.
func (s *histSlabs) copy(h *hist, bounds []float64) *dto.Histogram {
	d := &s.hists.take(1)[0]
	u := s.uints.take(len(bounds) + 2)
	u[0], u[1] = h.count, h.zero
	d.SampleCount, d.ZeroCount = &u[0], &u[1]
	fl := s.floats.take(1)
	fl[0] = h.sum
	d.SampleSum = &fl[0]
	sc := s.ints.take(1)
	sc[0] = h.schema
	d.Schema = &sc[0]
	s.zeroThld = nativeZeroThreshold
	d.ZeroThreshold = &s.zeroThld
	ts := &s.created.take(1)[0]
	ts.Seconds, ts.Nanos = h.created.Unix(), int32(h.created.Nanosecond())
	d.CreatedTimestamp = ts

	d.Bucket = s.bptrs.take(len(bounds))
	bs := s.buckets.take(len(bounds))
	cum := u[2:]
	var n uint64
	for i := range bounds {
		n += h.classic[i]
		cum[i] = n
		bs[i].CumulativeCount, bs[i].UpperBound = &cum[i], &bounds[i]
		d.Bucket[i] = &bs[i]
	}

	if len(h.keys) == 0 {
		return d
	}
	nSpans, nDeltas := 0, 0
	for i, k := range h.keys {
		if i == 0 || k-h.keys[i-1] > 3 {
			nSpans++
			nDeltas++
		} else {
			nDeltas += int(k - h.keys[i-1])
		}
	}
	d.PositiveSpan = s.sptrs.take(nSpans)
	spans := s.spans.take(nSpans)
	offsets := s.ints.take(nSpans)
	lengths := s.u32s.take(nSpans)
	d.PositiveDelta = s.deltas.take(nDeltas)[:0]
	var prev uint64
	sp := -1
	for i, k := range h.keys {
		if i == 0 || k-h.keys[i-1] > 3 {
			sp++
			off := k
			if i > 0 {
				off = k - h.keys[i-1] - 1
			}
			offsets[sp] = off
			spans[sp].Offset, spans[sp].Length = &offsets[sp], &lengths[sp]
			d.PositiveSpan[sp] = &spans[sp]
		} else {
			for range k - h.keys[i-1] - 1 { // a small gap: empty buckets
				d.PositiveDelta = append(d.PositiveDelta, -int64(prev))
				prev = 0
				lengths[sp]++
			}
		}
		d.PositiveDelta = append(d.PositiveDelta, int64(h.counts[i])-int64(prev))
		prev = h.counts[i]
		lengths[sp]++
	}
	return d
}
