package reliability

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portsip-exporter/portsip_exporter/wsi"
	"github.com/portsip-exporter/portsip_exporter/wsi/wsitest"
)

// Label sets used throughout.
var (
	enqueued = []string{"queue", queue, "reason", "enqueue"}
	normal   = []string{"queue", queue, "kind", "normal"}
)

func TestPBXDropsSessionMidStream(t *testing.T) {
	pbx := newPBX(t)
	// The PBX drops the connection in the middle of a burst, at the 30th
	// frame the exporter applies: what is still in flight is lost with
	// it, as on a real network.
	var seen atomic.Int64
	dropAt := func(r *relay) {
		r.onEvent = func(ev wsi.Event) {
			if _, ok := ev.(*wsi.QueueCallerStatus); ok && seen.Add(1) == 130 {
				pbx.DropSessions()
			}
		}
	}
	e := startExporter(t, clientConfig(pbx.URL), dropAt)
	e.awaitUp()
	e.awaitStateShown()

	// Callers that arrive while we listen are counted, exactly.
	enqueue(pbx, queue, 100)
	e.awaitCounter(100, "portsip_queue_callers_total", enqueued...)

	const burst = 2000
	down, release := e.relay.holdNextDown()
	enqueue(pbx, queue, burst)
	<-down

	during := e.scrape()
	assertDown(t, during)
	got := during.counter("portsip_queue_callers_total", enqueued...)
	if got < 130 || got > 100+burst {
		t.Fatalf("callers counted after the drop = %v, want between the 130 applied and the %d sent", got, 100+burst)
	}
	// What the client read and what the collector counted agree: nothing
	// was lost between the two.
	if ev := during.counter("portsip_wsi_events_total", "event_type", wsi.TypeQueueCallerStatus); ev != got {
		t.Errorf("portsip_wsi_events_total{queue_caller_status} = %v, but %v callers counted", ev, got)
	}
	if v := during.counter("portsip_wsi_connection_errors_total", "stage", wsi.StageRead); v != 1 {
		t.Errorf("read errors = %v, want 1 for the dropped session", v)
	}
	var we *wsi.Error
	if err := e.relay.lastDown(); !errors.As(err, &we) || we.Stage != wsi.StageRead {
		t.Errorf("the session ended with %v, want a read error", err)
	}
	t.Logf("%v of the burst's %d frames arrived before the drop", got-100, burst)
	release()

	after := e.awaitUp()
	// The snapshot rebuilds the waiting list, including the callers whose
	// enqueue was lost in flight, and is not counted as new arrivals.
	if v := after.counter("portsip_queue_callers_total", enqueued...); v != got {
		t.Errorf("callers counted after the reconnect = %v, want %v: the snapshot was counted as activity", v, got)
	}
	if v, want := after.value(t, "portsip_queue_waiting_callers", normal...), float64(pbx.Waiting(tenantID, queue)); v != want {
		t.Errorf("waiting callers after the reconnect = %v, want the PBX's %v", v, want)
	}
	enqueue(pbx, queue, 50)
	e.awaitCounter(got+50, "portsip_queue_callers_total", enqueued...)
}

func TestPBXRestartsWithDifferentState(t *testing.T) {
	pbx := newPBX(t)
	e := startExporter(t, clientConfig(pbx.URL))
	e.awaitUp()
	enqueue(pbx, queue, 5)
	start := time.Now()
	pbx.EndCall(tenantID, wsitest.CDR{
		Call:  wsitest.Call{Direction: "inbound", Caller: "sip:5551000@pstn", Callee: "sip:101@" + domain},
		Start: start.Add(-time.Minute), Ring: start.Add(-time.Minute), Answered: start.Add(-50 * time.Second), Ended: start,
		CallStatus: "answered", EndedReason: "caller_disconnect", TrunkName: "Telia:1",
	})
	e.awaitCounter(5, "portsip_queue_callers_total", enqueued...)
	e.awaitCounter(1, "portsip_calls_total", "status", "answered")

	// The PBX goes down: dials are refused.
	pbx.Stop()
	during := e.await("portsip_up 0 after the PBX stopped", func(s scrape) bool { return s.up() == 0 })
	assertDown(t, during)
	e.await("a refused dial", func(s scrape) bool {
		return s.counter("portsip_wsi_connection_errors_total", "stage", wsi.StageDial) >= 1
	})

	// It comes back with other state: queue 8001 is gone, and its id now
	// belongs to queue 8002 with other agents and callers who have waited
	// two minutes; extension 101 is offline and 102 is online.
	pbx.RemoveQueue(tenantID, queue)
	pbx.AddQueue(tenantID, wsitest.Queue{ID: queueID, Number: "8002", Name: "Support", SLASeconds: 30})
	pbx.SetAgentState(tenantID, "8002", "102", "WRAP_UP")
	pbx.SetAgentState(tenantID, "8002", "103", "READY")
	waited := time.Now().Add(-2 * time.Minute)
	for i := range 3 {
		pbx.Enqueue(tenantID, "8002", wsitest.Caller{SessionID: fmt.Sprint(9000 + i), Number: "5552000", Since: waited})
	}
	pbx.SetExtensionOnline(tenantID, "101", false)
	pbx.SetExtensionOnline(tenantID, "102", true)
	if err := pbx.Resume(); err != nil {
		t.Fatal(err)
	}

	after := e.await("the new PBX's snapshots", func(s scrape) bool {
		_, queue := s.find("portsip_queue_info", "queue", "8002")
		_, exts := s.find("portsip_extensions_online", "tenant_id", tenantID)
		return s.up() == 1 && queue && exts
	})
	// The new snapshot wins.
	if n := after.count("portsip_queue_info"); n != 1 {
		t.Errorf("%d queues shown, want only 8002:\n%s", n, portsipLines(after.body))
	}
	for _, f := range []string{"portsip_queue_waiting_callers", "portsip_queue_agents", "portsip_queue_oldest_wait_seconds"} {
		if _, ok := after.find(f, "queue", queue); ok {
			t.Errorf("%s still shows queue %s, which the restarted PBX no longer has", f, queue)
		}
	}
	if v := after.value(t, "portsip_queue_waiting_callers", "queue", "8002", "kind", "normal"); v != 3 {
		t.Errorf("waiting callers in 8002 = %v, want 3", v)
	}
	if v := after.value(t, "portsip_queue_oldest_wait_seconds", "queue", "8002"); v < 119 {
		t.Errorf("oldest wait in 8002 = %v, want the snapshot's two minutes", v)
	}
	for state, want := range map[string]float64{"ready": 1, "wrap_up": 1, "queue_call": 0} {
		if v := after.value(t, "portsip_queue_agents", "queue", "8002", "state", state); v != want {
			t.Errorf("agents %s in 8002 = %v, want %v", state, v, want)
		}
	}
	if v := after.value(t, "portsip_extensions_online", "tenant_id", tenantID); v != 1 {
		t.Errorf("online extensions = %v, want 1 (only 102)", v)
	}
	if v, _ := after.find("portsip_extension_online", "extension", "101"); v != 0 {
		t.Errorf("extension 101 online = %v after the restart, want 0", v)
	}
	// Counters neither jump nor reset.
	if v := after.counter("portsip_queue_callers_total", enqueued...); v != 5 {
		t.Errorf("enqueues of %s = %v after the restart, want the 5 from before", queue, v)
	}
	if v := after.counter("portsip_queue_callers_total", "queue", "8002", "reason", "enqueue"); v != 0 {
		t.Errorf("enqueues of 8002 = %v, want 0: its callers came in a snapshot", v)
	}
	if v := after.counter("portsip_calls_total", "status", "answered"); v != 1 {
		t.Errorf("answered calls = %v after the restart, want the 1 from before", v)
	}

	// The reused queue id now means 8002: an answer is counted there.
	pbx.Dequeue(tenantID, "8002", "9000", wsitest.ReasonAgentAnswered)
	s := e.awaitCounter(1, "portsip_queue_callers_total", "queue", "8002", "reason", "agent_answered")
	if v := s.counter("portsip_queue_wait_seconds", "queue", "8002", "outcome", "answered"); v != 1 {
		t.Errorf("answered waits observed in 8002 = %v, want 1", v)
	}
	if v := s.counter("portsip_queue_callers_total", "queue", queue, "reason", "agent_answered"); v != 0 {
		t.Errorf("an answer in 8002 was counted under the old queue %s", queue)
	}
}

func TestPBXStopsAnsweringPings(t *testing.T) {
	pbx := newPBX(t)
	cfg := clientConfig(pbx.URL)
	cfg.PingInterval = wsi.MinPingInterval
	cfg.HandshakeTimeout = 500 * time.Millisecond
	e := startExporter(t, cfg)
	e.awaitUp()
	enqueue(pbx, queue, 10)
	e.awaitCounter(10, "portsip_queue_callers_total", enqueued...)

	// TCP stays open, but nothing comes back: no pong, no frame, no reply
	// to the auth of the attempts that follow.
	pbx.SetPingReplies(false)
	e.await("portsip_up 0 once the PBX went silent", func(s scrape) bool { return s.up() == 0 })
	during := e.await("a reconnect attempt that got no auth reply", func(s scrape) bool {
		return s.counter("portsip_wsi_connection_errors_total", "stage", wsi.StageAuth) >= 1
	})
	assertDown(t, during)
	if v := during.counter("portsip_wsi_connection_errors_total", "stage", wsi.StageRead); v != 1 {
		t.Errorf("read errors = %v, want 1: the silent session", v)
	}

	pbx.SetPingReplies(true)
	after := e.awaitUp()
	if v := after.counter("portsip_queue_callers_total", enqueued...); v != 10 {
		t.Errorf("enqueues = %v after the recovery, want 10", v)
	}
	// Every session the client gave up on was closed, not left hanging.
	eventually(t, "one session open at the PBX", func() bool { return pbx.Sessions() == 1 })
	enqueue(pbx, queue, 10)
	e.awaitCounter(20, "portsip_queue_callers_total", enqueued...)
}

// hungListener accepts TCP connections and never answers: a PBX (or a
// proxy in front of it) stuck before the WebSocket handshake.
type hungListener struct {
	ln             net.Listener
	wg             sync.WaitGroup
	accepted, shut atomic.Int64 // shut: closed by the peer
	mu             sync.Mutex
	conns          []net.Conn
}

func listenHung(t *testing.T, addr string) *hungListener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	h := &hungListener{ln: ln}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.accepted.Add(1)
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				_, _ = io.Copy(io.Discard, c) // read the request, say nothing
				h.shut.Add(1)
			}()
		}
	}()
	t.Cleanup(h.close)
	return h
}

func (h *hungListener) close() {
	h.ln.Close()
	h.mu.Lock()
	for _, c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

func TestPBXAcceptsTCPButNeverHandshakes(t *testing.T) {
	pbx := newPBX(t)
	cfg := clientConfig(pbx.URL)
	cfg.HandshakeTimeout = 500 * time.Millisecond
	e := startExporter(t, cfg)
	e.awaitUp()
	enqueue(pbx, queue, 3)
	e.awaitCounter(3, "portsip_queue_callers_total", enqueued...)

	// The PBX is replaced by something that takes connections and never
	// answers the WebSocket upgrade.
	pbx.Stop()
	hung := listenHung(t, pbx.Addr())
	during := e.await("two handshakes given up", func(s scrape) bool {
		return s.counter("portsip_wsi_connection_errors_total", "stage", wsi.StageDial) >= 2
	})
	assertDown(t, during)
	if v := during.counter("portsip_queue_callers_total", enqueued...); v != 3 {
		t.Errorf("enqueues = %v while the PBX hangs, want the 3 counted before", v)
	}
	// The client gives up on each connection and closes it: a PBX that
	// hangs for hours costs no file descriptors.
	eventually(t, "the client to close the connections it gave up on", func() bool {
		return hung.shut.Load() >= 2
	})

	hung.close()
	if err := pbx.Resume(); err != nil {
		t.Fatal(err)
	}
	after := e.awaitUp()
	if v := after.counter("portsip_queue_callers_total", enqueued...); v != 3 {
		t.Errorf("enqueues = %v after the recovery, want 3", v)
	}
	if v := after.value(t, "portsip_queue_waiting_callers", normal...); v != 4 {
		t.Errorf("waiting callers = %v, want the snapshot's 4", v)
	}
	enqueue(pbx, queue, 2)
	e.awaitCounter(5, "portsip_queue_callers_total", enqueued...)
}

func TestPBXUnreachable(t *testing.T) {
	pbx := newPBX(t)
	pbx.Stop()
	// The exporter starts while the PBX is down...
	e := startExporter(t, clientConfig(pbx.URL))
	during := e.await("three refused dials", func(s scrape) bool {
		return s.counter("portsip_wsi_connection_errors_total", "stage", wsi.StageDial) >= 3
	})
	assertDown(t, during)
	if v := during.counter("portsip_wsi_connection_attempts_total"); v < 3 {
		t.Errorf("connection attempts = %v, want every refused dial counted", v)
	}
	if err := pbx.Resume(); err != nil {
		t.Fatal(err)
	}
	e.awaitUp()
	enqueue(pbx, queue, 3)
	s := e.awaitCounter(3, "portsip_queue_callers_total", enqueued...)

	// ... and the PBX goes away again for a while.
	refused := s.counter("portsip_wsi_connection_errors_total", "stage", wsi.StageDial)
	pbx.Stop()
	during = e.await("two more refused dials", func(s scrape) bool {
		return s.counter("portsip_wsi_connection_errors_total", "stage", wsi.StageDial) >= refused+2
	})
	assertDown(t, during)
	if v := during.counter("portsip_queue_callers_total", enqueued...); v != 3 {
		t.Errorf("enqueues = %v while the PBX is unreachable, want the 3 counted before", v)
	}
	if err := pbx.Resume(); err != nil {
		t.Fatal(err)
	}
	if v := e.awaitUp().counter("portsip_queue_callers_total", enqueued...); v != 3 {
		t.Errorf("enqueues = %v after the recovery, want 3", v)
	}
	enqueue(pbx, queue, 2)
	e.awaitCounter(5, "portsip_queue_callers_total", enqueued...)
}

func TestPBXRefusesAuthThenAcceptsIt(t *testing.T) {
	pbx := newPBX(t)
	e := startExporter(t, clientConfig(pbx.URL))
	e.awaitUp()
	enqueue(pbx, queue, 3)
	e.awaitCounter(3, "portsip_queue_callers_total", enqueued...)

	// The password was changed on the PBX (or the account locked), and
	// the session dropped.
	pbx.SetAuthError(wsitest.AuthError)
	pbx.DropSessions()
	during := e.await("two refused auths", func(s scrape) bool {
		return s.counter("portsip_wsi_connection_errors_total", "stage", wsi.StageAuth) >= 2
	})
	assertDown(t, during)
	for _, topic := range globalTopics {
		if v := during.value(t, "portsip_wsi_subscription_active", "topic", topic); v != 0 {
			t.Errorf("subscription %s active = %v without a session", topic, v)
		}
	}
	if v := during.counter("portsip_queue_callers_total", enqueued...); v != 3 {
		t.Errorf("enqueues = %v while auth is refused, want the 3 counted before", v)
	}
	if strings.Contains(during.body, password) {
		t.Error("the password appears in /metrics")
	}

	pbx.SetAuthError("")
	after := e.awaitUp()
	for _, topic := range globalTopics {
		if v := after.value(t, "portsip_wsi_subscription_active", "topic", topic); v != 1 {
			t.Errorf("subscription %s active = %v, want 1", topic, v)
		}
	}
	if v := after.counter("portsip_queue_callers_total", enqueued...); v != 3 {
		t.Errorf("enqueues = %v after the recovery, want 3", v)
	}
	enqueue(pbx, queue, 2)
	e.awaitCounter(5, "portsip_queue_callers_total", enqueued...)
}

func TestPBXRejectsOneTopic(t *testing.T) {
	pbx := newPBX(t, wsi.TopicGlobalCDREvents)
	e := startExporter(t, clientConfig(pbx.URL))

	check := func(s scrape) {
		t.Helper()
		for _, topic := range globalTopics {
			want := 1.0
			if topic == wsi.TopicGlobalCDREvents {
				want = 0
			}
			if v := s.value(t, "portsip_wsi_subscription_active", "topic", topic); v != want {
				t.Errorf("subscription %s active = %v, want %v", topic, v, want)
			}
		}
	}
	check(e.awaitUp())

	// The accepted topics carry on; the refused one gets nothing. One
	// session delivers in order, so once the last enqueue is counted,
	// whatever was published before it has been handled too.
	now := time.Now()
	pbx.EndCall(tenantID, wsitest.CDR{
		Call:  wsitest.Call{Direction: "internal", Caller: "sip:101@" + domain, Callee: "sip:102@" + domain},
		Start: now, Ring: now, Ended: now, CallStatus: "noanswer", EndedReason: "cancelled",
	})
	pbx.SetPresence(tenantID, "101", "AWAY", "back soon")
	enqueue(pbx, queue, 4)
	s := e.awaitCounter(4, "portsip_queue_callers_total", enqueued...)
	if v := s.counter("portsip_wsi_events_total", "event_type", wsi.TypeExtensionPresence); v != 1 {
		t.Errorf("presence events = %v, want 1", v)
	}
	if n := s.count("portsip_calls_total"); n != 0 {
		t.Errorf("%d calls_total series from a topic the PBX refused", n)
	}
	if v := s.counter("portsip_wsi_connection_errors_total", "stage", wsi.StageSubscribe); v != 0 {
		t.Errorf("subscribe errors = %v: one refused topic is not a failed session", v)
	}
	if v := s.counter("portsip_wsi_connection_attempts_total"); v != 1 {
		t.Errorf("connection attempts = %v: the session must stay up with the other topics", v)
	}

	// The same after a reconnect.
	down, release := e.relay.holdNextDown()
	pbx.DropSessions()
	<-down
	assertDown(t, e.scrape())
	release()
	check(e.awaitUp())
}

func TestFramesFasterThanProcessed(t *testing.T) {
	pbx := newPBX(t)
	cfg := clientConfig(pbx.URL)
	cfg.PingInterval = wsi.MinPingInterval
	e := startExporter(t, cfg)
	e.awaitUp()

	// The consumer stops while the PBX bursts: frames back up in the
	// client, TCP and the PBX, whose publishers then wait.
	const burst = 9000 // under the collector's 10,000 callers per queue
	e.relay.beforeEach.shut()
	// 8 KiB frames: 70 MiB in all, more than the PBX's session queue, the
	// socket buffers (up to 32 + 4 MiB with Linux's autotuning) and the
	// client's channel hold, so the burst must outrun the consumer.
	name := strings.Repeat("n", 8<<10)
	var published atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range burst {
			pbx.Enqueue(tenantID, queue, wsitest.Caller{Number: fmt.Sprintf("556%05d", i), Name: name})
			published.Add(1)
		}
	}()
	// Stalled for longer than the two silent ping periods after which a
	// PBX is declared dead: a slow consumer must not look like one. The
	// stall is the fault itself, so it is timed; /metrics must answer
	// throughout and still show the session up.
	stall := time.After(4 * cfg.PingInterval)
	for stalled := false; !stalled; {
		select {
		case <-stall:
			stalled = true
		case <-time.After(20 * time.Millisecond):
		}
		if s := e.scrape(); s.up() != 1 {
			t.Fatalf("portsip_up = %v while the session is only slow", s.up())
		}
	}
	if n := published.Load(); n == burst {
		t.Fatalf("all %d frames were buffered during the stall: the burst did not outrun the consumer", n)
	}
	e.relay.beforeEach.open()

	e.awaitCounter(burst, "portsip_queue_callers_total", enqueued...)
	<-done
	s := e.scrape()
	if v := s.value(t, "portsip_queue_waiting_callers", normal...); v != burst+1 {
		t.Errorf("waiting callers = %v, want %v", v, burst+1)
	}
	if v := s.counter("portsip_wsi_connection_attempts_total"); v != 1 {
		t.Errorf("connection attempts = %v: the slow session was dropped", v)
	}
}

// extensionStatusFrame is an extension_status snapshot of n extensions,
// each with a presence note of noteLen bytes, in the PBX's shape.
func extensionStatusFrame(n, noteLen int) []byte {
	note := strings.Repeat("x", noteLen)
	var b strings.Builder
	fmt.Fprintf(&b, `{"event_type":"extension_status","tenant_id":%q,"status":[`, tenantID)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"extension":"sip:%d@%s","extension_id":"%d","call_status":"","online":true,"presence":"AVAILABLE","presence_note":%q,"push_online":false,"time":"1704186780"}`,
			20000+i, domain, 900000000000000000+i, note)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func TestPBXSends8MiBFrame(t *testing.T) {
	pbx := newPBX(t)
	e := startExporter(t, clientConfig(pbx.URL))
	e.awaitUp()

	// A large tenant's extension snapshot: 4,000 extensions, 8 MiB, within
	// the default frame limit (16 MiB). It must be applied, not skipped.
	const exts = 4000
	big := extensionStatusFrame(exts, 8<<20/exts-200)
	if len(big) < 8<<20-(8<<20)/50 || len(big) > 8<<20 {
		t.Fatalf("frame is %d bytes, want about 8 MiB", len(big))
	}
	pbx.PublishRaw(wsi.TopicGlobalExtensionEvents, tenantID, big)
	s := e.await("the 8 MiB snapshot applied", func(s scrape) bool {
		v, _ := s.find("portsip_extensions_online", "tenant_id", tenantID)
		return v == exts+1
	})
	if v := s.counter("portsip_wsi_invalid_messages_total", "reason", wsi.ReasonOversized); v != 0 {
		t.Errorf("oversized frames = %v: an 8 MiB frame is within the limit", v)
	}

	// Beyond the limit a frame is skipped and counted; the session lives.
	pbx.PublishRaw(wsi.TopicGlobalExtensionEvents, tenantID, extensionStatusFrame(8500, 2000))
	enqueue(pbx, queue, 1)
	s = e.awaitCounter(1, "portsip_queue_callers_total", enqueued...)
	if v := s.counter("portsip_wsi_invalid_messages_total", "reason", wsi.ReasonOversized); v != 1 {
		t.Errorf("oversized frames = %v, want 1", v)
	}
	if v := s.counter("portsip_wsi_connection_attempts_total"); v != 1 {
		t.Errorf("connection attempts = %v: a large frame ended the session", v)
	}
	if v := s.value(t, "portsip_extensions_online", "tenant_id", tenantID); v != exts+1 {
		t.Errorf("online extensions = %v after the oversized frame, want %v", v, exts+1)
	}
}

// TestStuckScrapeDoesNotBlockIngest: a scrape whose reader stops (a
// Prometheus that hangs mid-response, a stuck proxy) must not stall the
// events behind it, nor the next scrape.
func TestStuckScrapeDoesNotBlockIngest(t *testing.T) {
	pbx := newPBX(t)
	e := startExporter(t, clientConfig(pbx.URL))
	e.awaitUp()

	ch := make(chan prometheus.Metric)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		e.relay.col.Collect(ch)
	}()
	<-ch // the scrape has started and now nobody reads it
	// Unblock it at the end, also when the test fails, before the
	// exporter shuts down.
	t.Cleanup(func() {
		for {
			select {
			case <-ch:
			case <-collected:
				return
			}
		}
	})

	enqueue(pbx, queue, 10)
	e.awaitCounter(10, "portsip_queue_callers_total", enqueued...)
}

// TestPBXSendsGarbageBetweenEvents: frames that cannot be used are counted
// by reason and skipped; the events around them are counted, exactly, and
// the session stays.
func TestPBXSendsGarbageBetweenEvents(t *testing.T) {
	pbx := newPBX(t)
	e := startExporter(t, clientConfig(pbx.URL))
	e.awaitUp()

	garbage := []func(){
		func() { pbx.SendBinary([]byte{0x00, 0xff, 0x7b}) },
		func() { pbx.SendRaw([]byte(`{"event_type":"queue_caller_status","tenant_id":`)) },
		func() { pbx.SendRaw([]byte(`[1,2,3]`)) },
		func() { pbx.SendRaw([]byte(`{"event_type":42}`)) },
		func() { pbx.SendRaw([]byte(`{"tenant_id":"1"}`)) },
		func() { pbx.SendRaw([]byte(strings.Repeat("[", 100000))) },
	}
	const rounds = 20
	for range rounds {
		for _, g := range garbage {
			g()
			enqueue(pbx, queue, 1)
		}
	}
	s := e.awaitCounter(rounds*float64(len(garbage)), "portsip_queue_callers_total", enqueued...)
	rejected := 0.0
	for _, reason := range wsi.InvalidReasons {
		rejected += s.counter("portsip_wsi_invalid_messages_total", "reason", reason)
	}
	if want := float64(rounds * len(garbage)); rejected != want {
		t.Errorf("%v frames rejected, want %v:\n%s", rejected, want, portsipLines(s.body))
	}
	if v := s.counter("portsip_wsi_invalid_messages_total", "reason", wsi.ReasonBinaryFrame); v != rounds {
		t.Errorf("binary frames = %v, want %d", v, rounds)
	}
	if v := s.counter("portsip_wsi_connection_attempts_total"); v != 1 {
		t.Errorf("connection attempts = %v: garbage ended the session", v)
	}
}
