package collector

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Snapshot is one scrape's copy of the state: taken under the lock, then
// sorted as a registry sorts (families by name, series by label values),
// after the lock is released. It is read-only from then on, so that
// scrapes arriving together may share it, whatever format each asks for.
//
// The text formats are written straight from it (WriteTo), as
// kube-state-metrics writes its stored lines: no object per series, no
// checks a registry makes (the series are consistent by construction:
// label names from the catalogue, values made valid at ingest, duplicates
// left out by the sort), and the output is the same as expfmt's, byte for
// byte. The protobuf format builds the client_model objects
// (MetricFamilies). ARCHITECTURE.md, "The scrape", has the measurements
// behind this.
type Snapshot struct {
	s    *samples
	dups int // series left out for repeating another's labels
}

// Snapshot copies the state for one scrape.
func (c *Collector) Snapshot() *Snapshot {
	s := c.copyState()
	return &Snapshot{s: s, dups: s.sort()}
}

// Series is the number of series the snapshot holds.
func (sn *Snapshot) Series() int {
	if sn == nil {
		return 0
	}
	return sn.s.n - sn.dups
}

// Err reports series left out because another had the same labels, as a
// registry reports them (its error "collected before with the same name
// and label values"); nil when there were none, always so far.
func (sn *Snapshot) Err() error {
	if sn == nil || sn.dups == 0 {
		return nil
	}
	return fmt.Errorf("collector: %d series left out for repeating another's labels", sn.dups)
}

// byName is the catalogue sorted by name, the order of the exposition.
var byName []*family

// Each family's fixed text, by family.idx: what does not depend on the
// state is made once.
var texts []familyText

type familyText struct {
	header [2]string // HELP and TYPE lines; [1] is OpenMetrics
	// lead[j] opens the j-th label (by name): `{name="` or `,name="`.
	lead []string
	// A histogram's lines: names, and the le label of each bucket, the
	// last +Inf, closing the labels.
	bucket, sum, count string
	le                 [2][]string
	dtoType            dto.MetricType
}

func init() {
	byName = slices.Clone(catalogue)
	slices.SortFunc(byName, func(a, b *family) int { return strings.Compare(a.name, b.name) })
	texts = make([]familyText, len(catalogue))
	for _, f := range catalogue {
		t := &texts[f.idx]
		typ := [...]string{gauge: "gauge", counter: "counter", histogram: "histogram"}[f.kind]
		t.dtoType = [...]dto.MetricType{gauge: dto.MetricType_GAUGE, counter: dto.MetricType_COUNTER, histogram: dto.MetricType_HISTOGRAM}[f.kind]
		t.header[0] = "# HELP " + f.name + " " + helpEscaper.Replace(f.help) + "\n# TYPE " + f.name + " " + typ + "\n"
		omName := f.name
		if f.kind == counter {
			// OpenMetrics names a counter without its _total; one
			// without it would be "unknown" (none is).
			var ok bool
			if omName, ok = strings.CutSuffix(f.name, "_total"); !ok {
				typ = "unknown"
			}
		}
		t.header[1] = "# HELP " + omName + " " + valueEscaper.Replace(f.help) + "\n# TYPE " + omName + " " + typ + "\n"
		sep := "{"
		for _, i := range f.order {
			t.lead = append(t.lead, sep+f.names[i]+`="`)
			sep = ","
		}
		if f.kind != histogram {
			continue
		}
		t.bucket, t.sum, t.count = f.name+"_bucket", f.name+"_sum", f.name+"_count"
		for om := range 2 {
			for _, b := range append(slices.Clone(f.buckets), math.Inf(1)) {
				t.le[om] = append(t.le[om], sep+`le="`+string(appendFloat(nil, b, om == 1))+`"} `)
			}
		}
	}
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	valueEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// sort orders each family's series by their label values, as a registry
// does, and leaves out any whose labels repeat the series before; it
// returns how many it left out.
//
// A comparison sort of the large PBX's 150,000 series took 45 ms, three
// times the cost of writing them out, and grows as n log n. This is a
// least-significant-digit sort: for each label, last first, the values
// are ranked (a map to the distinct values, which are few: tenants,
// states, numbers reused across tenants, and sorted), then the series
// are counting-sorted by that rank, stably: 14 ms, and linear in the
// series (BenchmarkScrapeSort). The ranks of a label of many values are
// kept for the next family that carries it, and the passes number the
// series equal so far, so that duplicates are found without reading the
// labels again.
func (s *samples) sort() (dups int) {
	var sc sortScratch
	for i, f := range catalogue {
		r := &s.fams[i]
		n := len(r.vals) + len(r.hists)
		if n == 0 {
			continue
		}
		r.order = make([]int32, n)
		for j := range r.order {
			r.order[j] = int32(j)
		}
		k := len(f.ids)
		sc.grp = slices.Grow(sc.grp[:0], n)[:n]
		clear(sc.grp)
		for j := k - 1; j >= 0 && n > 1; j-- {
			sc.byLabel(r, k, j, f.ids[f.order[j]])
		}
		// Series of the same group repeat one another's labels.
		w := 1
		for j := 1; j < n; j++ {
			if sc.grp[r.order[w-1]] == sc.grp[r.order[j]] {
				dups++
				continue
			}
			r.order[w] = r.order[j]
			w++
		}
		r.order = r.order[:w]
	}
	return dups
}

// sortScratch is what sort reuses from one label to the next.
type sortScratch struct {
	seen     map[string]uint32 // value -> index in distinct
	distinct []string
	ids      []uint32 // by series: index in distinct
	ranks    []uint32 // by index in distinct: rank of the value
	byValue  []uint32 // indexes in distinct, sorted by value
	counts   []int32
	tmp      []int32
	// grp numbers the series by the labels sorted by so far: series
	// have the same number when those labels are the same. It finds the
	// duplicates without reading the labels again (comparing them took
	// a fifth of the sort at 3x the large PBX).
	grp []uint32
	// known keeps, by label, the ranks of the last many values ranked:
	// value -> index in ranks -> rank among them.
	known [numLabels]struct {
		seen  map[string]uint32
		ranks []uint32
	}
}

// byLabel sorts r.order by the j-th label (of k), stably.
func (sc *sortScratch) byLabel(r *rows, k, j int, label labelID) {
	n := len(r.order)
	ids := slices.Grow(sc.ids[:0], n)[:n]
	sc.ids = ids
	d, ok := sc.rankKnown(r, k, j, label)
	if !ok {
		d = sc.rank(r, k, j, label)
	}
	if d == 1 {
		return
	}
	counts := slices.Grow(sc.counts[:0], d+1)[:d+1]
	clear(counts)
	for _, id := range ids {
		counts[id+1]++
	}
	for x := 1; x <= d; x++ {
		counts[x] += counts[x-1]
	}
	out := slices.Grow(sc.tmp[:0], n)[:n]
	for _, i := range r.order {
		c := &counts[ids[i]]
		out[*c] = i
		*c++
	}
	sc.counts = counts
	// Series equal by this label and the ones before are now adjacent.
	grp := sc.grp
	var g, prev uint32
	for x, i := range out {
		old := grp[i]
		if x > 0 && (ids[i] != ids[out[x-1]] || old != prev) {
			g++
		}
		prev, grp[i] = old, g
	}
	r.order, sc.tmp = out, r.order
}

// rank sets sc.ids to each series' rank by the j-th label and returns
// how many values the label has. A label of many values (extension
// numbers, queues) keeps its ranks for the next family that carries it.
func (sc *sortScratch) rank(r *rows, k, j int, label labelID) (d int) {
	if sc.seen == nil {
		sc.seen = make(map[string]uint32)
	}
	seen, distinct, ids := sc.seen, sc.distinct[:0], sc.ids
	clear(seen)
	for i := range ids {
		v := r.labels[i*k+j]
		id, ok := seen[v]
		if !ok {
			id = uint32(len(distinct))
			seen[v] = id
			distinct = append(distinct, v)
		}
		ids[i] = id
	}
	sc.distinct = distinct
	d = len(distinct)
	if d == 1 {
		return d
	}
	byValue := slices.Grow(sc.byValue[:0], d)[:d]
	for x := range byValue {
		byValue[x] = uint32(x)
	}
	slices.SortFunc(byValue, func(a, b uint32) int { return strings.Compare(distinct[a], distinct[b]) })
	ranks := slices.Grow(sc.ranks[:0], d)[:d]
	for rank, id := range byValue {
		ranks[id] = uint32(rank)
	}
	for i, id := range ids {
		ids[i] = ranks[id]
	}
	sc.byValue, sc.ranks = byValue, ranks
	if d >= shareRanksFrom {
		kn := &sc.known[label]
		kn.seen, sc.seen = seen, kn.seen
		kn.ranks, sc.ranks = ranks, kn.ranks
	}
	return d
}

// shareRanksFrom is how many values a label must have for its ranks to
// be kept for the next family carrying it: the three extension families
// each ranked the same 90,000 numbers at 3x the large PBX, and the map
// that ranks them outgrows the caches, so that ranking them cost more
// than in proportion to their number.
const shareRanksFrom = 256

// rankKnown sets sc.ids to each series' rank by the j-th label from the
// ranks kept for label, and returns how many values those rank; it
// reports false if they do not have every value of the family's.
func (sc *sortScratch) rankKnown(r *rows, k, j int, label labelID) (int, bool) {
	kn := &sc.known[label]
	if kn.seen == nil {
		return 0, false
	}
	ids := sc.ids
	for i := range ids {
		id, ok := kn.seen[r.labels[i*k+j]]
		if !ok {
			return 0, false
		}
		ids[i] = kn.ranks[id]
	}
	return len(kn.ranks), true
}

// IsText reports whether format is one of the text formats WriteTo
// writes itself: Prometheus text 0.0.4 and OpenMetrics 0.0.1 and 1.0.0.
// It writes the delimited protobuf format itself too (protobuf.go); the
// protobuf text formats it encodes from MetricFamilies with expfmt.
func IsText(format expfmt.Format) bool {
	switch format.FormatType() {
	case expfmt.TypeTextPlain:
		return true
	case expfmt.TypeOpenMetrics:
		v := format.Version()
		return v == expfmt.OpenMetricsVersion_1_0_0 || v == expfmt.OpenMetricsVersion_0_0_1
	}
	return false
}

// WriteTo writes the snapshot's families, and others (sorted by name, as
// a registry's Gather returns them) where their names fall, in format;
// keep, if not nil, chooses the families by name. It returns the error of
// w, or else errors expfmt returned for others (which are then left out).
// A nil Snapshot writes others alone.
func (sn *Snapshot) WriteTo(w io.Writer, format expfmt.Format, others []*dto.MetricFamily, keep func(name string) bool) error {
	if sn == nil {
		sn = &Snapshot{s: &samples{fams: make([]rows, len(catalogue))}}
	}
	tw := &textWriter{w: w, b: make([]byte, 0, flushAt+flushAt/4)}
	enc := expfmt.NewEncoder(tw, format)
	var errs []error
	other := func(mf *dto.MetricFamily) {
		if keep == nil || keep(mf.GetName()) {
			if err := enc.Encode(mf); err != nil {
				errs = append(errs, err)
			}
		}
	}
	text, om := IsText(format), format.FormatType() == expfmt.TypeOpenMetrics
	delimited := format.FormatType() == expfmt.TypeProtoDelim
	for _, f := range byName {
		r := &sn.s.fams[f.idx]
		if len(r.order) == 0 || keep != nil && !keep(f.name) {
			continue
		}
		for len(others) > 0 && others[0].GetName() < f.name {
			other(others[0])
			others = others[1:]
		}
		switch {
		case text:
			tw.family(f, r, om)
		case delimited:
			tw.protoFamily(f, r)
		default: // protobuf's text formats, for people to read
			// One family's objects at a time: all of them at once took
			// the large PBX's peak RSS from 62 to 167 MiB.
			other(new(dtoBuilder).family(f, r))
		}
		tw.maybeFlush()
		if tw.err != nil {
			return tw.err
		}
	}
	for _, mf := range others {
		other(mf)
	}
	if text && om {
		tw.b = append(tw.b, "# EOF\n"...)
	} else if !text {
		if err := enc.(expfmt.Closer).Close(); err != nil {
			errs = append(errs, err)
		}
	}
	tw.flush()
	if tw.err != nil {
		return tw.err
	}
	return errors.Join(errs...)
}

// flushAt is how much text is gathered before it is written on.
const flushAt = 32 << 10

// textWriter gathers the text of a scrape and writes it on in blocks. It
// is the enhanced writer expfmt looks for, so the families of others are
// encoded into the same buffer.
type textWriter struct {
	w     io.Writer
	b     []byte
	err   error
	lbl   []byte // a histogram's labels, written on each of its lines
	proto protoWriter
}

func (t *textWriter) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	t.maybeFlush()
	return len(p), t.err
}

func (t *textWriter) WriteString(s string) (int, error) {
	t.b = append(t.b, s...)
	t.maybeFlush()
	return len(s), t.err
}

func (t *textWriter) WriteByte(c byte) error {
	t.b = append(t.b, c)
	t.maybeFlush()
	return t.err
}

func (t *textWriter) WriteRune(r rune) (int, error) {
	n := len(t.b)
	t.b = utf8.AppendRune(t.b, r)
	t.maybeFlush()
	return len(t.b) - n, t.err
}

func (t *textWriter) maybeFlush() {
	if len(t.b) >= flushAt {
		t.flush()
	}
}

func (t *textWriter) flush() {
	if t.err == nil && len(t.b) > 0 {
		_, t.err = t.w.Write(t.b)
	}
	t.b = t.b[:0]
}

// family writes one family as expfmt's MetricFamilyToText (om false) or
// MetricFamilyToOpenMetrics (om true) writes it.
func (t *textWriter) family(f *family, r *rows, om bool) {
	ft := &texts[f.idx]
	o := 0
	if om {
		o = 1
	}
	t.b = append(t.b, ft.header[o]...)
	k := len(f.ids)
	for _, i := range r.order {
		lv := r.labels[int(i)*k : int(i)*k+k]
		if f.kind == histogram {
			t.hist(ft, lv, &r.hists[i], o)
		} else {
			t.b = append(t.b, f.name...)
			t.b = ft.appendLabels(t.b, lv)
			if k > 0 {
				t.b = append(t.b, '}')
			}
			t.b = append(t.b, ' ')
			t.b = appendFloat(t.b, r.vals[i], om)
			t.b = append(t.b, '\n')
		}
		if len(t.b) >= flushAt {
			t.flush()
			if t.err != nil {
				return
			}
		}
	}
}

// hist writes a histogram's classic buckets, sum and count.
func (t *textWriter) hist(ft *familyText, lv []string, h *histCopy, o int) {
	t.lbl = ft.appendLabels(t.lbl[:0], lv)
	var cum uint64
	for j, le := range ft.le[o] {
		cum += h.classic[j]
		t.b = append(t.b, ft.bucket...)
		t.b = append(t.b, t.lbl...)
		t.b = append(t.b, le...)
		t.b = appendCount(t.b, cum, o == 1)
		t.b = append(t.b, '\n')
	}
	for _, line := range [2]string{ft.sum, ft.count} {
		t.b = append(t.b, line...)
		t.b = append(t.b, t.lbl...)
		if len(lv) > 0 {
			t.b = append(t.b, '}')
		}
		t.b = append(t.b, ' ')
		if line == ft.sum {
			t.b = appendFloat(t.b, h.sum, o == 1)
		} else {
			t.b = appendCount(t.b, h.count, o == 1)
		}
		t.b = append(t.b, '\n')
	}
}

// appendLabels appends the labels, without the closing brace.
func (ft *familyText) appendLabels(b []byte, lv []string) []byte {
	for j, v := range lv {
		b = append(b, ft.lead[j]...)
		b = appendEscaped(b, v)
		b = append(b, '"')
	}
	return b
}

// appendEscaped appends a label value as the exposition quotes it.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c == '"' || c == '\n' {
			return append(b, valueEscaper.Replace(s)...)
		}
	}
	return append(b, s...)
}

// appendFloat appends v as expfmt's writeFloat writes it, or with om as
// writeOpenMetricsFloat does (".0" on whole numbers).
func appendFloat(b []byte, v float64, om bool) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case v == 0:
		v = 0 // -0 is written 0
	}
	n := len(b)
	if v == math.Trunc(v) && v > -1e6 && v < 1e6 {
		// strconv's shortest 'g' of a whole number below 10^6.
		b = strconv.AppendInt(b, int64(v), 10)
	} else {
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	if om && !bytes.ContainsAny(b[n:], "e.") {
		b = append(b, '.', '0')
	}
	return b
}

// appendCount appends a bucket count or sample count: a float in the
// text format, an integer in OpenMetrics.
func appendCount(b []byte, n uint64, om bool) []byte {
	if om {
		return strconv.AppendUint(b, n, 10)
	}
	return appendFloat(b, float64(n), false)
}

// MetricFamilies renders the snapshot as client_model families, sorted,
// for the protobuf formats and for a registry (Collect); keep, if not
// nil, chooses the families by name.
func (sn *Snapshot) MetricFamilies(keep func(name string) bool) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	if sn == nil {
		return nil
	}
	b := &dtoBuilder{}
	for _, f := range byName {
		r := &sn.s.fams[f.idx]
		if len(r.order) == 0 || keep != nil && !keep(f.name) {
			continue
		}
		out = append(out, b.family(f, r))
	}
	return out
}

// dtoBuilder holds the objects of a scrape's client_model families in
// slabs; a label pair is shared with the series before where equal.
type dtoBuilder struct {
	metrics  slab[dto.Metric]
	mptrs    slab[*dto.Metric]
	gauges   slab[dto.Gauge]
	counters slab[dto.Counter]
	floats   slab[float64]
	ptrs     slab[*dto.LabelPair]
	pairs    slab[dto.LabelPair]
	hists    dtoHistSlabs
}

func (b *dtoBuilder) family(f *family, r *rows) *dto.MetricFamily {
	ft := &texts[f.idx]
	mf := &dto.MetricFamily{Name: &f.name, Help: &f.help, Type: &ft.dtoType}
	mf.Metric = b.mptrs.take(len(r.order))
	ms := b.metrics.take(len(r.order))
	k := len(f.ids)
	var prev []*dto.LabelPair
	for j, i := range r.order {
		m := &ms[j]
		mf.Metric[j] = m
		lv := r.labels[int(i)*k : int(i)*k+k]
		m.Label = b.ptrs.take(k)
		for p, v := range lv {
			if prev != nil && prev[p].GetValue() == v {
				m.Label[p] = prev[p]
				continue
			}
			lp := &b.pairs.take(1)[0]
			lp.Name, lp.Value = &f.names[f.order[p]], &lv[p]
			m.Label[p] = lp
		}
		prev = m.Label
		switch f.kind {
		case gauge:
			m.Gauge = &b.gauges.take(1)[0]
			m.Gauge.Value = &r.vals[i]
		case counter:
			m.Counter = &b.counters.take(1)[0]
			m.Counter.Value = &r.vals[i]
		case histogram:
			m.Histogram = b.hists.write(&r.hists[i], f.buckets)
		}
	}
	return mf
}
