package collector

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// formats are every format a scraper may negotiate with promhttp.
var formats = []expfmt.Format{
	expfmt.NewFormat(expfmt.TypeTextPlain),
	expfmt.FmtOpenMetrics_1_0_0,
	expfmt.FmtOpenMetrics_0_0_1,
	expfmt.NewFormat(expfmt.TypeProtoDelim),
	expfmt.NewFormat(expfmt.TypeProtoText),
	expfmt.NewFormat(expfmt.TypeProtoCompact),
}

// exposed is a Collector with a bit of everything: every family, label
// values that need escaping, histograms with native buckets.
func exposed(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t)
	c := h.Collector
	c.stats = statsFunc(someStats)
	pbx{tenants: 3, queues: 7, agents: 3, callers: 2, extensions: 30}.load(c, h.clock.t)
	h.apply(
		queueStatus("9000", "q-odd", []wsi.QueueCaller{callerEv("odd-1", "", h.clock.Unix(-30))}, ag("x\"1", "READY")),
		&wsi.QueueManagement{Header: hdr(wsi.TypeQueueUpdated), QueueNumber: "9000", QueueName: "Sales \"EU\"\\\nline two é"},
		callers("q-odd", callerEv("odd-1", "agent_answered", h.clock.Unix(-2))),
	)
	// Histograms created off the whole second: their created timestamp
	// has nanoseconds.
	h.clock.Advance(1234567 * time.Nanosecond)
	for i := range 200 {
		h.apply(&wsi.CallCDR{Header: hdr(wsi.TypeCallCDR), SessionID: fmt.Sprint("cdr", i), Direction: "in",
			CallStatus: "answered", RingTime: h.clock.Unix(-900), AnsweredTime: h.clock.Unix(int64(-900 + i%40)),
			EndedTime: h.clock.Unix(int64(-900 + i%40 + i*7)), EndedReason: "caller_disconnected"})
	}
	return h
}

// others are families of other collectors, as the exporter serves them
// beside the Collector's: one sorts among the Collector's.
func others(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	info := prometheus.NewGauge(prometheus.GaugeOpts{Name: "portsip_exporter_build_info", Help: "Build.", ConstLabels: prometheus.Labels{"version": "1"}})
	info.Set(1)
	reg.MustRegister(collectors.NewGoCollector(), info)
	return reg
}

func encodeAll(t *testing.T, mfs []*dto.MetricFamily, format expfmt.Format) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.(expfmt.Closer).Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The exposition writes, in every format, what expfmt writes of what a
// registry gathers from the same Collector (and from others beside it),
// byte for byte.
func TestWriteToIsExpfmtOfTheRegistry(t *testing.T) {
	h := exposed(t)
	small := others(t)
	for _, format := range formats {
		t.Run(string(format), func(t *testing.T) {
			ref := prometheus.Gatherers{h.reg, small}
			want, err := ref.Gather()
			if err != nil {
				t.Fatal(err)
			}
			// The Go collector's values move: gather once for both.
			extra, err := small.Gather()
			if err != nil {
				t.Fatal(err)
			}
			want = merge(without(want, extra), extra)

			var got bytes.Buffer
			if err := h.Snapshot().WriteTo(&got, format, extra, nil); err != nil {
				t.Fatal(err)
			}
			if exp := encodeAll(t, want, format); !bytes.Equal(got.Bytes(), exp) {
				t.Errorf("WriteTo differs from expfmt:\n%s", firstDiff(got.Bytes(), exp))
			}
		})
	}
}

// merge merges two lists of families sorted by name.
func merge(a, b []*dto.MetricFamily) []*dto.MetricFamily {
	out := make([]*dto.MetricFamily, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0].GetName() <= b[0].GetName() {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// without returns mfs without the families named in drop.
func without(mfs, drop []*dto.MetricFamily) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	for _, mf := range mfs {
		if !slicesContainsName(drop, mf.GetName()) {
			out = append(out, mf)
		}
	}
	return out
}

func slicesContainsName(mfs []*dto.MetricFamily, name string) bool {
	for _, mf := range mfs {
		if mf.GetName() == name {
			return true
		}
	}
	return false
}

// firstDiff shows where two outputs part.
func firstDiff(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(0, bytes.LastIndexByte(got[:i], '\n')+1)
	end := func(b []byte) []byte {
		b = b[from:]
		if n := bytes.IndexByte(b[min(len(b), i-from):], '\n'); n >= 0 {
			return b[:i-from+n]
		}
		return b
	}
	return fmt.Sprintf("at byte %d of %d (want %d):\n got: %q\nwant: %q", i, len(got), len(want), end(got), end(want))
}

// A name filter keeps the families named, the Collector's and others'.
func TestWriteToKeeps(t *testing.T) {
	h := exposed(t)
	extra, err := others(t).Gather()
	if err != nil {
		t.Fatal(err)
	}
	keep := func(name string) bool {
		return name == "portsip_up" || name == "portsip_exporter_build_info" || name == "portsip_call_talk_seconds"
	}
	for _, format := range formats[:4] { // those expfmt can read back
		var b bytes.Buffer
		if err := h.Snapshot().WriteTo(&b, format, extra, keep); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, mf := range parse(t, b.Bytes(), format) {
			got = append(got, mf.GetName())
		}
		slices.Sort(got) // the text parser returns a map
		if want := "portsip_call_talk_seconds portsip_exporter_build_info portsip_up"; strings.Join(got, " ") != want {
			t.Errorf("%s: families %v, want %s", format, got, want)
		}
	}
}

// parse reads an exposition back into families.
func parse(t *testing.T, b []byte, format expfmt.Format) []*dto.MetricFamily {
	t.Helper()
	dec := expfmt.NewDecoder(bytes.NewReader(b), format)
	var out []*dto.MetricFamily
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err != nil {
			if err.Error() == "EOF" {
				return out
			}
			t.Fatalf("%s: %v", format, err)
		}
		out = append(out, &mf)
	}
}

// Two series with the same labels: the second is left out and reported,
// as a registry reports it.
func TestSnapshotLeavesOutDuplicates(t *testing.T) {
	s := newSamples(nil)
	s.add(mQueueOldest, 1, "t", "8000")
	s.add(mQueueOldest, 2, "t", "8001")
	s.add(mQueueOldest, 3, "t", "8000")
	s.add(mUp, 1)
	s.add(mUp, 1)
	sn := &Snapshot{s: s, dups: s.sort()}
	if sn.Series() != 3 || sn.Err() == nil {
		t.Errorf("%d series, error %v; want 3 and an error", sn.Series(), sn.Err())
	}
	var b bytes.Buffer
	if err := sn.WriteTo(&b, expfmt.NewFormat(expfmt.TypeTextPlain), nil, nil); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), `portsip_queue_oldest_wait_seconds{queue="8000"`); n != 1 {
		t.Errorf("queue 8000 written %d times:\n%s", n, b.String())
	}
}

// Numbers are written as expfmt writes them, in both text formats.
func TestAppendFloat(t *testing.T) {
	for _, v := range []float64{0, math.Copysign(0, -1), 1, -1, 2, 10, 999999, 1e6, 1234567, -999999, -1e6, 0.5, 1e-7, 1.5e300,
		1_700_000_000.5, 1 << 53, math.MaxFloat64, math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1), math.Inf(-1), 123456.75, 3e21} {
		for _, om := range []bool{false, true} {
			mf := &dto.MetricFamily{Name: ptr("g"), Type: dto.MetricType_GAUGE.Enum(),
				Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: &v}}}}
			var b bytes.Buffer
			var err error
			if om {
				_, err = expfmt.MetricFamilyToOpenMetrics(&b, mf)
			} else {
				_, err = expfmt.MetricFamilyToText(&b, mf)
			}
			if err != nil {
				t.Fatal(err)
			}
			_, want, _ := strings.Cut(strings.TrimSpace(b.String()), "\ng ")
			if got := string(appendFloat(nil, v, om)); got != want {
				t.Errorf("%v (OpenMetrics %v): %q, want %q", v, om, got, want)
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }

// The sort orders series as a comparison of their label values does,
// whatever the values: prefixes of each other, repeated, empty, many.
func TestSortOrdersAsRegistry(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	values := []string{"", "a", "ab", "b", "a\x00", "é", "1000", "999", "10000", "880000000000000001", "880000000000000010"}
	word := func() string {
		if r.IntN(3) == 0 {
			return fmt.Sprint(r.IntN(5000))
		}
		return values[r.IntN(len(values))]
	}
	s := newSamples(nil)
	for range 20_000 {
		// The sort keeps the ranks of a label of many values for the
		// next family: mAgentChanged's values are all mAgentState's,
		// mQueueOldest's are not.
		tenant, queue, agent := word(), word(), word()
		s.add(mAgentState, 1, tenant, queue, agent, word())
		s.add(mAgentChanged, 1, tenant, queue, agent)
		s.add(mQueueOldest, 1, word(), word())
	}
	dups := s.sort()
	total := 0
	for _, f := range []*family{mAgentState, mAgentChanged, mQueueOldest} {
		rs := &s.fams[f.idx]
		k := len(f.ids)
		total += 20_000 - len(rs.order)
		for j := 1; j < len(rs.order); j++ {
			a, b := rs.labels[int(rs.order[j-1])*k:][:k], rs.labels[int(rs.order[j])*k:][:k]
			if slices.Compare(a, b) >= 0 {
				t.Fatalf("%s: %q before %q", f.name, a, b)
			}
		}
	}
	if dups != total || dups == 0 {
		t.Errorf("%d duplicates reported, %d left out", dups, total)
	}
}
