package wsi

import (
	"context"
	"errors"
	"strings"
	"time"
)

// CheckResult is what one Check attempt saw.
type CheckResult struct {
	Topics map[string]TopicResult // by topic subscribed
	Other  map[string]int         // events of a type no subscribed topic carries, unknown ones included
	// Tenants counts the events applied per tenant: each configured one
	// (global mode), or the logged-in one. None may mean a mistyped id.
	Tenants map[string]int
}

// TopicResult is one topic's subscription outcome in a Check.
type TopicResult struct {
	Accepted bool
	Replied  bool           // false: the PBX sent no reply (assumed accepted)
	Error    string         // the PBX's error text when refused
	Events   map[string]int // event types received on the topic within the listen window
}

// Check makes one attempt (no reconnect): connects, authenticates,
// subscribes, then listens for the given duration, handing what it reads
// to h too when h is not nil. A failure is an *Error; once the attempt got
// as far as subscribing, the result comes too, with each topic's outcome.
func (c *Client) Check(ctx context.Context, listen time.Duration, h Handler) (*CheckResult, error) {
	if h == nil {
		h = nopHandler{}
	}
	ch := &checkHandler{Handler: h, types: map[string]int{}, tenants: zeroed[int](c.cfg.Tenants)}
	s, _, err := c.attempt(ctx, ch, max(listen, 1), nil)
	if errors.Is(err, errStopped) {
		err = nil
	}
	if s == nil || len(s.subs) == 0 {
		return nil, err
	}
	res := &CheckResult{Topics: map[string]TopicResult{}, Other: map[string]int{}, Tenants: ch.tenants}
	for _, sub := range s.subs {
		r := res.Topics[sub.topic]
		r.Accepted = r.Accepted || (sub.decided && sub.ok)
		r.Replied = r.Replied || sub.replied
		if sub.err != "" {
			r.Error = strings.TrimPrefix(r.Error+"; "+sub.err, "; ")
		}
		if r.Events == nil {
			r.Events = map[string]int{}
		}
		res.Topics[sub.topic] = r
	}
	for typ, n := range ch.types {
		// The topic that carries the type, in this client's mode.
		topic := eventTopics[lookup([]byte(typ))]
		if topic != "" && c.global {
			topic = "global_" + topic
		}
		if r, ok := res.Topics[topic]; ok {
			r.Events[typ] += n
		} else {
			res.Other[typ] += n
		}
	}
	return res, err
}

// maxCheckTypes bounds the event types a Check tells apart: a PBX's
// further inventions count as TypeOther.
const maxCheckTypes = 64

// checkHandler counts event types and tenants, and passes everything on.
type checkHandler struct {
	Handler
	types, tenants map[string]int
}

func (r *checkHandler) HandleEvent(ev Event) {
	typ := clip(ev.Head().EventType, 64)
	if _, seen := r.types[typ]; !seen && len(r.types) >= maxCheckTypes {
		typ = TypeOther
	}
	r.types[typ]++
	r.tenants[ev.Head().TenantID]++
	r.Handler.HandleEvent(ev)
}

type nopHandler struct{}

func (nopHandler) SessionUp(Session) {}
func (nopHandler) HandleEvent(Event) {}
func (nopHandler) SessionDown(error) {}
