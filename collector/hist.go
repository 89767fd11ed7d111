package collector

import (
	"math"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// hist is a histogram that never resets, with the classic buckets of its
// family and native buckets, made as client_golang makes them (schema 3,
// the largest with a factor of at most 1.1; at most 160 buckets, widened
// beyond that; the default zero threshold). Unlike a prometheus.Histogram
// it can be added into another: a queue known only by its id merges into
// its numbered queue, histograms included (ARCHITECTURE.md, "Readings of
// the vendor's silent spots"). It is guarded by the Collector's lock like
// the rest of the state, and copied under it.
//
// Observed values are never negative (waits and durations).
type hist struct {
	count   uint64
	sum     float64
	classic []uint64 // per bucket of the family, not cumulative; the last is +Inf
	zero    uint64   // native zero bucket
	schema  int32
	keys    []int32  // native positive buckets, sorted
	counts  []uint64 // by keys' index
	created time.Time
}

const (
	nativeSchema     = 3
	nativeMaxBuckets = 160
	nativeMinSchema  = -4
	// nativeZeroThreshold is client_golang's default: 2^-128.
	nativeZeroThreshold = 2.938735877055719e-39
)

// nativeBounds are client_golang's bucket boundaries of the fraction of a
// value (math.Frexp), for the schemas a hist can have above 0.
var nativeBounds = [nativeSchema + 1][]float64{
	1: {0.5, 0.7071067811865475},
	2: {0.5, 0.5946035575013605, 0.7071067811865475, 0.8408964152537144},
	3: {0.5, 0.5452538663326288, 0.5946035575013605, 0.6484197773255048,
		0.7071067811865475, 0.7711054127039704, 0.8408964152537144, 0.9170040432046711},
}

func newHist(buckets []float64, now time.Time) hist {
	return hist{classic: make([]uint64, len(buckets)+1), schema: nativeSchema, created: now}
}

func newHistPtr(buckets []float64, now time.Time) *hist {
	h := newHist(buckets, now)
	return &h
}

// observe adds one value; buckets are the family's classic buckets.
func (h *hist) observe(v float64, buckets []float64) {
	if v < 0 || math.IsNaN(v) {
		return
	}
	h.count++
	h.sum += v
	i, _ := slices.BinarySearch(buckets, v) // the first bucket >= v
	h.classic[i]++
	if v <= nativeZeroThreshold {
		h.zero++
		return
	}
	h.addNative(nativeKey(v, h.schema), 1)
	h.limit()
}

// nativeKey is the native bucket of v > 0 at a schema, as client_golang
// computes it: bucket k holds (2^((k-1)/2^schema), 2^(k/2^schema)].
func nativeKey(v float64, schema int32) int32 {
	inf := math.IsInf(v, 1)
	if inf {
		v = math.MaxFloat64 // and one bucket above it
	}
	frac, exp := math.Frexp(v)
	var key int
	if schema > 0 {
		b := nativeBounds[schema]
		i, _ := slices.BinarySearch(b, frac)
		key = i + (exp-1)*len(b)
	} else {
		key = exp
		if frac == 0.5 {
			key--
		}
		offset := (1 << -schema) - 1
		key = (key + offset) >> -schema
	}
	if inf {
		key++
	}
	return int32(key)
}

func (h *hist) addNative(key int32, n uint64) {
	i, found := slices.BinarySearch(h.keys, key)
	if !found {
		h.keys = slices.Insert(h.keys, i, key)
		h.counts = slices.Insert(h.counts, i, 0)
	}
	h.counts[i] += n
}

// limit halves the resolution until at most nativeMaxBuckets buckets are
// used, as client_golang does without a reset duration.
func (h *hist) limit() {
	for len(h.keys) > nativeMaxBuckets && h.schema > nativeMinSchema {
		h.downscale()
	}
}

// downscale merges each pair of neighbouring native buckets.
func (h *hist) downscale() {
	h.schema--
	n := 0
	for i, k := range h.keys {
		if k > 0 {
			k++
		}
		k /= 2
		if n > 0 && h.keys[n-1] == k {
			h.counts[n-1] += h.counts[i]
			continue
		}
		h.keys[n], h.counts[n] = k, h.counts[i]
		n++
	}
	h.keys, h.counts = h.keys[:n], h.counts[:n]
}

// merge adds o into h; o is left at h's resolution or lower.
func (h *hist) merge(o *hist) {
	for h.schema > o.schema {
		h.downscale()
	}
	for o.schema > h.schema {
		o.downscale()
	}
	h.count += o.count
	h.sum += o.sum
	for i, n := range o.classic {
		h.classic[i] += n
	}
	h.zero += o.zero
	for i, k := range o.keys {
		h.addNative(k, o.counts[i])
	}
	h.limit()
	if o.created.Before(h.created) {
		h.created = o.created
	}
}

// histCopy is a hist as a scrape copied it under the lock.
type histCopy struct {
	count, zero uint64
	sum         float64
	schema      int32
	classic     []uint64 // per bucket, not cumulative; the last is +Inf
	keys        []int32
	counts      []uint64
	created     time.Time
}

// histSlabs hold the slices of a scrape's histogram copies.
type histSlabs struct {
	uints slab[uint64]
	ints  slab[int32]
}

func (s *histSlabs) copy(h *hist) histCopy {
	c := histCopy{count: h.count, zero: h.zero, sum: h.sum, schema: h.schema, created: h.created}
	c.classic = s.uints.take(len(h.classic))
	copy(c.classic, h.classic)
	if len(h.keys) > 0 {
		c.keys = s.ints.take(len(h.keys))
		copy(c.keys, h.keys)
		c.counts = s.uints.take(len(h.counts))
		copy(c.counts, h.counts)
	}
	return c
}

// dtoHistSlabs hold the objects of a scrape's protobuf histograms.
type dtoHistSlabs struct {
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

// write renders h as client_golang's Histogram.Write does: cumulative
// classic buckets (no +Inf bucket: the count is its value), native spans
// in which gaps of up to two buckets are filled rather than split.
func (s *dtoHistSlabs) write(h *histCopy, bounds []float64) *dto.Histogram {
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
