package wsi

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A PBX announcing a 4 MiB queue number: it is not subscribed, not kept,
// and no log line carries it; a number of a sane length still is.
func TestHugeQueueNumberIsNeitherKeptNorLogged(t *testing.T) {
	huge := strings.Repeat("8", 4<<20)
	var queues atomic.Int32
	url := startForeignPBX(t, func(c *foreignConn) {
		if !c.auth(`{"command":"auth","status":0}`) {
			return
		}
		for range 2 { // queue management and CDRs
			if _, ok := c.cmd(); !ok || !c.send(`{"command":"subscribe","status":0}`) {
				return
			}
		}
		if !c.send(queueCreated(huge, "1")) || !c.send(queueCreated("8001", "1")) {
			return
		}
		for {
			cmd, ok := c.cmd()
			if !ok {
				return
			}
			queues.Add(1)
			if q, _ := cmd["queues"].([]any); len(q) != 1 || q[0] != "8001" {
				t.Errorf("subscribed %.80v", cmd)
			}
			c.send(`{"command":"subscribe","status":0}`)
		}
	})
	var logs logBuffer
	cfg := testConfig(url, &logs)
	c := newClient(t, cfg)
	run(t, c, &handler{})
	waitFor(t, "queue 8001 subscribed", func() bool { return queues.Load() == 1 && c.Stats().Events[TypeQueueCreated] == 2 })
	for _, line := range strings.Split(logs.String(), "\n") {
		if len(line) > 1024 {
			t.Fatalf("a log line of %d bytes: %.200s...", len(line), line)
		}
	}
	if !strings.Contains(logs.String(), "queue not subscribed") {
		t.Errorf("the refused queue is not logged:\n%s", logs.String())
	}
}

// A PBX trickling one fragmented message a byte at a time, answering
// every ping, is not alive: the message must arrive whole within two ping
// periods of its first frame.
func TestTrickledMessageEndsTheSession(t *testing.T) {
	const period = 300 * time.Millisecond
	url := startForeignPBX(t, func(c *foreignConn) {
		if !c.auth(`{"command":"auth","status":0}`) {
			return
		}
		for range globalTopics {
			if _, ok := c.cmd(); !ok || !c.send(`{"command":"subscribe","status":0}`) {
				return
			}
		}
		read := make(chan struct{})
		go func() { defer close(read); c.wait() }() // answers pings
		defer func() { <-read }()
		raw := c.conn.UnderlyingConn()
		// A text frame that is not the last, then continuations of one
		// byte: the message never ends.
		if _, err := raw.Write([]byte{0x01, 1, '{'}); err != nil {
			return
		}
		tick := time.NewTicker(period / 3)
		defer tick.Stop()
		for {
			select {
			case <-read:
				return
			case <-tick.C:
				if _, err := raw.Write([]byte{0x00, 1, ' '}); err != nil {
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
	start := time.Now()
	waitFor(t, "the trickling session ended", func() bool { _, downs, _ := h.counts(); return downs >= 1 })
	if took := time.Since(start); took > 2*period+2*time.Second {
		t.Errorf("ended after %v, want about two ping periods (%v)", took, 2*period)
	}
	h.mu.Lock()
	err := h.downs[0]
	h.mu.Unlock()
	var e *Error
	if !errors.As(err, &e) || e.Stage != StageRead || !strings.Contains(err.Error(), "did not arrive whole") {
		t.Errorf("SessionDown(%v), want a read error saying the message did not arrive whole", err)
	}
}

// A PBX that replied once and then stopped replying, while announcing
// queue after queue: what waits for a reply stays bounded, and so does
// what is remembered of refusals.
func TestPendingSubscriptionsAndRefusalsStayBounded(t *testing.T) {
	c, err := NewReplay(Config{Domain: domain})
	if err != nil {
		t.Fatal(err)
	}
	s := c.newSession(nil, nil, nil)
	s.up, s.sawReply = true, true
	for i := range 10 * maxPending {
		if err := s.subscribe(TopicQueueEvents, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.pending) != maxPending || s.pending[0].queue != fmt.Sprint(9*maxPending) {
		t.Errorf("%d pending, the oldest %q; want the last %d", len(s.pending), s.pending[0].queue, maxPending)
	}
	for i := range 3 * maxRefusals {
		c.logRefusal(&subscription{topic: TopicQueueEvents, queue: fmt.Sprint(i), err: "no"})
	}
	if len(c.refusals) > maxRefusals {
		t.Errorf("%d refusals remembered, want at most %d", len(c.refusals), maxRefusals)
	}
}
