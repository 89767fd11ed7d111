package collector

import (
	"strings"
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// extension is the live state of one extension.
type extension struct {
	online   int8   // -1 unknown (seen only in call or presence events), 0, 1
	push     bool   // not registered but reachable by push (push_online)
	presence string // "" until known
	state    string // call state
}

// extension returns the extension's key and state, a new one when
// unknown; ok is false when it cannot be tracked. Callers store it back
// with store.
func (c *Collector) extension(t *tenant, raw string) (k string, x extension, ok bool) {
	k, x, ok = find(c, t.exts, extensionNumber(raw))
	if ok {
		return k, x, true
	}
	if k == "" {
		return "", x, false
	}
	if c.nExts >= c.cfg.Limits.Extensions {
		c.drop(EntityExtension)
		return "", x, false
	}
	if !c.reserve(c.extensionSeries()) {
		return "", x, false
	}
	c.nExts++
	return strings.Clone(k), extension{online: -1, state: "idle"}, true
}

// store keeps x as the state of the extension stored under k (from
// extension), with the presence and call state it now has. A presence or
// call state the PBX invented is a series of the tenant's aggregates, paid
// for at its first extension; when the budget has no room for it, the
// extension is no longer tracked rather than shown in a state it left.
func (c *Collector) store(t *tenant, k string, x extension, presence, state enumHit) {
	x.presence, x.state = presence.v, state.v
	if !c.paid(&t.extraPresence, presence) || !c.paid(&t.extraState, state) {
		c.forgetExtension(t, k)
		return
	}
	t.exts[k] = x
}

// paid reports whether the tenant's aggregates have a series for v, paying
// for it if v is an invented value new to them (in extra).
func (c *Collector) paid(extra *map[string]bool, v enumHit) bool {
	if v.known || v.v == "" || (*extra)[v.v] {
		return true
	}
	if !c.reserve(1) {
		return false
	}
	if *extra == nil {
		*extra = make(map[string]bool)
	}
	(*extra)[v.v] = true
	return true
}

// forgetExtension drops the extension stored under k, whether stored yet
// or only made by extension.
func (c *Collector) forgetExtension(t *tenant, k string) {
	delete(t.exts, k)
	c.nExts--
	c.release(c.extensionSeries())
}

func (c *Collector) extensionStatus(e *wsi.ExtensionStatus) {
	t := c.tenant(e.TenantID)
	if t == nil {
		return
	}
	t.extsLive = true
	for i := range e.Status {
		s := &e.Status[i]
		k, x, ok := c.extension(t, s.Extension)
		if !ok {
			continue
		}
		x.online = 0
		if s.Online {
			x.online = 1
		}
		// push_online means something only while not registered.
		x.push = !s.Online && s.PushOnline
		if x.push {
			c.quirk(wsi.QuirkPushOnline)
		}
		c.store(t, k, x, c.enum(c.enums.presence, s.Presence), c.enum(c.enums.callState, s.CallStatus))
	}
}

func (c *Collector) extensionCall(e *wsi.ExtensionCall) {
	t := c.tenant(e.TenantID)
	if t == nil {
		return
	}
	t.extsLive = true
	if k, x, ok := c.extension(t, e.Extension); ok {
		c.store(t, k, x, presence(x), c.enum(c.enums.callState, e.CallStatus))
	}
}

func (c *Collector) extensionPresence(e *wsi.ExtensionPresence) {
	t := c.tenant(e.TenantID)
	if t == nil {
		return
	}
	t.extsLive = true
	if k, x, ok := c.extension(t, e.Extension); ok {
		c.store(t, k, x, c.enum(c.enums.presence, e.Presence), callState(x))
	}
}

// presence and callState are an extension's values as they stand: paid
// for already.
func presence(x extension) enumHit  { return enumHit{v: x.presence, known: true} }
func callState(x extension) enumHit { return enumHit{v: x.state, known: true} }

func (c *Collector) extensionAgentStatus(e *wsi.ExtensionAgentStatus, now time.Time) {
	t := c.tenant(e.TenantID)
	if t == nil {
		return
	}
	t.extsLive = true
	ext := extensionNumber(e.Extension)
	changed := c.changedAt(received(&e.Header, now), e.Time)
	for i := range e.AgentStatus {
		s := &e.AgentStatus[i]
		if s.QueueNumber == "" {
			continue
		}
		q := c.queueByNumber(t, s.QueueNumber, "", now)
		if q == nil {
			continue
		}
		c.touch(q)
		c.setAgent(q, ext, c.agentState(s.Status), now, changed)
	}
}

// extensionManagement counts management events. An extension they name is
// known (portsip_extensions) from then on, as from any extension event,
// until extension_destroyed or the end of the session.
func (c *Collector) extensionManagement(e *wsi.ExtensionManagement) {
	t := c.tenant(e.TenantID)
	if t == nil {
		return
	}
	t.extsLive = true
	// Every type from the first event on, at 0, so rate() sees the first
	// of each other type.
	c.startMgmt(t.extMgmt, extMgmtTypes)
	c.count(t.extMgmt, c.enum(c.enums.mgmtType, e.EventType).v)
	if e.EventType == wsi.TypeExtensionDestroyed {
		if k, _, ok := find(c, t.exts, extensionNumber(e.ExtensionNumber)); ok {
			c.forgetExtension(t, k)
		}
		return
	}
	if k, x, ok := c.extension(t, e.ExtensionNumber); ok {
		c.store(t, k, x, presence(x), callState(x))
	}
}
