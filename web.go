package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"
	"golang.org/x/sync/singleflight"
)

const (
	healthyPath = "/-/healthy"
	readyPath   = "/-/ready"
)

// Bounds on what a client of the web port can make the exporter hold
// (ARCHITECTURE.md, "The web side"). Scrapes in flight are bounded by
// --web.max-requests.
const (
	// A request's header must arrive within readHeaderTimeout, the whole
	// request within readTimeout: a client that trickles it holds its
	// connection no longer.
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	// writeTimeout bounds writing a response, so a client that reads
	// slowly holds a scrape slot no longer; far above Prometheus's scrape
	// timeouts (10s by default) and the seconds an 18 MiB page takes.
	writeTimeout = time.Minute
	// idleTimeout closes keep-alive connections unused for longer than
	// the usual scrape intervals (up to 1m), so Prometheus reuses its own.
	idleTimeout = 2 * time.Minute
	// maxHeaderBytes: a scraper's request header is well under 1 KiB;
	// Go's default of 1 MiB per connection is memory an attacker chooses.
	maxHeaderBytes = 32 << 10
	// maxConnections bounds open connections, all listeners together, as
	// Prometheus's own --web.max-connections default; never more than
	// half the open file limit (openFileLimit), leaving the rest for the
	// PBX session.
	maxConnections = 512
)

// newMux serves the Collector's metrics and what reg gathers, the health
// endpoints and the landing page.
func newMux(col snapshotter, reg *prometheus.Registry, cfg webConfig, logger *slog.Logger, ready *atomic.Bool) (*http.ServeMux, error) {
	mux := http.NewServeMux()
	mux.Handle(cfg.TelemetryPath, wrapMetricsHandler(
		metricsHandler(reg, &sharedGathering{col: col, reg: reg}, cfg.MaxRequests, logger)))

	// Healthy: the process is alive. Ready: it serves. Neither reflects the
	// PBX session, on purpose: a disconnected PBX must still be scraped so
	// that portsip_up=0 reaches Prometheus and alerts.
	mux.HandleFunc(healthyPath, func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "Healthy")
	})
	mux.HandleFunc(readyPath, func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "Not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "Ready")
	})

	landing, err := web.NewLandingPage(web.LandingConfig{
		Name:        "PortSIP Exporter",
		Description: "Prometheus exporter for the PortSIP PBX: queues, agents, extensions and calls from the WSI event stream.",
		Version:     getBuildInfo().Version,
		// The toolkit links to /debug/pprof by default; this exporter
		// does not serve it, and the links would be 404s.
		Profiling: "false",
		Links: []web.LandingLinks{
			{Address: cfg.TelemetryPath, Text: "Metrics"},
			{Address: healthyPath, Text: "Health", Description: "200 while the process runs"},
			{Address: readyPath, Text: "Readiness", Description: "200 while serving; not the PBX session (see portsip_up)"},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("landing page: %w", err)
	}
	mux.Handle("/", landing)
	return mux, nil
}

// metricsHandler serves what g gathers, at most maxRequests scrapes at
// once, and registers its own metrics (promhttp_*) in reg.
func metricsHandler(reg prometheus.Registerer, g gatherer, maxRequests int, logger *slog.Logger) http.Handler {
	return promhttp.InstrumentMetricHandler(reg, &sharedScrapes{
		encode: newExposition(reg, g, logger),
		slots:  make(chan struct{}, maxRequests),
	})
}

// sharedScrapes admits at most cap(slots) scrapes at once, refusing the
// others with a 503 at once, as node_exporter's --web.max-requests does,
// and lets the scrapes asking for the same thing at the same time share
// one response: the first encodes it, those arriving meanwhile wait for
// it, and each writes it out. So N scrapers cost one gathering and one
// encoding, not N: unshared, 100 scrapers starved ingest of the CPU (2,000
// events took 20 s instead of 0.4 s). A scrape arriving after a response
// was made gets a new one, so none is older than its scrape plus one
// encoding. (ARCHITECTURE.md, "The web side".)
type sharedScrapes struct {
	encode http.Handler
	slots  chan struct{}
	calls  singleflight.Group
}

func (s *sharedScrapes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		http.Error(w, fmt.Sprintf("Limit of concurrent requests reached (%d), try again later.", cap(s.slots)),
			http.StatusServiceUnavailable)
		return
	}
	// What promhttp's response depends on: the negotiated format and
	// compression, and the name[] filters.
	key := r.Header.Get("Accept") + "\n" + r.Header.Get("Accept-Encoding") + "\n" + r.URL.RawQuery
	v, _, _ := s.calls.Do(key, func() (any, error) {
		rec := &recordedResponse{header: make(http.Header), code: http.StatusOK}
		s.encode.ServeHTTP(rec, r)
		return rec, nil
	})
	v.(*recordedResponse).writeTo(w)
}

// recordedResponse is a response kept to be written to several clients.
// Its body is kept in chunks of a fixed size, so that an 18 MiB page
// takes 18 MiB, not the 48 MiB a doubling buffer holds while it grows.
type recordedResponse struct {
	header http.Header
	code   int
	body   [][]byte
	size   int
}

const recordChunk = 64 << 10

func (rr *recordedResponse) Header() http.Header  { return rr.header }
func (rr *recordedResponse) WriteHeader(code int) { rr.code = code }

func (rr *recordedResponse) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		last := len(rr.body) - 1
		if last < 0 || len(rr.body[last]) == cap(rr.body[last]) {
			rr.body = append(rr.body, make([]byte, 0, recordChunk))
			last++
		}
		c := rr.body[last]
		k := copy(c[len(c):cap(c)], b)
		rr.body[last], b = c[:len(c)+k], b[k:]
	}
	rr.size += n
	return n, nil
}

func (rr *recordedResponse) writeTo(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range rr.header {
		h[k] = v
	}
	h.Set("Content-Length", strconv.Itoa(rr.size))
	w.WriteHeader(rr.code)
	for _, c := range rr.body {
		if _, err := w.Write(c); err != nil {
			return // the client went away
		}
	}
}

// wrapMetricsHandler lets tests hold a scrape in flight.
var wrapMetricsHandler = func(h http.Handler) http.Handler { return h }

// newServer is an HTTP server with every timeout of the web side set.
func newServer(h http.Handler, conns *connLimiter, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           conns.track(h),
		ConnContext:       conns.connContext,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// connLimiter bounds the open connections of the listeners it wraps,
// together. At the bound, a new connection closes the one idle longest
// (no request in a handler: waiting for its first request, or between
// keep-alive requests), so a flood of idle connections can neither use
// the file descriptors the PBX session needs to reconnect nor lock
// scrapers out; a scraper sends its request at once and is then safe.
// When every connection is in a handler, the new one is closed instead.
type connLimiter struct {
	max   int
	mu    sync.Mutex
	conns map[*limitedConn]struct{}
}

func newConnLimiter(max int) *connLimiter {
	return &connLimiter{max: max, conns: make(map[*limitedConn]struct{})}
}

// connectionLimit is maxConnections, or half the open file limit when that
// is lower.
func connectionLimit() int {
	if n := openFileLimit() / 2; n > 0 && n < maxConnections {
		return int(n)
	}
	return maxConnections
}

type limitedConn struct {
	net.Conn
	limiter *connLimiter
	// Guarded by limiter.mu.
	busy int       // requests of this connection in a handler
	idle time.Time // when busy last became 0
}

func (l *connLimiter) listener(inner net.Listener) net.Listener {
	return &limitedListener{Listener: inner, limiter: l}
}

type limitedListener struct {
	net.Listener
	limiter *connLimiter
}

func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc := l.limiter.admit(c); lc != nil {
			return lc, nil
		}
	}
}

// admit tracks c, making room by closing the connection idle longest; it
// closes c and returns nil when no connection is idle.
func (l *connLimiter) admit(c net.Conn) *limitedConn {
	l.mu.Lock()
	var victim *limitedConn
	if len(l.conns) >= l.max {
		for lc := range l.conns {
			if lc.busy == 0 && (victim == nil || lc.idle.Before(victim.idle)) {
				victim = lc
			}
		}
		if victim == nil {
			l.mu.Unlock()
			c.Close()
			return nil
		}
		delete(l.conns, victim)
	}
	lc := &limitedConn{Conn: c, limiter: l, idle: time.Now()}
	l.conns[lc] = struct{}{}
	l.mu.Unlock()
	if victim != nil {
		// The server's goroutine for it fails its next read or write and
		// closes it again, which is harmless.
		victim.Conn.Close()
	}
	return lc
}

func (c *limitedConn) Close() error {
	c.limiter.mu.Lock()
	delete(c.limiter.conns, c)
	c.limiter.mu.Unlock()
	return c.Conn.Close()
}

// open is how many connections are open.
func (l *connLimiter) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

type connKey struct{}

// connContext gives each request its connection, for track.
func (l *connLimiter) connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok { // TLS
		c = tc.NetConn()
	}
	if lc, ok := c.(*limitedConn); ok {
		return context.WithValue(ctx, connKey{}, lc)
	}
	return ctx
}

// track marks a connection busy while one of its requests is in a handler.
func (l *connLimiter) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lc, _ := r.Context().Value(connKey{}).(*limitedConn)
		if lc == nil {
			h.ServeHTTP(w, r)
			return
		}
		l.mu.Lock()
		lc.busy++
		l.mu.Unlock()
		defer func() {
			l.mu.Lock()
			if lc.busy--; lc.busy == 0 {
				lc.idle = time.Now()
			}
			l.mu.Unlock()
		}()
		h.ServeHTTP(w, r)
	})
}
