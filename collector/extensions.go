package collector

import (
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

// extension returns the extension's number and state, a new one when
// unknown; ok is false when it cannot be tracked. Callers store it back.
func (c *Collector) extension(t *tenant, raw string) (n string, x extension, ok bool) {
	n = c.label(extensionNumber(raw))
	if x, ok := t.exts[n]; ok {
		return n, x, true
	}
	if n == "" {
		return "", x, false
	}
	if c.nExts >= c.cfg.Limits.Extensions {
		c.drop(EntityExtension)
		return "", x, false
	}
	c.nExts++
	return c.key(n), extension{online: -1, state: "idle"}, true
}

func (c *Collector) extensionStatus(e *wsi.ExtensionStatus) {
	t := c.tenant(e.TenantID)
	if t == nil {
		return
	}
	t.extsLive = true
	for i := range e.Status {
		s := &e.Status[i]
		n, x, ok := c.extension(t, s.Extension)
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
		x.presence = c.enum(c.enums.presence, s.Presence)
		x.state = c.enum(c.enums.callState, s.CallStatus)
		t.exts[n] = x
	}
}

func (c *Collector) extensionCall(e *wsi.ExtensionCall) {
	t := c.tenant(e.TenantID)
	if t == nil {
		return
	}
	t.extsLive = true
	if n, x, ok := c.extension(t, e.Extension); ok {
		x.state = c.enum(c.enums.callState, e.CallStatus)
		t.exts[n] = x
	}
}

func (c *Collector) extensionPresence(e *wsi.ExtensionPresence) {
	t := c.tenant(e.TenantID)
	if t == nil {
		return
	}
	t.extsLive = true
	if n, x, ok := c.extension(t, e.Extension); ok {
		x.presence = c.enum(c.enums.presence, e.Presence)
		t.exts[n] = x
	}
}

func (c *Collector) extensionAgentStatus(e *wsi.ExtensionAgentStatus, now time.Time) {
	t := c.tenant(e.TenantID)
	if t == nil {
		return
	}
	t.extsLive = true
	ext := c.agentExt(e.Extension)
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

func (c *Collector) extensionManagement(e *wsi.ExtensionManagement) {
	t := c.tenant(e.TenantID)
	if t == nil {
		return
	}
	t.extsLive = true
	if len(t.extMgmt) == 0 {
		// Every type from the first event on, at 0, so rate() sees the
		// first of each other type.
		for _, typ := range extMgmtTypes {
			t.extMgmt[typ] = 0
		}
	}
	t.extMgmt[c.enum(c.enums.mgmtType, e.EventType)]++
	if e.EventType == wsi.TypeExtensionDestroyed {
		n := c.label(extensionNumber(e.ExtensionNumber))
		if _, ok := t.exts[n]; ok {
			delete(t.exts, n)
			c.nExts--
		}
		return
	}
	if n, x, ok := c.extension(t, e.ExtensionNumber); ok {
		t.exts[n] = x
	}
}
