package collector

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// sample is one gauge or counter, copied out under the lock and then
// handed to the registry as a prometheus.Metric.
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
	gauge   *dto.Gauge       // exactly one of gauge and counter is set
	counter *dto.Counter
}

func (m *sample) Desc() *prometheus.Desc { return m.f.desc }

func (m *sample) Write(out *dto.Metric) error {
	out.Label, out.Gauge, out.Counter = m.labels, m.gauge, m.counter
	return nil
}

// slab hands out slices of one scrape's objects from large blocks: a few
// allocations per scrape instead of one per object, and nothing handed out
// ever moves.
type slab[T any] struct{ free []T }

const slabBlock = 4096

func (s *slab[T]) take(n int) []T {
	if len(s.free) < n {
		s.free = make([]T, max(n, slabBlock))
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

	last    [numLabels]*dto.LabelPair            // by label: the latest pair
	bounded [numLabels]map[string]*dto.LabelPair // by label, for bounded labels
}

func newSamples(hint int) *samples {
	return &samples{all: [][]sample{make([]sample, 0, hint)}}
}

// add copies one series of a gauge or counter family.
func (s *samples) add(f *family, v float64, lv ...string) {
	if len(lv) != len(f.ids) || f.kind == histogram {
		panic("collector: wrong label values or kind for " + f.name)
	}
	chunk := &s.all[len(s.all)-1]
	if len(*chunk) == cap(*chunk) {
		s.all = append(s.all, make([]sample, 0, slabBlock))
		chunk = &s.all[len(s.all)-1]
	}
	*chunk = append(*chunk, sample{f: f, val: v})
	m := &(*chunk)[len(*chunk)-1]
	s.n++
	if f.kind == gauge {
		m.gauge = &s.gauges.take(1)[0]
		m.gauge.Value = &m.val
	} else {
		m.counter = &s.counters.take(1)[0]
		m.counter.Value = &m.val
	}
	m.labels = s.ptrs.take(len(lv))
	for j, idx := range f.order {
		m.labels[j] = s.pair(f.ids[idx], &f.names[idx], lv[idx])
	}
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
