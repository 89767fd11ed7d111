package collector

import (
	"time"

	"github.com/portsip-exporter/portsip_exporter/internal/benchpbx"
	"github.com/portsip-exporter/portsip_exporter/wsi"
)

type statsFunc func() wsi.Stats

func (f statsFunc) Stats() wsi.Stats { return f() }

func someStats() wsi.Stats {
	return wsi.Stats{
		Up: true, ConnectionAttempts: 3,
		ConnectionErrors: map[string]uint64{wsi.StageDial: 2},
		InvalidMessages:  map[string]uint64{wsi.ReasonMalformedJSON: 1},
		Ignored:          map[string]uint64{wsi.IgnoredOtherTenant: 4},
		Events:           map[string]uint64{wsi.TypeQueueStatus: 5, wsi.TypeOther: 1, "brand_new": 2},
		LastEvent:        time.Unix(1_700_000_000, 500_000_000),
		Subscriptions:    map[string]bool{wsi.TopicGlobalQueueEvents: true, wsi.TopicGlobalCDREvents: false},
	}
}

// pbx sizes a simulated PBX in state.
type pbx struct {
	tenants, queues, agents, callers, extensions int // queues and extensions in all
}

var largePBX = pbx{tenants: 50, queues: 1000, agents: 12, callers: 5, extensions: 30_000}

var agentStatesOnWire = benchpbx.AgentStatesOnWire

// load applies the snapshots a PBX of this size pushes on subscribe, and
// a little of every other event type, so that every family has series.
func (p pbx) load(c *Collector, now time.Time) {
	benchpbx.Size{Tenants: p.tenants, Queues: p.queues, Agents: p.agents, Callers: p.callers, Extensions: p.extensions}.Load(c, now)
}

func sessionWith() wsi.Session {
	return wsi.Session{Topics: map[string]bool{wsi.TopicGlobalQueueEvents: true}}
}
