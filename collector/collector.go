package collector

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portsip-exporter/portsip_exporter/internal/secret"
	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// StatsSource is where the wsi_* counters come from (a *wsi.Client).
type StatsSource interface {
	Stats() wsi.Stats
}

// Config configures a Collector. Zero durations and limits take the
// defaults; the two switches are taken as given.
type Config struct {
	AgentState     bool          // per-agent series portsip_queue_agent_state
	ExtensionState bool          // per-extension series
	CallExpiry     time.Duration // default 4h
	// DefaultSLATime is a queue's SLA time until the PBX sends the queue's
	// own (sla_time_secs, with a breach); default 20s.
	DefaultSLATime time.Duration
	// Now is the clock; default time.Now. Tests replace it.
	Now func() time.Time
	// Limits bound the state a hostile or runaway PBX can make us keep.
	Limits Limits
	// MaxSeries is the most samples the Collector may ever render,
	// whatever the PBX sends (--collector.max-series; budget.go); default
	// DefaultMaxSeries.
	MaxSeries int
	// Redactor removes the password from every label value taken from the
	// PBX (the client's, wsi.Client.Redactor); nil removes nothing.
	Redactor *secret.Redactor
}

// IgnoredImplausible is the reason of portsip_wsi_events_ignored_total the
// Collector counts: an event with a value no PBX can mean, not applied.
// The client counts the others (wsi.IgnoredReasons).
const IgnoredImplausible = "implausible"

// Defaults of Config.
const (
	DefaultCallExpiry = 4 * time.Hour
	DefaultSLATime    = 20 * time.Second
	DefaultMaxSeries  = 500_000
)

func (c *Config) setDefaults() {
	if c.CallExpiry <= 0 {
		c.CallExpiry = DefaultCallExpiry
	}
	if c.DefaultSLATime <= 0 {
		c.DefaultSLATime = DefaultSLATime
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxSeries <= 0 {
		c.MaxSeries = DefaultMaxSeries
	}
	c.Limits.setDefaults()
}

// Collector holds state built from events (it is a wsi.Handler) and renders
// it as metrics (it is a prometheus.Collector).
type Collector struct {
	cfg   Config
	stats StatsSource

	mu      sync.Mutex
	up      bool
	everUp  bool      // a session has been up: the quirks are rendered
	upSince time.Time // when the session came up
	tenants map[string]*tenant
	retired map[*queue]time.Time // destroyed queues, and when
	nQueues int
	nExts   int
	nCalls  int
	nTrunks int
	// nWaiting counts the waiting callers of all queues.
	nWaiting   int
	lastSweep  time.Time
	lastExpiry time.Time
	dropped    map[string]uint64 // by entity
	quirks     []uint64          // by wsi.Quirk
	// series is what the Collector may render now, as the budget counts
	// it (budget.go): never above cfg.MaxSeries.
	series int
	// implausible counts events with a value no PBX can mean
	// (portsip_wsi_events_ignored_total{reason="implausible"}); bad marks
	// the event being applied as one, and window is the span of PBX time
	// its timestamps must fall in (plausible.go).
	implausible uint64
	bad         bool
	window      [2]int64
	enums       enums
	clock       pbxClock
	seed        maphash.Seed // of the keys of the recent sets
	cdrs        recent       // the last call_cdr counted

	lastRows atomic.Pointer[[]int] // series of each family in the last scrape
}

// New returns a Collector. stats may be nil: then the portsip_wsi_* series,
// which only a client can know, are not rendered at all rather than shown
// as zeros that would claim a client exists.
func New(cfg Config, stats StatsSource) *Collector {
	cfg.setDefaults()
	c := &Collector{
		cfg:     cfg,
		stats:   stats,
		tenants: make(map[string]*tenant),
		retired: make(map[*queue]time.Time),
		dropped: make(map[string]uint64),
		quirks:  make([]uint64, len(wsi.Quirks)),
		seed:    maphash.MakeSeed(),
		cdrs:    recent{size: recentCDRs},
		enums:   newEnums(),
		series:  ownSeries,
	}
	return c
}

var _ wsi.Handler = (*Collector)(nil)
var _ prometheus.Collector = (*Collector)(nil)

// SessionUp starts rendering state; the PBX's snapshots follow.
func (c *Collector) SessionUp(s wsi.Session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Anything applied while no session was up is not a snapshot of this
	// session: start from nothing.
	now := c.cfg.Now()
	c.dropLiveState(now)
	c.up, c.everUp, c.upSince = true, true, now
	for _, ok := range s.Topics {
		if !ok {
			c.quirk(wsi.QuirkTopicsRefused)
			break
		}
	}
}

// SessionDown withholds and drops the live state. Agent time in progress
// is accrued up to now; counters and histograms stay.
func (c *Collector) SessionDown(error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLiveState(c.cfg.Now())
	c.up = false
}

// dropLiveState forgets what only a session can vouch for.
func (c *Collector) dropLiveState(now time.Time) {
	for _, t := range c.tenants {
		for _, q := range t.queues {
			c.clearQueue(q, now)
		}
		c.nExts -= len(t.exts)
		c.release(len(t.exts) * c.extensionSeries())
		clear(t.exts)
		t.extsLive = false
		c.nCalls -= len(t.calls)
		clear(t.calls)
	}
}

// received is when an event arrived, on our clock: now when the decoder
// did not say (an event built in a test).
func received(h *wsi.Header, now time.Time) time.Time {
	if h.Received.IsZero() {
		return now
	}
	return h.Received
}

// HandleEvent applies one event.
func (c *Collector) HandleEvent(ev wsi.Event) {
	if ev == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	h := ev.Head()
	c.headerQuirks(h.Quirks)
	c.expire(now)
	c.setWindow(received(h, now))
	if ts := c.stamp(eventTime(ev)); ts > 0 {
		c.clock.sample(received(h, now), ts)
	}
	switch e := ev.(type) {
	case *wsi.QueueStatus:
		c.queueStatus(e, now)
	case *wsi.QueueCallerStatus:
		c.queueCallerStatus(e, now)
	case *wsi.QueueAgentStatus:
		c.queueAgentStatus(e, now)
	case *wsi.QueueSLABreached:
		c.queueSLABreached(e, now)
	case *wsi.QueueManagement:
		c.queueManagement(e, now)
	case *wsi.ExtensionStatus:
		c.extensionStatus(e)
	case *wsi.ExtensionCall:
		c.extensionCall(e)
	case *wsi.ExtensionPresence:
		c.extensionPresence(e)
	case *wsi.ExtensionAgentStatus:
		c.extensionAgentStatus(e, now)
	case *wsi.ExtensionManagement:
		c.extensionManagement(e)
	case *wsi.CallStart:
		c.callStart(e, now)
	case *wsi.CallCDR:
		c.callCDR(e, now)
	}
	if c.bad {
		c.implausible++
		c.bad = false
	}
	// cdr_target_* and unknown events carry nothing the catalogue needs;
	// the client counts them in portsip_wsi_events_total.
}
