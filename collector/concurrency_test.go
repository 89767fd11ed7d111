package collector

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

func TestStatsRendered(t *testing.T) {
	h := newHarness(t)
	h.Collector.stats = statsFunc(someStats)
	h.expect(t, `
portsip_wsi_connection_attempts_total 3
portsip_wsi_connection_errors_total{stage="dial"} 2
portsip_wsi_connection_errors_total{stage="auth"} 0
portsip_wsi_connection_errors_total{stage="subscribe"} 0
portsip_wsi_connection_errors_total{stage="read"} 0
portsip_wsi_invalid_messages_total{reason="malformed_json"} 1
portsip_wsi_invalid_messages_total{reason="invalid_event"} 0
portsip_wsi_invalid_messages_total{reason="binary_frame"} 0
portsip_wsi_invalid_messages_total{reason="oversized"} 0
portsip_wsi_last_event_timestamp_seconds 1.7000000005e+09
portsip_wsi_subscription_active{topic="global_queue_events"} 1
portsip_wsi_subscription_active{topic="global_cdr_events"} 0
portsip_wsi_events_ignored_total{reason="other_tenant"} 4
portsip_wsi_events_ignored_total{reason="no_tenant"} 0
portsip_wsi_events_ignored_total{reason="implausible"} 0
portsip_up 1
`, "portsip_wsi_events_ignored_total", "portsip_wsi_connection_attempts_total", "portsip_wsi_connection_errors_total",
		"portsip_wsi_invalid_messages_total", "portsip_wsi_last_event_timestamp_seconds",
		"portsip_wsi_subscription_active", "portsip_up")
	if n := h.series(t, "portsip_wsi_events_total"); n != len(wsi.KnownEventTypes)+1 {
		t.Errorf("%d event type series, want %d", n, len(wsi.KnownEventTypes)+1)
	}
	if got := h.value(t, "portsip_wsi_events_total", "event_type", "other"); got != 3 {
		t.Errorf("other events = %v, want 3 (other + an unlisted type)", got)
	}
	if got := h.value(t, "portsip_wsi_events_total", "event_type", "call_cdr"); got != 0 {
		t.Errorf("call_cdr events = %v, want 0", got)
	}
	// Without a client there are no wsi series at all.
	h.Collector.stats = nil
	for _, name := range []string{"portsip_wsi_events_total", "portsip_wsi_events_ignored_total"} {
		if n := h.series(t, name); n != 0 {
			t.Errorf("%s: %d series without a stats source", name, n)
		}
	}
}

// Scrapes and ingest run at once under the race detector, and every
// scrape is a consistent, valid exposition.
func TestConcurrentCollectAndIngest(t *testing.T) {
	c := New(Config{AgentState: true, ExtensionState: true}, statsFunc(someStats))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	c.SessionUp(sessionWith())
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := reg.Gather(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	ts := time.Now().Unix()
	for i := range 2000 {
		s := fmt.Sprint("s", i%50)
		c.HandleEvent(callers(fmt.Sprint("Q", i%7), callerEv(s, []string{"enqueue", "hangup", "agent_answered"}[i%3], ts)))
		c.HandleEvent(agentsEv(fmt.Sprint("Q", i%7), []string{fmt.Sprint(i % 9)}, ag(fmt.Sprint(i%11), agentStatesOnWire[i%len(agentStatesOnWire)])))
		c.HandleEvent(&wsi.CallStart{Header: hdr(wsi.TypeCallStart), SessionID: s})
		c.HandleEvent(&wsi.CallCDR{Header: hdr(wsi.TypeCallCDR), SessionID: s, Direction: "in", AnsweredTime: ts, EndedTime: ts + 3})
		if i%500 == 0 {
			c.SessionDown(nil)
			c.SessionUp(sessionWith())
		}
	}
	close(done)
	wg.Wait()
}

// A scraper that stops reading holds no lock: ingest goes on.
func TestStuckScraperDoesNotBlockIngest(t *testing.T) {
	c := New(Config{AgentState: true, ExtensionState: true}, nil)
	c.SessionUp(sessionWith())
	c.HandleEvent(queueStatus("8001", "Q1", nil, ag("101", "READY")))
	ch := make(chan prometheus.Metric) // nobody reads yet
	collected := make(chan struct{})
	go func() { c.Collect(ch); close(collected) }()
	first := <-ch // Collect is now blocked sending the rest

	ingested := make(chan struct{})
	go func() {
		for i := range 100 {
			c.HandleEvent(agentsEv("Q1", nil, ag(fmt.Sprint(i), "READY")))
		}
		close(ingested)
	}()
	select {
	case <-ingested:
	case <-time.After(10 * time.Second):
		t.Fatal("ingest blocked by a stuck scraper")
	}
	if first == nil {
		t.Fatal("no metric")
	}
	for {
		select {
		case <-ch:
		case <-collected:
			return
		}
	}
}
