package reliability

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/portsip-exporter/portsip_exporter/wsi"
	"github.com/portsip-exporter/portsip_exporter/wsi/wsitest"
)

// loopbackEvents is small enough for the race detector (seconds), large
// enough to fill every buffer between the PBX and the collector many times.
const loopbackEvents = 100_000

// TestLoopbackChurnCountsExact streams churn from the simulated PBX over a
// loopback WebSocket through the client into the collector, as fast as the
// PBX can publish, and checks that every event arrived and was counted.
func TestLoopbackChurnCountsExact(t *testing.T) {
	g := newChurn(2)
	pbx := wsitest.NewUnstartedServer()
	pbx.AddUser(wsitest.User{Username: admin, Password: password, Role: wsitest.SystemAdmin})
	for i, id := range g.tenantIDs() {
		pbx.AddTenant(wsitest.Tenant{ID: id, Name: fmt.Sprint("Tenant ", i), Domain: g.tenants[i].domain})
	}
	pbx.Start()
	t.Cleanup(pbx.Close)
	cfg := clientConfig(pbx.URL)
	cfg.Tenants = g.tenantIDs()
	e := startExporter(t, cfg)
	e.await("the session up", func(s scrape) bool {
		sub, _ := s.find("portsip_wsi_subscription_active", "topic", wsi.TopicGlobalCDREvents)
		return s.up() == 1 && sub == 1
	})

	// Scrapes keep answering, promptly, while the stream is applied.
	stop := make(chan struct{})
	scraped := make(chan scrapeStats)
	go func() { scraped <- e.scrapeUntil(stop) }()

	start := time.Now()
	for range loopbackEvents {
		frame, topic, tenant := g.next()
		// The PBX queues the frame it is given: it must not share the
		// generator's buffer.
		pbx.PublishRaw(topic, tenant, bytes.Clone(frame))
	}
	s := e.await(fmt.Sprintf("all %d events counted", loopbackEvents), func(s scrape) bool {
		return sumFamily(s.families(), "portsip_wsi_events_total") >= loopbackEvents
	})
	elapsed := time.Since(start)
	close(stop)
	st := <-scraped
	t.Logf("%d events over loopback in %s (%.0f events/s); %d scrapes meanwhile, %d of them mid-stream, the slowest %s",
		loopbackEvents, elapsed.Round(time.Millisecond), loopbackEvents/elapsed.Seconds(), st.n, st.midStream, st.slowest.Round(time.Millisecond))
	if st.err != nil {
		t.Errorf("a scrape during the stream failed: %v", st.err)
	}
	// Ingest holds the collector's lock one event at a time, so a scrape
	// waits for an event, not for the stream: scrapes complete all along,
	// each seeing the stream part-applied. Counted from what the scrapes
	// saw rather than from their durations, which a loaded machine
	// stretches.
	if st.midStream < 3 {
		t.Errorf("%d of %d scrapes during a %s stream saw it part-applied (the slowest took %s): scrapes were held up by ingest",
			st.midStream, st.n, elapsed, st.slowest)
	}

	mfs := s.families()
	for _, typ := range append(slices.Clone(wsi.KnownEventTypes), wsi.TypeOther) {
		if got, want := s.counter("portsip_wsi_events_total", "event_type", typ), float64(g.sent[typ]); got != want {
			t.Errorf("portsip_wsi_events_total{event_type=%q} = %v, want %v", typ, got, want)
		}
	}
	for reason, want := range g.reasons {
		if got := sumFamily(mfs, "portsip_queue_callers_total", "reason", reason); got != float64(want) {
			t.Errorf("portsip_queue_callers_total{reason=%q} = %v, want %d", reason, got, want)
		}
	}
	if got, want := sumFamily(mfs, "portsip_calls_total"), float64(g.sent[wsi.TypeCallCDR]); got != want {
		t.Errorf("portsip_calls_total = %v, want %v", got, want)
	}
	if got := sumFamily(mfs, "portsip_wsi_invalid_messages_total"); got != 0 {
		t.Errorf("%v frames rejected", got)
	}
	if got := s.counter("portsip_wsi_connection_attempts_total"); got != 1 {
		t.Errorf("connection attempts = %v: the session broke under load", got)
	}
}

type scrapeStats struct {
	n         int
	midStream int // scrapes that saw more events than the first and fewer than the stream
	slowest   time.Duration
	err       error
}

// scrapeUntil scrapes /metrics back to back until stop is closed.
func (e *exporter) scrapeUntil(stop <-chan struct{}) scrapeStats {
	var st scrapeStats
	first := -1.0
	for {
		select {
		case <-stop:
			return st
		default:
		}
		began := time.Now()
		resp, err := e.http.Get(e.url)
		var mfs map[string]*dto.MetricFamily
		if err == nil {
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("HTTP %s", resp.Status)
			} else {
				p := expfmt.NewTextParser(model.UTF8Validation)
				mfs, err = p.TextToMetricFamilies(resp.Body)
			}
			resp.Body.Close()
		}
		if err != nil {
			st.err = err
			return st
		}
		st.n++
		st.slowest = max(st.slowest, time.Since(began))
		events := sumFamily(slices.Collect(maps.Values(mfs)), "portsip_wsi_events_total")
		if first < 0 {
			first = events
		} else if first < events && events < loopbackEvents {
			st.midStream++
		}
	}
}

// families is the scrape as a list, for sumFamily.
func (s scrape) families() []*dto.MetricFamily {
	out := make([]*dto.MetricFamily, 0, len(s.mfs))
	for _, mf := range s.mfs {
		out = append(out, mf)
	}
	return out
}
