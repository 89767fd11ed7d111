package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/portsip-exporter/portsip_exporter/collector"
	"github.com/portsip-exporter/portsip_exporter/internal/benchpbx"
	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// What scrapers ask for: Prometheus's own Accept header (it prefers
// OpenMetrics), the classic text format alone, and the protobuf format
// native histograms need.
const (
	acceptPrometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
	acceptText       = "text/plain;version=0.0.4"
	acceptProto      = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
)

type statsFunc func() wsi.Stats

func (f statsFunc) Stats() wsi.Stats { return f() }

// benchStats are a running client's counts, so that every portsip_wsi_*
// family is served.
func benchStats() wsi.Stats {
	return wsi.Stats{
		Up: true, ConnectionAttempts: 3,
		ConnectionErrors: map[string]uint64{wsi.StageDial: 2},
		InvalidMessages:  map[string]uint64{wsi.ReasonMalformedJSON: 1},
		Ignored:          map[string]uint64{wsi.IgnoredOtherTenant: 4},
		Events:           map[string]uint64{wsi.TypeQueueStatus: 5, wsi.TypeOther: 1},
		LastEvent:        time.Unix(1_700_000_000, 500_000_000),
		Subscriptions:    map[string]bool{wsi.TopicGlobalQueueEvents: true, wsi.TopicGlobalCDREvents: true},
	}
}

// benchExporter is the exporter's web side serving a PBX of the given
// size on a loopback port, wired as runExporter wires it.
type benchExporter struct {
	url string
	col *collector.Collector
	ref prometheus.Gatherer // the same families through a registry
}

// loadedCollector is a Collector holding a PBX of the given size, with
// every limit above it.
func loadedCollector(size benchpbx.Size) *collector.Collector {
	col := collector.New(collector.Config{AgentState: true, ExtensionState: true, MaxSeries: 1 << 30,
		Limits: collector.Limits{Queues: 1 << 20, Extensions: 1 << 20}}, statsFunc(benchStats))
	col.SessionUp(wsi.Session{Topics: map[string]bool{wsi.TopicGlobalQueueEvents: true}})
	size.Load(col, time.Now())
	// The events' garbage is collected here, not during the first
	// scrape measured.
	runtime.GC()
	return col
}

func newBenchExporter(tb testing.TB, size benchpbx.Size) *benchExporter {
	tb.Helper()
	col := loadedCollector(size)
	reg := newRegistry(getBuildInfo())
	logger := slog.New(slog.DiscardHandler)
	var ready atomic.Bool
	ready.Store(true)
	mux, err := newMux(col, reg, webConfig{TelemetryPath: "/metrics", MaxRequests: 40}, logger, &ready)
	if err != nil {
		tb.Fatal(err)
	}
	// The reference: a registry holding the Collector and the others.
	ref := prometheus.NewRegistry()
	ref.MustRegister(col)
	return &benchExporter{url: serveBench(tb, mux) + "/metrics", col: col, ref: prometheus.Gatherers{ref, reg}}
}

// serveBench serves h on a loopback port with the exporter's server and
// connection limit, until the benchmark ends, and returns its URL.
func serveBench(tb testing.TB, h http.Handler) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	conns := newConnLimiter(maxConnections)
	srv := newServer(h, conns, slog.New(slog.DiscardHandler))
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(conns.listener(ln))
	}()
	tb.Cleanup(func() {
		srv.Close()
		<-done
	})
	return "http://" + ln.Addr().String()
}

// benchScraper is a Prometheus-like client: one kept-alive connection, the
// body read to its last byte and not unpacked.
type benchScraper struct{ c *http.Client }

func newBenchScraper(tb testing.TB) *benchScraper {
	t := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 1}
	tb.Cleanup(t.CloseIdleConnections)
	return &benchScraper{c: &http.Client{Transport: t, Timeout: time.Minute}}
}

// scrape returns the response's Content-Type and its body's length.
func (s *benchScraper) scrape(tb testing.TB, url, accept string, gz bool) (string, int64) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := s.c.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("scrape: %d, %v", resp.StatusCode, err)
	}
	if gz != (resp.Header.Get("Content-Encoding") == "gzip") {
		tb.Fatalf("asked for gzip: %v, got Content-Encoding %q", gz, resp.Header.Get("Content-Encoding"))
	}
	return resp.Header.Get("Content-Type"), n
}

// cpuTime is the CPU time the process has used, on every core. On a
// machine shared with others' work it tells more than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per op since start: the server's, the
// scraper's and the garbage collector's.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/1e6/float64(b.N), "cpu-ms/op")
}

// encodeFloor encodes mfs in format as promhttp does, into gzip at its
// level when gz: the floor a scrape is measured against.
func encodeFloor(tb testing.TB, mfs []*dto.MetricFamily, format expfmt.Format, gz bool) {
	var w io.Writer = io.Discard
	var z *gzip.Writer
	if gz {
		z = gzip.NewWriter(io.Discard)
		w = z
	}
	enc := expfmt.NewEncoder(w, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			tb.Fatal(err)
		}
	}
	if err := enc.(expfmt.Closer).Close(); err != nil {
		tb.Fatal(err)
	}
	if z != nil {
		z.Close()
	}
}

// BenchmarkScrape is /metrics of the large PBX (size=1x) and of three
// times it (3x) as a scraper sees it: an HTTP request on loopback to the
// exporter's own web stack, to the last byte of the body (path=http),
// beside expfmt encoding the same families into gzip at promhttp's level
// or not (path=floor), in each format a scraper may negotiate. The names
// are key=value so that benchstat -col /path sets each path beside its
// floor.
func BenchmarkScrape(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("size=%dx", n), func(b *testing.B) {
			e := newBenchExporter(b, benchpbx.Large.Times(n))
			s := newBenchScraper(b)
			for _, f := range []struct{ name, accept string }{
				{"text", acceptText}, {"openmetrics", acceptPrometheus}, {"proto", acceptProto},
			} {
				for _, gz := range []bool{false, true} {
					name := "format=" + f.name + "/gzip=" + strconv.FormatBool(gz)
					ct, _ := s.scrape(b, e.url, f.accept, gz)
					format := expfmt.Format(ct)
					b.Run(name+"/path=http", func(b *testing.B) {
						b.ReportAllocs()
						var size int64
						cpu := cpuTime()
						for b.Loop() {
							_, size = s.scrape(b, e.url, f.accept, gz)
						}
						reportCPU(b, cpu)
						b.ReportMetric(float64(size), "body-B")
					})
					b.Run(name+"/path=floor", func(b *testing.B) {
						mfs, err := e.ref.Gather()
						if err != nil {
							b.Fatal(err)
						}
						b.ReportAllocs()
						cpu := cpuTime()
						for b.Loop() {
							encodeFloor(b, mfs, format, gz)
						}
						reportCPU(b, cpu)
					})
				}
			}
		})
	}
}

// The scrape benchmark's exporter serves what its registry gathers.
func TestBenchExporterServesTheRegistry(t *testing.T) {
	e := newBenchExporter(t, benchpbx.Size{Tenants: 2, Queues: 3, Agents: 2, Callers: 2, Extensions: 6})
	s := newBenchScraper(t)
	req, _ := http.NewRequest(http.MethodGet, e.url, nil)
	req.Header.Set("Accept", acceptText)
	resp, err := s.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"\nportsip_up 1\n", "\nportsip_queue_agent_state{", "\ngo_goroutines ", "\nportsip_exporter_build_info{"} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// BenchmarkGzip compresses the large PBX's page (text format): as
// promhttp did (compress/gzip at its default level), at compress/gzip's
// best speed, and with klauspost/compress at its default level (what the
// exporter uses) and its best speed.
func BenchmarkGzip(b *testing.B) {
	var page bytes.Buffer
	if err := loadedCollector(benchpbx.Large).Snapshot().WriteTo(&page, expfmt.NewFormat(expfmt.TypeTextPlain), nil, nil); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		new  func(io.Writer) io.WriteCloser
	}{
		{"compress-default", func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) }},
		{"compress-speed", func(w io.Writer) io.WriteCloser { z, _ := gzip.NewWriterLevel(w, gzip.BestSpeed); return z }},
		{"klauspost-default", func(w io.Writer) io.WriteCloser { return kgzip.NewWriter(w) }},
		{"klauspost-speed", func(w io.Writer) io.WriteCloser { z, _ := kgzip.NewWriterLevel(w, kgzip.BestSpeed); return z }},
	} {
		b.Run(c.name, func(b *testing.B) {
			var out countWriter
			b.SetBytes(int64(page.Len()))
			for b.Loop() {
				out = 0
				z := c.new(&out)
				// In the blocks the exposition writes.
				for p := page.Bytes(); len(p) > 0; {
					n := min(len(p), 32<<10)
					z.Write(p[:n])
					p = p[n:]
				}
				z.Close()
			}
			b.ReportMetric(float64(out), "gzip-B")
		})
	}
}

type countWriter int

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

// sortedGatherer hands promhttp the Collector's families already sorted
// and consistent, merged with the registry's without checking them again:
// the "sorted Gatherer" design BenchmarkScrapeDesigns measures.
type sortedGatherer struct {
	col *collector.Collector
	reg prometheus.Gatherer
}

func (g sortedGatherer) Gather() ([]*dto.MetricFamily, error) {
	mine := g.col.Snapshot().MetricFamilies(nil)
	theirs, err := g.reg.Gather()
	out := make([]*dto.MetricFamily, 0, len(mine)+len(theirs))
	for len(mine) > 0 && len(theirs) > 0 {
		if mine[0].GetName() < theirs[0].GetName() {
			out, mine = append(out, mine[0]), mine[1:]
		} else {
			out, theirs = append(out, theirs[0]), theirs[1:]
		}
	}
	return append(append(out, mine...), theirs...), err
}

// storedPage serves a page rendered once, compressing it for each scrape
// that asks, as kube-state-metrics serves the lines it keeps rendered:
// the least a scrape can cost.
type storedPage struct{ page []byte }

func (p storedPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	if !acceptsGzip(r.Header) {
		w.Write(p.page)
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	z := gzipPool.Get().(*kgzip.Writer)
	z.Reset(w)
	for b := p.page; len(b) > 0; {
		n := min(len(b), 32<<10)
		z.Write(b[:n])
		b = b[n:]
	}
	z.Close()
	gzipPool.Put(z)
}

// BenchmarkScrapeDesigns scrapes the large PBX over HTTP through each
// design measured for the metrics path, behind the same admission and
// shared responses: the registry (Collect, the registry's checks and
// sort, promhttp; the reference path), a sorted Gatherer (the snapshot's
// client_model families handed to promhttp unchecked), the exposition the
// exporter uses (the snapshot written directly), and a stored page (the
// lower bound of keeping the lines rendered, as kube-state-metrics does).
func BenchmarkScrapeDesigns(b *testing.B) {
	col := loadedCollector(benchpbx.Large)
	small := newRegistry(getBuildInfo())
	ref := prometheus.NewRegistry()
	ref.MustRegister(col)
	opts := promhttp.HandlerOpts{EnableOpenMetrics: true, ErrorHandling: promhttp.ContinueOnError}
	var page bytes.Buffer
	if err := col.Snapshot().WriteTo(&page, expfmt.NewFormat(expfmt.TypeTextPlain), nil, nil); err != nil {
		b.Fatal(err)
	}
	shared := func(h http.Handler) http.Handler {
		return &sharedScrapes{encode: h, slots: make(chan struct{}, 40)}
	}
	mux := http.NewServeMux()
	mux.Handle("/registry", shared(promhttp.HandlerFor(prometheus.Gatherers{ref, small}, opts)))
	mux.Handle("/gatherer", shared(promhttp.HandlerFor(sortedGatherer{col, small}, opts)))
	mux.Handle("/direct", shared(newExposition(prometheus.NewRegistry(), &sharedGathering{col: col, reg: small}, slog.New(slog.DiscardHandler))))
	mux.Handle("/stored", shared(storedPage{page.Bytes()}))
	url := serveBench(b, mux)
	s := newBenchScraper(b)
	for _, gz := range []bool{false, true} {
		for _, design := range []string{"registry", "gatherer", "direct", "stored"} {
			b.Run("gzip="+strconv.FormatBool(gz)+"/design="+design, func(b *testing.B) {
				b.ReportAllocs()
				cpu := cpuTime()
				for b.Loop() {
					s.scrape(b, url+"/"+design, acceptText, gz)
				}
				reportCPU(b, cpu)
			})
		}
	}
}
