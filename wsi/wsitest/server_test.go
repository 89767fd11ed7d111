package wsitest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const (
	t1 = "883634229655633920"
	t2 = "794493068765036544"
)

// newTestServer is a PBX with two tenants, a user of every role and some
// state. It is closed when the test ends.
func newTestServer(t *testing.T) *Server {
	t.Helper()
	s := NewUnstartedServer()
	s.AddTenant(Tenant{ID: t1, Name: "Acme", Domain: "acme.test"})
	s.AddTenant(Tenant{ID: t2, Name: "Globex", Domain: "globex.test"})
	s.AddQueue(t1, Queue{ID: "677046776364007424", Number: "8001", Name: "Sales", SLASeconds: 20})
	s.AddQueue(t1, Queue{Number: "8002", Name: "Support", SLASeconds: 60})
	s.AddQueue(t2, Queue{Number: "9001", Name: "Billing", SLASeconds: 30})
	for _, n := range []string{"101", "102", "103"} {
		s.AddExtension(t1, n)
	}
	s.AddExtension(t2, "201")
	s.AddUser(User{Username: "admin", Password: "sys", Role: SystemAdmin})
	s.AddUser(User{Username: "boss", Password: "tp", Role: TenantAdmin, TenantID: t1})
	s.AddUser(User{Username: "jason", ExtensionNumber: "101", Password: "ep", Role: ExtensionUser, TenantID: t1, Queues: []string{"8001"}})
	s.AddUser(User{Username: "auditor", Password: "ap", Role: TenantAdmin, TenantID: t1, Denied: []string{"cdr_events"}})
	s.AddUser(User{Username: "gboss", Password: "gp", Role: TenantAdmin, TenantID: t2})
	s.Start()
	t.Cleanup(s.Close)
	return s
}

type client struct {
	t    *testing.T
	conn *websocket.Conn
}

func dial(t *testing.T, s *Server) *client {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(s.URL, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", s.URL, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &client{t: t, conn: conn}
}

func (c *client) send(v any) {
	c.t.Helper()
	if err := c.conn.WriteJSON(v); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next reads one text frame as a JSON object.
func (c *client) next() map[string]any {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, data, err := c.conn.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if typ != websocket.TextMessage {
		c.t.Fatalf("got frame type %d, want text", typ)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		c.t.Fatalf("frame %s: %v", data, err)
	}
	return m
}

// nextEvent reads the next frame and checks its event_type.
func (c *client) nextEvent(eventType string) map[string]any {
	c.t.Helper()
	m := c.next()
	if m["event_type"] != eventType {
		c.t.Fatalf("got %v, want event_type %s", m, eventType)
	}
	return m
}

func (c *client) expectReply(command string, status float64, errText string) map[string]any {
	c.t.Helper()
	m := c.next()
	if m["command"] != command || m["status"] != status {
		c.t.Fatalf("got %v, want %s reply with status %v", m, command, status)
	}
	if e, _ := m["error"].(string); e != errText {
		c.t.Fatalf("got error %q, want %q", e, errText)
	}
	if _, ok := m["id"].(string); !ok {
		c.t.Fatalf("reply %v has no string id", m)
	}
	return m
}

func (c *client) auth(username, password, domain string) {
	c.t.Helper()
	a := map[string]string{"command": "auth", "username": username, "password": password}
	if domain != "" {
		a["domain"] = domain
	}
	c.send(a)
	c.expectReply("auth", 0, "")
}

func sub(topics []string, key string, values ...string) map[string]any {
	m := map[string]any{"command": "subscribe", "topics": topics}
	if key != "" {
		m[key] = values
	}
	return m
}

func waitFor(t *testing.T, s *Server, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitFor(ctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func TestAuth(t *testing.T) {
	s := newTestServer(t)
	tests := []struct {
		name string
		cmd  map[string]string
		ok   bool
	}{
		{"system admin", map[string]string{"username": "admin", "password": "sys"}, true},
		{"tenant admin by username", map[string]string{"username": "boss", "password": "tp", "domain": "acme.test"}, true},
		{"extension user by username", map[string]string{"username": "jason", "password": "ep", "domain": "acme.test"}, true},
		{"extension user by extension number", map[string]string{"extension_number": "101", "password": "ep", "domain": "acme.test"}, true},
		{"wrong password", map[string]string{"username": "admin", "password": "nope"}, false},
		{"no password", map[string]string{"username": "admin"}, false},
		{"system admin with a domain", map[string]string{"username": "admin", "password": "sys", "domain": "acme.test"}, false},
		{"tenant user without domain", map[string]string{"username": "boss", "password": "tp"}, false},
		{"tenant user with another tenant's domain", map[string]string{"username": "boss", "password": "tp", "domain": "globex.test"}, false},
		{"unknown extension number", map[string]string{"extension_number": "999", "password": "ep", "domain": "acme.test"}, false},
		{"extension number without domain", map[string]string{"extension_number": "101", "password": "ep"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, s)
			cmd := map[string]string{"command": "auth"}
			for k, v := range tt.cmd {
				cmd[k] = v
			}
			c.send(cmd)
			if tt.ok {
				got := c.expectReply("auth", 0, "")
				if got["id"] != "1" {
					t.Errorf("first reply id = %v, want \"1\"", got["id"])
				}
				return
			}
			c.expectReply("auth", -1, AuthError)
			// The session stays open and the next reply has the next id.
			c.send(map[string]string{"command": "auth", "username": "admin", "password": "sys"})
			if got := c.expectReply("auth", 0, ""); got["id"] != "2" {
				t.Errorf("second reply id = %v, want \"2\"", got["id"])
			}
		})
	}
	if got, want := s.AuthAttempts(), 4+2*7; got != want {
		t.Errorf("AuthAttempts() = %d, want %d", got, want)
	}
}

func TestCommandsBeforeAuthAreRefused(t *testing.T) {
	s := newTestServer(t)
	c := dial(t, s)
	c.send(sub([]string{"global_queue_events"}, "tenants", t1))
	c.expectReply("subscribe", -1, "not authenticated")
	c.send(map[string]any{"command": "unsubscribe", "topics": []string{"global_queue_events"}})
	c.expectReply("unsubscribe", -1, "not authenticated")
	c.send(map[string]any{"command": "dance"})
	c.expectReply("dance", -1, "unknown command")
	c.send(map[string]any{"command": "auth", "username": 42})
	if m := c.next(); m["status"] != -1.0 {
		t.Fatalf("malformed command: got %v, want an error reply", m)
	}
	if n := len(s.Subscriptions()); n != 0 {
		t.Fatalf("%d subscriptions after refused commands", n)
	}
}

func TestSetAuthError(t *testing.T) {
	s := newTestServer(t)
	s.SetAuthError("license expired")
	c := dial(t, s)
	c.send(map[string]string{"command": "auth", "username": "admin", "password": "sys"})
	c.expectReply("auth", -1, "license expired")
	s.SetAuthError("")
	c.auth("admin", "sys", "")
}

func TestSetAuthRepliesOff(t *testing.T) {
	s := newTestServer(t)
	s.SetAuthReplies(false)
	c := dial(t, s)
	c.send(map[string]string{"command": "auth", "username": "admin", "password": "sys"})
	waitFor(t, s, "the auth attempt", func() bool { return s.AuthAttempts() == 1 })
	// The auth was swallowed: the next frame answers the subscribe, as
	// from an unauthenticated session.
	c.send(sub([]string{"global_cdr_events"}, "tenants", t1))
	c.expectReply("subscribe", -1, "not authenticated")
}

func TestSubscribePermissions(t *testing.T) {
	type login struct{ user, pass, domain string }
	var (
		admin   = login{"admin", "sys", ""}
		boss    = login{"boss", "tp", "acme.test"}
		jason   = login{"jason", "ep", "acme.test"}
		auditor = login{"auditor", "ap", "acme.test"}
	)
	denied := func(topic string) string { return "permission denied: " + topic }
	tests := []struct {
		name    string
		as      login
		cmd     map[string]any
		wantErr string
	}{
		{"admin global topics", admin, sub([]string{"global_queue_events", "global_extension_events", "global_cdr_events",
			"global_queue_management_events", "global_extension_management_events"}, "tenants", t1, t2), ""},
		{"admin global without tenants", admin, sub([]string{"global_cdr_events"}, ""), "tenants required: global_cdr_events"},
		{"admin tenant topic", admin, sub([]string{"cdr_events"}, ""), denied("cdr_events")},
		{"tenant admin tenant topics", boss, sub([]string{"queue_management_events", "cdr_events", "queue_events", "extension_events"}, ""), ""},
		{"tenant admin any queue", boss, sub([]string{"queue_events"}, "queues", "8001", "8002"), ""},
		{"tenant admin global topic", boss, sub([]string{"global_queue_events"}, "tenants", t1), denied("global_queue_events")},
		{"extension user own queue", jason, sub([]string{"queue_events"}, "queues", "8001"), ""},
		{"extension user other queue", jason, sub([]string{"queue_events"}, "queues", "8001", "8002"), denied("queue_events")},
		{"extension user extensions", jason, sub([]string{"extension_events"}, "extensions", "101", "102"), ""},
		{"extension user cdr", jason, sub([]string{"cdr_events"}, ""), denied("cdr_events")},
		{"extension user queue management", jason, sub([]string{"queue_management_events"}, ""), denied("queue_management_events")},
		{"denied topic", auditor, sub([]string{"cdr_events"}, ""), denied("cdr_events")},
		{"one refused topic refuses all", auditor, sub([]string{"extension_events", "cdr_events"}, ""), denied("cdr_events")},
		{"unknown topic", boss, sub([]string{"weather_events"}, ""), "unknown topic: weather_events"},
		{"no topics", boss, sub(nil, ""), "topics required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A server each: the session of the case before may still be
			// closing, its subscriptions listed under the same user.
			s := newTestServer(t)
			c := dial(t, s)
			c.auth(tt.as.user, tt.as.pass, tt.as.domain)
			c.send(tt.cmd)
			if tt.wantErr != "" {
				c.expectReply("subscribe", -1, tt.wantErr)
				c.send(map[string]any{"command": "unsubscribe", "topics": []string{"cdr_events"}})
				c.expectReply("unsubscribe", 0, "") // nothing was subscribed before this reply
				for _, sb := range s.Subscriptions() {
					if sb.Username == tt.as.user {
						t.Fatalf("refused subscribe left %+v", sb)
					}
				}
				return
			}
			c.expectReply("subscribe", 0, "")
		})
	}
}

func TestSnapshotsOnSubscribe(t *testing.T) {
	s := newTestServer(t)
	s.Now = func() time.Time { return time.Unix(1676206249, 0) }
	s.Enqueue(t1, "8001", Caller{SessionID: "6763987198342", Number: "123456", Name: "Thomas Young"})
	s.Enqueue(t1, "8001", Caller{SessionID: "6763987198343", Number: "654321", Callback: true, Since: time.Unix(1676206200, 0)})
	s.SetAgent(t1, "8001", Agent{Extension: "101", State: "QUEUE_CALL", SessionID: "677046776364007", CallerNumber: "555"})
	s.SetAgentState(t1, "8001", "102", "READY")
	s.SetExtensionOnline(t1, "101", true)
	s.SetCallStatus(t1, "101", "ON_CALL")
	s.SetPresence(t1, "102", "AWAY", "back soon")

	c := dial(t, s)
	c.auth("admin", "sys", "")
	c.send(sub([]string{"global_queue_events", "global_extension_events", "global_queue_management_events"}, "tenants", t1))
	c.expectReply("subscribe", 0, "")

	q := c.nextEvent("queue_status")
	want := map[string]any{
		"event_type": "queue_status", "tenant_id": t1, "queue_id": "677046776364007424",
		"queue_number": "8001", "queue_name": "Sales",
		"waiting_list": []any{
			map[string]any{"position": "1", "session_id": "6763987198342", "caller_number": "123456",
				"caller_name": "Thomas Young", "timestamp": "1676206249", "type": "normal"},
			map[string]any{"position": "2", "session_id": "6763987198343", "caller_number": "654321",
				"timestamp": "1676206200", "type": "callback"},
		},
		"agents": []any{
			map[string]any{"state": "QUEUE_CALL", "agent_extension_number": "101", "session_id": "677046776364007",
				"caller_number": "555", "caller_name": "", "timestamp": "1676206249"},
			map[string]any{"state": "READY", "agent_extension_number": "102", "session_id": "",
				"caller_number": "", "caller_name": "", "timestamp": "1676206249"},
		},
	}
	if !reflect.DeepEqual(q, want) {
		t.Errorf("queue_status\n got %v\nwant %v", q, want)
	}
	if q := c.nextEvent("queue_status"); q["queue_number"] != "8002" || len(q["waiting_list"].([]any)) != 0 {
		t.Errorf("second queue_status = %v, want empty 8002", q)
	}

	es := c.nextEvent("extension_status")
	status := es["status"].([]any)
	if es["tenant_id"] != t1 || len(status) != 3 {
		t.Fatalf("extension_status = %v, want 3 extensions of %s", es, t1)
	}
	e101 := status[0].(map[string]any)
	if e101["extension"] != "sip:101@acme.test" || e101["online"] != true || e101["call_status"] != "ON_CALL" ||
		e101["time"] != "1676206249" || e101["extension_id"] == "" {
		t.Errorf("101 = %v", e101)
	}
	if e102 := status[1].(map[string]any); e102["presence"] != "AWAY" || e102["presence_note"] != "back soon" || e102["online"] != false {
		t.Errorf("102 = %v", e102)
	}

	for _, n := range []string{"8001", "8002"} {
		m := c.nextEvent("queue_created")
		if m["queue_number"] != n || m["tenant_id"] != t1 {
			t.Errorf("queue_created = %v, want %s", m, n)
		}
	}

	got := s.Subscriptions()
	if len(got) != 3 || got[0].Topic != "global_extension_events" || !reflect.DeepEqual(got[0].Tenants, []string{t1}) {
		t.Errorf("Subscriptions() = %+v", got)
	}
}

func TestTenantSubscribeSnapshotsOnlyWhatWasNamed(t *testing.T) {
	s := newTestServer(t)
	s.SetExtensionOnline(t1, "102", true)
	c := dial(t, s)
	c.auth("jason", "ep", "acme.test")
	c.send(sub([]string{"queue_events"}, "")) // an extension user's own queues
	c.expectReply("subscribe", 0, "")
	if m := c.nextEvent("queue_status"); m["queue_number"] != "8001" {
		t.Fatalf("got %v, want 8001 only", m)
	}
	c.send(sub([]string{"extension_events"}, "extensions", "102", "999"))
	c.expectReply("subscribe", 0, "")
	m := c.nextEvent("extension_status")
	if st := m["status"].([]any); len(st) != 1 || st[0].(map[string]any)["extension"] != "sip:102@acme.test" {
		t.Fatalf("got %v, want 102 only", m)
	}
}

func TestEventsReachOnlyMatchingSubscribers(t *testing.T) {
	s := newTestServer(t)
	boss := dial(t, s)
	boss.auth("boss", "tp", "acme.test")
	boss.send(sub([]string{"queue_events"}, "queues", "8002"))
	boss.expectReply("subscribe", 0, "")
	boss.nextEvent("queue_status")
	boss.send(sub([]string{"extension_events"}, "extensions", "103"))
	boss.expectReply("subscribe", 0, "")
	boss.nextEvent("extension_status")

	admin := dial(t, s)
	admin.auth("admin", "sys", "")
	admin.send(sub([]string{"global_queue_events", "global_extension_events"}, "tenants", t2))
	admin.expectReply("subscribe", 0, "")
	admin.nextEvent("queue_status")
	admin.nextEvent("extension_status")

	// Events nobody above wants, then one each wants: each client's next
	// frame must be its own, proving the others were never sent to it.
	s.Enqueue(t1, "8001", Caller{Number: "1"})
	s.SetExtensionOnline(t1, "101", true)
	s.PublishEvent("queue_events", t1, map[string]any{"event_type": "x_custom", "queue_number": "8001"})
	s.SetPresence(t2, "201", "LUNCH", "")
	s.Enqueue(t1, "8002", Caller{Number: "2"})
	s.SetCallStatus(t1, "103", "RINGING")

	if m := boss.nextEvent("queue_caller_status"); m["queue_id"] != s.Queues(t1)[1].ID {
		t.Errorf("boss got %v, want the caller of 8002", m)
	}
	if m := boss.nextEvent("extension_call"); m["extension"] != "sip:103@acme.test" || m["call_status"] != "RINGING" {
		t.Errorf("boss got %v, want 103 ringing", m)
	}
	if m := admin.nextEvent("extension_presence"); m["tenant_id"] != t2 || m["presence"] != "LUNCH" {
		t.Errorf("admin got %v, want 201 at lunch", m)
	}
}

func TestQueueEventShapes(t *testing.T) {
	s := newTestServer(t)
	s.Now = func() time.Time { return time.Unix(1676206249, 0) }
	c := dial(t, s)
	c.auth("admin", "sys", "")
	c.send(sub([]string{"global_queue_events", "global_extension_events"}, "tenants", t2))
	c.expectReply("subscribe", 0, "")
	c.nextEvent("queue_status")
	c.nextEvent("extension_status")
	qid := s.Queues(t2)[0].ID

	s.Enqueue(t2, "9001", Caller{SessionID: "s1", Number: "555", Name: "Ann"})
	s.Enqueue(t2, "9001", Caller{SessionID: "s2", Number: "556"})
	c.nextEvent("queue_caller_status")
	m := c.nextEvent("queue_caller_status")
	want := map[string]any{"event_type": "queue_caller_status", "tenant_id": t2, "queue_id": qid,
		"updated_callers": []any{map[string]any{"position": "2", "session_id": "s2", "caller_number": "556",
			"reason": "enqueue", "timestamp": "1676206249", "type": "normal"}}}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("enqueue\n got %v\nwant %v", m, want)
	}
	if !s.Dequeue(t2, "9001", "s1", ReasonHangup) || s.Dequeue(t2, "9001", "s1", ReasonHangup) {
		t.Fatal("Dequeue should find s1 once")
	}
	m = c.nextEvent("queue_caller_status")
	if cl := m["updated_callers"].([]any)[0].(map[string]any); cl["reason"] != "hangup" || cl["session_id"] != "s1" || cl["position"] != "1" {
		t.Errorf("dequeue = %v", m)
	}
	if n := s.Waiting(t2, "9001"); n != 1 {
		t.Errorf("Waiting = %d, want 1", n)
	}

	s.SetAgentState(t2, "9001", "201", "READY")
	m = c.nextEvent("queue_agent_status")
	if a := m["updated_agents"].([]any)[0].(map[string]any); a["state"] != "READY" || a["agent_extension_number"] != "201" || m["queue_id"] != qid {
		t.Errorf("queue_agent_status = %v", m)
	}
	m = c.nextEvent("extension_agent_status")
	if !reflect.DeepEqual(m["agent_status"], []any{map[string]any{"queue_number": "9001", "status": "READY"}}) ||
		m["extension"] != "sip:201@globex.test" {
		t.Errorf("extension_agent_status = %v", m)
	}
	s.RemoveAgent(t2, "9001", "201")
	m = c.nextEvent("queue_agent_status")
	if !reflect.DeepEqual(m["removed_agents"], []any{map[string]any{"agent_extension_number": "201"}}) {
		t.Errorf("removal = %v", m)
	}
	c.nextEvent("extension_agent_status")

	s.BreachSLA(t2, "9001", "556")
	s.BreachSLA(t2, "9001", "556")
	c.nextEvent("queue_sla_breached")
	m = c.nextEvent("queue_sla_breached")
	want = map[string]any{"event_type": "queue_sla_breached", "queue_id": qid, "tenant_id": t2, "caller": "556",
		"total_callers_breached": 2.0, "sla_time_secs": 30.0, "waiting_callers": 1.0, "timestamp": "1676206249"}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("queue_sla_breached\n got %v\nwant %v", m, want)
	}
}

func TestManagementEvents(t *testing.T) {
	s := newTestServer(t)
	c := dial(t, s)
	c.auth("admin", "sys", "")
	c.send(sub([]string{"global_queue_management_events", "global_extension_management_events"}, "tenants", t2))
	c.expectReply("subscribe", 0, "")
	c.nextEvent("queue_created") // the snapshot; extensions have none

	s.AddQueue(t2, Queue{Number: "9002", Name: "New"})
	s.UpdateQueue(t2, "9002")
	s.RemoveQueue(t2, "9002")
	for _, typ := range []string{"queue_created", "queue_updated", "queue_destroy"} {
		if m := c.nextEvent(typ); m["queue_number"] != "9002" || m["tenant_id"] != t2 {
			t.Errorf("%s = %v", typ, m)
		}
	}
	s.AddExtensionInfo(t2, Extension{Number: "202", DisplayName: "Jason Wek", Username: "testuser1", Department: "Sales"})
	s.AddExtensionInfo(t2, Extension{Number: "202", Email: "j@globex.test"})
	s.RemoveExtension(t2, "202")
	m := c.nextEvent("extension_created")
	if m["disp_name"] != "Jason Wek" || m["username"] != "testuser1" || m["department"] != "Sales" || m["enabled"] != true || m["extension_id"] == "" {
		t.Errorf("extension_created = %v", m)
	}
	if m := c.nextEvent("extension_updated"); m["email"] != "j@globex.test" || m["disp_name"] != "Jason Wek" {
		t.Errorf("extension_updated = %v", m)
	}
	c.nextEvent("extension_destroyed")
}

func TestCDREvents(t *testing.T) {
	s := newTestServer(t)
	s.Now = func() time.Time { return time.Unix(1705051422, 0) }
	c := dial(t, s)
	c.auth("boss", "tp", "acme.test")
	c.send(sub([]string{"cdr_events"}, ""))
	c.expectReply("subscribe", 0, "")

	call := s.StartCall(t1, Call{Direction: "in", Caller: "sip:0044123@acme.test", Callee: "sip:8001@acme.test", DID: "0800"})
	m := c.nextEvent("call_start")
	if m["session_id"] != call.SessionID || call.SessionID == "" || m["direction"] != "in" || m["time"] != "1705051422" || m["call_id"] == "" {
		t.Errorf("call_start = %v (call %+v)", m, call)
	}
	if n := s.ActiveCalls(t1); n != 1 {
		t.Errorf("ActiveCalls = %d after call_start, want 1", n)
	}
	s.UpdateCall(t1, call)
	m = c.nextEvent("call_update_info")
	if _, ok := m["call_id"]; ok || m["cdr_id"] != call.CDRID {
		t.Errorf("call_update_info = %v, want cdr_id and no call_id", m)
	}

	start := time.Unix(1705051422, 0)
	s.EndCall(t1, CDR{
		Call: call, Start: start, Ring: start.Add(2 * time.Second), Answered: start.Add(7 * time.Second),
		Ended: start.Add(28 * time.Second), CallStatus: "answered", EndedReason: "caller_disconnect",
		TrunkName: "122:883631675865563136",
		Targets: []CallTarget{{CallType: "queue_call", Callee: "8001", Destination: "101", Ring: start.Add(2 * time.Second),
			Answered: start.Add(7 * time.Second), Ended: start.Add(28 * time.Second), Status: "answered"}},
	})
	m = c.nextEvent("call_cdr")
	for k, v := range map[string]any{"tenant_name": "Acme", "talk_duration": 21.0, "ring_duration": "5",
		"call_status": "answered", "status_code": "0", "ended_reason": "caller_disconnect", "answered_time": "1705051429",
		"trunk_name": "122:883631675865563136", "direction": "in", "did": "0800", "session_id": call.SessionID} {
		if m[k] != v {
			t.Errorf("call_cdr %s = %#v, want %#v", k, m[k], v)
		}
	}
	if n := s.ActiveCalls(t1); n != 0 {
		t.Errorf("ActiveCalls = %d after call_cdr, want 0", n)
	}
	tg := m["call_targets"].([]any)[0].(map[string]any)
	if tg["talk_duration"] != "21" || tg["status_code"] != 0.0 || tg["call_type"] != "queue_call" || tg["id"] == "" {
		t.Errorf("call_targets[0] = %v", tg)
	}

	s.EndCall(t1, CDR{Call: Call{Direction: "ext"}, Start: start, Ring: start, Ended: start.Add(30 * time.Second),
		StatusCode: 486, EndedReason: "cancelled", Legacy: true})
	m = c.nextEvent("call_cdr")
	for _, k := range []string{"talk_duration", "ring_duration", "call_status", "did", "ended_reason"} {
		if _, ok := m[k]; ok {
			t.Errorf("legacy call_cdr has %s: %v", k, m)
		}
	}
	if m["end_reason"] != "cancelled" || m["status_code"] != 486.0 || m["answered_time"] != "0" {
		t.Errorf("legacy call_cdr = %v", m)
	}
}

func TestPublishRawAndFaults(t *testing.T) {
	s := newTestServer(t)
	c := dial(t, s)
	c.auth("admin", "sys", "")
	c.send(sub([]string{"global_cdr_events"}, "tenants", t1))
	c.expectReply("subscribe", 0, "")

	s.PublishRaw("cdr_events", t2, []byte(`{"event_type":"call_start","tenant_id":"`+t2+`"}`))
	s.PublishRaw("global_cdr_events", t1, []byte(`{"event_type": "call_cdr", oops`))
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, data, err := c.conn.ReadMessage(); err != nil || string(data) != `{"event_type": "call_cdr", oops` {
		t.Fatalf("got %q, %v; want the malformed frame as is (and not the other tenant's)", data, err)
	}

	s.SendRaw([]byte("not json"))
	s.SendBinary([]byte{0, 1, 2})
	if typ, data, err := c.conn.ReadMessage(); err != nil || typ != websocket.TextMessage || string(data) != "not json" {
		t.Fatalf("SendRaw: got %d %q %v", typ, data, err)
	}
	if typ, data, err := c.conn.ReadMessage(); err != nil || typ != websocket.BinaryMessage || string(data) != "\x00\x01\x02" {
		t.Fatalf("SendBinary: got %d %q %v", typ, data, err)
	}

	s.DropSessions()
	_, _, err := c.conn.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseAbnormalClosure {
		t.Fatalf("after DropSessions: read error %v, want a broken connection without close frame", err)
	}
	waitFor(t, s, "the session to end", func() bool { return s.Sessions() == 0 })
	if got := s.Connections(); got != 1 {
		t.Errorf("Connections() = %d, want 1", got)
	}
}

func TestPingReplies(t *testing.T) {
	s := newTestServer(t)
	c := dial(t, s)
	c.auth("admin", "sys", "")
	pongs := make(chan string, 10)
	c.conn.SetPongHandler(func(data string) error { pongs <- data; return nil })
	frames := make(chan string, 10)
	go func() {
		defer close(frames)
		for {
			_, data, err := c.conn.ReadMessage()
			if err != nil {
				return
			}
			frames <- string(data)
		}
	}()
	ping := func(data string) {
		if err := c.conn.WriteControl(websocket.PingMessage, []byte(data), time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}

	ping("a")
	if got := <-pongs; got != "a" {
		t.Fatalf("pong %q, want a", got)
	}

	s.SetPingReplies(false)
	ping("b")
	waitFor(t, s, "the ping", func() bool { return s.Pings() == 2 })
	s.SendRaw([]byte(`{"event_type":"lost"}`))
	s.SetPingReplies(true)
	ping("c")
	// The pong answering c comes after whatever the server would have
	// sent while silent: nothing may precede it.
	if got := <-pongs; got != "c" {
		t.Fatalf("pong %q, want c: the silent server answered", got)
	}
	s.SendRaw([]byte(`{"event_type":"kept"}`))
	if got := <-frames; got != `{"event_type":"kept"}` {
		t.Fatalf("frame %q, want the one sent after silence ended", got)
	}
	_ = c.conn.Close()
	for range frames {
	}
}

func TestSubscribeRepliesOff(t *testing.T) {
	s := newTestServer(t)
	s.SetSubscribeReplies(false)
	c := dial(t, s)
	c.auth("boss", "tp", "acme.test")
	c.send(sub([]string{"queue_management_events"}, ""))
	c.nextEvent("queue_created")
	c.nextEvent("queue_created")
	s.SetSubscribeReplies(true)
	c.send(sub([]string{"cdr_events"}, ""))
	if m := c.expectReply("subscribe", 0, ""); m["id"] != "3" {
		t.Errorf("reply id %v, want 3 (the unanswered subscribe spent 2)", m["id"])
	}
}

func TestUnsubscribe(t *testing.T) {
	s := newTestServer(t)
	c := dial(t, s)
	c.auth("boss", "tp", "acme.test")
	c.send(sub([]string{"queue_events"}, "queues", "8001", "8002"))
	c.expectReply("subscribe", 0, "")
	c.nextEvent("queue_status")
	c.nextEvent("queue_status")
	c.send(map[string]any{"command": "unsubscribe", "topics": []string{"queue_events"}, "queues": []string{"8001"}})
	c.expectReply("unsubscribe", 0, "")
	if got := s.Subscriptions(); len(got) != 1 || !reflect.DeepEqual(got[0].Queues, []string{"8002"}) {
		t.Fatalf("Subscriptions() = %+v, want queue_events for 8002", got)
	}
	s.BreachSLA(t1, "8001", "123")
	s.BreachSLA(t1, "8002", "456")
	if m := c.nextEvent("queue_sla_breached"); m["caller"] != "456" {
		t.Fatalf("got %v, want the breach of 8002 only", m)
	}
	c.send(map[string]any{"command": "unsubscribe", "topics": []string{"queue_events"}})
	c.expectReply("unsubscribe", 0, "")
	if got := s.Subscriptions(); len(got) != 0 {
		t.Fatalf("Subscriptions() = %+v, want none", got)
	}
}

func TestTLS(t *testing.T) {
	s := NewTLSServer()
	defer s.Close()
	s.AddUser(User{Username: "admin", Password: "sys", Role: SystemAdmin})
	if !strings.HasPrefix(s.URL, "wss://127.0.0.1:") {
		t.Fatalf("URL = %s", s.URL)
	}
	if _, _, err := websocket.DefaultDialer.Dial(s.URL, nil); err == nil {
		t.Fatal("an untrusted certificate was accepted")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CACertPEM()) {
		t.Fatal("CACertPEM is not PEM")
	}
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}}
	conn, _, err := d.Dial(s.URL, nil)
	if err != nil {
		t.Fatalf("dial with the CA: %v", err)
	}
	defer conn.Close()
	c := &client{t: t, conn: conn}
	c.auth("admin", "sys", "")
}

func TestCloseEndsSessions(t *testing.T) {
	s := newTestServer(t)
	c := dial(t, s)
	c.auth("admin", "sys", "")
	s.Close()
	if _, _, err := c.conn.ReadMessage(); err == nil {
		t.Fatal("session survived Close")
	}
	if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		t.Fatal("still listening after Close")
	}
}

// A subscriber that stops reading holds publishers back (nothing is lost)
// but must not hold back Close.
func TestCloseReleasesPublisherBlockedByStuckSubscriber(t *testing.T) {
	s := newTestServer(t)
	c := dial(t, s)
	c.auth("admin", "sys", "")
	c.send(sub([]string{"global_cdr_events"}, "tenants", t1))
	c.expectReply("subscribe", 0, "")
	s.mu.Lock()
	var sess *session
	for x := range s.sessions {
		sess = x
	}
	s.mu.Unlock()

	big := []byte(`{"event_type":"call_cdr","user_data":"` + strings.Repeat("x", 64<<10) + `"}`)
	published := make(chan struct{})
	go func() {
		defer close(published)
		for range 4000 { // 256 MiB: more than loopback buffers and the session queue hold
			s.SendRaw(big)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(sess.out) < cap(sess.out) {
		select {
		case <-ctx.Done():
			t.Fatal("the session queue never filled")
		case <-published:
			t.Fatal("every frame was taken although nobody reads")
		case <-time.After(time.Millisecond):
		}
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(writeTimeout / 2):
		t.Fatal("Close waited for the stuck subscriber")
	}
	<-published
}

func TestStopAndResume(t *testing.T) {
	s := newTestServer(t)
	c := dial(t, s)
	c.auth("boss", "tp", "acme.test")

	s.Stop()
	if _, _, err := c.conn.ReadMessage(); err == nil {
		t.Fatal("session survived Stop")
	}
	if _, _, err := websocket.DefaultDialer.Dial(s.URL, nil); err == nil {
		t.Fatal("a stopped PBX accepted a connection")
	}
	// The PBX comes back with a caller that arrived while it was down.
	s.Enqueue(t1, "8002", Caller{SessionID: "while-down", Number: "777"})
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	c = dial(t, s)
	c.auth("boss", "tp", "acme.test")
	c.send(sub([]string{"queue_events"}, "queues", "8002"))
	c.expectReply("subscribe", 0, "")
	m := c.nextEvent("queue_status")
	if wl := m["waiting_list"].([]any); len(wl) != 1 || wl[0].(map[string]any)["session_id"] != "while-down" {
		t.Fatalf("after Resume: %v, want the caller who arrived while down", m)
	}
	if got := s.Connections(); got != 2 {
		t.Errorf("Connections() = %d, want 2", got)
	}
}

// A queue created or changed after subscribe reaches the subscribers of
// every queue of its tenant as a queue_status, with its id and name: the
// management events carry only the number. A subscriber of named queues
// gets nothing about another queue.
func TestNewQueueStatusReachesSubscribersOfEveryQueue(t *testing.T) {
	s := newTestServer(t)
	admin := dial(t, s)
	admin.auth("admin", "sys", "")
	admin.send(sub([]string{"global_queue_events"}, "tenants", t2))
	admin.expectReply("subscribe", 0, "")
	admin.nextEvent("queue_status") // 9001
	boss := dial(t, s)
	boss.auth("gboss", "gp", "globex.test")
	boss.send(sub([]string{"queue_events"}, ""))
	boss.expectReply("subscribe", 0, "")
	boss.nextEvent("queue_status") // 9001
	named := dial(t, s)
	named.auth("gboss", "gp", "globex.test")
	named.send(sub([]string{"queue_events"}, "queues", "9001"))
	named.expectReply("subscribe", 0, "")
	named.nextEvent("queue_status") // 9001

	s.AddQueue(t2, Queue{ID: "900000000000000002", Number: "9002", Name: "Returns"})
	s.AddQueue(t2, Queue{Number: "9002", Name: "Refunds"})
	s.Enqueue(t2, "9001", Caller{Number: "1"})
	for who, c := range map[string]*client{"global_queue_events": admin, "queue_events": boss} {
		for _, name := range []string{"Returns", "Refunds"} {
			m := c.nextEvent("queue_status")
			if m["queue_number"] != "9002" || m["queue_id"] != "900000000000000002" || m["queue_name"] != name || m["tenant_id"] != t2 {
				t.Errorf("%s subscriber got %v, want queue_status of 9002 named %s", who, m, name)
			}
		}
		c.nextEvent("queue_caller_status")
	}
	// Its next frame is the caller of 9001: nothing about 9002 came first.
	named.nextEvent("queue_caller_status")
}
