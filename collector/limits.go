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
var Entities = []string{EntityTenant, EntityQueue, EntityCaller, EntityAgent, EntityExtension, EntityCall, EntityTrunk,
	EntityLabelValue, EntitySeries}

// drop counts an entity a limit kept out.
func (c *Collector) drop(entity string) { c.dropped[entity]++ }

// label bounds a label value taken from the PBX. Every lookup uses it:
// it must be cheap.
func (c *Collector) label(s string) string { return boundLabel(s, c.cfg.Limits.LabelLength) }

// show is s as a label value that may leave the process: the password
// taken out (before it is cut: a cut could leave part of it), bounded.
func (c *Collector) show(s string) string {
	return boundLabel(c.cfg.Redactor.String(s), c.cfg.Limits.LabelLength)
}

// key returns s as a label value safe to keep: map keys outlive the
// event, and a decoder may hand out strings that share a frame's buffer.
// Only called when an entity is created, never per event.
func (c *Collector) key(s string) string { return strings.Clone(c.show(s)) }

// find looks raw up in m, whose keys are made by key: as sent, as its
// label, then as the label it was stored under if the password had to be
// taken out of it. The first is the common case and costs one map lookup:
// every key is a label, so a value found as sent is one already. k is the
// key it has or would have.
func find[V any](c *Collector, m map[string]V, raw string) (k string, v V, ok bool) {
	if k, v, ok = findKey(c, m, raw); ok || c.cfg.Redactor == nil {
		return k, v, ok
	}
	if shown := c.show(raw); shown != k {
		k = shown
		v, ok = m[k]
	}
	return k, v, ok
}

// findKey is find for keys that are never rendered (callers, calls): no
// password to take out.
func findKey[V any](c *Collector, m map[string]V, raw string) (k string, v V, ok bool) {
	if v, ok = m[raw]; ok {
		return raw, v, true
	}
	if k = c.label(raw); k != raw {
		v, ok = m[k]
	}
	return k, v, ok
}

// enum returns the interned value of raw, counting an overflow and the
// quirk of its spelling.
func (c *Collector) enum(e *enum, raw string) enumHit {
	h, overflow := e.lookup(raw, c.cfg.Redactor)
	if overflow {
		c.drop(EntityLabelValue)
	}
	if h.quirk != noQuirk {
		c.quirk(h.quirk)
	}
	return h
}
