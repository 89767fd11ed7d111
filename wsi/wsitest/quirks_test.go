package wsitest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

var allGlobalTopics = []string{"global_queue_events", "global_extension_events", "global_cdr_events",
	"global_queue_management_events", "global_extension_management_events"}

// quirkPBX is newTestServer speaking q, its clock at t0 (a test moves it
// with *now), and the system administrator subscribed to every global
// topic of tenant t1, its snapshots read.
func quirkPBX(t *testing.T, q Quirks) (s *Server, c *client, now *time.Time) {
	t.Helper()
	s = newTestServer(t)
	clock := time.Unix(1676206249, 0)
	s.mu.Lock()
	s.Now = func() time.Time { return clock }
	s.mu.Unlock()
	s.SetQuirks(q)
	c = dial(t, s)
	c.auth("admin", "sys", "")
	c.send(sub(allGlobalTopics, "tenants", t1))
	c.expectReply("subscribe", 0, "")
	for _, typ := range []string{"queue_status", "queue_status", "extension_status", "queue_created", "queue_created"} {
		c.nextEvent(typ)
	}
	return s, c, &clock
}

// nextRaw reads one text frame as it came.
func (c *client) nextRaw() []byte {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := c.conn.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return data
}

func callers(m map[string]any) []map[string]any {
	var out []map[string]any
	for _, c := range m["updated_callers"].([]any) {
		out = append(out, c.(map[string]any))
	}
	return out
}

func TestDefaultQuirksAreNone(t *testing.T) {
	if (Quirks{}) != NewUnstartedServer().Quirks() {
		t.Error("a new server speaks some quirk")
	}
	all := AllQuirks()
	v := reflect.ValueOf(all)
	for i := range v.NumField() {
		if v.Field(i).IsZero() && v.Type().Field(i).Name != "EndReasonsPastTense" {
			t.Errorf("AllQuirks leaves %s off", v.Type().Field(i).Name)
		}
	}
}

func TestQuirkLeaveRepeatsEnqueueTime(t *testing.T) {
	for _, on := range []bool{false, true} {
		s, c, now := quirkPBX(t, Quirks{LeaveRepeatsEnqueueTime: on})
		enqueued := *now
		s.Enqueue(t1, "8001", Caller{SessionID: "s1", Number: "555"})
		c.nextEvent("queue_caller_status")
		*now = now.Add(40 * time.Second)
		s.Dequeue(t1, "8001", "s1", ReasonAgentAnswered)
		got := callers(c.nextEvent("queue_caller_status"))[0]["timestamp"]
		want := s.stamp(*now)
		if on {
			want = s.stamp(enqueued)
		}
		if got != want {
			t.Errorf("quirk %v: leave timestamp %v, want %v", on, got, want)
		}
		if d := s.QueueTruth(t1, "8001").Left["answered"]; d != (Durations{Count: 1, Sum: 40 * time.Second}) {
			t.Errorf("quirk %v: truth %+v, want one answered after 40s", on, d)
		}
	}
}

func TestQuirkClockSkew(t *testing.T) {
	s, c, now := quirkPBX(t, Quirks{ClockSkew: -2 * time.Minute})
	pbx := strconvUnix(now.Add(-2 * time.Minute))
	s.Enqueue(t1, "8001", Caller{SessionID: "s1", Number: "555"})
	if got := callers(c.nextEvent("queue_caller_status"))[0]["timestamp"]; got != pbx {
		t.Errorf("enqueue timestamp %v, want %s (two minutes behind)", got, pbx)
	}
	s.SetPresence(t1, "101", "AWAY", "")
	if got := c.nextEvent("extension_presence")["time"]; got != pbx {
		t.Errorf("presence time %v, want %s", got, pbx)
	}
	s.EndCall(t1, CDR{Call: Call{Direction: "in"}, Start: *now, Ended: *now, CallStatus: "noanswer"})
	if m := c.nextEvent("call_cdr"); m["start_time"] != pbx || m["answered_time"] != "0" {
		t.Errorf("call_cdr times %v %v, want %s and 0 (did not happen)", m["start_time"], m["answered_time"], pbx)
	}
	if w := s.QueueTruth(t1, "8001").Waiting; len(w) != 1 || !w[0].Since.Equal(*now) {
		t.Errorf("truth waiting %+v, want one caller since the true time %v", w, *now)
	}
}

func strconvUnix(t time.Time) string { return (&Server{}).stamp(t) }

func TestQuirkNewQueueIDOnly(t *testing.T) {
	s, c, _ := quirkPBX(t, Quirks{NewQueueIDOnly: true})
	s.AddQueue(t1, Queue{ID: "900000000000000009", Number: "8009", Name: "Late", SLASeconds: 20})
	if m := c.nextEvent("queue_created"); m["queue_number"] != "8009" || m["queue_id"] != nil {
		t.Errorf("queue_created = %v, want the number only", m)
	}
	s.Enqueue(t1, "8009", Caller{SessionID: "s1", Number: "555"})
	if m := c.nextEvent("queue_caller_status"); m["queue_id"] != "900000000000000009" || m["queue_number"] != nil {
		t.Errorf("caller event = %v, want the id only (and no queue_status before it)", m)
	}
	s.AddQueue(t1, Queue{Number: "8009", Name: "Later"}) // an update of a known queue tells it
	c.nextEvent("queue_updated")
	if m := c.nextEvent("queue_status"); m["queue_name"] != "Later" {
		t.Errorf("queue_status after an update = %v", m)
	}

	// A later subscribe pairs the id and the number.
	d := dial(t, s)
	d.auth("admin", "sys", "")
	d.send(sub([]string{"global_queue_events"}, "tenants", t1))
	d.expectReply("subscribe", 0, "")
	d.nextEvent("queue_status")
	d.nextEvent("queue_status")
	if m := d.nextEvent("queue_status"); m["queue_number"] != "8009" || m["queue_id"] != "900000000000000009" {
		t.Errorf("snapshot = %v, want 8009 with its id", m)
	}
}

func TestQuirkDuplicateKeys(t *testing.T) {
	s, c, now := quirkPBX(t, Quirks{DuplicateKeys: true})
	count := func(frame []byte, key string) int { return bytes.Count(frame, []byte(`"`+key+`":`)) }
	last := func(frame []byte, key string) any {
		var m map[string]any // encoding/json keeps the last of repeated keys
		if err := json.Unmarshal(frame, &m); err != nil {
			t.Fatalf("%s: %v", frame, err)
		}
		return m[key]
	}

	s.AddExtensionInfo(t1, Extension{Number: "150", Username: "testuser1"})
	if f := c.nextRaw(); count(f, "username") != 2 || last(f, "username") != "testuser1" {
		t.Errorf("extension_created %s: want username twice, the same value", f)
	}
	s.SetPresence(t1, "101", "LUNCH", "")
	if f := c.nextRaw(); count(f, "presence") != 2 || last(f, "presence") != "LUNCH" {
		t.Errorf("extension_presence %s: want presence twice, LUNCH last", f)
	}
	s.EndCall(t1, CDR{Call: Call{Direction: "in"}, Start: *now, Ended: *now, CallStatus: "fail"})
	if f := c.nextRaw(); count(f, "call_status") != 2 || last(f, "call_status") != "fail" {
		t.Errorf("call_cdr %s: want call_status twice, fail last", f)
	}
	if got := s.ExtensionTruth(t1).ByPresence["lunch"]; got != 1 {
		t.Errorf("truth: %d at lunch, want 1", got)
	}
}

func TestQuirkPresenceOnline(t *testing.T) {
	s, c, _ := quirkPBX(t, Quirks{PresenceOnline: true})
	s.SetPresence(t1, "101", "AWAY", "")
	s.SetPresence(t1, "101", "AVAILABLE", "")
	if p := c.nextEvent("extension_presence")["presence"]; p != "AWAY" {
		t.Errorf("presence %v, want AWAY as it is", p)
	}
	if p := c.nextEvent("extension_presence")["presence"]; p != "ONLINE" {
		t.Errorf("presence %v, want AVAILABLE sent as ONLINE", p)
	}
	s.SetExtensionOnline(t1, "102", true)
	if e := c.nextEvent("extension_status")["status"].([]any)[0].(map[string]any); e["presence"] != "ONLINE" {
		t.Errorf("status entry %v, want presence ONLINE", e)
	}
	if got := s.ExtensionTruth(t1).ByPresence; got["available"] != 3 || len(got) != 1 {
		t.Errorf("truth by presence %v, want all 3 available", got)
	}
}

func TestPushOnline(t *testing.T) {
	s, c, _ := quirkPBX(t, Quirks{})
	s.SetExtensionOnline(t1, "101", true)
	c.nextEvent("extension_status")
	s.SetPushOnline(t1, "102", true)
	if e := c.nextEvent("extension_status")["status"].([]any)[0].(map[string]any); e["online"] != false || e["push_online"] != true {
		t.Errorf("status entry %v, want not registered, reachable by push", e)
	}
	if got := s.ExtensionTruth(t1); got.Known != 3 || got.Registered != 1 || got.PushOnline != 1 {
		t.Errorf("truth %+v, want 3 known, 1 registered, 1 push-only", got)
	}
}

func TestQuirkAdminGlobalsRefused(t *testing.T) {
	s := newTestServer(t)
	s.SetQuirks(Quirks{AdminGlobalsRefused: true})
	c := dial(t, s)
	c.auth("admin", "sys", "")
	for _, topic := range allGlobalTopics {
		c.send(sub([]string{topic}, "tenants", t1))
		if topic == "global_extension_management_events" {
			c.expectReply("subscribe", 0, "")
			continue
		}
		c.expectReply("subscribe", -1, "permission denied: "+topic)
	}
	// Tenant users are not concerned.
	b := dial(t, s)
	b.auth("boss", "tp", "acme.test")
	b.send(sub([]string{"cdr_events"}, ""))
	b.expectReply("subscribe", 0, "")
}

func TestSetDenied(t *testing.T) {
	s := newTestServer(t)
	c := dial(t, s)
	c.auth("admin", "sys", "")
	s.SetDenied("admin", "global_cdr_events")
	c.send(sub([]string{"global_cdr_events"}, "tenants", t1))
	c.expectReply("subscribe", -1, "permission denied: global_cdr_events")
	s.SetDenied("admin")
	c.send(sub([]string{"global_cdr_events"}, "tenants", t1))
	c.expectReply("subscribe", 0, "")
}

func TestQuirkCallerUpdates(t *testing.T) {
	s, c, now := quirkPBX(t, Quirks{CallerUpdates: true})
	for _, id := range []string{"s1", "s2", "s3"} {
		s.Enqueue(t1, "8001", Caller{SessionID: id, Number: "555", Callback: id == "s3"})
		c.nextEvent("queue_caller_status")
	}
	*now = now.Add(10 * time.Second)
	s.Dequeue(t1, "8001", "s1", ReasonHangup)
	if cl := callers(c.nextEvent("queue_caller_status")); len(cl) != 1 || cl[0]["reason"] != "hangup" {
		t.Fatalf("leave = %v", cl)
	}
	cl := callers(c.nextEvent("queue_caller_status"))
	if len(cl) != 2 || cl[0]["session_id"] != "s2" || cl[0]["position"] != "1" || cl[0]["reason"] != ReasonUpdate ||
		cl[1]["session_id"] != "s3" || cl[1]["position"] != "2" || cl[1]["type"] != "callback" ||
		cl[1]["timestamp"] != strconvUnix(now.Add(-10*time.Second)) {
		t.Errorf("update = %v, want s2 and s3 moved up with their enqueue times", cl)
	}
	// The last caller leaving moves nobody.
	s.Dequeue(t1, "8001", "s3", ReasonHangup)
	c.nextEvent("queue_caller_status")
	s.SetPresence(t1, "101", "AWAY", "")
	c.nextEvent("extension_presence")
	q := s.QueueTruth(t1, "8001")
	if q.WaitingKind("normal") != 1 || q.WaitingKind("callback") != 0 || q.Left["abandoned"].Count != 2 {
		t.Errorf("truth %+v, want s2 waiting, two abandoned", q)
	}
}

func TestQuirkEndReasonsPastTense(t *testing.T) {
	for _, on := range []bool{false, true} {
		s, c, now := quirkPBX(t, Quirks{EndReasonsPastTense: on})
		s.EndCall(t1, CDR{Call: Call{Direction: "in"}, Start: *now, Ended: *now, CallStatus: "answered",
			EndedReason: "callee_disconnect", Targets: []CallTarget{{EndReason: "caller_disconnect"}, {EndReason: "cancelled"}}})
		m := c.nextEvent("call_cdr")
		tg := m["call_targets"].([]any)
		want := map[bool][]string{false: {"callee_disconnect", "caller_disconnect"}, true: {"callee_disconnected", "caller_disconnected"}}[on]
		if m["ended_reason"] != want[0] || tg[0].(map[string]any)["end_reason"] != want[1] || tg[1].(map[string]any)["end_reason"] != "cancelled" {
			t.Errorf("quirk %v: reasons %v %v, want %v and cancelled as is", on, m["ended_reason"], tg, want)
		}
		if got := s.CallTruth(t1).EndReasons; !reflect.DeepEqual(got, map[string]int{"callee_disconnected": 1}) {
			t.Errorf("quirk %v: truth %v", on, got)
		}
	}
}

func TestQuirkDuplicates(t *testing.T) {
	s, c, now := quirkPBX(t, Quirks{Duplicates: true})
	s.Enqueue(t1, "8001", Caller{SessionID: "s1", Number: "555"})
	c.nextEvent("queue_caller_status")
	s.Dequeue(t1, "8001", "s1", ReasonAgentAnswered)
	leave := c.nextRaw()
	s.EndCall(t1, CDR{Call: Call{SessionID: "c1", Direction: "in"}, Start: *now, Ended: *now, CallStatus: "noanswer"})
	if m := c.nextEvent("call_cdr"); m["session_id"] != "c1" {
		t.Fatalf("call_cdr = %v", m)
	}
	// The copy of the leave comes after the next event, out of order.
	if again := c.nextRaw(); !bytes.Equal(again, leave) {
		t.Errorf("after the call_cdr got %s, want the leave again %s", again, leave)
	}
	// A session that subscribes now never gets a copy of what it did not get.
	late := dial(t, s)
	late.auth("admin", "sys", "")
	late.send(sub([]string{"global_cdr_events", "global_extension_events"}, "tenants", t1))
	late.expectReply("subscribe", 0, "")
	late.nextEvent("extension_status")
	s.SetCallStatus(t1, "101", "RINGING")
	c.nextEvent("extension_call")
	if m := c.nextEvent("call_cdr"); m["session_id"] != "c1" {
		t.Errorf("the copy of call_cdr = %v", m)
	}
	late.nextEvent("extension_call")
	s.SetCallStatus(t1, "101", "")
	if m := late.next(); m["event_type"] != "extension_call" {
		t.Errorf("late subscriber got %v, want no copy of the call_cdr before its time", m)
	}
	if got := s.QueueTruth(t1, "8001").Left["answered"].Count; got != 1 {
		t.Errorf("truth: %d answered, want 1", got)
	}
	if got := s.CallTruth(t1).Ended[CallKey{"inbound", "noanswer"}]; got != 1 {
		t.Errorf("truth: %d calls, want 1", got)
	}
}

func TestQuirkSpelling(t *testing.T) {
	tests := []struct {
		spelling              Spelling
		agent, onCall, noCall string
		numericID             bool
	}{
		{SpellingDocumented, "NOT_READY", "ON_CALL", "", false},
		{SpellingTitleCase, "Not Ready", "On Call", "", true},
		{SpellingLowerCase, "not_ready", "on_call", "none", true},
	}
	for _, tt := range tests {
		s, c, _ := quirkPBX(t, Quirks{Spelling: tt.spelling})
		s.SetAgentState(t1, "8001", "101", "NOT_READY")
		if a := c.nextEvent("queue_agent_status")["updated_agents"].([]any)[0].(map[string]any); a["state"] != tt.agent {
			t.Errorf("spelling %d: agent state %v, want %q", tt.spelling, a["state"], tt.agent)
		}
		f := c.nextRaw() // extension_agent_status
		if st := bytes.Contains(f, []byte(`"status":"`+tt.agent+`"`)); !st {
			t.Errorf("spelling %d: extension_agent_status %s, want status %q", tt.spelling, f, tt.agent)
		}
		if numeric := bytes.Contains(f, []byte(`"extension_id":8`)); numeric != tt.numericID {
			t.Errorf("spelling %d: extension_agent_status %s, numeric id %v, want %v", tt.spelling, f, numeric, tt.numericID)
		}
		s.SetCallStatus(t1, "101", "ON_CALL")
		s.SetCallStatus(t1, "101", "")
		if cs := c.nextEvent("extension_call")["call_status"]; cs != tt.onCall {
			t.Errorf("spelling %d: call status %v, want %q", tt.spelling, cs, tt.onCall)
		}
		if cs := c.nextEvent("extension_call")["call_status"]; cs != tt.noCall {
			t.Errorf("spelling %d: no call %v, want %q", tt.spelling, cs, tt.noCall)
		}
		if got := s.QueueTruth(t1, "8001").Agents; !reflect.DeepEqual(got, map[string]int{"not_ready": 1}) {
			t.Errorf("spelling %d: truth agents %v", tt.spelling, got)
		}
	}
}
