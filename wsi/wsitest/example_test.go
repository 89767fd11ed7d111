package wsitest_test

import (
	"fmt"
	"time"

	"github.com/gorilla/websocket"

	"github.com/portsip-exporter/portsip_exporter/wsi/wsitest"
)

// A test sets up a PBX, lets a client subscribe, and changes the PBX's
// state: the subscriber gets the snapshot, then the event.
func ExampleServer() {
	pbx := wsitest.NewUnstartedServer()
	pbx.Now = func() time.Time { return time.Unix(1676206249, 0) }
	pbx.AddTenant(wsitest.Tenant{ID: "676398719834259456", Name: "Acme", Domain: "acme.test"})
	pbx.AddQueue("676398719834259456", wsitest.Queue{ID: "677046776364007424", Number: "8001", Name: "Sales", SLASeconds: 20})
	pbx.AddUser(wsitest.User{Username: "boss", Password: "secret", Role: wsitest.TenantAdmin, TenantID: "676398719834259456"})
	pbx.Start()
	defer pbx.Close()

	conn, _, err := websocket.DefaultDialer.Dial(pbx.URL, nil)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	send := func(cmd string) { _ = conn.WriteMessage(websocket.TextMessage, []byte(cmd)) }
	recv := func() { _, frame, _ := conn.ReadMessage(); fmt.Println(string(frame)) }

	send(`{"command":"auth","username":"boss","password":"secret","domain":"acme.test"}`)
	recv()
	send(`{"command":"subscribe","topics":["queue_events"],"queues":["8001"]}`)
	recv()
	recv() // the snapshot
	pbx.Enqueue("676398719834259456", "8001", wsitest.Caller{SessionID: "6763987198342", Number: "123456", Name: "Thomas Young"})
	recv()
	// Output:
	// {"command":"auth","id":"1","status":0}
	// {"command":"subscribe","id":"2","status":0}
	// {"event_type":"queue_status","tenant_id":"676398719834259456","queue_id":"677046776364007424","queue_number":"8001","queue_name":"Sales","waiting_list":[],"agents":[]}
	// {"event_type":"queue_caller_status","tenant_id":"676398719834259456","queue_id":"677046776364007424","updated_callers":[{"position":"1","session_id":"6763987198342","caller_number":"123456","caller_name":"Thomas Young","reason":"enqueue","timestamp":"1676206249","type":"normal"}]}
}

// The demo's PBX: a contact centre whose traffic runs on the wall clock
// until the context ends. Tests step it with their own clock instead.
func ExampleNewTraffic() {
	pbx := wsitest.NewUnstartedServer()
	traffic := wsitest.NewTraffic(pbx, wsitest.TrafficConfig{Seed: 1, Start: time.Unix(1676206249, 0)})
	pbx.Start()
	defer pbx.Close()

	user, _ := traffic.Credentials()
	fmt.Println(user, traffic.TenantIDs())
	traffic.Step(traffic.Now().Add(30 * time.Second)) // or: go traffic.Run(ctx)
	// Output:
	// admin [883634229655633920 794493068765036544]
}

// A PBX whose clock is two minutes behind and whose leaves repeat the
// enqueue time does not say on the wire how long a caller waited; its
// truth keeps the wait that happened, in true time, to compare an
// exporter's numbers with.
func ExampleServer_QueueTruth() {
	now := time.Unix(1676206249, 0)
	pbx := wsitest.NewUnstartedServer()
	pbx.Now = func() time.Time { return now }
	pbx.AddTenant(wsitest.Tenant{ID: "676398719834259456", Name: "Acme", Domain: "acme.test"})
	pbx.AddQueue("676398719834259456", wsitest.Queue{Number: "8001", Name: "Sales", SLASeconds: 20})
	pbx.SetQuirks(wsitest.Quirks{ClockSkew: -2 * time.Minute, LeaveRepeatsEnqueueTime: true})

	pbx.Enqueue("676398719834259456", "8001", wsitest.Caller{SessionID: "s1", Number: "123456", Since: now.Add(-15 * time.Second)})
	pbx.Dequeue("676398719834259456", "8001", "s1", wsitest.ReasonAgentAnswered)

	q := pbx.QueueTruth("676398719834259456", "8001")
	fmt.Println(q.Left["answered"], q.AnsweredWithinSLA, len(q.Waiting))
	// Output:
	// {1 15s} 1 0
}
