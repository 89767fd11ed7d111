package wsi

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portsip-exporter/portsip_exporter/internal/e2e"
	"github.com/portsip-exporter/portsip_exporter/wsi/wsitest"
)

const (
	tenantID = "700000000000000001"
	domain   = "acme.test"
	password = "hunter2-Sekr1t" // must never appear in an error or a log line
)

// newPBX is a simulated PBX with one tenant, two queues, two extensions
// and a user of each role.
func newPBX(t *testing.T, tls bool, users ...wsitest.User) *wsitest.Server {
	t.Helper()
	s := wsitest.NewUnstartedServer()
	s.AddTenant(wsitest.Tenant{ID: tenantID, Name: "Acme", Domain: domain})
	s.AddQueue(tenantID, wsitest.Queue{Number: "8001", Name: "Sales", SLASeconds: 20})
	s.AddQueue(tenantID, wsitest.Queue{Number: "8002", Name: "Support", SLASeconds: 30})
	s.AddExtension(tenantID, "101")
	s.AddExtension(tenantID, "102")
	s.AddUser(wsitest.User{Username: "admin", Password: password, Role: wsitest.SystemAdmin})
	s.AddUser(wsitest.User{Username: "boss", Password: password, Role: wsitest.TenantAdmin, TenantID: tenantID})
	s.AddUser(wsitest.User{Username: "agent", ExtensionNumber: "101", Password: password, Role: wsitest.ExtensionUser, TenantID: tenantID, Queues: []string{"8001"}})
	for _, u := range users {
		s.AddUser(u)
	}
	if tls {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

// logBuffer collects every log line, at debug level, for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) count(substr string) int { return strings.Count(b.String(), substr) }

// testConfig is a tenant admin's Config with timings short enough for
// tests and a logger writing to logs.
func testConfig(url string, logs *logBuffer) Config {
	cfg := Config{
		URL:              url,
		Username:         "boss",
		Password:         password,
		Domain:           domain,
		PingInterval:     5 * time.Second,
		HandshakeTimeout: 2 * time.Second,
		SubscribeTimeout: 2 * time.Second,
		BackoffInitial:   10 * time.Millisecond,
		BackoffMax:       40 * time.Millisecond,
		// Login refusals wait a minute and more in earnest; tests that
		// look at that replace the sleep.
		LoginBackoffInitial: 10 * time.Millisecond,
		LoginBackoffMax:     40 * time.Millisecond,
	}
	if logs != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg
}

// recorder keeps every Handler call, in order.
type handler struct {
	mu     sync.Mutex
	calls  []string // "up", "down", or the event type
	ups    []Session
	downs  []error
	events []Event
	// block, when set, is waited on by HandleEvent: a slow consumer.
	block chan struct{}
}

func (h *handler) SessionUp(s Session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, "up")
	h.ups = append(h.ups, s)
}

func (h *handler) HandleEvent(ev Event) {
	if h.block != nil {
		<-h.block
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, ev.Head().EventType)
	h.events = append(h.events, ev)
}

func (h *handler) SessionDown(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, "down")
	h.downs = append(h.downs, err)
}

func (h *handler) counts() (ups, downs, events int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ups), len(h.downs), len(h.events)
}

func (h *handler) lastUp() Session {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ups[len(h.ups)-1]
}

func (h *handler) sawEvent(match func(Event) bool) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.ContainsFunc(h.events, match)
}

// waitFor polls cond until it holds, failing the test after a deadline
// generous enough for a loaded machine.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// run starts c.Run and returns a stop function (also run at cleanup) that
// cancels it and fails the test unless Run returns nil promptly.
func run(t *testing.T, c *Client, h Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v after cancel, want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func subscriptionsOf(s *wsitest.Server) map[string]wsitest.Subscription {
	m := map[string]wsitest.Subscription{}
	for _, sub := range s.Subscriptions() {
		m[sub.Topic] = sub
	}
	return m
}

// Each documented auth form, and the subscriptions of its mode.
func TestClientAuthFormsAndSubscriptions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(*Config)
		want   map[string]wsitest.Subscription // topic -> filters (Topic, Username ignored)
		topics map[string]bool                 // Stats.Subscriptions once settled
	}{
		{
			name: "system admin: global topics with tenants",
			edit: func(c *Config) { c.Username, c.Domain, c.Tenants = "admin", "", []string{tenantID} },
			want: map[string]wsitest.Subscription{
				TopicGlobalQueueEvents:         {Tenants: []string{tenantID}},
				TopicGlobalQueueManagement:     {Tenants: []string{tenantID}},
				TopicGlobalExtensionEvents:     {Tenants: []string{tenantID}},
				TopicGlobalExtensionManagement: {Tenants: []string{tenantID}},
				TopicGlobalCDREvents:           {Tenants: []string{tenantID}},
			},
			topics: map[string]bool{
				TopicGlobalQueueEvents: true, TopicGlobalQueueManagement: true, TopicGlobalExtensionEvents: true,
				TopicGlobalExtensionManagement: true, TopicGlobalCDREvents: true,
			},
		},
		{
			name: "tenant admin by username: queues learnt",
			edit: func(c *Config) {},
			want: map[string]wsitest.Subscription{
				TopicQueueManagementEvents: {},
				TopicCDREvents:             {},
				TopicQueueEvents:           {Queues: []string{"8001", "8002"}},
			},
			topics: map[string]bool{TopicQueueManagementEvents: true, TopicCDREvents: true, TopicQueueEvents: true},
		},
		{
			name: "tenant admin with given queues and extensions",
			edit: func(c *Config) { c.Queues, c.Extensions = []string{"8002"}, []string{"101", "102"} },
			want: map[string]wsitest.Subscription{
				TopicQueueManagementEvents: {},
				TopicCDREvents:             {},
				TopicQueueEvents:           {Queues: []string{"8002"}},
				TopicExtensionEvents:       {Extensions: []string{"101", "102"}},
			},
			topics: map[string]bool{TopicQueueManagementEvents: true, TopicCDREvents: true, TopicQueueEvents: true, TopicExtensionEvents: true},
		},
		{
			// An agent may not subscribe the management and CDR topics:
			// those two are refused, the rest works.
			name: "extension user by extension number",
			edit: func(c *Config) {
				c.Username, c.ExtensionNumber = "", "101"
				c.Queues, c.Extensions = []string{"8001"}, []string{"101"}
			},
			want: map[string]wsitest.Subscription{
				TopicQueueEvents:     {Queues: []string{"8001"}},
				TopicExtensionEvents: {Extensions: []string{"101"}},
			},
			topics: map[string]bool{TopicQueueManagementEvents: false, TopicCDREvents: false, TopicQueueEvents: true, TopicExtensionEvents: true},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pbx := newPBX(t, false)
			cfg := testConfig(pbx.URL, nil)
			tc.edit(&cfg)
			c := newClient(t, cfg)
			h := &handler{}
			run(t, c, h)
			waitFor(t, "the expected subscriptions", func() bool {
				got := subscriptionsOf(pbx)
				if len(got) != len(tc.want) {
					return false
				}
				for topic, w := range tc.want {
					g, ok := got[topic]
					if !ok || !slices.Equal(g.Tenants, w.Tenants) || !slices.Equal(g.Queues, w.Queues) || !slices.Equal(g.Extensions, w.Extensions) {
						return false
					}
				}
				return true
			})
			waitFor(t, "Stats.Subscriptions to settle", func() bool {
				st := c.Stats()
				return st.Up && mapsEqual(st.Subscriptions, tc.topics)
			})
			if got := pbx.AuthAttempts(); got != 1 {
				t.Errorf("auth attempts = %d, want 1", got)
			}
			if ups, downs, _ := h.counts(); ups != 1 || downs != 0 {
				t.Errorf("SessionUp %d times, SessionDown %d times; want 1 and 0", ups, downs)
			}
			if st := c.Stats(); st.ConnectionAttempts != 1 {
				t.Errorf("connection attempts = %d, want 1", st.ConnectionAttempts)
			}
		})
	}
}

func mapsEqual[V comparable](a, b map[string]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Without configured queues the client follows the PBX's queue list:
// queues created after the session is up are subscribed, destroyed ones
// unsubscribed.
func TestClientLearnsQueuesAsTheyAppear(t *testing.T) {
	pbx := newPBX(t, false)
	c := newClient(t, testConfig(pbx.URL, nil))
	h := &handler{}
	run(t, c, h)
	queues := func() []string { return subscriptionsOf(pbx)[TopicQueueEvents].Queues }
	waitFor(t, "the snapshot's queues subscribed", func() bool { return slices.Equal(queues(), []string{"8001", "8002"}) })

	pbx.AddQueue(tenantID, wsitest.Queue{Number: "8003", Name: "Billing"})
	waitFor(t, "the new queue subscribed", func() bool { return slices.Equal(queues(), []string{"8001", "8002", "8003"}) })
	// Its snapshot arrives as on any subscribe.
	waitFor(t, "the new queue's queue_status", func() bool {
		return h.sawEvent(func(ev Event) bool { qs, ok := ev.(*QueueStatus); return ok && qs.QueueNumber == "8003" })
	})

	pbx.RemoveQueue(tenantID, "8001")
	waitFor(t, "the destroyed queue unsubscribed", func() bool { return slices.Equal(queues(), []string{"8002", "8003"}) })
	if st := c.Stats(); !st.Subscriptions[TopicQueueEvents] {
		t.Errorf("queue_events inactive in Stats with two queues subscribed: %v", st.Subscriptions)
	}
	if ups, _, _ := h.counts(); ups != 1 {
		t.Errorf("SessionUp %d times, want 1", ups)
	}
}

// The order a Handler sees: SessionUp, then the snapshots.
func TestClientDeliversSnapshotsAfterSessionUp(t *testing.T) {
	pbx := newPBX(t, false)
	c := newClient(t, testConfig(pbx.URL, nil))
	h := &handler{}
	run(t, c, h)
	waitFor(t, "both queue snapshots", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return slices.Contains(h.calls, TypeQueueStatus) && strings.Count(strings.Join(h.calls, " "), TypeQueueStatus) == 2
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.calls[0] != "up" {
		t.Fatalf("first Handler call = %q, want up (calls: %v)", h.calls[0], h.calls)
	}
	for _, ev := range h.events {
		if ev.Head().Received.IsZero() {
			t.Fatalf("%s delivered without Received", ev.Head().EventType)
		}
	}
	st := c.Stats()
	if st.Events[TypeQueueCreated] < 2 || st.Events[TypeQueueStatus] < 2 || st.LastEvent.IsZero() {
		t.Fatalf("events not counted: %v, last %v", st.Events, st.LastEvent)
	}
}

func TestClientAuthRefused(t *testing.T) {
	pbx := newPBX(t, false)
	var logs logBuffer
	cfg := testConfig(pbx.URL, &logs)
	cfg.Username = "nobody"

	_, err := newClient(t, cfg).Check(context.Background(), time.Second, nil)
	var e *Error
	if !errors.As(err, &e) || e.Stage != StageAuth || e.PBXError != wsitest.AuthError {
		t.Fatalf("Check: %v, want an auth *Error carrying the PBX's text %q", err, wsitest.AuthError)
	}
	if !strings.Contains(err.Error(), wsitest.AuthError) {
		t.Errorf("error %q does not say what the PBX said", err)
	}

	c := newClient(t, cfg)
	h := &handler{}
	stop := run(t, c, h)
	waitFor(t, "five failed attempts", func() bool { return c.Stats().ConnectionErrors[StageAuth] >= 5 })
	stop()
	st := c.Stats()
	if st.Up || st.ConnectionErrors[StageDial] != 0 {
		t.Errorf("stats after refused auth: %+v", st)
	}
	if ups, downs, _ := h.counts(); ups != 0 || downs != 0 {
		t.Errorf("SessionUp %d, SessionDown %d for a session never up", ups, downs)
	}
	// Every refusal is an error line: each brings an account lock closer.
	refusals := logs.count(`level=ERROR msg="the PBX refused the login; run portsip_exporter check with the same settings to see why" pbx_error="` + wsitest.AuthError + `"`)
	if refusals < 4 || uint64(refusals) > st.ConnectionErrors[StageAuth] || logs.count("level=WARN") != 0 {
		t.Errorf("%d refusals logged at error for %d refused attempts, want one each:\n%s", refusals, st.ConnectionErrors[StageAuth], logs.String())
	}
	for what, s := range map[string]string{"error": err.Error(), "log": logs.String()} {
		if strings.Contains(s, password) {
			t.Fatalf("the password appears in the %s: %s", what, s)
		}
	}
}

// A PBX that refuses auth for a while (maintenance, a password being
// rotated) is retried with back-off until it accepts.
func TestClientAuthRefusedThenAccepted(t *testing.T) {
	pbx := newPBX(t, false)
	pbx.SetAuthError("license expired")
	var logs logBuffer
	c := newClient(t, testConfig(pbx.URL, &logs))
	h := &handler{}
	run(t, c, h)
	waitFor(t, "three refused attempts", func() bool { return pbx.AuthAttempts() >= 3 })
	if ups, _, _ := h.counts(); ups != 0 {
		t.Fatal("session up while auth is refused")
	}
	pbx.SetAuthError("")
	waitFor(t, "the session up", func() bool { return c.Stats().Up })
	st := c.Stats()
	if st.ConnectionErrors[StageAuth] < 2 || st.ConnectionAttempts != st.ConnectionErrors[StageAuth]+1 {
		t.Errorf("attempts %d with %d auth errors, want one more attempt than errors", st.ConnectionAttempts, st.ConnectionErrors[StageAuth])
	}
	if got := uint64(pbx.Connections()); got != st.ConnectionAttempts {
		t.Errorf("PBX saw %d connections, client counted %d attempts", got, st.ConnectionAttempts)
	}
	if strings.Contains(logs.String(), "refused=") {
		t.Errorf("the connected line lists refused topics where there are none:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "license expired") || logs.count(`msg="connected to the PBX"`) != 1 {
		t.Errorf("state changes not logged once each:\n%s", logs.String())
	}
}

func TestClientSubscribeOutcomes(t *testing.T) {
	t.Run("one topic refused, the rest work", func(t *testing.T) {
		pbx := newPBX(t, false, wsitest.User{Username: "nocdr", Password: password, Role: wsitest.TenantAdmin, TenantID: tenantID, Denied: []string{TopicCDREvents}})
		var logs logBuffer
		cfg := testConfig(pbx.URL, &logs)
		cfg.Username = "nocdr"
		c := newClient(t, cfg)
		h := &handler{}
		run(t, c, h)
		want := map[string]bool{TopicQueueManagementEvents: true, TopicCDREvents: false, TopicQueueEvents: true}
		waitFor(t, "cdr_events inactive, the others active", func() bool { return mapsEqual(c.Stats().Subscriptions, want) })
		if !strings.Contains(logs.String(), "permission denied: cdr_events") || !strings.Contains(logs.String(), "refused=[cdr_events]") {
			t.Errorf("the PBX's refusal is not logged:\n%s", logs.String())
		}
		if up := h.lastUp(); up.Topics[TopicCDREvents] {
			t.Errorf("SessionUp reports cdr_events accepted: %v", up.Topics)
		}
	})

	t.Run("refused after the session is up", func(t *testing.T) {
		// queue_events is subscribed per learnt queue once the session is
		// up, optimistically; the refusal that follows must flip it.
		pbx := newPBX(t, false, wsitest.User{Username: "noqueue", Password: password, Role: wsitest.TenantAdmin, TenantID: tenantID, Denied: []string{TopicQueueEvents}})
		cfg := testConfig(pbx.URL, nil)
		cfg.Username = "noqueue"
		c := newClient(t, cfg)
		run(t, c, &handler{})
		want := map[string]bool{TopicQueueManagementEvents: true, TopicCDREvents: true, TopicQueueEvents: false}
		waitFor(t, "queue_events inactive", func() bool { st := c.Stats(); return st.Up && mapsEqual(st.Subscriptions, want) })
	})

	t.Run("no reply: accepted once events flow", func(t *testing.T) {
		pbx := newPBX(t, false)
		pbx.SetSubscribeReplies(false)
		cfg := testConfig(pbx.URL, nil)
		cfg.SubscribeTimeout = time.Hour // only the first event can end the wait
		c := newClient(t, cfg)
		h := &handler{}
		run(t, c, h)
		waitFor(t, "the session up", func() bool { ups, _, _ := h.counts(); return ups == 1 })
		waitFor(t, "the learnt queues subscribed", func() bool {
			return slices.Equal(subscriptionsOf(pbx)[TopicQueueEvents].Queues, []string{"8001", "8002"})
		})
		if up := h.lastUp(); !up.Topics[TopicQueueManagementEvents] || !up.Topics[TopicCDREvents] {
			t.Errorf("unanswered subscriptions not assumed accepted: %v", up.Topics)
		}
	})

	t.Run("no reply and no event: accepted after the timeout", func(t *testing.T) {
		pbx := newPBX(t, false)
		pbx.SetSubscribeReplies(false)
		pbx.AddTenant(wsitest.Tenant{ID: "42", Name: "Empty", Domain: "empty.test"})
		cfg := testConfig(pbx.URL, nil)
		cfg.Username, cfg.Domain, cfg.Tenants = "admin", "", []string{"42"}
		cfg.SubscribeTimeout = 300 * time.Millisecond
		c := newClient(t, cfg)
		res, err := c.Check(context.Background(), 10*time.Millisecond, nil)
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		for topic, r := range res.Topics {
			if !r.Accepted || r.Replied {
				t.Errorf("%s: %+v, want accepted without a reply", topic, r)
			}
		}
		if len(res.Topics) != 5 {
			t.Errorf("Check saw %d topics, want the 5 global ones: %v", len(res.Topics), res.Topics)
		}
	})

	t.Run("every topic refused", func(t *testing.T) {
		pbx := newPBX(t, false, wsitest.User{Username: "nothing", Password: password, Role: wsitest.TenantAdmin, TenantID: tenantID,
			Denied: []string{TopicQueueManagementEvents, TopicCDREvents, TopicQueueEvents}})
		cfg := testConfig(pbx.URL, nil)
		cfg.Username, cfg.Queues = "nothing", []string{"8001"}
		c := newClient(t, cfg)
		res, err := c.Check(context.Background(), time.Second, nil)
		var e *Error
		if !errors.As(err, &e) || e.Stage != StageSubscribe || !strings.Contains(e.PBXError, "permission denied") {
			t.Fatalf("Check: %v, want a subscribe *Error with the PBX's text", err)
		}
		if res == nil || res.Topics[TopicCDREvents].Error != "permission denied: cdr_events" || !res.Topics[TopicCDREvents].Replied {
			t.Fatalf("Check result does not carry each refusal: %+v", res)
		}

		h := &handler{}
		run(t, c, h)
		waitFor(t, "three refused sessions", func() bool { return c.Stats().ConnectionErrors[StageSubscribe] >= 4 })
		if ups, _, _ := h.counts(); ups != 0 {
			t.Error("SessionUp for a session with no accepted topic")
		}
	})
}

func TestClientReconnectsAndResubscribesAfterDrop(t *testing.T) {
	pbx := newPBX(t, false)
	var logs logBuffer
	c := newClient(t, testConfig(pbx.URL, &logs))
	h := &handler{}
	run(t, c, h)
	full := func() bool {
		return slices.Equal(subscriptionsOf(pbx)[TopicQueueEvents].Queues, []string{"8001", "8002"})
	}
	waitFor(t, "the first session", full)

	pbx.DropSessions()
	waitFor(t, "the second session", func() bool { ups, _, _ := h.counts(); return ups == 2 })
	waitFor(t, "resubscribed", full)

	h.mu.Lock()
	down := h.downs[0]
	calls := slices.Clone(h.calls)
	h.mu.Unlock()
	var e *Error
	if !errors.As(down, &e) || e.Stage != StageRead {
		t.Errorf("SessionDown(%v), want a read *Error", down)
	}
	if i := slices.Index(calls, "down"); i < 0 || slices.Index(calls[i:], "up") < 0 {
		t.Errorf("calls %v: want down before the second up", calls)
	}
	st := c.Stats()
	if !st.Up || st.ConnectionErrors[StageRead] != 1 || st.ConnectionAttempts != 2 {
		t.Errorf("stats: up %v, read errors %d, attempts %d; want true, 1, 2", st.Up, st.ConnectionErrors[StageRead], st.ConnectionAttempts)
	}
	if logs.count(`level=WARN msg="connection to the PBX lost"`) != 1 || logs.count(`msg="connected to the PBX"`) != 2 {
		t.Errorf("log does not show one loss and two connects:\n%s", logs.String())
	}
}

// The PBX goes silent with TCP open: no pongs, no frames. The client must
// notice within two ping periods, and come back when the PBX does.
func TestClientDetectsDeadPeer(t *testing.T) {
	pbx := newPBX(t, false)
	cfg := testConfig(pbx.URL, nil)
	cfg.PingInterval = 100 * time.Millisecond
	cfg.HandshakeTimeout = 200 * time.Millisecond
	c := newClient(t, cfg)
	h := &handler{}
	run(t, c, h)
	waitFor(t, "the session up", func() bool { return c.Stats().Up })
	waitFor(t, "a ping answered", func() bool { return pbx.Pings() >= 2 })

	pbx.SetPingReplies(false)
	silent := time.Now()
	// At least once: a stall of this goroutine may let the reconnected
	// session die too before it looks.
	waitFor(t, "the dead session noticed", func() bool { _, downs, _ := h.counts(); return downs >= 1 })
	took := time.Since(silent)
	if took > 2*cfg.PingInterval+2*time.Second {
		t.Errorf("dead peer noticed after %v, want within about two ping periods (%v)", took, 2*cfg.PingInterval)
	}
	h.mu.Lock()
	err := h.downs[0]
	h.mu.Unlock()
	if e := (*Error)(nil); !errors.As(err, &e) || e.Stage != StageRead || !strings.Contains(err.Error(), "ping periods") {
		t.Errorf("SessionDown(%v), want a read *Error naming the silence", err)
	}

	pbx.SetPingReplies(true)
	waitFor(t, "the session back", func() bool { ups, _, _ := h.counts(); return ups >= 2 && c.Stats().Up })
}

// A Handler slower than the PBX: every event arrives, in order, and the
// wait is not mistaken for a dead PBX.
func TestClientSlowHandlerIsBackPressureNotLoss(t *testing.T) {
	pbx := newPBX(t, false)
	cfg := testConfig(pbx.URL, nil)
	cfg.PingInterval = 50 * time.Millisecond
	cfg.Extensions = []string{"101"}
	c := newClient(t, cfg)
	h := &handler{}
	run(t, c, h)
	waitFor(t, "the session up", func() bool { return c.Stats().Up })
	waitFor(t, "the snapshots", func() bool {
		return c.Stats().Events[TypeQueueStatus] == 2 && c.Stats().Events[TypeExtensionStatus] == 1
	})

	// Held for several dead-peer periods while the frames pile up: the
	// pinger goes on, the pongs wait in the socket.
	const n = 2000
	before := floodBlockedHandler(t, pbx, h, n, 6)
	close(h.block)
	waitFor(t, "every event", func() bool { _, _, events := h.counts(); return events-before == n })

	h.mu.Lock()
	defer h.mu.Unlock()
	for i, ev := range h.events[before:] {
		if p, ok := ev.(*ExtensionPresence); !ok || p.Presence != fmt.Sprint("AWAY_", i) {
			t.Fatalf("event %d = %#v, want presence AWAY_%d", i, ev, i)
		}
	}
	if len(h.downs) != 0 {
		t.Fatalf("session ended under a slow handler: %v", h.downs)
	}
	if got := c.Stats().Events[TypeExtensionPresence]; got != n {
		t.Fatalf("counted %d presence events, want %d", got, n)
	}
}

// Frames the client cannot use are counted and skipped; the session goes
// on and later events still arrive.
func TestClientSkipsBadFrames(t *testing.T) {
	big := bigEvent(8 << 20)
	for _, tc := range []struct {
		name     string
		limit    int64
		bigValid bool
	}{
		{"small limit", 1 << 10, false},
		{"default limit", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pbx := newPBX(t, false)
			cfg := testConfig(pbx.URL, nil)
			cfg.MaxMessageSize = tc.limit
			c := newClient(t, cfg)
			h := &handler{}
			run(t, c, h)
			waitFor(t, "the session up", func() bool { return c.Stats().Up })

			pbx.SendRaw(big)
			pbx.SendBinary([]byte(`{"event_type":"extension_call"}`))
			pbx.SendRaw([]byte(`{"event_type": "extension_call", "tenant_id":`))
			pbx.SendRaw([]byte(`{"event_type":"extension_call","extension":"sip:999@acme.test","call_status":"RINGING","tenant_id":"` + tenantID + `"}`))
			waitFor(t, "the event after the bad frames", func() bool {
				return h.sawEvent(func(ev Event) bool { ec, ok := ev.(*ExtensionCall); return ok && ec.Extension == "sip:999@acme.test" })
			})

			st := c.Stats()
			wantOversized := uint64(1)
			if tc.bigValid {
				wantOversized = 0
			}
			if st.InvalidMessages[ReasonOversized] != wantOversized || st.InvalidMessages[ReasonBinaryFrame] != 1 || st.InvalidMessages[ReasonMalformedJSON] != 1 {
				t.Errorf("invalid messages %v, want oversized %d, binary 1, malformed 1", st.InvalidMessages, wantOversized)
			}
			if got := h.sawEvent(func(ev Event) bool { ec, ok := ev.(*ExtensionCall); return ok && ec.Extension == "sip:big@acme.test" }); got != tc.bigValid {
				t.Errorf("8 MiB event delivered: %v, want %v", got, tc.bigValid)
			}
			if _, downs, _ := h.counts(); downs != 0 || pbx.Connections() != 1 || !st.Up {
				t.Errorf("bad frames ended the session (downs %d, connections %d)", downs, pbx.Connections())
			}
		})
	}
}

// bigEvent is a valid extension_call padded to size bytes.
func bigEvent(size int) []byte {
	head := `{"event_type":"extension_call","extension":"sip:big@acme.test","call_status":"","tenant_id":"` + tenantID + `","padding":"`
	tail := `"}`
	return []byte(head + strings.Repeat("x", size-len(head)-len(tail)) + tail)
}

// recordSleeps replaces c's sleep by one that records each delay and
// barely waits.
func recordSleeps(c *Client) (delays func() []time.Duration) {
	var mu sync.Mutex
	var ds []time.Duration
	c.sleep = func(ctx context.Context, d time.Duration) bool {
		mu.Lock()
		ds = append(ds, d)
		mu.Unlock()
		return sleepCtx(ctx, time.Millisecond)
	}
	return func() []time.Duration { mu.Lock(); defer mu.Unlock(); return slices.Clone(ds) }
}

// Back-off without waiting: the client's sleep is replaced by one that
// records each delay.
func TestClientBackoffGrowsAndResetsAfterHealthySession(t *testing.T) {
	pbx := newPBX(t, false)
	pbx.Stop()
	cfg := testConfig(pbx.URL, nil)
	cfg.BackoffInitial, cfg.BackoffMax = 100*time.Millisecond, 800*time.Millisecond
	cfg.HealthyAfter = 50 * time.Millisecond
	c := newClient(t, cfg)
	recorded := recordSleeps(c)
	h := &handler{}
	run(t, c, h)

	waitFor(t, "six failed attempts", func() bool { return len(recorded()) >= 6 })
	if err := pbx.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the session up", func() bool { return c.Stats().Up })
	grown := recorded()
	step := cfg.BackoffInitial
	for i, d := range grown {
		if d < step/2 || d >= step {
			t.Fatalf("delay %d = %v, want in [%v, %v): %v", i, d, step/2, step, grown)
		}
		step = min(2*step, cfg.BackoffMax)
	}
	if got, want := c.Stats().ConnectionAttempts, uint64(len(grown)+1); got != want || c.Stats().ConnectionErrors[StageDial] != want-1 {
		t.Errorf("attempts %d, dial errors %d; want %d (one per delay, plus the last)", got, c.Stats().ConnectionErrors[StageDial], want)
	}

	// Up for longer than HealthyAfter: the next delay starts over.
	upSince := time.Now()
	waitFor(t, "a healthy session", func() bool { return time.Since(upSince) > 2*cfg.HealthyAfter })
	pbx.DropSessions()
	waitFor(t, "the delay after the drop", func() bool { return len(recorded()) == len(grown)+1 })
	if d := recorded()[len(grown)]; d < cfg.BackoffInitial/2 || d >= cfg.BackoffInitial {
		t.Fatalf("delay after a healthy session = %v, want the first step [%v, %v)", d, cfg.BackoffInitial/2, cfg.BackoffInitial)
	}
}

// A refused login waits a minute, doubling to 15 (PBXs lock accounts
// after repeated failed sign-ins), and says so at error level each time;
// an unreachable PBX keeps the short back-off, and a login that works
// starts the long one over.
func TestClientLoginRefusalBacksOffLonger(t *testing.T) {
	pbx := newPBX(t, false)
	pbx.SetAuthError("account will be locked")
	var logs logBuffer
	cfg := testConfig(pbx.URL, &logs)
	cfg.LoginBackoffInitial, cfg.LoginBackoffMax = 0, 0 // the defaults: 1m to 15m
	c := newClient(t, cfg)
	recorded := recordSleeps(c)
	h := &handler{}
	run(t, c, h)

	waitFor(t, "six refused logins", func() bool { return len(recorded()) >= 6 })
	pbx.Stop()
	waitFor(t, "a delay for the unreachable PBX", func() bool {
		d := recorded()
		return len(d) > 6 && d[len(d)-1] < time.Second
	})
	delays := recorded()
	refused := slices.IndexFunc(delays, func(d time.Duration) bool { return d < time.Minute })
	step := time.Minute
	for i, d := range delays[:refused] {
		if d < step || d >= step+step/4 {
			t.Fatalf("delay %d after a refusal = %v, want in [%v, %v): %v", i, d, step, step+step/4, delays)
		}
		step = min(2*step, 15*time.Minute)
	}
	for i, d := range delays[refused:] {
		if d >= time.Second {
			t.Fatalf("delay %d for an unreachable PBX = %v, want the short back-off", refused+i, d)
		}
	}
	line := `level=ERROR msg="the PBX refused the login; run portsip_exporter check with the same settings to see why" pbx_error="account will be locked"`
	if n := logs.count(line); n != refused {
		t.Errorf("%d refusals logged, want one line each for %d:\n%s", n, refused, logs.String())
	}

	// A login that works, then a session that drops: the next refusal
	// waits a minute again.
	pbx.SetAuthError("")
	if err := pbx.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the session up", func() bool { return c.Stats().Up })
	pbx.SetAuthError("locked again")
	before := len(recorded())
	pbx.DropSessions()
	long := func(d time.Duration) bool { return d >= time.Second }
	waitFor(t, "a refusal after the drop", func() bool { return slices.ContainsFunc(recorded()[before:], long) })
	after := recorded()[before:]
	if d := after[slices.IndexFunc(after, long)]; d < time.Minute || d >= time.Minute+time.Minute/4 {
		t.Fatalf("first refusal after a working login waited %v, want [1m, 1m15s)", d)
	}
}

// A session that drops right after coming up does not reset the back-off:
// a flapping PBX is not hammered.
func TestClientBackoffKeepsGrowingWhenFlapping(t *testing.T) {
	pbx := newPBX(t, false)
	cfg := testConfig(pbx.URL, nil)
	cfg.BackoffInitial, cfg.BackoffMax = 100*time.Millisecond, 800*time.Millisecond
	cfg.HealthyAfter = time.Hour
	c := newClient(t, cfg)
	recorded := recordSleeps(c)
	h := &handler{}
	run(t, c, h)
	for i := 1; i <= 4; i++ {
		waitFor(t, "the session up", func() bool { ups, _, _ := h.counts(); return ups == i })
		pbx.DropSessions()
		waitFor(t, "the session down", func() bool { _, downs, _ := h.counts(); return downs == i })
	}
	waitFor(t, "four delays", func() bool { return len(recorded()) >= 4 })
	if delays := recorded(); delays[3] < 400*time.Millisecond {
		t.Fatalf("delays %v: want the fourth at least 400ms", delays)
	}
}

func TestClientUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var logs logBuffer
	c := newClient(t, testConfig("ws://"+addr+"/wsi", &logs))
	_, err = c.Check(context.Background(), time.Second, nil)
	var e *Error
	var op *net.OpError
	if !errors.As(err, &e) || e.Stage != StageDial || !errors.As(err, &op) {
		t.Fatalf("Check: %v, want a dial *Error wrapping the *net.OpError", err)
	}

	run(t, c, &handler{})
	waitFor(t, "five failed attempts", func() bool { return c.Stats().ConnectionErrors[StageDial] >= 6 })
	// Each attempt dials from a new local port; it is still one failure.
	if n := logs.count("level=WARN"); n != 1 {
		t.Errorf("%d warnings for one unchanged failure, want 1:\n%s", n, logs.String())
	}
}

// A listener that accepts TCP and never answers the WebSocket upgrade.
func TestClientHandshakeTimeout(t *testing.T) {
	addr, accepted := e2e.SilentListener(t)
	url := "ws://" + addr + "/wsi"

	cfg := testConfig(url, nil)
	cfg.HandshakeTimeout = 200 * time.Millisecond
	start := time.Now()
	_, err := newClient(t, cfg).Check(context.Background(), time.Second, nil)
	var e *Error
	if !errors.As(err, &e) || e.Stage != StageDial || !strings.Contains(err.Error(), "no WebSocket handshake within 200ms") {
		t.Fatalf("Check: %v, want a dial timeout", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Check took %v with a 200ms handshake timeout", took)
	}
	if e.Kind != KindNoAnswer {
		t.Errorf("kind %q, want %q", e.Kind, KindNoAnswer)
	}

	// The same timeout again and again is warned about once: the error's
	// text changes (the local port, which deadline fired first), its
	// stage and kind do not.
	var logs logBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newClient(t, cfg)
	stop := run(t, c, &handler{})
	waitFor(t, "three timeouts", func() bool { return c.Stats().ConnectionErrors[StageDial] >= 3 })
	stop()
	if n := logs.count("level=WARN"); n != 1 {
		t.Errorf("%d warnings for one unchanged failure, want 1:\n%s", n, logs.String())
	}

	// A cancel during a long handshake ends Run at once.
	cfg.HandshakeTimeout = time.Minute
	before := accepted()
	stop = run(t, newClient(t, cfg), &handler{})
	waitFor(t, "the connection accepted", func() bool { return accepted() == before+1 })
	start = time.Now()
	stop()
	if took := time.Since(start); took > time.Second {
		t.Errorf("Run took %v to return after cancel during the handshake", took)
	}
}

func TestClientAuthTimeout(t *testing.T) {
	pbx := newPBX(t, false)
	pbx.SetAuthReplies(false)
	cfg := testConfig(pbx.URL, nil)
	cfg.HandshakeTimeout = 200 * time.Millisecond
	_, err := newClient(t, cfg).Check(context.Background(), time.Second, nil)
	var e *Error
	if !errors.As(err, &e) || e.Stage != StageAuth || !strings.Contains(err.Error(), "no auth reply within 200ms") {
		t.Fatalf("Check: %v, want an auth timeout", err)
	}
}

func TestClientTLS(t *testing.T) {
	pbx := newPBX(t, true)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pbx.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("trusted CA file", func(t *testing.T) {
		cfg := testConfig(pbx.URL, nil)
		cfg.TLS.CAFile = caFile
		if _, err := newClient(t, cfg).Check(context.Background(), 10*time.Millisecond, nil); err != nil {
			t.Fatalf("Check: %v", err)
		}
	})

	t.Run("untrusted by default", func(t *testing.T) {
		_, err := newClient(t, testConfig(pbx.URL, nil)).Check(context.Background(), 10*time.Millisecond, nil)
		var e *Error
		var verr *tls.CertificateVerificationError
		if !errors.As(err, &e) || e.Stage != StageDial || !errors.As(err, &verr) {
			t.Fatalf("Check: %v, want a dial *Error wrapping a certificate verification error", err)
		}
	})

	t.Run("wrong server name", func(t *testing.T) {
		cfg := testConfig(pbx.URL, nil)
		cfg.TLS.CAFile, cfg.TLS.ServerName = caFile, "pbx.elsewhere.test"
		_, err := newClient(t, cfg).Check(context.Background(), 10*time.Millisecond, nil)
		var verr *tls.CertificateVerificationError
		if !errors.As(err, &verr) {
			t.Fatalf("Check: %v, want a certificate verification error", err)
		}
	})

	t.Run("insecure skip verify, with a warning", func(t *testing.T) {
		var logs logBuffer
		cfg := testConfig(pbx.URL, &logs)
		cfg.TLS.InsecureSkipVerify = true
		c := newClient(t, cfg)
		if n := logs.count("level=WARN"); n != 1 || !strings.Contains(logs.String(), "verification") {
			t.Fatalf("New logged %d warnings, want one about verification:\n%s", n, logs.String())
		}
		if _, err := c.Check(context.Background(), 10*time.Millisecond, nil); err != nil {
			t.Fatalf("Check: %v", err)
		}
	})
}

func TestCheck(t *testing.T) {
	pbx := newPBX(t, false)
	cfg := testConfig(pbx.URL, nil)
	cfg.Extensions = []string{"101", "102"}
	c := newClient(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	published := make(chan struct{})
	go func() {
		defer close(published)
		// Live traffic during the listen window, not just the snapshots.
		if pbx.WaitFor(ctx, func() bool { return len(subscriptionsOf(pbx)[TopicQueueEvents].Queues) == 2 }) == nil {
			pbx.Enqueue(tenantID, "8001", wsitest.Caller{Number: "555"})
		}
	}()
	res, err := c.Check(ctx, 500*time.Millisecond, nil)
	cancel()
	<-published
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	want := map[string]map[string]int{
		TopicQueueManagementEvents: {TypeQueueCreated: 2},
		TopicQueueEvents:           {TypeQueueStatus: 2, TypeQueueCallerStatus: 1},
		TopicExtensionEvents:       {TypeExtensionStatus: 1},
		TopicCDREvents:             {},
	}
	if len(res.Topics) != len(want) {
		t.Fatalf("topics %v, want %v", res.Topics, want)
	}
	for topic, events := range want {
		r := res.Topics[topic]
		if !r.Accepted || !r.Replied || r.Error != "" || !mapsEqual(r.Events, events) {
			t.Errorf("%s: %+v, want accepted with a reply and events %v", topic, r, events)
		}
	}
	if pbx.Sessions() != 0 {
		waitFor(t, "Check's session closed", func() bool { return pbx.Sessions() == 0 })
	}
	if st := c.Stats(); st.Up || st.ConnectionAttempts != 1 {
		t.Errorf("after Check: up %v, attempts %d", st.Up, st.ConnectionAttempts)
	}
}

func TestClientShutdownClosesTheSession(t *testing.T) {
	pbx := newPBX(t, false)
	c := newClient(t, testConfig(pbx.URL, nil))
	h := &handler{}
	stop := run(t, c, h)
	waitFor(t, "the session up", func() bool { return c.Stats().Up && pbx.Sessions() == 1 })
	stop()
	waitFor(t, "the PBX to see the session end", func() bool { return pbx.Sessions() == 0 })
	if ups, downs, _ := h.counts(); ups != 1 || downs != 1 {
		t.Errorf("SessionUp %d, SessionDown %d; want 1 each", ups, downs)
	}
	st := c.Stats()
	if st.Up || slices.Contains(mapsValues(st.Subscriptions), true) {
		t.Errorf("stats after shutdown: up %v, subscriptions %v", st.Up, st.Subscriptions)
	}
	for stage, n := range st.ConnectionErrors {
		if n != 0 {
			t.Errorf("shutdown counted as a %s error", stage)
		}
	}
}

func mapsValues[V any](m map[string]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// Replies nobody asked for and event types nobody knows are not errors:
// the protocol is undocumented and PBX versions differ.
func TestClientToleratesUnexpectedRepliesAndEvents(t *testing.T) {
	pbx := newPBX(t, false)
	var logs logBuffer
	c := newClient(t, testConfig(pbx.URL, &logs))
	h := &handler{}
	run(t, c, h)
	waitFor(t, "the learnt queues subscribed", func() bool {
		return slices.Equal(subscriptionsOf(pbx)[TopicQueueEvents].Queues, []string{"8001", "8002"})
	})
	waitFor(t, "every subscribe answered", func() bool { return c.Stats().Subscriptions[TopicQueueEvents] })

	pbx.SendRaw([]byte(`{"command":"reload","id":"77","status":0}`))
	pbx.SendRaw([]byte(`{"command":"subscribe","id":"78","status":-1,"error":"stray"}`))
	pbx.SendRaw([]byte(`{"event_type":"queue_paused","tenant_id":"` + tenantID + `"}`))
	waitFor(t, "the unknown event delivered", func() bool {
		return h.sawEvent(func(ev Event) bool { _, ok := ev.(*Unknown); return ok && ev.Head().EventType == "queue_paused" })
	})
	st := c.Stats()
	if st.Events[TypeOther] != 1 || st.Events["queue_paused"] != 0 {
		t.Errorf("unknown event counted as %v, want under %q", st.Events, TypeOther)
	}
	for reason, n := range st.InvalidMessages {
		if n != 0 {
			t.Errorf("a reply counted as invalid (%s)", reason)
		}
	}
	want := map[string]bool{TopicQueueManagementEvents: true, TopicCDREvents: true, TopicQueueEvents: true}
	if !st.Up || !mapsEqual(st.Subscriptions, want) {
		t.Errorf("up %v, subscriptions %v after stray replies; want %v", st.Up, st.Subscriptions, want)
	}
	if !strings.Contains(logs.String(), "level=DEBUG msg=\"reply from the PBX ignored\" command=reload") {
		t.Errorf("the unexpected reply is not logged at debug:\n%s", logs.String())
	}
	if _, downs, _ := h.counts(); downs != 0 {
		t.Error("an unexpected reply ended the session")
	}
}

// Should a PBX ever echo the password in its error text, it is cut out
// before the text reaches an error or a log line.
func TestClientRedactsAnEchoedPassword(t *testing.T) {
	pbx := newPBX(t, false)
	pbx.SetAuthError("wrong password " + password + " for boss")
	var logs logBuffer
	c := newClient(t, testConfig(pbx.URL, &logs))
	_, err := c.Check(context.Background(), time.Second, nil)
	var e *Error
	if !errors.As(err, &e) || e.PBXError != "wrong password <redacted> for boss" {
		t.Fatalf("Check: %v, want the PBX's text with the password cut out", err)
	}
	run(t, c, &handler{})
	waitFor(t, "a logged failure", func() bool { return strings.Contains(logs.String(), "<redacted>") })
	if strings.Contains(err.Error(), password) || strings.Contains(logs.String(), password) {
		t.Fatal("the echoed password got through")
	}
}

func TestClientWrongPath(t *testing.T) {
	pbx := newPBX(t, false)
	_, err := newClient(t, testConfig(strings.TrimSuffix(pbx.URL, "/wsi")+"/api", nil)).Check(context.Background(), time.Second, nil)
	var e *Error
	if !errors.As(err, &e) || e.Stage != StageDial || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("Check: %v, want a dial *Error naming the HTTP status", err)
	}
}

// Stats.Events counts what the Handler got: frames the reader had
// buffered when the client stopped were never handed over, so they are
// not counted either.
func TestClientCountsOnlyDeliveredEvents(t *testing.T) {
	pbx := newPBX(t, false)
	cfg := testConfig(pbx.URL, nil)
	cfg.PingInterval = 50 * time.Millisecond
	cfg.Extensions = []string{"101"}
	c := newClient(t, cfg)
	h := &handler{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, h) }()
	waitFor(t, "the snapshots", func() bool { _, _, n := h.counts(); return n == 5 })

	// Four ping periods for the reader to fill its buffer.
	const n = 200
	floodBlockedHandler(t, pbx, h, n, 4)
	// Released after the cancel: the events Run still hands over are
	// counted, the rest are not.
	cancel()
	close(h.block)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	var counted uint64
	for _, v := range c.Stats().Events {
		counted += v
	}
	_, _, delivered := h.counts()
	if delivered >= 5+n {
		t.Fatalf("every event was delivered (%d): the test did not stop the client with frames buffered", delivered)
	}
	if counted != uint64(delivered) {
		t.Fatalf("Stats counts %d events, the Handler got %d", counted, delivered)
	}
}

// floodBlockedHandler blocks h (close h.block to release it), has the PBX
// publish n presence changes of extension 101 (notes "0" to n-1), and
// waits the given number of ping periods while they pile up. It returns
// how many events h had before.
func floodBlockedHandler(t *testing.T, pbx *wsitest.Server, h *handler, n, periods int) (before int) {
	t.Helper()
	h.mu.Lock()
	h.block = make(chan struct{})
	before = len(h.events)
	h.mu.Unlock()
	for i := range n {
		pbx.SetPresence(tenantID, "101", fmt.Sprint("AWAY_", i), "") // numbered, to check the order
	}
	pings := pbx.Pings()
	waitFor(t, fmt.Sprint(periods, " ping periods"), func() bool { return pbx.Pings() >= pings+periods })
	return before
}
