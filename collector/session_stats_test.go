package collector

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// racingClient is a StatsSource that brings its session up while a scrape
// reads its counters, the way wsi.Client does: subscriptions published
// first, then SessionUp.
type racingClient struct {
	mu    sync.Mutex
	stats wsi.Stats
	col   *Collector
	once  sync.Once
	upped chan struct{}
}

func (r *racingClient) Stats() wsi.Stats {
	r.mu.Lock()
	st := r.stats
	r.mu.Unlock()
	r.once.Do(func() {
		go func() {
			r.mu.Lock()
			r.stats = wsi.Stats{Up: true, Subscriptions: map[string]bool{wsi.TopicGlobalQueueEvents: true}}
			r.mu.Unlock()
			r.col.SessionUp(wsi.Session{Topics: map[string]bool{wsi.TopicGlobalQueueEvents: true}})
			close(r.upped)
		}()
		// A scrape that reads the counters outside the collector's lock
		// lets the session come up in between; one that reads them
		// inside holds SessionUp back until it is done.
		select {
		case <-r.upped:
		case <-time.After(200 * time.Millisecond):
		}
	})
	return st
}

// A scrape must never show portsip_up 1 next to the subscriptions of no
// session: both come from one moment.
func TestScrapeSeesSessionAndSubscriptionsTogether(t *testing.T) {
	r := &racingClient{
		stats: wsi.Stats{Subscriptions: map[string]bool{wsi.TopicGlobalQueueEvents: false}},
		upped: make(chan struct{}),
	}
	r.col = New(Config{}, r)
	reg := prometheus.NewRegistry()
	reg.MustRegister(r.col)

	up, sub := scrapeUp(t, reg)
	<-r.upped
	if up != sub {
		t.Fatalf("one scrape showed portsip_up %v with portsip_wsi_subscription_active %v", up, sub)
	}
	// The next scrape sees the session that came up.
	if up, sub := scrapeUp(t, reg); up != 1 || sub != 1 {
		t.Fatalf("after the session came up: portsip_up %v, subscription %v; want 1 and 1", up, sub)
	}
}

// scrapeUp gathers once and returns portsip_up and the one topic's
// portsip_wsi_subscription_active.
func scrapeUp(t *testing.T, reg *prometheus.Registry) (up, sub float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	up, sub = -1, -1
	for _, mf := range mfs {
		switch mf.GetName() {
		case "portsip_up":
			up = mf.GetMetric()[0].GetGauge().GetValue()
		case "portsip_wsi_subscription_active":
			sub = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return up, sub
}
