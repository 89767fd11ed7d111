package wsi

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi/wsitest"
)

type countingHandler struct{ n atomic.Int64 }

func (h *countingHandler) SessionUp(Session) {}
func (h *countingHandler) SessionDown(error) {}
func (h *countingHandler) HandleEvent(Event) { h.n.Add(1) }

// BenchmarkClientLoopback is frames from the simulated PBX to the Handler
// over a loopback WebSocket: read, decode, count, deliver.
func BenchmarkClientLoopback(b *testing.B) {
	pbx := wsitest.NewUnstartedServer()
	pbx.AddTenant(wsitest.Tenant{ID: tenantID, Name: "Acme", Domain: domain})
	pbx.AddExtension(tenantID, "101")
	pbx.AddUser(wsitest.User{Username: "boss", Password: password, Role: wsitest.TenantAdmin, TenantID: tenantID})
	pbx.Start()
	defer pbx.Close()
	c, err := New(Config{URL: pbx.URL, Username: "boss", Password: password, Domain: domain, Extensions: []string{"101"}})
	if err != nil {
		b.Fatal(err)
	}
	h := &countingHandler{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx, h) }()
	defer func() { cancel(); <-done }()
	for !c.Stats().Up {
		time.Sleep(time.Millisecond)
	}
	frame := []byte(`{"event_type":"extension_presence","extension":"sip:101@acme.test","presence":"AWAY","presence_note":"","tenant_id":"` + tenantID + `","extension_id":"1","time":"1703690547"}`)
	start := h.n.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		pbx.SendRaw(frame)
	}
	for h.n.Load()-start < int64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
}
