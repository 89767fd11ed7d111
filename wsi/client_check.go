package wsi

import (
	"context"
	"time"
)

// CheckResult is what one Check attempt saw.
type CheckResult struct {
	Topics map[string]TopicResult // by topic subscribed
	// Other counts events whose type belongs to no subscribed topic
	// (unknown event types included).
	Other map[string]int
}

// TopicResult is one topic's subscription outcome in a Check.
type TopicResult struct {
	Accepted bool
	Replied  bool           // false: the PBX sent no reply (assumed accepted)
	Error    string         // the PBX's error text when refused
	Events   map[string]int // event types received on the topic within the listen window
}

// Check makes one attempt (no reconnect): connects, authenticates,
// subscribes, then listens for the given duration. A failure is an *Error
// whose Stage says where it failed. When every subscription was refused
// the result is returned too, with each topic's refusal.
func (c *Client) Check(ctx context.Context, listen time.Duration) (*CheckResult, error) {
	s, err := c.open(ctx)
	if err != nil {
		if s != nil {
			return c.checkResult(s, nil), err
		}
		return nil, err
	}
	defer s.close()
	rec := &recorder{events: map[string]int{}}
	stop := time.NewTimer(listen)
	defer stop.Stop()
	err = s.serve(ctx, rec, stop.C)
	return c.checkResult(s, rec.events), err
}

func (c *Client) checkResult(s *session, events map[string]int) *CheckResult {
	res := &CheckResult{Topics: map[string]TopicResult{}, Other: map[string]int{}}
	for _, sub := range s.subs {
		if sub.removed {
			continue
		}
		r := res.Topics[sub.topic]
		r.Accepted = r.Accepted || (sub.decided && sub.ok)
		r.Replied = r.Replied || sub.replied
		if sub.err != "" {
			if r.Error != "" {
				r.Error += "; "
			}
			r.Error += sub.err
		}
		if r.Events == nil {
			r.Events = map[string]int{}
		}
		res.Topics[sub.topic] = r
	}
	for typ, n := range events {
		if r, ok := res.Topics[c.topicOf(typ)]; ok {
			r.Events[typ] += n
		} else {
			res.Other[typ] += n
		}
	}
	return res
}

// topicOf is the topic, in this client's mode, that carries an event type.
func (c *Client) topicOf(eventType string) string {
	tenant, global := "", ""
	switch eventType {
	case TypeQueueStatus, TypeQueueCallerStatus, TypeQueueAgentStatus, TypeQueueSLABreached:
		tenant, global = TopicQueueEvents, TopicGlobalQueueEvents
	case TypeQueueCreated, TypeQueueUpdated, TypeQueueDestroy:
		tenant, global = TopicQueueManagementEvents, TopicGlobalQueueManagement
	case TypeExtensionStatus, TypeExtensionCall, TypeExtensionPresence, TypeExtensionAgentStatus:
		tenant, global = TopicExtensionEvents, TopicGlobalExtensionEvents
	case TypeExtensionCreated, TypeExtensionUpdated, TypeExtensionDestroyed:
		global = TopicGlobalExtensionManagement
	case TypeCallStart, TypeCallUpdateInfo, TypeCallCDR,
		TypeCDRTargetAdd, TypeCDRTargetRinging, TypeCDRTargetAnswer,
		TypeCDRTargetNoAnswer, TypeCDRTargetFail, TypeCDRTargetEnd:
		tenant, global = TopicCDREvents, TopicGlobalCDREvents
	}
	if c.global {
		return global
	}
	return tenant
}

// recorder is the Handler of a Check: it counts event types.
type recorder struct{ events map[string]int }

func (r *recorder) SessionUp(Session) {}
func (r *recorder) SessionDown(error) {}
func (r *recorder) HandleEvent(ev Event) {
	r.events[ev.Head().EventType]++
}
