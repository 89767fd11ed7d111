package collector

import (
	"strings"
	"time"
)

// tenant is everything known under one tenant_id. It lives as long as the
// process: its counters must never reset.
type tenant struct {
	id   string
	name string // tenant_name from call_cdr; "" until one arrives

	queues map[string]*queue    // by queue label
	byID   map[string]*queue    // queue_id -> queue
	exts   map[string]extension // live: by extension number
	calls  map[string]time.Time // live: active call key -> first seen (our clock)
	talk   map[string]*hist     // by direction; nil until the first call event
	ring   map[string]*hist

	// extsLive: an extension event arrived in this session. Until one
	// does, the tenant's extension gauges are withheld: zeros would claim
	// that every extension went offline at each reconnect, and that a
	// tenant whose extensions we do not receive has none.
	extsLive bool

	// extraPresence and extraState are the presences and call states the
	// PBX invented that extensions of the tenant took: each is a series
	// of the tenant's by_presence or by_call_state, paid for once.
	extraPresence, extraState map[string]bool

	queueMgmt  map[string]uint64 // by event_type
	extMgmt    map[string]uint64
	callsTotal map[callKey]uint64 // nil until the first call event
	endReasons map[string]uint64
	trunks     map[trunkKey]uint64
}

func (c *Collector) tenant(raw string) *tenant {
	id, t, _ := find(c, c.tenants, raw)
	if t != nil {
		return t
	}
	if len(c.tenants) >= c.cfg.Limits.Tenants {
		c.drop(EntityTenant)
		return nil
	}
	if !c.reserve(tenantSeries) {
		return nil
	}
	t = &tenant{
		id:         strings.Clone(id),
		queues:     make(map[string]*queue),
		byID:       make(map[string]*queue),
		exts:       make(map[string]extension),
		calls:      make(map[string]time.Time),
		queueMgmt:  make(map[string]uint64),
		extMgmt:    make(map[string]uint64),
		endReasons: make(map[string]uint64),
		trunks:     make(map[trunkKey]uint64),
	}
	c.tenants[t.id] = t
	return t
}
