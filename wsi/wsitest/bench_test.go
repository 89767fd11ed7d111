package wsitest

import (
	"testing"

	"github.com/gorilla/websocket"
)

// BenchmarkServerPublish measures a state change from the call to the
// frame read by a subscriber over loopback: how fast the simulated PBX can
// feed an exporter under test.
func BenchmarkServerPublish(b *testing.B) {
	s := NewServer()
	defer s.Close()
	s.AddTenant(Tenant{ID: t1, Name: "Acme", Domain: "acme.test"})
	s.AddQueue(t1, Queue{Number: "8001", Name: "Sales", SLASeconds: 20})
	s.AddUser(User{Username: "admin", Password: "sys", Role: SystemAdmin})

	conn, _, err := websocket.DefaultDialer.Dial(s.URL, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	if err := conn.WriteJSON(map[string]any{"command": "auth", "username": "admin", "password": "sys"}); err != nil {
		b.Fatal(err)
	}
	if err := conn.WriteJSON(sub([]string{"global_queue_events"}, "tenants", t1)); err != nil {
		b.Fatal(err)
	}
	for range 3 { // auth reply, subscribe reply, queue_status
		if _, _, err := conn.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
	want := b.N
	all := make(chan struct{}) // closed when every frame has been read
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ; {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
			if n++; n == want {
				close(all)
			}
		}
	}()

	states := []string{"READY", "QUEUE_CALL", "WRAP_UP", "NOT_READY"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.SetAgentState(t1, "8001", "101", states[i%len(states)])
	}
	select {
	case <-all:
	case <-done:
		b.Fatal("the connection ended before every frame was read")
	}
	b.StopTimer()
	conn.Close()
	<-done
}
