package main

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"golang.org/x/sync/singleflight"

	"github.com/portsip-exporter/portsip_exporter/collector"
)

// The metrics path: what a scrape gathers (gathering), and how it is
// written (exposition). It sits inside sharedScrapes (web.go), which
// admits scrapes and shares their responses. ARCHITECTURE.md, "The
// scrape", has the measurements behind it.

// snapshotter is the Collector as /metrics sees it.
type snapshotter interface {
	Snapshot() *collector.Snapshot
}

// gathering is what one scrape serves: a snapshot of the Collector (nil
// without one) and the families of the registry beside it (the Go
// runtime's, the process's, build information and promhttp's own).
type gathering struct {
	sn  *collector.Snapshot
	mfs []*dto.MetricFamily
	err error
}

type gatherer interface {
	gather() *gathering
}

// sharedGathering lets concurrent scrapes share one gathering: a scrape
// that arrives while another is gathering waits for that result rather
// than copying the state again, so N scrapers cost one copy under the
// lock ingest waits on, and one snapshot in memory, not N. A scrape
// arriving after a gathering finished starts a new one, so no scrape sees
// data older than its own arrival plus one gathering. (promhttp's
// CoalesceGather also shares the result with scrapes that arrive while
// others still encode it: under steady load one Gather served every scrape
// for as long as the load lasted.)
type sharedGathering struct {
	col   snapshotter // may be nil
	reg   prometheus.Gatherer
	calls singleflight.Group
}

func (g *sharedGathering) gather() *gathering {
	v, _, _ := g.calls.Do("", func() (any, error) {
		var r gathering
		if g.col != nil {
			r.sn = g.col.Snapshot()
			r.err = r.sn.Err()
		}
		mfs, err := g.reg.Gather()
		r.mfs, r.err = mfs, errors.Join(r.err, err)
		return &r, nil
	})
	return v.(*gathering)
}

// exposition writes a gathering in the format and the compression the
// scraper negotiates, as promhttp.HandlerFor does (EnableOpenMetrics,
// ContinueOnError, compression offered: identity and gzip), with the
// Collector's families written by the Snapshot itself.
type exposition struct {
	g      gatherer
	errs   *prometheus.CounterVec
	logger *slog.Logger
}

func newExposition(reg prometheus.Registerer, g gatherer, logger *slog.Logger) *exposition {
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "promhttp_metric_handler_errors_total",
		Help: "Total number of internal errors encountered by the promhttp metric handler.",
	}, []string{"cause"})
	errs.WithLabelValues("gathering")
	errs.WithLabelValues("encoding")
	if err := reg.Register(errs); err != nil {
		are := &prometheus.AlreadyRegisteredError{}
		if !errors.As(err, are) {
			panic(err)
		}
		errs = are.ExistingCollector.(*prometheus.CounterVec)
	}
	return &exposition{g: g, errs: errs, logger: logger}
}

// acceptedFormats are promhttp's with OpenMetrics enabled, as
// node_exporter serves them.
var acceptedFormats = expfmt.DefaultOpenMetricsAcceptedFormats()

func (e *exposition) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g := e.g.gather()
	if g.err != nil {
		e.logger.Error("error gathering metrics", "err", g.err)
		e.errs.WithLabelValues("gathering").Inc()
		if g.sn == nil && len(g.mfs) == 0 {
			http.Error(w, "An error has occurred while serving metrics:\n\n"+g.err.Error(), http.StatusInternalServerError)
			return
		}
	}
	format := expfmt.NegotiateAccept(r.Header, acceptedFormats...)
	h := w.Header()
	h.Add("Vary", "Accept")
	h.Add("Vary", "Accept-Encoding")
	h.Set("Content-Type", string(format))
	var out io.Writer = w
	if acceptsGzip(r.Header) {
		h.Set("Content-Encoding", "gzip")
		z := gzipPool.Get().(*gzip.Writer)
		z.Reset(w)
		defer func() {
			z.Close()
			gzipPool.Put(z)
		}()
		out = z
	}
	if err := g.sn.WriteTo(out, format, g.mfs, nameFilter(r)); err != nil {
		e.logger.Error("error encoding and sending metric family", "err", err)
		e.errs.WithLabelValues("encoding").Inc()
	}
}

// gzipPool holds klauspost/compress's gzip writers at their best speed:
// the large PBX's 21 MB page in 22 ms and 870 kB, where compress/gzip at
// its default level (promhttp's) took 265 ms for 780 kB, and at its best
// speed 40 ms for 895 kB (BenchmarkGzip). Scrapers are on the network
// next door; the CPU is shared with ingest.
var gzipPool = sync.Pool{New: func() any {
	z, err := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	if err != nil {
		panic(err)
	}
	return z
}}

// nameFilter keeps the families named by name[] query parameters, as
// promhttp does; nil keeps all.
func nameFilter(r *http.Request) func(string) bool {
	names := r.URL.Query()["name[]"]
	if len(names) == 0 {
		return nil
	}
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	return func(name string) bool { return set[name] }
}

// acceptsGzip chooses between identity and gzip as promhttp does
// (golang/gddo's NegotiateContentEncoding with the offers identity, gzip):
// the coding of highest quality, identity on a tie, identity when nothing
// acceptable is offered.
func acceptsGzip(h http.Header) bool {
	best, bestQ := "identity", -1.0
	specs := parseAcceptEncoding(h)
	for _, offer := range [...]string{"identity", "gzip"} {
		for _, s := range specs {
			if s.q > bestQ && (s.value == "*" || s.value == offer) {
				best, bestQ = offer, s.q
			}
		}
	}
	return best == "gzip" && bestQ > 0
}

type acceptSpec struct {
	value string
	q     float64
}

// parseAcceptEncoding reads Accept-Encoding as gddo's ParseAccept does:
// codings with an optional q between 0 and 1; a malformed entry ends the
// header line it is on.
func parseAcceptEncoding(h http.Header) []acceptSpec {
	var specs []acceptSpec
	for _, line := range h.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(line, ",") {
			value, params, hasParams := strings.Cut(part, ";")
			s := acceptSpec{value: strings.TrimSpace(value), q: 1}
			if s.value == "" || strings.ContainsAny(s.value, " \t") {
				break
			}
			if hasParams {
				q, ok := strings.CutPrefix(strings.TrimSpace(params), "q=")
				v, err := strconv.ParseFloat(q, 64)
				if !ok || err != nil || v < 0 || v > 1 {
					break
				}
				s.q = v
			}
			specs = append(specs, s)
		}
	}
	return specs
}
