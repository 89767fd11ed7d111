package collector

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/portsip-exporter/portsip_exporter/internal/secret"
	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// fuzzReader turns fuzz bytes into event fields. Values come mostly from
// small pools, so entities collide, and sometimes raw from the input.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *fuzzReader) int() int64 { return int64(int8(r.byte())) * int64(r.byte()) }

var fuzzPool = []string{"", "1", "2", "8001", "sip:101@x", "Q1", "Q2", "READY", "Not Ready", "QUEUE_CALL",
	"enqueue", "agent_answered", "hangup", "overflow", "callback", "normal", "ON_CALL", "in", "ext", "answered",
	"122:1", "id:Q1", "\xff\xfe", "a b c d e f g h i j k l m n o p q r s t u v w x y z"}

func (r *fuzzReader) str() string {
	n := r.byte()
	if n < 200 {
		return fuzzPool[int(n)%len(fuzzPool)]
	}
	l := min(int(n-200), len(r.b))
	s := string(r.b[:l])
	r.b = r.b[l:]
	return s
}

func (r *fuzzReader) header() wsi.Header {
	return wsi.Header{EventType: r.str(), TenantID: r.str()}
}

func (r *fuzzReader) caller() wsi.QueueCaller {
	return wsi.QueueCaller{SessionID: r.str(), CallerNumber: r.str(), Reason: r.str(), Timestamp: r.int(), Type: r.str()}
}

func (r *fuzzReader) event() wsi.Event {
	h := r.header()
	n := int(r.byte() % 4)
	switch r.byte() % 13 {
	case 0:
		e := &wsi.QueueStatus{Header: h, QueueID: r.str(), QueueNumber: r.str(), QueueName: r.str()}
		for range n {
			e.Waiting = append(e.Waiting, r.caller())
			e.Agents = append(e.Agents, wsi.QueueAgent{Extension: r.str(), State: r.str()})
		}
		return e
	case 1:
		e := &wsi.QueueCallerStatus{Header: h, QueueID: r.str(), QueueNumber: r.str()}
		for range n {
			e.Callers = append(e.Callers, r.caller())
		}
		return e
	case 2:
		e := &wsi.QueueAgentStatus{Header: h, QueueID: r.str(), QueueNumber: r.str()}
		for range n {
			e.Updated = append(e.Updated, wsi.QueueAgent{Extension: r.str(), State: r.str()})
			e.Removed = append(e.Removed, r.str())
		}
		return e
	case 3:
		return &wsi.QueueSLABreached{Header: h, QueueID: r.str(), QueueNumber: r.str(), SLATimeSecs: r.int()}
	case 4:
		h.EventType = []string{wsi.TypeQueueCreated, wsi.TypeQueueUpdated, wsi.TypeQueueDestroy, h.EventType}[n]
		return &wsi.QueueManagement{Header: h, QueueNumber: r.str(), QueueID: r.str(), QueueName: r.str()}
	case 5:
		e := &wsi.ExtensionStatus{Header: h}
		for range n {
			e.Status = append(e.Status, wsi.ExtensionState{Extension: r.str(), Online: r.byte()%2 == 0, Presence: r.str(), CallStatus: r.str()})
		}
		return e
	case 6:
		return &wsi.ExtensionCall{Header: h, Extension: r.str(), CallStatus: r.str()}
	case 7:
		return &wsi.ExtensionPresence{Header: h, Extension: r.str(), Presence: r.str()}
	case 8:
		e := &wsi.ExtensionAgentStatus{Header: h, Extension: r.str()}
		for range n {
			e.AgentStatus = append(e.AgentStatus, wsi.AgentQueueState{QueueNumber: r.str(), Status: r.str()})
		}
		return e
	case 9:
		h.EventType = []string{wsi.TypeExtensionCreated, wsi.TypeExtensionUpdated, wsi.TypeExtensionDestroyed, h.EventType}[n]
		return &wsi.ExtensionManagement{Header: h, ExtensionNumber: r.str()}
	case 10:
		return &wsi.CallStart{Header: h, SessionID: r.str(), CDRID: r.str(), Direction: r.str()}
	case 11:
		return &wsi.CallCDR{Header: h, SessionID: r.str(), TenantName: r.str(), Direction: r.str(), CallStatus: r.str(),
			EndedReason: r.str(), TrunkName: r.str(), RingTime: r.int(), AnsweredTime: r.int(),
			EndedTime: r.int(), TalkDuration: wsi.OptInt{Value: r.int(), Set: n%2 == 0}, RingDuration: wsi.OptInt{Value: r.int(), Set: n > 1}}
	default:
		if ev, _, err := wsi.Decode([]byte(r.str())); err == nil {
			return ev
		}
		return &wsi.Unknown{Header: h}
	}
}

// fuzzPassword is a value of fuzzPool.
const fuzzPassword = "Q2"

var fuzzLimits = Limits{Tenants: 3, Queues: 4, CallersPerQueue: 3, AgentsPerQueue: 3, Extensions: 5, ActiveCalls: 4, TrunkSeries: 3, LabelLength: 16}

func FuzzApply(f *testing.F) {
	f.Add([]byte{0, 3, 1, 2, 0, 5, 6, 7, 1, 1, 2, 10, 11, 12, 1, 3, 4, 11})
	f.Add([]byte("\x00\x01\x02\x01\x05\x0b\x10\x02\x01\x01\x05\x0a\x0b\xfa{\"event_type\":\"queue_status\"}"))
	f.Add([]byte{1, 2, 2, 11, 1, 200 + 20, 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x'})
	f.Fuzz(func(t *testing.T, data []byte) {
		clk := &fakeClock{t: t0}
		// A budget that some inputs fill, and a password that is one of
		// the pool's values: it must never be rendered.
		c := New(Config{AgentState: true, ExtensionState: true, Now: clk.Now, CallExpiry: time.Hour, Limits: fuzzLimits,
			MaxSeries: ownSeries + 400, Redactor: secret.NewRedactor(fuzzPassword)}, nil)
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(c)
		c.SessionUp(wsi.Session{})
		r := &fuzzReader{b: data}
		for i := 0; len(r.b) > 0 && i < 1000; i++ {
			switch op := r.byte(); {
			case op == 0xf0:
				c.SessionDown(nil)
			case op == 0xf1:
				c.SessionUp(wsi.Session{})
			case op >= 0xe0:
				clk.Advance(time.Duration(op-0xe0) * 10 * time.Minute)
			default:
				c.HandleEvent(r.event())
			}
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatalf("gather: %v", err)
		}
		checkBounded(t, c)
		checkBudget(t, c, mfs)
		// /metrics is written from a snapshot, not through the registry:
		// whatever the events made, it must say what the registry says.
		for _, format := range formats {
			var got bytes.Buffer
			if err := c.Snapshot().WriteTo(&got, format, nil, nil); err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			if want := encodeAll(t, mfs, format); !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("%s: WriteTo differs from expfmt of the registry:\n%s", format, firstDiff(got.Bytes(), want))
			}
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if strings.Contains(l.GetValue(), fuzzPassword) {
						t.Fatalf("%s: label %s=%q holds the password", mf.GetName(), l.GetName(), l.GetValue())
					}
				}
			}
		}
	})
}

// checkBounded asserts the state is within the limits and the entity
// counts agree with what is stored.
func checkBounded(t *testing.T, c *Collector) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.cfg.Limits
	var queues, exts, calls, trunks int
	if len(c.tenants) > l.Tenants {
		t.Errorf("%d tenants > %d", len(c.tenants), l.Tenants)
	}
	for _, tn := range c.tenants {
		queues += len(tn.queues)
		exts += len(tn.exts)
		calls += len(tn.calls)
		trunks += len(tn.trunks)
		if len(tn.byID) > len(tn.queues) {
			t.Errorf("%d queue ids for %d queues", len(tn.byID), len(tn.queues))
		}
		for id, q := range tn.byID {
			if tn.queues[q.label] != q || q.id != id {
				t.Errorf("queue id %q maps to an untracked queue %q (id %q)", id, q.label, q.id)
			}
		}
		for _, q := range tn.queues {
			if len(q.waiting) > l.CallersPerQueue || len(q.agents) > l.AgentsPerQueue {
				t.Errorf("queue %q: %d callers, %d agents", q.label, len(q.waiting), len(q.agents))
			}
			if len(q.callers) > maxEnumValues+1 || len(q.seconds) > maxEnumValues+1 {
				t.Errorf("queue %q: %d reasons, %d states", q.label, len(q.callers), len(q.seconds))
			}
			// Events between sessions may build state; SessionUp drops it.
			if !q.live && (len(q.waiting) > 0 || len(q.agents) > 0) {
				t.Errorf("queue %q keeps live state while not live", q.label)
			}
		}
	}
	waiting := 0
	for _, tn := range c.tenants {
		for _, q := range tn.queues {
			waiting += len(q.waiting)
		}
	}
	if waiting != c.nWaiting || waiting > l.ActiveCalls {
		t.Errorf("%d callers waiting, %d counted, limit %d", waiting, c.nWaiting, l.ActiveCalls)
	}
	if queues != c.nQueues || queues > l.Queues {
		t.Errorf("%d queues stored, %d counted, limit %d", queues, c.nQueues, l.Queues)
	}
	if exts != c.nExts || exts > l.Extensions {
		t.Errorf("%d extensions stored, %d counted, limit %d", exts, c.nExts, l.Extensions)
	}
	if calls != c.nCalls || calls > l.ActiveCalls {
		t.Errorf("%d calls stored, %d counted, limit %d", calls, c.nCalls, l.ActiveCalls)
	}
	if trunks != c.nTrunks || trunks > l.TrunkSeries {
		t.Errorf("%d trunk series stored, %d counted, limit %d", trunks, c.nTrunks, l.TrunkSeries)
	}
}

// checkBudget asserts that what the Collector rendered fits what it paid
// for, that this fits the budget, and that what it paid for is what its
// state holds: a series paid for and never given back would shrink the
// budget for good.
func checkBudget(t *testing.T, c *Collector, mfs []*dto.MetricFamily) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	rendered := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				rendered += len(h.GetBucket()) + 4
			} else {
				rendered++
			}
		}
	}
	if rendered > c.series || c.series > c.cfg.MaxSeries {
		t.Errorf("%d series rendered, %d paid for, budget %d", rendered, c.series, c.cfg.MaxSeries)
	}
	want := ownSeries
	for _, tn := range c.tenants {
		want += tenantSeries + len(tn.extraPresence) + len(tn.extraState) + len(tn.exts)*c.extensionSeries() +
			len(tn.endReasons) + len(tn.trunks) + len(tn.queueMgmt) + len(tn.extMgmt)
		if tn.callsTotal != nil {
			want += callSeries + len(tn.callsTotal) - len(directions)*len(callStatuses) +
				(len(tn.talk)-len(directions))*histSeries(TalkBuckets) + (len(tn.ring)-len(directions))*histSeries(RingBuckets)
		}
		for _, q := range tn.queues {
			if cost := c.queueCost(q); q.cost != cost {
				t.Errorf("queue %q paid for %d series, holds %d", q.label, q.cost, cost)
			}
			want += q.cost
		}
	}
	if c.series != want {
		t.Errorf("%d series paid for, the state holds %d", c.series, want)
	}
}
