package collector

import (
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

func benchCollector(b *testing.B, p pbx) (*Collector, *prometheus.Registry) {
	b.Helper()
	c := New(Config{AgentState: true, ExtensionState: true}, statsFunc(someStats))
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	c.SessionUp(sessionWith())
	p.load(c, time.Now())
	return c, reg
}

// benchEvents are pairs that leave the state as they found it, so the
// benchmark measures steady state, not growth.
func benchEvents() map[string][]wsi.Event {
	t := "880000000000000001"
	h := func(typ string) wsi.Header { return wsi.Header{EventType: typ, TenantID: t} }
	ts := time.Now().Unix()
	return map[string][]wsi.Event{
		"queue_caller_status": {
			&wsi.QueueCallerStatus{Header: h(wsi.TypeQueueCallerStatus), QueueID: "770000000000000001",
				Callers: []wsi.QueueCaller{{SessionID: "bench", Reason: "enqueue", Timestamp: ts, Type: "normal"}}},
			&wsi.QueueCallerStatus{Header: h(wsi.TypeQueueCallerStatus), QueueID: "770000000000000001",
				Callers: []wsi.QueueCaller{{SessionID: "bench", Reason: "agent_answered", Timestamp: ts + 7, Type: "normal"}}},
		},
		"queue_agent_status": {
			&wsi.QueueAgentStatus{Header: h(wsi.TypeQueueAgentStatus), QueueID: "770000000000000001", Updated: []wsi.QueueAgent{{Extension: "110", State: "QUEUE_CALL"}}},
			&wsi.QueueAgentStatus{Header: h(wsi.TypeQueueAgentStatus), QueueID: "770000000000000001", Updated: []wsi.QueueAgent{{Extension: "110", State: "READY"}}},
		},
		"extension_call": {
			&wsi.ExtensionCall{Header: h(wsi.TypeExtensionCall), Extension: "sip:1001@t1.example.com", CallStatus: "ON_CALL"},
			&wsi.ExtensionCall{Header: h(wsi.TypeExtensionCall), Extension: "sip:1001@t1.example.com", CallStatus: ""},
		},
		"extension_presence": {
			&wsi.ExtensionPresence{Header: h(wsi.TypeExtensionPresence), Extension: "sip:1001@t1.example.com", Presence: "AWAY"},
			&wsi.ExtensionPresence{Header: h(wsi.TypeExtensionPresence), Extension: "sip:1001@t1.example.com", Presence: "ONLINE"},
		},
		"call_start+call_cdr": {
			&wsi.CallStart{Header: h(wsi.TypeCallStart), SessionID: "bench-call", Direction: "in"},
			&wsi.CallCDR{Header: h(wsi.TypeCallCDR), SessionID: "bench-call", TenantName: "Tenant 1", Direction: "in",
				CallStatus: "answered", RingTime: ts + 1, AnsweredTime: ts + 5, EndedTime: ts + 65,
				TalkDuration: wsi.OptInt{Value: 60, Set: true}, RingDuration: wsi.OptInt{Value: 4, Set: true},
				EndedReason: "callee_disconnected", TrunkName: "122:883631675865563136"},
		},
	}
}

// BenchmarkApply is the cost of applying one event to a large PBX's state.
// Each caller and each call is a new one: the same session twice would be
// a repeat, which the Collector does not count again.
func BenchmarkApply(b *testing.B) {
	evs := benchEvents()
	var mix []wsi.Event
	for _, name := range []string{"queue_caller_status", "queue_agent_status", "extension_call", "extension_presence", "call_start+call_cdr"} {
		mix = append(mix, evs[name]...)
	}
	evs["mix"] = mix
	sessions := make([]string, 1<<16)
	for i := range sessions {
		sessions[i] = fmt.Sprint("bench-", i)
	}
	for _, name := range []string{"queue_caller_status", "queue_agent_status", "extension_call", "extension_presence", "call_start+call_cdr", "mix"} {
		b.Run(name, func(b *testing.B) {
			c, _ := benchCollector(b, pbx{tenants: 5, queues: 20, agents: 12, callers: 5, extensions: 100})
			list := evs[name]
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				ev := list[i%len(list)]
				session := sessions[(i/len(list))%len(sessions)]
				switch e := ev.(type) {
				case *wsi.QueueCallerStatus:
					e.Callers[0].SessionID = session
				case *wsi.CallStart:
					e.SessionID = session
				case *wsi.CallCDR:
					e.SessionID = session
				}
				c.HandleEvent(ev)
			}
		})
	}
}

// BenchmarkCollect is a scrape of a large PBX through a registry (the
// reference path; how the exporter scraped before BenchmarkScrape): Gather
// and text encoding. BenchmarkEncodeOnly encodes the same families already
// gathered: the cost of the output alone, the floor for the ratios.
func BenchmarkCollect(b *testing.B) {
	_, reg := benchCollector(b, largePBX)
	b.ReportAllocs()
	for b.Loop() {
		mfs, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		encode(b, mfs)
	}
}

func BenchmarkEncodeOnly(b *testing.B) {
	_, reg := benchCollector(b, largePBX)
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		n += len(mf.GetMetric())
	}
	b.ReportAllocs()
	for b.Loop() {
		encode(b, mfs)
	}
	b.ReportMetric(float64(n), "series")
}

func encode(b *testing.B, mfs []*dto.MetricFamily) {
	enc := expfmt.NewEncoder(io.Discard, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			b.Fatal(err)
		}
	}
}

// A never-resetting histogram kept by the entity: client_golang's (what
// the Collector used until queues had to merge) against hist, which the
// Collector keeps under its lock and can merge.
func BenchmarkObserve(b *testing.B) {
	b.Run("client_golang", func(b *testing.B) {
		o := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Buckets: WaitBuckets,
			NativeHistogramBucketFactor: 1.1, NativeHistogramMaxBucketNumber: nativeMaxBuckets})
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			o.Observe(float64(i % 700))
		}
	})
	b.Run("hist", func(b *testing.B) {
		h := newHist(WaitBuckets, time.Now())
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			h.observe(float64(i%700), WaitBuckets)
		}
	})
}

// Rendering 4,000 histograms (1,000 queues x 4 outcomes) at scrape.
func BenchmarkHistogramScrape(b *testing.B) {
	b.Run("client_golang", func(b *testing.B) {
		vec := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: mQueueWait.name, Help: "h", Buckets: WaitBuckets,
			NativeHistogramBucketFactor: 1.1, NativeHistogramMaxBucketNumber: nativeMaxBuckets}, mQueueWait.names)
		for q := range 1000 {
			for _, o := range outcomes {
				for v := range 50 {
					vec.WithLabelValues("t", fmt.Sprint(q), o).Observe(float64(v * q % 300))
				}
			}
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(vec)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := reg.Gather(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hist", func(b *testing.B) {
		hs := make([]hist, 4000)
		for i := range hs {
			hs[i] = newHist(WaitBuckets, time.Now())
			for v := range 50 {
				hs[i].observe(float64(v*(i/4)%300), WaitBuckets)
			}
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectorFunc(func(ch chan<- prometheus.Metric) {
			s := newSamples(nil)
			for i := range hs {
				s.addHist(mQueueWait, &hs[i], "t", fmt.Sprint(i/4), outcomes[i%4])
			}
			sn := &Snapshot{s: s, dups: s.sort()}
			for _, mf := range sn.MetricFamilies(nil) {
				for _, m := range mf.Metric {
					ch <- constMetric{mQueueWait.desc, m}
				}
			}
		}))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := reg.Gather(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

type collectorFunc func(chan<- prometheus.Metric)

func (f collectorFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }
func (f collectorFunc) Describe(chan<- *prometheus.Desc)    {}

// BenchmarkStateMemory reports the live heap the large PBX's state takes
// (one iteration is one load; run with -benchtime 1x).
func BenchmarkStateMemory(b *testing.B) {
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c, _ := benchCollector(b, largePBX)
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap := float64(after.HeapAlloc - before.HeapAlloc)
		b.ReportMetric(heap/(1<<20), "MiB")
		b.ReportMetric(heap/float64(largePBX.extensions+largePBX.queues*(1+largePBX.agents+largePBX.callers)), "B/entity")
		runtime.KeepAlive(c)
	}
}
