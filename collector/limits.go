package collector

import "strings"

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

// setDefaults replaces zero and negative limits by the defaults.
func (l *Limits) setDefaults() {
	d := DefaultLimits
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

// drop counts an entity a limit kept out.
func (c *Collector) drop(entity string) { c.dropped[entity]++ }

// label bounds a label value taken from the PBX.
func (c *Collector) label(s string) string { return boundLabel(s, c.cfg.Limits.LabelLength) }

// key returns s bounded and safe to keep: map keys outlive the event, and
// a decoder may hand out strings that share a frame's buffer. Only called
// when an entity is created, never per event.
func (c *Collector) key(s string) string { return strings.Clone(c.label(s)) }

// enum returns the interned value of raw, counting an overflow and the
// quirk of its spelling.
func (c *Collector) enum(e *enum, raw string) string {
	v, quirk, overflow := e.value(raw)
	if overflow {
		c.drop(EntityLabelValue)
	}
	if quirk != noQuirk {
		c.quirk(quirk)
	}
	return v
}
