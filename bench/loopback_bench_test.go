package bench

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/portsip-exporter/portsip_exporter/collector"
	"github.com/portsip-exporter/portsip_exporter/wsi"
	"github.com/portsip-exporter/portsip_exporter/wsi/wsitest"
)

const (
	benchTenant = "880000000000000001"
	sentinelExt = "sip:sentinel@bench.test"
)

// sentinel is a frame no simulated traffic sends. Frames on one connection
// arrive in order, so once it is handled everything sent before it (the
// snapshots that follow a subscribe) has been too, and counting can start.
var sentinel = []byte(`{"event_type":"extension_presence","extension":"` + sentinelExt +
	`","presence":"AWAY","tenant_id":"` + benchTenant + `"}`)

// counter closes done when the count reaches want.
type counter struct {
	n, want atomic.Int64
	done    chan struct{}
}

func newCounter() *counter {
	c := &counter{done: make(chan struct{})}
	c.want.Store(-1)
	return c
}

func (c *counter) add() {
	if c.n.Add(1) == c.want.Load() {
		close(c.done)
	}
}

// expect arms the counter for n more events.
func (c *counter) expect(n int) { c.want.Store(c.n.Load() + int64(n)) }

// wait waits for the events expected, or fails the benchmark.
func (c *counter) wait(b *testing.B) {
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		b.Fatalf("only %d of %d events arrived", c.n.Load(), c.want.Load())
	}
}

// sink is the exporter's Handler: the Collector, counted.
type sink struct {
	*collector.Collector
	*counter
	once  sync.Once
	ready chan struct{} // closed when the sentinel is handled
}

func (s *sink) HandleEvent(ev wsi.Event) {
	s.Collector.HandleEvent(ev)
	if p, ok := ev.(*wsi.ExtensionPresence); ok && p.Extension == sentinelExt {
		s.once.Do(func() { close(s.ready) })
	}
	s.add()
}

// tenantsOf lists the tenants the frames' events belong to.
func tenantsOf(b *testing.B, frames [][]byte) []string {
	b.Helper()
	var ids []string
	for _, f := range frames {
		ev, _, err := wsi.Decode(f)
		if err != nil {
			b.Fatal(err)
		}
		if id := ev.Head().TenantID; id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

func newPBX(b *testing.B) *wsitest.Server {
	b.Helper()
	pbx := wsitest.NewServer()
	pbx.AddTenant(wsitest.Tenant{ID: benchTenant, Name: "Bench", Domain: "bench.test"})
	pbx.AddUser(wsitest.User{Username: "admin", Password: "sys", Role: wsitest.SystemAdmin})
	return pbx
}

// send is the timed part of both loopback benchmarks: b.N frames from the
// simulated PBX, until the consumer has handled the last one.
func send(b *testing.B, pbx *wsitest.Server, frames [][]byte, c *counter) {
	c.expect(b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		pbx.SendRaw(frames[i%len(frames)])
	}
	c.wait(b)
	b.StopTimer()
}

// BenchmarkLoopback is one frame per op from the simulated PBX over a
// loopback WebSocket to applied state: wsitest server -> wsi.Client (read,
// decode, count) -> Collector. naive_map is a hand-written consumer on the
// same server and frames: gorilla's ReadMessage and json.Unmarshal into
// map[string]any, no state. Both include the simulated PBX's own cost of
// writing the frame (BenchmarkServerPublish in wsitest), and the two cores
// are shared by server, reader and consumer.
func BenchmarkLoopback(b *testing.B) {
	frames := trafficFrames(b)
	b.Run("exporter", func(b *testing.B) {
		pbx := newPBX(b)
		defer pbx.Close()
		// The traffic's tenants and the sentinel's: events of any other
		// tenant would be ignored, not handled, and never counted.
		client, err := wsi.New(wsi.Config{URL: pbx.URL, Username: "admin", Password: "sys", Tenants: append(tenantsOf(b, frames), benchTenant)})
		if err != nil {
			b.Fatal(err)
		}
		h := &sink{Collector: newCollector(), counter: newCounter(), ready: make(chan struct{})}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = client.Run(ctx, h) }()
		defer func() { cancel(); <-done }()

		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		defer wcancel()
		if err := pbx.WaitFor(wctx, func() bool { return client.Stats().Up }); err != nil {
			b.Fatal("the client never came up: ", err)
		}
		pbx.SendRaw(sentinel)
		select {
		case <-h.ready:
		case <-wctx.Done():
			b.Fatal("the sentinel frame never arrived")
		}
		send(b, pbx, frames, h.counter)
	})
	b.Run("naive_map", func(b *testing.B) {
		pbx := newPBX(b)
		defer pbx.Close()
		conn, _, err := websocket.DefaultDialer.Dial(pbx.URL, nil)
		if err != nil {
			b.Fatal(err)
		}
		// The server sends to a session from its first frame on; auth and
		// subscribe would change nothing in the timed loop.
		wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer wcancel()
		if err := pbx.WaitFor(wctx, func() bool { return pbx.Sessions() == 1 }); err != nil {
			b.Fatal(err)
		}
		c := newCounter()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				_, data, err := conn.ReadMessage()
				if err != nil {
					return
				}
				var m map[string]any
				if json.Unmarshal(data, &m) == nil {
					c.add()
				}
			}
		}()
		defer func() { conn.Close(); <-done }()
		send(b, pbx, frames, c)
	})
}
