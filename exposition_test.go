package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"

	"github.com/portsip-exporter/portsip_exporter/collector"
	"github.com/portsip-exporter/portsip_exporter/internal/benchpbx"
	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// exposedCollector is a Collector on a still clock holding a small PBX
// and histograms with native buckets.
func exposedCollector(t *testing.T) *collector.Collector {
	t.Helper()
	now := time.Unix(1_700_000_000, 0)
	col := collector.New(collector.Config{AgentState: true, ExtensionState: true, Now: func() time.Time { return now }}, statsFunc(benchStats))
	col.SessionUp(wsi.Session{Topics: map[string]bool{wsi.TopicGlobalQueueEvents: true}})
	benchpbx.Size{Tenants: 3, Queues: 6, Agents: 3, Callers: 2, Extensions: 30}.Load(col, now)
	ts := now.Unix()
	for i := range 300 {
		col.HandleEvent(&wsi.CallCDR{Header: wsi.Header{EventType: wsi.TypeCallCDR, TenantID: "880000000000000001"},
			SessionID: fmt.Sprint("cdr", i), Direction: "in", CallStatus: "answered",
			RingTime: ts - 900, AnsweredTime: ts - 900 + int64(i%40), EndedTime: ts - 900 + int64(i%40+i*3),
			EndedReason: "caller_disconnected"})
	}
	return col
}

// Every format and compression a scraper may negotiate is served as
// promhttp serves the same families from a registry (the reference path,
// with OpenMetrics enabled): the same headers, and the Collector's
// families equal, family by family, native histogram buckets included.
func TestMetricsFormatsMatchTheRegistry(t *testing.T) {
	col := exposedCollector(t)
	small := newRegistry(getBuildInfo())
	var ready atomic.Bool
	mux, err := newMux(col, small, webConfig{TelemetryPath: "/metrics", MaxRequests: 40}, slog.New(slog.DiscardHandler), &ready)
	if err != nil {
		t.Fatal(err)
	}
	refReg := prometheus.NewRegistry()
	refReg.MustRegister(col)
	ref := promhttp.HandlerFor(prometheus.Gatherers{refReg, small}, promhttp.HandlerOpts{
		EnableOpenMetrics: true, ErrorHandling: promhttp.ContinueOnError})

	accepts := []string{
		"",
		acceptText,
		acceptPrometheus,
		"application/openmetrics-text;version=1.0.0;escaping=allow-utf-8,text/plain;version=0.0.4;q=0.5",
		"application/openmetrics-text; version=0.0.1",
		acceptProto,
		"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text",
		"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=compact-text",
		"*/*",
		"application/json",
	}
	encodings := []string{"", "gzip", "identity", "*", "gzip, identity", "gzip;q=0.5, identity;q=0.6",
		"gzip;q=0", "br", "deflate, gzip, br, zstd", "GZIP", "gzip;q=x, br"}
	for _, accept := range accepts {
		for _, enc := range encodings {
			for _, query := range []string{"", "?name[]=portsip_up&name[]=portsip_queue_wait_seconds&name[]=go_goroutines"} {
				req := httptest.NewRequest(http.MethodGet, "/metrics"+query, nil)
				if accept != "" {
					req.Header.Set("Accept", accept)
				}
				if enc != "" {
					req.Header.Set("Accept-Encoding", enc)
				}
				got, want := httptest.NewRecorder(), httptest.NewRecorder()
				mux.ServeHTTP(got, req)
				ref.ServeHTTP(want, req)
				name := fmt.Sprintf("Accept %q, Accept-Encoding %q%s", accept, enc, query)
				for _, h := range []string{"Content-Type", "Content-Encoding", "Vary"} {
					if g, w := got.Header().Values(h), want.Header().Values(h); strings.Join(g, ", ") != strings.Join(w, ", ") {
						t.Errorf("%s: %s %q, promhttp's %q", name, h, g, w)
					}
				}
				if got.Code != http.StatusOK || want.Code != http.StatusOK {
					t.Fatalf("%s: %d, promhttp's %d", name, got.Code, want.Code)
				}
				format := expfmt.Format(got.Header().Get("Content-Type"))
				g := families(t, unpack(t, got), format)
				w := families(t, unpack(t, want), format)
				sameFamilies(t, name, g, w)
			}
		}
	}
}

// unpack returns a response's body, gunzipped when it says it is gzip.
func unpack(t *testing.T, r *httptest.ResponseRecorder) []byte {
	t.Helper()
	if r.Header().Get("Content-Encoding") != "gzip" {
		return r.Body.Bytes()
	}
	z, err := gzip.NewReader(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// families splits a body into its families: parsed where expfmt can read
// the format back, else as the text of each family. (expfmt's OpenMetrics
// parser refuses the Go collector's go_memstats_alloc_bytes beside
// go_memstats_alloc_bytes_total, which Prometheus accepts.)
func families(t *testing.T, body []byte, format expfmt.Format) map[string]any {
	t.Helper()
	out := make(map[string]any)
	switch format.FormatType() {
	case expfmt.TypeProtoText, expfmt.TypeProtoCompact, expfmt.TypeOpenMetrics:
		re := regexp.MustCompile(`(?m)^name:\s*"([^"]*)"`)
		if format.FormatType() == expfmt.TypeOpenMetrics {
			if !bytes.HasSuffix(body, []byte("\n# EOF\n")) {
				t.Fatalf("%s: no # EOF at the end", format)
			}
			re = regexp.MustCompile(`(?m)^# HELP (\S*)`)
		}
		locs := re.FindAllSubmatchIndex(body, -1)
		for i, l := range locs {
			end := len(body)
			if i+1 < len(locs) {
				end = locs[i+1][0]
			}
			out[string(body[l[2]:l[3]])] = string(body[l[0]:end])
		}
		if len(locs) == 0 {
			t.Fatalf("%s: no family in %.300q", format, body)
		}
		return out
	}
	dec := expfmt.NewDecoder(bytes.NewReader(body), format)
	for {
		mf := &dto.MetricFamily{}
		err := dec.Decode(mf)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		out[mf.GetName()] = mf
	}
}

// sameFamilies compares the Collector's families (portsip_*) for
// equality, and the others' (whose values move between scrapes) by name.
func sameFamilies(t *testing.T, name string, got, want map[string]any) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: promhttp served nothing", name)
	}
	for n, w := range want {
		g, ok := got[n]
		switch {
		case !ok:
			t.Errorf("%s: %s missing", name, n)
		case !strings.HasPrefix(n, "portsip_") || n == "portsip_exporter_build_info":
		case !equal(g, w):
			t.Errorf("%s: %s differs:\n%.2000v\npromhttp's:\n%.2000v", name, n, g, w)
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			t.Errorf("%s: %s served, not by promhttp", name, n)
		}
	}
}

func equal(a, b any) bool {
	if ma, ok := a.(*dto.MetricFamily); ok {
		return proto.Equal(ma, b.(*dto.MetricFamily))
	}
	return a == b
}

// The protobuf format carries each queue's native histogram buckets.
func TestMetricsProtobufHasNativeBuckets(t *testing.T) {
	col := exposedCollector(t)
	var ready atomic.Bool
	mux, err := newMux(col, newRegistry(getBuildInfo()), webConfig{TelemetryPath: "/metrics", MaxRequests: 40}, slog.New(slog.DiscardHandler), &ready)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/metrics?name[]=portsip_call_talk_seconds", nil)
	req.Header.Set("Accept", acceptProto)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fams := families(t, rec.Body.Bytes(), expfmt.Format(rec.Header().Get("Content-Type")))
	mf, _ := fams["portsip_call_talk_seconds"].(*dto.MetricFamily)
	spans := 0
	for _, m := range mf.GetMetric() {
		spans += len(m.GetHistogram().GetPositiveSpan())
	}
	if spans == 0 {
		t.Errorf("no native bucket served: %v", mf)
	}
}
