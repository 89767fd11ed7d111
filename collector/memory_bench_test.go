//go:build !race

// The race detector adds its own shadow memory to every allocation: these
// measurements run without it.

package collector

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// liveHeap is the heap reachable after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// BenchmarkEntityMemory grows one kind of entity in a Collector and
// reports the live heap each one adds, maps and label strings included.
// An op builds n entities from events, as the PBX sends them.
func BenchmarkEntityMemory(b *testing.B) {
	const tn = "880000000000000001"
	hd := func(typ string) wsi.Header { return wsi.Header{EventType: typ, TenantID: tn} }
	queueID := func(i int) string { return fmt.Sprint(770000000000000000 + i) }
	queueWith := func(c *Collector) {
		c.HandleEvent(&wsi.QueueStatus{Header: hd(wsi.TypeQueueStatus), QueueID: queueID(0), QueueNumber: "8000", QueueName: "Sales"})
	}
	for _, k := range []struct {
		name  string
		n     int
		setup func(*Collector) // what the entities need, measured apart
		grow  func(c *Collector, n int)
	}{
		{"extension", 20_000, nil, func(c *Collector, n int) {
			// Snapshots of 1,000, as extension_status arrives on subscribe.
			for i := 0; i < n; i += 1000 {
				st := &wsi.ExtensionStatus{Header: hd(wsi.TypeExtensionStatus)}
				for e := i; e < i+1000 && e < n; e++ {
					st.Status = append(st.Status, wsi.ExtensionState{Extension: fmt.Sprintf("sip:%d@t1.example.com", 100000+e),
						Online: e%2 == 0, Presence: "ONLINE", CallStatus: "ON_CALL"})
				}
				c.HandleEvent(st)
			}
		}},
		{"queue", 2_000, nil, func(c *Collector, n int) {
			for i := range n {
				c.HandleEvent(&wsi.QueueStatus{Header: hd(wsi.TypeQueueStatus), QueueID: queueID(1 + i),
					QueueNumber: strconv.Itoa(10000 + i), QueueName: fmt.Sprint("Queue ", i)})
			}
		}},
		{"agent", 1_000, queueWith, func(c *Collector, n int) {
			for i := range n {
				c.HandleEvent(&wsi.QueueAgentStatus{Header: hd(wsi.TypeQueueAgentStatus), QueueID: queueID(0),
					Updated: []wsi.QueueAgent{{Extension: strconv.Itoa(100000 + i), State: "READY"}}})
			}
		}},
		{"caller", 5_000, queueWith, func(c *Collector, n int) {
			ts := time.Now().Unix()
			for i := range n {
				c.HandleEvent(&wsi.QueueCallerStatus{Header: hd(wsi.TypeQueueCallerStatus), QueueID: queueID(0),
					Callers: []wsi.QueueCaller{{SessionID: strconv.Itoa(400000000 + i), Reason: "enqueue", Timestamp: ts, Type: "normal"}}})
			}
		}},
		{"call", 20_000, nil, func(c *Collector, n int) {
			for i := range n {
				c.HandleEvent(&wsi.CallStart{Header: hd(wsi.TypeCallStart), SessionID: strconv.Itoa(500000000 + i), Direction: "in"})
			}
		}},
	} {
		b.Run(k.name, func(b *testing.B) {
			var perEntity float64
			for b.Loop() {
				c := New(Config{AgentState: true, ExtensionState: true}, nil)
				c.SessionUp(wsi.Session{})
				c.HandleEvent(&wsi.ExtensionPresence{Header: hd(wsi.TypeExtensionPresence), Extension: "sip:1@t1.example.com", Presence: "AWAY"}) // the tenant
				if k.setup != nil {
					k.setup(c)
				}
				before := liveHeap()
				k.grow(c, k.n)
				after := liveHeap()
				perEntity = float64(int64(after)-int64(before)) / float64(k.n)
				runtime.KeepAlive(c)
			}
			b.ReportMetric(perEntity, "B/"+k.name)
		})
	}
}

// residentEnv names the file a child process measuring the large PBX
// writes its findings to.
const residentEnv = "PORTSIP_RESIDENT_OUT"

type resident struct{ heap, rss, hwm, base float64 } // bytes

// largePBXResident measures, in a test process of its own so that nothing
// other tests and benchmarks allocated is counted, the large PBX (1,000
// queues of 12 agents and 5 waiting callers, 30,000 extensions, 50
// tenants) in state, scraped.
func largePBXResident(tb testing.TB) resident {
	tb.Helper()
	out := tb.TempDir() + "/resident"
	cmd := exec.Command(os.Args[0], "-test.run=^TestLargePBXResident$", "-test.count=1")
	cmd.Env = append(os.Environ(), residentEnv+"="+out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("%v\n%s", err, msg)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	var r resident
	if _, err := fmt.Sscan(string(data), &r.heap, &r.rss, &r.hwm, &r.base); err != nil {
		tb.Fatal(err)
	}
	return r
}

const mib = 1 << 20

// TestLargePBXResident holds the process that holds the large PBX and
// scrapes it under 100 MiB resident, at its peak.
func TestLargePBXResident(t *testing.T) {
	if out := os.Getenv(residentEnv); out != "" {
		measureLargePBX(t, out)
		return
	}
	if testing.Short() {
		t.Skip("builds the large PBX")
	}
	r := largePBXResident(t)
	t.Logf("large PBX after three scrapes: live heap %.1f MiB, RSS %.1f MiB, peak RSS %.1f MiB (%.1f MiB before building it)",
		r.heap/mib, r.rss/mib, r.hwm/mib, r.base/mib)
	if r.hwm > 100*mib {
		t.Errorf("peak RSS %.1f MiB, want under 100 MiB", r.hwm/mib)
	}
}

// measureLargePBX is the child's side: build, scrape, measure, write.
func measureLargePBX(t *testing.T, out string) {
	debug.FreeOSMemory()
	base := readStatus(t)

	c := New(Config{AgentState: true, ExtensionState: true}, nil)
	c.SessionUp(sessionWith())
	largePBX.load(c, time.Now())
	// Three scrapes as the exporter makes them: the peak of a running
	// exporter, whose heap also holds the garbage of the scrape before,
	// not only the first scrape's.
	for range 3 {
		if err := c.Snapshot().WriteTo(io.Discard, expfmt.NewFormat(expfmt.TypeTextPlain), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	heap := liveHeap()
	st := readStatus(t)
	runtime.KeepAlive(c)
	line := fmt.Sprintf("%d %d %d %d\n", heap, st.rss, st.hwm, base.rss)
	if err := os.WriteFile(out, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkLargePBXResident reports what TestLargePBXResident checks. An
// op is one child process.
func BenchmarkLargePBXResident(b *testing.B) {
	var r resident
	for b.Loop() {
		r = largePBXResident(b)
	}
	b.ReportMetric(r.heap/mib, "heap-MiB")
	b.ReportMetric(r.rss/mib, "rss-MiB")
	b.ReportMetric(r.hwm/mib, "peak-rss-MiB")
	b.ReportMetric(r.base/mib, "base-rss-MiB")
}

type procStatus struct{ rss, hwm uint64 }

// readStatus reads VmRSS and VmHWM (the peak) from /proc/self/status.
func readStatus(t *testing.T) procStatus {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status: ", err)
	}
	defer f.Close()
	var st procStatus
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		switch name {
		case "VmRSS":
			st.rss = kb << 10
		case "VmHWM":
			st.hwm = kb << 10
		default:
			continue
		}
		if err != nil {
			t.Fatalf("/proc/self/status: %s: %v", name, err)
		}
	}
	return st
}
