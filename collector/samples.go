package collector

// samples is a scrape's copy of the state, made under the lock by the
// render functions (render.go) through add and addHist: for each family,
// the label values and the value of every series, in columns. A series is
// no object of its own: its label values are the state's strings (a
// string never changes, so the copy may point to it) and its value a
// float64, appended to slices sized by the last scrape, so that the copy
// costs little more than the bytes it moves (BenchmarkScrapeCopy). The
// exposition (exposition.go) sorts and writes them after the lock is
// released. Label values were made valid at ingest. ARCHITECTURE.md, "The
// scrape", has the designs this replaced and what each cost.
type samples struct {
	fams []rows // by family.idx
	n    int    // series
	hist histSlabs
}

// rows are the series of one family.
type rows struct {
	labels []string   // len(f.ids) per series, ordered by label name (f.order)
	vals   []float64  // a gauge's or counter's values
	hists  []histCopy // a histogram's
	// order lists the series in exposition order, without duplicates;
	// set by sort.
	order []int32
}

// newSamples returns buffers sized for the series of each family of the
// last scrape (nil: none yet), plus a little room to grow.
func newSamples(last []int) *samples {
	s := &samples{fams: make([]rows, len(catalogue))}
	if last == nil {
		return s
	}
	for i, f := range catalogue {
		n := last[i]
		if n == 0 {
			continue
		}
		n += n/16 + 4
		r := &s.fams[i]
		if len(f.ids) > 0 {
			r.labels = make([]string, 0, n*len(f.ids))
		}
		if f.kind == histogram {
			r.hists = make([]histCopy, 0, n)
		} else {
			r.vals = make([]float64, 0, n)
		}
	}
	return s
}

// counts is the number of series of each family, the next scrape's sizes.
func (s *samples) counts() []int {
	n := make([]int, len(s.fams))
	for i, f := range catalogue {
		r := &s.fams[i]
		if f.kind == histogram {
			n[i] = len(r.hists)
		} else {
			n[i] = len(r.vals)
		}
	}
	return n
}

// add copies one series of a gauge or counter family; lv are the label
// values in the order of the family's declaration.
func (s *samples) add(f *family, v float64, lv ...string) {
	if f.kind == histogram {
		panic("collector: add of histogram " + f.name)
	}
	r := s.series(f, lv)
	r.vals = append(r.vals, v)
}

// addHist copies one series of a histogram family.
func (s *samples) addHist(f *family, h *hist, lv ...string) {
	if f.kind != histogram {
		panic("collector: addHist of " + f.name)
	}
	r := s.series(f, lv)
	r.hists = append(r.hists, s.hist.copy(h))
}

// series appends the label values of a new series of f.
func (s *samples) series(f *family, lv []string) *rows {
	if len(lv) != len(f.ids) {
		panic("collector: wrong number of label values for " + f.name)
	}
	r := &s.fams[f.idx]
	for _, i := range f.order {
		r.labels = append(r.labels, lv[i])
	}
	s.n++
	return r
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
