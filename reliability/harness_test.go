package reliability

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/portsip-exporter/portsip_exporter/collector"
	"github.com/portsip-exporter/portsip_exporter/wsi"
	"github.com/portsip-exporter/portsip_exporter/wsi/wsitest"
)

const (
	tenantID = "794493068765036544"
	domain   = "acme.example.com"
	admin    = "admin"
	// password is distinctive so that a leak is found by a substring search.
	password = "pw-Reliab1lity-Kilo-7"
	queue    = "8001"
	queueID  = "877046776364007424"

	// awaitTimeout bounds every wait for the exporter to reach a state. It
	// is generous: the race detector and five other engineers share two
	// cores, and a pass never waits for it.
	awaitTimeout = 20 * time.Second
)

// globalTopics are what a system administrator subscribes (ARCHITECTURE.md,
// "The WSI session").
var globalTopics = []string{
	wsi.TopicGlobalQueueEvents, wsi.TopicGlobalQueueManagement, wsi.TopicGlobalExtensionEvents,
	wsi.TopicGlobalExtensionManagement, wsi.TopicGlobalCDREvents,
}

// newPBX is a started simulated PBX with one tenant, queue 8001 with a
// ready agent and one waiting caller, and extension 101 registered. The
// system administrator is refused the denied topics.
func newPBX(t *testing.T, denied ...string) *wsitest.Server {
	t.Helper()
	s := wsitest.NewUnstartedServer()
	s.AddTenant(wsitest.Tenant{ID: tenantID, Name: "Acme", Domain: domain})
	s.AddUser(wsitest.User{Username: admin, Password: password, Role: wsitest.SystemAdmin, Denied: denied})
	s.AddQueue(tenantID, wsitest.Queue{ID: queueID, Number: queue, Name: "Sales", SLASeconds: 20})
	s.AddExtension(tenantID, "101")
	s.Start()
	t.Cleanup(s.Close)
	s.SetAgentState(tenantID, queue, "101", "READY")
	s.SetExtensionOnline(tenantID, "101", true)
	s.Enqueue(tenantID, queue, wsitest.Caller{Number: "5551000", Name: "First"})
	return s
}

// clientConfig is the system administrator's wsi.Config with the short
// timings of tests: quick retries, and a ping period long enough that a
// loaded machine is not mistaken for a dead PBX (tests of dead-peer
// detection shorten it).
func clientConfig(url string) wsi.Config {
	return wsi.Config{
		URL:              url,
		Username:         admin,
		Password:         password,
		Tenants:          []string{tenantID},
		PingInterval:     2 * time.Second,
		HandshakeTimeout: 2 * time.Second,
		SubscribeTimeout: time.Second,
		BackoffInitial:   20 * time.Millisecond,
		BackoffMax:       200 * time.Millisecond,
		// A refused login waits a minute and more in earnest.
		LoginBackoffInitial: 20 * time.Millisecond,
		LoginBackoffMax:     200 * time.Millisecond,
	}
}

// gate holds whoever waits on it while it is shut.
type gate struct {
	mu sync.Mutex
	ch chan struct{} // nil: open
}

func (g *gate) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ch == nil {
		g.ch = make(chan struct{})
	}
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ch != nil {
		close(g.ch)
		g.ch = nil
	}
}

func (g *gate) pass() {
	g.mu.Lock()
	ch := g.ch
	g.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// relay is the wsi.Handler between the Client and the Collector. It passes
// everything on, as main.go's direct wiring does, and lets a test hold the
// client's goroutine: right after a SessionDown has reached the Collector
// (to scrape a moment a quick reconnect would make too brief to catch), or
// before each event (a slow consumer).
type relay struct {
	col        *collector.Collector
	afterDown  gate
	beforeEach gate
	// onEvent, when set before the client runs, sees each event before
	// the Collector does, on the client's goroutine.
	onEvent func(wsi.Event)

	mu    sync.Mutex
	downs []error // every SessionDown's reason
	held  chan struct{}
}

func (r *relay) SessionUp(s wsi.Session) { r.col.SessionUp(s) }

func (r *relay) HandleEvent(ev wsi.Event) {
	r.beforeEach.pass()
	if r.onEvent != nil {
		r.onEvent(ev)
	}
	r.col.HandleEvent(ev)
}

func (r *relay) SessionDown(err error) {
	r.col.SessionDown(err)
	r.mu.Lock()
	r.downs = append(r.downs, err)
	held := r.held
	r.held = nil
	r.mu.Unlock()
	if held != nil {
		close(held)
	}
	r.afterDown.pass()
}

// lastDown is the reason of the last SessionDown, nil before the first.
func (r *relay) lastDown() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.downs) == 0 {
		return nil
	}
	return r.downs[len(r.downs)-1]
}

// holdNextDown makes the next SessionDown wait until the returned release
// is called; the channel is closed once the Collector has seen it.
func (r *relay) holdNextDown() (down <-chan struct{}, release func()) {
	ch := make(chan struct{})
	r.mu.Lock()
	r.held = ch
	r.mu.Unlock()
	r.afterDown.shut()
	return ch, r.afterDown.open
}

// exporter is the program as main.go's runExporter wires it: a wsi.Client
// running into a collector.Collector registered with the Go and process
// collectors, served by promhttp with the same options.
type exporter struct {
	t     *testing.T
	relay *relay
	url   string
	http  *http.Client
}

func startExporter(t *testing.T, cfg wsi.Config, opts ...func(*relay)) *exporter {
	t.Helper()
	client, err := wsi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	col := collector.New(collector.Config{AgentState: true, ExtensionState: true}, client)
	reg := prometheus.NewRegistry()
	reg.MustRegister(col, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		Timeout:       10 * time.Second,
	}))
	r := &relay{col: col}
	for _, o := range opts {
		o(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = client.Run(ctx, r)
	}()
	e := &exporter{t: t, relay: r, url: srv.URL + "/metrics", http: &http.Client{Timeout: 10 * time.Second}}
	t.Cleanup(func() {
		r.afterDown.open()
		r.beforeEach.open()
		cancel()
		<-done
		e.http.CloseIdleConnections()
		srv.Close()
	})
	return e
}

// scrape is one parsed /metrics page.
type scrape struct {
	body string
	mfs  map[string]*dto.MetricFamily
}

// scrape fetches /metrics and fails the test unless it answers 200 with a
// page that parses: the exporter must be scrapeable whatever the PBX does.
func (e *exporter) scrape() scrape {
	e.t.Helper()
	resp, err := e.http.Get(e.url)
	if err != nil {
		e.t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("scrape: reading the body: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("scrape: HTTP %s: %s", resp.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		e.t.Fatalf("scrape: %v", err)
	}
	return scrape{body: string(body), mfs: mfs}
}

// find returns the value of the series of name whose labels include the
// given name/value pairs; ok is false when there is none.
func (s scrape) find(name string, labels ...string) (v float64, ok bool) {
	mf := s.mfs[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		if !hasLabels(m, labels...) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// hasLabels reports whether m's labels include the name/value pairs.
func hasLabels(m *dto.Metric, labels ...string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		if !slices.ContainsFunc(m.GetLabel(), func(lp *dto.LabelPair) bool {
			return lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
		}) {
			return false
		}
	}
	return true
}

// value is find for a series that must exist; a missing one is 0 and a
// failure.
func (s scrape) value(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, ok := s.find(name, labels...)
	if !ok {
		t.Errorf("no series %s%v in the scrape", name, labels)
	}
	return v
}

// counter is a counter's value; a counter not yet created is 0.
func (s scrape) counter(name string, labels ...string) float64 {
	v, _ := s.find(name, labels...)
	return v
}

func (s scrape) up() float64 {
	v, _ := s.find("portsip_up")
	return v
}

// count is the number of series of a family.
func (s scrape) count(name string) int {
	if mf := s.mfs[name]; mf != nil {
		return len(mf.GetMetric())
	}
	return 0
}

// await scrapes until cond holds and returns that scrape. Every scrape on
// the way must answer.
func (e *exporter) await(what string, cond func(scrape) bool) scrape {
	e.t.Helper()
	deadline := time.Now().Add(awaitTimeout)
	for {
		s := e.scrape()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s; last scrape:\n%s", awaitTimeout, what, portsipLines(s.body))
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}

// awaitUp waits for a session that is up and has applied the PBX's queue
// snapshot.
func (e *exporter) awaitUp() scrape {
	e.t.Helper()
	// The client's counters are read before the collector's state, so the
	// scrape that sees the session come up may not see its subscriptions
	// yet: wait for both.
	return e.await("portsip_up 1, the queue snapshot and the subscriptions", func(s scrape) bool {
		_, ok := s.find("portsip_queue_info", "queue", queue)
		sub, _ := s.find("portsip_wsi_subscription_active", "topic", wsi.TopicGlobalQueueEvents)
		return s.up() == 1 && ok && sub == 1
	})
}

// awaitCounter waits until a counter reaches want and fails if it passes
// it: the tests that use it control the input exactly.
func (e *exporter) awaitCounter(want float64, name string, labels ...string) scrape {
	e.t.Helper()
	s := e.await(fmt.Sprintf("%s%v to reach %v", name, labels, want), func(s scrape) bool {
		return s.counter(name, labels...) >= want
	})
	if got := s.counter(name, labels...); got != want {
		e.t.Fatalf("%s%v = %v, want exactly %v", name, labels, got, want)
	}
	return s
}

// eventually polls cond until it holds or awaitTimeout passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(awaitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", awaitTimeout, what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

// portsipLines keeps the exporter's own series of a page, for failure
// messages.
func portsipLines(body string) string {
	var b strings.Builder
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "portsip_") {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// stateFamilies are the gauges built from PBX state: they vanish while no
// session is up. assertDown also finds any other gauge with a tenant_id
// (portsip_tenant_info, which names the counters' tenants, stays).
var stateFamilies = []string{
	"portsip_queue_info", "portsip_queue_waiting_callers", "portsip_queue_oldest_wait_seconds",
	"portsip_queue_agents", "portsip_queue_agent_state", "portsip_queue_agent_state_changed_timestamp_seconds",
	"portsip_queue_sla_threshold_seconds", "portsip_extension_online", "portsip_extension_presence",
	"portsip_extension_call_state", "portsip_extensions", "portsip_extensions_online",
	"portsip_extensions_push_online", "portsip_extensions_by_presence", "portsip_extensions_by_call_state",
	"portsip_calls_active",
}

// assertDown checks a scrape taken while no session is up: portsip_up 0
// and no gauge of the state from before.
func assertDown(t *testing.T, s scrape) {
	t.Helper()
	if s.up() != 0 {
		t.Errorf("portsip_up = %v while no session is up", s.up())
	}
	for _, f := range stateFamilies {
		if n := s.count(f); n > 0 {
			t.Errorf("%s has %d series while no session is up: stale state shown as current", f, n)
		}
	}
	for name, mf := range s.mfs {
		if mf.GetType() != dto.MetricType_GAUGE || name == "portsip_tenant_info" || slices.Contains(stateFamilies, name) {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "tenant_id" {
					t.Errorf("%s has a series of a tenant while no session is up: stale state shown as current", name)
				}
			}
		}
	}
}

// awaitStateShown waits until every state family of newPBX's state is
// shown while its session is up, so that assertDown's absence means
// something.
func (e *exporter) awaitStateShown() scrape {
	e.t.Helper()
	return e.await("every state family shown", func(s scrape) bool {
		for _, f := range stateFamilies {
			if s.count(f) == 0 {
				return false
			}
		}
		return s.up() == 1
	})
}

// enqueue puts n callers into a queue, each publishing one enqueue.
func enqueue(pbx *wsitest.Server, q string, n int) {
	for i := range n {
		pbx.Enqueue(tenantID, q, wsitest.Caller{Number: fmt.Sprintf("555%05d", i), Name: "Caller"})
	}
}

// countSeries counts the series of a gathered page.
func countSeries(mfs []*dto.MetricFamily) int {
	n := 0
	for _, mf := range mfs {
		n += len(mf.GetMetric())
	}
	return n
}

// sumFamily sums the series of a family whose labels include the given
// name/value pairs (histograms by sample count).
func sumFamily(mfs []*dto.MetricFamily, name string, labels ...string) float64 {
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !hasLabels(m, labels...) {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}
