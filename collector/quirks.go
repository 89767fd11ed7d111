package collector

import "github.com/portsip-exporter/portsip_exporter/wsi"

// quirk counts one compensation for a reading of the vendor's protocol
// page where it is silent or contradicts itself. The Collector is the one
// place that counts them, the decoder's (in each event's header) and its
// own, in portsip_wsi_quirks_total: the live path and a replay count the
// same.
func (c *Collector) quirk(q wsi.Quirk) { c.quirks[q]++ }

// headerQuirks counts the decoder's compensations for one event.
func (c *Collector) headerQuirks(s wsi.QuirkSet) {
	if s == 0 {
		return
	}
	for q := range s.All() {
		c.quirk(q)
	}
}

// renderQuirks renders every known quirk, 0 included, once a session has
// been up: a count that starts at 0 shows its first increase to rate().
// They are the Collector's own counts, so they are rendered without a
// client too (a replay, a test).
func (c *Collector) renderQuirks(s *samples) {
	if !c.everUp {
		return
	}
	for q, n := range c.quirks {
		s.add(mQuirks, float64(n), wsi.Quirks[q])
	}
}
