package wsi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/portsip-exporter/portsip_exporter/internal/e2e"
)

// A PBX written by someone else from the vendor's page alone: wsitest's
// choices (a reply to every command, in order, before the snapshots) are
// not the protocol. Each test scripts what this server does on a
// connection; the client must authenticate, subscribe and keep going
// whatever the script does where the page is silent.

const foreignTenant = "1"

// globalTopics are what a system administrator subscribes, in order.
var globalTopics = []string{TopicGlobalQueueEvents, TopicGlobalQueueManagement, TopicGlobalExtensionEvents, TopicGlobalExtensionManagement, TopicGlobalCDREvents}

type foreignConn struct {
	t        *testing.T
	conn     *websocket.Conn
	password string // the auth command must carry
}

// cmd reads the next command; ok is false once the connection is gone.
func (c *foreignConn) cmd() (cmd map[string]any, ok bool) {
	for {
		typ, data, err := c.conn.ReadMessage()
		if err != nil {
			return nil, false
		}
		if typ != websocket.TextMessage {
			continue
		}
		if err := json.Unmarshal(data, &cmd); err != nil {
			c.t.Errorf("the client sent a command that is not JSON: %q", data)
			return nil, false
		}
		return cmd, true
	}
}

// topic is the one topic a subscribe command names (the client sends one
// per command).
func (c *foreignConn) topic(cmd map[string]any) string {
	topics, _ := cmd["topics"].([]any)
	if cmd["command"] != "subscribe" || len(topics) != 1 {
		c.t.Errorf("want a subscribe naming one topic, got %v", cmd)
		return ""
	}
	s, _ := topics[0].(string)
	return s
}

func (c *foreignConn) send(frame string) bool {
	return c.conn.WriteMessage(websocket.TextMessage, []byte(frame)) == nil
}

// auth reads the auth command and accepts it with reply.
func (c *foreignConn) auth(reply string) bool {
	cmd, ok := c.cmd()
	if !ok {
		return false
	}
	if cmd["command"] != "auth" || cmd["password"] != c.password {
		c.t.Errorf("want the auth command first, got %v", cmd)
	}
	return c.send(reply)
}

// subscribes reads the n subscribe commands and returns their topics.
func (c *foreignConn) subscribes(n int) ([]string, bool) {
	var topics []string
	for range n {
		cmd, ok := c.cmd()
		if !ok {
			return topics, false
		}
		topics = append(topics, c.topic(cmd))
	}
	return topics, true
}

// wait reads until the client goes away, answering nothing.
func (c *foreignConn) wait() {
	for {
		if _, _, err := c.conn.ReadMessage(); err != nil {
			return
		}
	}
}

// startForeignPBX serves script on every connection and returns the URL.
// Everything it started ends at the test's cleanup.
func startForeignPBX(t *testing.T, script func(c *foreignConn)) string {
	t.Helper()
	var (
		mu    sync.Mutex
		conns []*websocket.Conn
		wg    sync.WaitGroup
	)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		mu.Lock()
		conns = append(conns, conn)
		wg.Add(1)
		mu.Unlock()
		defer wg.Done()
		defer conn.Close()
		script(&foreignConn{t: t, conn: conn, password: password})
	}))
	t.Cleanup(func() {
		srv.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/wsi"
}

// foreignConfig is a system administrator's Config for tenant "1".
func foreignConfig(url string) Config {
	cfg := testConfig(url, nil)
	cfg.Username, cfg.Domain, cfg.Tenants = "admin", "", []string{foreignTenant}
	cfg.SubscribeTimeout = time.Hour // only the PBX's frames may end the wait
	return cfg
}

func queueCreated(number, tenant string) string {
	return `{"event_type":"queue_created","queue_number":"` + number + `","tenant_id":"` + tenant + `"}`
}

// The reply to subscribe is undocumented. Whatever a PBX does with it,
// the refused topic and only that one must show as inactive.
func TestForeignPBXSubscribeReplies(t *testing.T) {
	refused := TopicGlobalCDREvents
	want := map[string]bool{}
	for _, topic := range globalTopics {
		want[topic] = topic != refused
	}
	for _, tc := range []struct {
		name string
		// replies answers the subscribe commands, read by the test in
		// the order sent; the event after them proves the session works.
		replies func(c *foreignConn) bool
		timeout time.Duration
	}{
		{"replies in reverse order, naming the topic", func(c *foreignConn) bool {
			topics, ok := c.subscribes(len(globalTopics))
			for _, topic := range slices.Backward(topics) {
				status, errText := 0, ""
				if topic == refused {
					status, errText = -1, "permission denied"
				}
				ok = ok && c.send(fmt.Sprintf(`{"command":"subscribe","topics":[%q],"status":%d,"error":%q}`, topic, status, errText))
			}
			return ok
		}, 0},
		{"replies to refusals only, naming the topic in the text", func(c *foreignConn) bool {
			_, ok := c.subscribes(len(globalTopics))
			return ok && c.send(`{"command":"subscribe","status":-1,"error":"no right to subscribe `+refused+`"}`)
		}, 300 * time.Millisecond},
		{"snapshot before each reply, replies in order", func(c *foreignConn) bool {
			for _, topic := range globalTopics {
				cmd, ok := c.cmd()
				if !ok || c.topic(cmd) != topic {
					return false
				}
				reply := `{"status":0,"command":"subscribe","extra":{"a":[1]}}`
				if topic == refused {
					reply = `{"command":"subscribe","error":"forbidden"}`
				} else if !c.send(queueCreated("8001", foreignTenant)) {
					return false
				}
				if !c.send(reply) {
					return false
				}
			}
			return true
		}, 0},
		{"one reply naming every topic", func(c *foreignConn) bool {
			var accepted []string
			for _, topic := range globalTopics {
				if topic != refused {
					accepted = append(accepted, `"`+topic+`"`)
				}
			}
			_, ok := c.subscribes(len(globalTopics))
			return ok && c.send(`{"command":"subscribe","status":0,"topics":[`+strings.Join(accepted, ",")+`]}`) &&
				c.send(`{"command":"subscribe","status":-1,"topics":"`+refused+`","error":"denied"}`)
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := startForeignPBX(t, func(c *foreignConn) {
				if c.auth(`{"status":"0","command":"auth"}`) && tc.replies(c) && c.send(queueCreated("8002", foreignTenant)) {
					c.wait()
				}
			})
			cfg := foreignConfig(url)
			if tc.timeout > 0 {
				cfg.SubscribeTimeout = tc.timeout
			}
			c := newClient(t, cfg)
			h := &handler{}
			run(t, c, h)
			waitFor(t, "the event after the replies", func() bool {
				return h.sawEvent(func(ev Event) bool { qm, ok := ev.(*QueueManagement); return ok && qm.QueueNumber == "8002" })
			})
			waitFor(t, "only "+refused+" inactive", func() bool { return mapsEqual(c.Stats().Subscriptions, want) })
			if ups, downs, _ := h.counts(); ups != 1 || downs != 0 {
				t.Errorf("SessionUp %d, SessionDown %d; want one session that stays up", ups, downs)
			}
		})
	}
}

// The framing is undocumented too: a byte order mark, and several objects
// in one frame, must not lose the auth reply, a subscribe reply or events.
func TestForeignPBXFraming(t *testing.T) {
	url := startForeignPBX(t, func(c *foreignConn) {
		if !c.auth("\xef\xbb\xbf" + `{"command":"auth","id":"1","status":0}`) {
			return
		}
		for i, topic := range globalTopics {
			cmd, ok := c.cmd()
			if !ok || c.topic(cmd) != topic {
				return
			}
			if !c.send(`{"command":"subscribe","status":0}` + "\n" + queueCreated(fmt.Sprint(8000+i), foreignTenant) + "\n") {
				return
			}
		}
		if c.send(queueCreated("9001", foreignTenant) + queueCreated("9002", foreignTenant)) {
			c.wait()
		}
	})
	c := newClient(t, foreignConfig(url))
	h := &handler{}
	run(t, c, h)
	waitFor(t, "every event", func() bool { _, _, n := h.counts(); return n == len(globalTopics)+2 })
	st := c.Stats()
	for reason, n := range st.InvalidMessages {
		if n != 0 {
			t.Errorf("%d frames counted as %s", n, reason)
		}
	}
	for topic, ok := range st.Subscriptions {
		if !ok {
			t.Errorf("%s inactive, want every topic accepted by its reply", topic)
		}
	}
	if st.Events[TypeQueueCreated] != uint64(len(globalTopics)+2) {
		t.Errorf("counted %d queue_created, want %d", st.Events[TypeQueueCreated], len(globalTopics)+2)
	}
}

// A PBX may refuse by closing the session with a reason instead of a
// reply; the reason is what the operator needs to read.
func TestForeignPBXCloseFrames(t *testing.T) {
	closeWith := func(c *foreignConn, code int, text string) {
		_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
		c.wait()
	}

	t.Run("instead of the auth reply", func(t *testing.T) {
		url := startForeignPBX(t, func(c *foreignConn) {
			if _, ok := c.cmd(); ok {
				closeWith(c, 4003, "license expired")
			}
		})
		_, err := newClient(t, foreignConfig(url)).Check(t.Context(), time.Second, nil)
		var e *Error
		if !errors.As(err, &e) || e.Stage != StageAuth || e.PBXError != "license expired" {
			t.Fatalf("Check: %#v, want an auth *Error with the close reason as the PBX's text", err)
		}
	})

	t.Run("ending a session", func(t *testing.T) {
		var conns atomic.Int32
		url := startForeignPBX(t, func(c *foreignConn) {
			conns.Add(1)
			if !c.auth(`{"command":"auth","status":0}`) {
				return
			}
			for range globalTopics {
				if _, ok := c.cmd(); !ok || !c.send(`{"command":"subscribe","status":0}`) {
					return
				}
			}
			if conns.Load() == 1 {
				closeWith(c, websocket.CloseGoingAway, "restarting")
				return
			}
			c.wait()
		})
		c := newClient(t, foreignConfig(url))
		h := &handler{}
		run(t, c, h)
		waitFor(t, "the second session", func() bool { ups, _, _ := h.counts(); return ups == 2 })
		h.mu.Lock()
		down := h.downs[0]
		h.mu.Unlock()
		var e *Error
		if !errors.As(down, &e) || e.Stage != StageRead || !strings.Contains(down.Error(), "restarting") {
			t.Errorf("SessionDown(%v), want a read *Error with the close reason", down)
		}
	})
}

// A PBX that never answers a ping but keeps sending frames is alive; one
// that then goes quiet is dead within two ping periods.
//
// The period is long beside the frame gap on purpose: with 50 ms (a 100 ms
// deadline) a loaded machine under the race detector stalled the whole
// process for longer than that now and then, and a read whose deadline
// passed during a stall times out even with frames waiting in the socket;
// with 300 ms, a machine shared by eight builds did too.
func TestForeignPBXNeverAnswersPings(t *testing.T) {
	const period = 500 * time.Millisecond
	var pings atomic.Int32
	quiet := make(chan struct{})
	url := startForeignPBX(t, func(c *foreignConn) {
		c.conn.SetPingHandler(func(string) error { pings.Add(1); return nil })
		if !c.auth(`{"command":"auth","status":0}`) {
			return
		}
		for range globalTopics {
			if _, ok := c.cmd(); !ok || !c.send(`{"command":"subscribe","status":0}`) {
				return
			}
		}
		read := make(chan struct{})
		go func() { defer close(read); c.wait() }() // pings are seen while reading
		defer func() { <-read }()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-quiet:
				return
			case <-read:
				return
			case <-tick.C:
				if !c.send(queueCreated("8001", foreignTenant)) {
					return
				}
			}
		}
	})
	cfg := foreignConfig(url)
	cfg.PingInterval = period
	c := newClient(t, cfg)
	h := &handler{}
	run(t, c, h)
	waitFor(t, "the session up", func() bool { return c.Stats().Up })
	waitFor(t, "four unanswered pings", func() bool { return pings.Load() >= 4 })
	if _, downs, _ := h.counts(); downs != 0 {
		t.Fatalf("a PBX sending frames was declared dead for not answering pings: %v", h.downs)
	}
	close(quiet)
	silent := time.Now()
	waitFor(t, "the silent session noticed", func() bool { _, downs, _ := h.counts(); return downs == 1 })
	if took := time.Since(silent); took > 2*period+2*time.Second {
		t.Errorf("silence noticed after %v, want about two ping periods (%v)", took, 2*period)
	}
}

// A PBX that ignores the tenants of a global subscription: the events of
// the other tenants, and those naming none, are counted as ignored, not
// handed on, so exporters sharded by tenant do not report a tenant twice.
func TestForeignPBXOtherTenants(t *testing.T) {
	url := startForeignPBX(t, func(c *foreignConn) {
		if !c.auth(`{"command":"auth","status":0}`) {
			return
		}
		for range globalTopics {
			if _, ok := c.cmd(); !ok || !c.send(`{"command":"subscribe","status":0}`) {
				return
			}
		}
		if c.send(queueCreated("8001", "2")) && c.send(`{"event_type":"queue_created","queue_number":"8002"}`) && c.send(queueCreated("8003", foreignTenant)) {
			c.wait()
		}
	})
	c := newClient(t, foreignConfig(url))
	h := &handler{}
	run(t, c, h)
	waitFor(t, "the last event", func() bool {
		return h.sawEvent(func(ev Event) bool { qm, ok := ev.(*QueueManagement); return ok && qm.QueueNumber == "8003" })
	})
	h.mu.Lock()
	var got []string
	for _, ev := range h.events {
		got = append(got, ev.(*QueueManagement).QueueNumber)
	}
	h.mu.Unlock()
	if !slices.Equal(got, []string{"8003"}) {
		t.Errorf("delivered queues %v, want 8003 (tenant 1) alone, not 8001 (tenant 2) or 8002 (no tenant_id)", got)
	}
	want := map[string]uint64{IgnoredOtherTenant: 1, IgnoredNoTenant: 1}
	if st := c.Stats(); !mapsEqual(st.Ignored, want) || st.Events[TypeQueueCreated] != 1 {
		t.Errorf("ignored %v, queue_created counted %d; want %v and 1", st.Ignored, st.Events[TypeQueueCreated], want)
	}
}

// Cancelling Run ends it promptly whatever the session is doing, with
// every goroutine gone (goleak checks at the end of the package).
func TestClientCancelIsPromptInEveryState(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup returns the Config and the condition that says the
		// client is in the state.
		setup func(t *testing.T) (Config, func(c *Client) bool)
	}{
		{"TLS handshake", func(t *testing.T) (Config, func(*Client) bool) {
			addr, accepted := e2e.SilentListener(t)
			cfg := foreignConfig("wss://" + addr + "/wsi")
			cfg.HandshakeTimeout = time.Hour
			return cfg, func(*Client) bool { return accepted() == 1 }
		}},
		{"auth wait", func(t *testing.T) (Config, func(*Client) bool) {
			var authed atomic.Bool
			url := startForeignPBX(t, func(c *foreignConn) {
				if _, ok := c.cmd(); ok {
					authed.Store(true)
					c.wait()
				}
			})
			cfg := foreignConfig(url)
			cfg.HandshakeTimeout = time.Hour
			return cfg, func(*Client) bool { return authed.Load() }
		}},
		{"subscribe wait", func(t *testing.T) (Config, func(*Client) bool) {
			var subscribed atomic.Bool
			url := startForeignPBX(t, func(c *foreignConn) {
				if c.auth(`{"command":"auth","status":0}`) {
					if _, ok := c.subscribes(len(globalTopics)); ok {
						subscribed.Store(true)
						c.wait()
					}
				}
			})
			return foreignConfig(url), func(*Client) bool { return subscribed.Load() }
		}},
		{"back-off sleep", func(t *testing.T) (Config, func(*Client) bool) {
			addr, _ := e2e.SilentListener(t)
			cfg := foreignConfig("ws://" + addr + "/wsi")
			cfg.HandshakeTimeout = 50 * time.Millisecond
			cfg.BackoffInitial, cfg.BackoffMax = time.Hour, time.Hour
			return cfg, func(c *Client) bool { return c.Stats().ConnectionErrors[StageDial] == 1 }
		}},
		{"reading", func(t *testing.T) (Config, func(*Client) bool) {
			url := startForeignPBX(t, func(c *foreignConn) {
				if c.auth(`{"command":"auth","status":0}`) {
					for range globalTopics {
						if _, ok := c.cmd(); !ok || !c.send(`{"command":"subscribe","status":0}`) {
							return
						}
					}
					c.wait()
				}
			})
			return foreignConfig(url), func(c *Client) bool { return c.Stats().Up }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, inState := tc.setup(t)
			c := newClient(t, cfg)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx, &handler{}) }()
			waitFor(t, tc.name, func() bool { return inState(c) })
			start := time.Now()
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
			if took := time.Since(start); took > 500*time.Millisecond {
				t.Errorf("Run took %v to return after cancel", took)
			}
			if st := c.Stats(); st.Up {
				t.Error("still up after Run returned")
			}
		})
	}
}

// A PBX that answered one subscribe and then streams large events without
// answering the rest: the client holds the events for SessionUp, but only
// up to a byte bound; past it the session comes up with them.
func TestForeignPBXLargeEventsWhileSubscribing(t *testing.T) {
	pad := strings.Repeat("x", 100<<10)
	url := startForeignPBX(t, func(c *foreignConn) {
		if !c.auth(`{"command":"auth","status":0}`) {
			return
		}
		if _, ok := c.subscribes(len(globalTopics)); !ok || !c.send(`{"command":"subscribe","status":0}`) {
			return
		}
		for i := range 3 {
			if !c.send(`{"event_type":"queue_created","queue_number":"` + fmt.Sprint(8000+i) + `","tenant_id":"1","pad":"` + pad + `"}`) {
				return
			}
		}
		c.wait()
	})
	c := newClient(t, foreignConfig(url)) // SubscribeTimeout: an hour
	c.maxEarlyBytes = 200 << 10
	h := &handler{}
	run(t, c, h)
	waitFor(t, "the session up with the held events", func() bool { _, _, n := h.counts(); return n == 3 })
	h.mu.Lock()
	calls := slices.Clone(h.calls)
	h.mu.Unlock()
	if !slices.Equal(calls, []string{"up", TypeQueueCreated, TypeQueueCreated, TypeQueueCreated}) {
		t.Errorf("calls %v, want SessionUp then the three events", calls)
	}
}

// In tenant mode the logged-in tenant is the tenant_id of the first event
// naming one, for the Client's life: another tenant's events (a PBX that
// leaks them) are ignored, not applied and not learnt from, even when a
// later session starts with them.
func TestForeignPBXLeaksOtherTenantsInTenantMode(t *testing.T) {
	var conns atomic.Int32
	var mu sync.Mutex
	var learnt []string
	url := startForeignPBX(t, func(c *foreignConn) {
		first := conns.Add(1) == 1
		if !c.auth(`{"command":"auth","status":0}`) {
			return
		}
		if _, ok := c.subscribes(2); !ok { // queue management and CDRs, unanswered
			return
		}
		if first {
			c.send(queueCreated("8001", "A"))
			c.send(queueCreated("8002", "B"))
			c.send(`{"event_type":"call_start","call_id":"1"}`)
		} else {
			c.send(queueCreated("8003", "B"))
			c.send(queueCreated("8004", "A"))
		}
		for cmd, ok := c.cmd(); ok; cmd, ok = c.cmd() {
			q, _ := cmd["queues"].([]any)
			mu.Lock()
			learnt = append(learnt, fmt.Sprint(q...))
			mu.Unlock()
			if first {
				return // drop the session once it learnt its queue
			}
		}
	})
	c := newClient(t, testConfig(url, nil))
	h := &handler{}
	run(t, c, h)
	// The queue is subscribed before its event reaches the Handler and is
	// counted: wait for both.
	waitFor(t, "queue 8004 learnt", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(learnt, "8004") && c.Stats().Events[TypeQueueCreated] >= 2
	})
	mu.Lock()
	got := slices.Clone(learnt)
	mu.Unlock()
	if !slices.Equal(got, []string{"8001", "8004"}) {
		t.Errorf("subscribed queues %v, want 8001 and 8004 of tenant A only", got)
	}
	want := map[string]uint64{IgnoredOtherTenant: 2, IgnoredNoTenant: 1}
	if st := c.Stats(); !mapsEqual(st.Ignored, want) || st.Events[TypeQueueCreated] != 2 {
		t.Errorf("ignored %v and %d queue_created applied; want %v and 2", st.Ignored, st.Events[TypeQueueCreated], want)
	}
}
