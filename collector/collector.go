package collector

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	// Now is the clock; default time.Now. Tests replace it.
	Now func() time.Time
	// Limits bound the state a hostile or runaway PBX can make us keep.
	Limits Limits
}

// Limits bound tracked entities. What does not fit is not tracked and is
// counted in portsip_exporter_dropped_entities_total{entity}.
type Limits struct {
	Tenants         int // default 1,000
	Queues          int // all tenants; default 10,000
	CallersPerQueue int // default 10,000
	AgentsPerQueue  int // default 1,000
	Extensions      int // all tenants; default 100,000
	ActiveCalls     int // all tenants; default 100,000
	TrunkSeries     int // portsip_trunk_calls_total series; default 10,000
	// LabelLength bounds every label value taken from the PBX, in bytes;
	// longer values are cut. Default 128.
	LabelLength int
}

// DefaultLimits are the limits used for zero fields of Limits.
var DefaultLimits = Limits{
	Tenants:         1_000,
	Queues:          10_000,
	CallersPerQueue: 10_000,
	AgentsPerQueue:  1_000,
	Extensions:      100_000,
	ActiveCalls:     100_000,
	TrunkSeries:     10_000,
	LabelLength:     128,
}

// DefaultCallExpiry is how long an active call lives without a call_cdr.
const DefaultCallExpiry = 4 * time.Hour

// Entities counted by portsip_exporter_dropped_entities_total.
const (
	EntityTenant     = "tenant"
	EntityQueue      = "queue"
	EntityCaller     = "caller"
	EntityAgent      = "agent"
	EntityExtension  = "extension"
	EntityCall       = "call"
	EntityTrunk      = "trunk"
	EntityLabelValue = "label_value" // an enum full of values: counted as "other"
)

// Entities lists every entity label value, in a stable order.
var Entities = []string{EntityTenant, EntityQueue, EntityCaller, EntityAgent, EntityExtension, EntityCall, EntityTrunk, EntityLabelValue}

func (c *Config) setDefaults() {
	if c.CallExpiry <= 0 {
		c.CallExpiry = DefaultCallExpiry
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	l, d := &c.Limits, DefaultLimits
	for _, p := range []struct {
		v *int
		d int
	}{
		{&l.Tenants, d.Tenants}, {&l.Queues, d.Queues}, {&l.CallersPerQueue, d.CallersPerQueue},
		{&l.AgentsPerQueue, d.AgentsPerQueue}, {&l.Extensions, d.Extensions},
		{&l.ActiveCalls, d.ActiveCalls}, {&l.TrunkSeries, d.TrunkSeries}, {&l.LabelLength, d.LabelLength},
	} {
		if *p.v <= 0 {
			*p.v = p.d
		}
	}
}

// Collector holds state built from events (it is a wsi.Handler) and renders
// it as metrics (it is a prometheus.Collector).
type Collector struct {
	cfg   Config
	stats StatsSource

	mu        sync.Mutex
	up        bool
	tenants   map[string]*tenant
	retired   map[*queue]struct{} // destroyed or superseded queues: evicted first when full
	nQueues   int
	nExts     int
	nCalls    int
	nTrunks   int
	lastSweep time.Time
	dropped   map[string]uint64 // by entity
	enums     enums

	wait, talk, ring *prometheus.HistogramVec
	lastRows         atomic.Int64 // series copied by the last scrape
}

type enums struct {
	agentState, presence, callState, direction, callStatus, endReason, callerReason, mgmtType *enum
}

// New returns a Collector. stats may be nil: then the portsip_wsi_* series,
// which only a client can know, are not rendered at all rather than shown
// as zeros that would claim a client exists.
func New(cfg Config, stats StatsSource) *Collector {
	cfg.setDefaults()
	hist := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: name, Help: help, Buckets: buckets,
			NativeHistogramBucketFactor: 1.1,
			// Wide enough for the range a PBX produces; beyond it the
			// buckets widen (no reset), so a histogram never grows unbounded.
			NativeHistogramMaxBucketNumber: 160,
		}, labels)
	}
	c := &Collector{
		cfg:     cfg,
		stats:   stats,
		tenants: make(map[string]*tenant),
		retired: make(map[*queue]struct{}),
		dropped: make(map[string]uint64),
		enums: enums{
			agentState: newEnum("unknown", agentStates...),
			presence:   newEnum("", presences...),
			callState:  newEnum("idle", callStates...),
			direction:  newEnum("unknown", directions...),
			callStatus: newEnum("unknown", callStatuses...),
			endReason:  newEnum("unknown"),
			callerReason: newEnum("unknown", reasonEnqueue, reasonAnswered, reasonOverflow,
				reasonHangup, reasonCallback),
			mgmtType: newEnum("unknown", slices.Concat(queueMgmtTypes, extMgmtTypes)...),
		},
		wait: hist("portsip_queue_wait_seconds",
			"Time callers waited in a queue before leaving it, by outcome.",
			WaitBuckets, "tenant_id", "queue", "outcome"),
		talk: hist("portsip_call_talk_seconds",
			"Talk time of answered calls, from call_cdr.", TalkBuckets, "tenant_id", "direction"),
		ring: hist("portsip_call_ring_seconds",
			"Ring time of calls that rang, from call_cdr.", RingBuckets, "tenant_id", "direction"),
	}
	c.enums.direction.alias = map[string]string{
		"ext": "internal", "in": "inbound", "out": "outbound", "in2out": "inbound_outbound",
	}
	// The vendor's own extension_status sample spells ON_CALL as ON_ACLL:
	// a supervisor counting extensions on a call must not miss those.
	c.enums.callState.alias = map[string]string{"on_acll": "on_call"}
	return c
}

// Histogram buckets (DESIGN.md).
var (
	WaitBuckets = []float64{1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600}
	TalkBuckets = []float64{5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600}
	RingBuckets = []float64{1, 2, 3, 5, 8, 10, 15, 20, 30, 45, 60}
)

var (
	agentStates = []string{"ready", "not_ready", "queue_call", "other_call", "wrap_up",
		"break", "lunch", "logged_out", "offline", "online"}
	callStates = []string{"on_call", "ringing", "idle"}
	// Both spellings of the available state are real (v22.2, v22.3).
	presences    = []string{"online", "available", "away", "lunch", "business_trip", "do_not_disturb"}
	directions   = []string{"internal", "inbound", "outbound", "inbound_outbound"}
	callStatuses = []string{"answered", "noanswer", "fail"}

	queueMgmtTypes = []string{wsi.TypeQueueCreated, wsi.TypeQueueUpdated, wsi.TypeQueueDestroy}
	extMgmtTypes   = []string{wsi.TypeExtensionCreated, wsi.TypeExtensionUpdated, wsi.TypeExtensionDestroyed}
)

var _ wsi.Handler = (*Collector)(nil)
var _ prometheus.Collector = (*Collector)(nil)

// SessionUp starts rendering state; the PBX's snapshots follow.
func (c *Collector) SessionUp(wsi.Session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Anything applied while no session was up is not a snapshot of this
	// session: start from nothing.
	c.dropLiveState(c.cfg.Now())
	c.up = true
}

// SessionDown withholds and drops the live state. Agent time in progress
// is accrued up to now; counters and histograms stay.
func (c *Collector) SessionDown(error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLiveState(c.cfg.Now())
	c.up = false
}

// HandleEvent applies one event.
func (c *Collector) HandleEvent(ev wsi.Event) {
	if ev == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
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
	// cdr_target_* and unknown events carry nothing the catalogue needs;
	// the client counts them in portsip_wsi_events_total.
}

func (c *Collector) drop(entity string) { c.dropped[entity]++ }

// label bounds a label value taken from the PBX.
func (c *Collector) label(s string) string { return boundLabel(s, c.cfg.Limits.LabelLength) }

// enum returns the interned value of raw, counting an overflow.
func (c *Collector) enum(e *enum, raw string) string {
	v, overflow := e.value(raw)
	if overflow {
		c.drop(EntityLabelValue)
	}
	return v
}

// key returns s bounded and safe to keep: map keys outlive the event, and
// a decoder may hand out strings that share a frame's buffer. Only called
// when an entity is created, never per event.
func (c *Collector) key(s string) string { return strings.Clone(c.label(s)) }
