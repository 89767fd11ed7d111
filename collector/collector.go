// Package collector turns WSI events into contact-centre state and renders
// that state as Prometheus metrics at scrape time.
package collector

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// StatsSource is where the wsi_* counters come from (a *wsi.Client).
type StatsSource interface {
	Stats() wsi.Stats
}

// Config configures a Collector. Zero values take the defaults.
type Config struct {
	AgentState     bool          // per-agent series portsip_queue_agent_state
	ExtensionState bool          // per-extension series
	CallExpiry     time.Duration // default 4h
	// Now is the clock; default time.Now. Tests replace it.
	Now func() time.Time
}

// Collector holds state built from events (it is a wsi.Handler) and renders
// it as metrics (it is a prometheus.Collector).
type Collector struct {
	cfg   Config
	stats StatsSource
}

// New returns a Collector. stats may be nil (no portsip_wsi_* client counters).
func New(cfg Config, stats StatsSource) *Collector {
	return &Collector{cfg: cfg, stats: stats}
}

var _ wsi.Handler = (*Collector)(nil)
var _ prometheus.Collector = (*Collector)(nil)

// TODO(issue 3): implement.
func (c *Collector) SessionUp(wsi.Session)               {}
func (c *Collector) HandleEvent(wsi.Event)               {}
func (c *Collector) SessionDown(error)                   {}
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {}
func (c *Collector) Collect(ch chan<- prometheus.Metric) {}
