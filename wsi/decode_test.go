package wsi

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeOK decodes a frame that must decode, returning the event or reply.
func decodeOK(t *testing.T, frame []byte) (Event, *Reply) {
	t.Helper()
	ev, rep, err := Decode(frame)
	if err != nil {
		t.Fatalf("Decode(%s): %v", frame, err)
	}
	if (ev == nil) == (rep == nil) {
		t.Fatalf("Decode(%s) = %#v, %#v: want exactly one of event and reply", frame, ev, rep)
	}
	return ev, rep
}

// checkReject asserts that frame is rejected for reason.
func checkReject(t *testing.T, frame []byte, reason string) {
	t.Helper()
	ev, rep, err := Decode(frame)
	if ev != nil || rep != nil {
		t.Fatalf("Decode(%q) = %#v, %#v, %v: want a rejection", frame, ev, rep, err)
	}
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("Decode(%q) error %T %v: want *DecodeError", frame, err, err)
	}
	if de.Reason != reason {
		t.Fatalf("Decode(%q) reason %q (%v): want %q", frame, de.Reason, err, reason)
	}
}

func checkEqual(t *testing.T, name string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("%s:\n got %T %s\nwant %T %s", name, got, g, want, w)
	}
}

// quirks makes a QuirkSet.
func quirks(qs ...Quirk) (s QuirkSet) {
	for _, q := range qs {
		s.Add(q)
	}
	return s
}

// Every JSON sample of the vendor's page (and of the facts page), verbatim,
// byte for byte as published: the two no JSON parser can read (a full-width
// comma with agents inside waiting_list; a trailing comma) are rejected as
// malformed, every other one decodes to what it says, the sample that
// repeats a key included.
func TestDecodeVendorSamples(t *testing.T) {
	rejected := map[string]string{
		"queue_status.json":      ReasonMalformedJSON, // full-width comma, agents inside waiting_list
		"auth_system_admin.json": ReasonMalformedJSON, // trailing comma
	}
	want := map[string]any{
		// "username" twice: accepted, and the event says so.
		"extension_created.json": &ExtensionManagement{
			Header:          Header{EventType: TypeExtensionCreated, TenantID: "883634229655633920", Quirks: quirks(QuirkDuplicateKey)},
			ExtensionNumber: "1001",
		},
		"extension_status.json": &ExtensionStatus{
			Header: Header{EventType: TypeExtensionStatus, TenantID: "794493068765036544"},
			Status: []ExtensionState{
				{Extension: "sip:101@test.io", CallStatus: "ON_ACLL", Presence: "AWAY", Time: 1704186780},
				{Extension: "sip:102@test.io", CallStatus: "ON_CALL", Presence: "ONLINE", Time: 1704186780},
			},
		},
		"extension_call.json": &ExtensionCall{
			Header:    Header{EventType: TypeExtensionCall, TenantID: "792406615960584192"},
			Extension: "sip:101@test.io", CallStatus: "ON_CALL", Time: 1703690276,
		},
		"extension_presence.json": &ExtensionPresence{
			Header:    Header{EventType: TypeExtensionPresence, TenantID: "792406615960584192"},
			Extension: "sip:101@test.io", Presence: "AVAILABLE", Time: 1703690547,
		},
		"extension_agent_status.json": &ExtensionAgentStatus{
			Header:    Header{EventType: TypeExtensionAgentStatus, TenantID: "806406773714976768"},
			Extension: "sip:102@test.io", Time: 1707028116,
			AgentStatus: []AgentQueueState{{QueueNumber: "8002", Status: "READY"}},
		},
		"queue_created.json": &QueueManagement{
			Header:      Header{EventType: TypeQueueCreated, TenantID: "883634229655633920"},
			QueueNumber: "8800",
		},
		// The sample's "reason" and "type" list the alternatives: no value.
		"queue_caller_status.json": &QueueCallerStatus{
			Header:  Header{EventType: TypeQueueCallerStatus, TenantID: "676398719834259456"},
			QueueID: "677046776364007424",
			Callers: []QueueCaller{{SessionID: "6763987198342", CallerNumber: "123456", Timestamp: 1676206249}},
		},
		"queue_agent_status.json": &QueueAgentStatus{
			Header:  Header{EventType: TypeQueueAgentStatus, TenantID: "676398719834259456"},
			QueueID: "677046776364007424",
			Updated: []QueueAgent{{State: "QUEUE_CALL", Extension: "101", Timestamp: 1676206249}},
			Removed: []string{"102"},
		},
		"queue_sla_breached.json": &QueueSLABreached{
			Header:  Header{EventType: TypeQueueSLABreached, TenantID: "676398719834259456"},
			QueueID: "677046776364007424", SLATimeSecs: 90, Timestamp: 1676206249,
		},
		"call_start.json": &CallStart{
			Header: Header{EventType: TypeCallStart, TenantID: "798119491077668864"},
			Time:   1705051422, SessionID: "798119942409949184", CDRID: "798119942409949185",
			CallID: "Q0sX...", Direction: "ext",
		},
		"auth_reply_ok.json":                &Reply{Command: "auth", ID: "1"},
		"facts_auth_reply_ok.json":          &Reply{Command: "auth", ID: "1"},
		"auth_reply_error.json":             &Reply{Command: "auth", ID: "2", Status: -1, Error: "access_token , username , domain or password error"},
		"facts_auth_reply_error.json":       &Reply{Command: "auth", ID: "2", Status: -1, Error: "..."},
		"auth_username.json":                &Reply{Command: "auth"},
		"auth_extension_number.json":        &Reply{Command: "auth"},
		"unsubscribe_queue_events.json":     &Reply{Command: "unsubscribe", Topics: []string{TopicQueueEvents}},
		"unsubscribe_extension_events.json": &Reply{Command: "unsubscribe", Topics: []string{TopicExtensionEvents}},
	}
	files, err := filepath.Glob("testdata/vendor/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no vendor samples: %v", err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			frame := readTestdata(t, "vendor/"+name)
			if reason, ok := rejected[name]; ok {
				checkReject(t, frame, reason)
				return
			}
			ev, rep := decodeOK(t, frame)
			w, ok := want[name]
			switch {
			case ok && rep != nil:
				checkEqual(t, name, rep, w)
			case ok:
				checkEqual(t, name, ev, w)
			case strings.HasPrefix(name, "subscribe_"):
				topic := strings.TrimSuffix(strings.TrimPrefix(name, "subscribe_"), ".json")
				checkEqual(t, name, rep, &Reply{Command: "subscribe", Topics: []string{topic}})
			default:
				t.Fatalf("no expectation for %s", name)
			}
		})
	}
}

// The broken vendor samples, repaired: they decode to the values they carry.
func TestDecodeFixedSamples(t *testing.T) {
	want := map[string]any{
		"queue_status.json": &QueueStatus{
			Header:  Header{EventType: TypeQueueStatus, TenantID: "676398719834259456"},
			QueueID: "677046776364007424", QueueNumber: "8001", QueueName: "Sales Department",
			Waiting: []QueueCaller{{
				SessionID: "6763987198342", CallerNumber: "123456", Timestamp: 1676206249, Type: "normal",
			}},
			Agents: []QueueAgent{{State: "QUEUE_CALL", Extension: "101", Timestamp: 1676206249}},
		},
		"auth_system_admin.json": &Reply{Command: "auth"},
		"extension_created.json": &ExtensionManagement{
			Header:          Header{EventType: TypeExtensionCreated, TenantID: "883634229655633920"},
			ExtensionNumber: "1001",
		},
	}
	files, _ := filepath.Glob("testdata/fixed/*.json")
	if len(files) != len(want) {
		t.Fatalf("%d fixed samples, %d expectations", len(files), len(want))
	}
	for _, f := range files {
		name := filepath.Base(f)
		if _, err := os.Stat(filepath.Join("testdata/vendor", name)); err != nil {
			t.Errorf("fixed/%s repairs no vendor sample: %v", name, err)
		}
		ev, rep := decodeOK(t, readTestdata(t, "fixed/"+name))
		if rep != nil {
			checkEqual(t, name, rep, want[name])
		} else {
			checkEqual(t, name, ev, want[name])
		}
	}
}

// The realistic frames the benchmarks use, and older and newer CDR shapes.
func TestDecodeFrames(t *testing.T) {
	want := map[string]Event{
		"call_cdr.json": &CallCDR{
			Header:     Header{EventType: TypeCallCDR, TenantID: "798119491077668864"},
			TenantName: "Acme Ltd", SessionID: "798119942409949184", CallID: "Q0sXZjFlNzQ1ZGQ1OTk2ZTE0NmZhZDcwY2Q1ZWFlZmI",
			CDRID: "798119942409949185", RingTime: 1705051423, AnsweredTime: 1705051431,
			EndedTime: 1705051552, RingDuration: OptInt{8, true}, TalkDuration: OptInt{121, true},
			CallStatus: "answered", EndedReason: "caller_disconnected", Direction: "inbound", TrunkName: "122:883631675865563136",
		},
		// Older servers: ids as numbers, end_reason, no durations.
		"call_cdr_old.json": &CallCDR{
			Header:    Header{EventType: TypeCallCDR, TenantID: "798119491077668864", Quirks: quirks(QuirkVersionSpelling)},
			SessionID: "798119942409949184", CallID: "abc@10.0.0.1",
			RingTime: 1705051423, EndedTime: 1705051440,
			EndedReason: "None", Direction: "ext",
		},
		"cdr_target_answer.json": &CDRTarget{
			Header: Header{EventType: TypeCDRTargetAnswer, TenantID: "798119491077668864"},
		},
		"queue_caller_status.json": &QueueCallerStatus{
			Header:  Header{EventType: TypeQueueCallerStatus, TenantID: "676398719834259456"},
			QueueID: "677046776364007424",
			Callers: []QueueCaller{{SessionID: "6763987198342", CallerNumber: "+4930123456",
				Timestamp: 1676206249, Type: "normal", Reason: "enqueue"}},
		},
	}
	files, _ := filepath.Glob("testdata/frames/*.json")
	for _, f := range files {
		name := filepath.Base(f)
		ev, _ := decodeOK(t, readTestdata(t, "frames/"+name))
		if ev == nil || ev.Head().EventType != strings.TrimSuffix(strings.TrimSuffix(name, ".json"), "_old") {
			t.Errorf("%s: decoded %#v", name, ev)
		}
		if w, ok := want[name]; ok {
			checkEqual(t, name, ev, w)
		}
	}
}

// Every known event type decodes to its own Go type; others to *Unknown.
func TestDecodeEveryEventType(t *testing.T) {
	types := map[string]Event{
		TypeQueueStatus: &QueueStatus{}, TypeQueueCallerStatus: &QueueCallerStatus{},
		TypeQueueAgentStatus: &QueueAgentStatus{}, TypeQueueSLABreached: &QueueSLABreached{},
		TypeQueueCreated: &QueueManagement{}, TypeQueueUpdated: &QueueManagement{}, TypeQueueDestroy: &QueueManagement{},
		TypeExtensionStatus: &ExtensionStatus{}, TypeExtensionCall: &ExtensionCall{},
		TypeExtensionPresence: &ExtensionPresence{}, TypeExtensionAgentStatus: &ExtensionAgentStatus{},
		TypeExtensionCreated: &ExtensionManagement{}, TypeExtensionUpdated: &ExtensionManagement{},
		TypeExtensionDestroyed: &ExtensionManagement{},
		TypeCallStart:          &CallStart{}, TypeCallUpdateInfo: &CallStart{}, TypeCallCDR: &CallCDR{},
		TypeCDRTargetAdd: &CDRTarget{}, TypeCDRTargetRinging: &CDRTarget{}, TypeCDRTargetAnswer: &CDRTarget{},
		TypeCDRTargetNoAnswer: &CDRTarget{}, TypeCDRTargetFail: &CDRTarget{}, TypeCDRTargetEnd: &CDRTarget{},
		"queue_paused": &Unknown{},
	}
	if len(types) != len(KnownEventTypes)+1 {
		t.Fatalf("test covers %d types, package knows %d", len(types)-1, len(KnownEventTypes))
	}
	for typ, want := range types {
		// tenant_id as a number (old servers), event_type last, an unknown key.
		frame := `{"tenant_id":883634229655633920,"x":{"event_type":"nested"},"event_type":"` + typ + `"}`
		ev, _ := decodeOK(t, []byte(frame))
		if reflect.TypeOf(ev) != reflect.TypeOf(want) {
			t.Errorf("%s: got %T, want %T", typ, ev, want)
			continue
		}
		if h := ev.Head(); h.EventType != typ || h.TenantID != "883634229655633920" || h.Quirks != quirks(QuirkVersionSpelling) {
			t.Errorf("%s: header %+v", typ, *h)
		}
	}
}

// The tolerances real PBXs need, each checked by the value it produces.
func TestDecodeTolerance(t *testing.T) {
	for _, tc := range []struct {
		name, frame string
		want        any
	}{
		{"numbers as strings and numbers",
			`{"event_type":"queue_caller_status","tenant_id":"1","queue_id":2,"updated_callers":[{"session_id":"a","position":"2","timestamp":1676206249},{"session_id":"b","position":3,"timestamp":"1676206250"}]}`,
			&QueueCallerStatus{Header: Header{EventType: TypeQueueCallerStatus, TenantID: "1", Quirks: quirks(QuirkVersionSpelling)}, QueueID: "2",
				Callers: []QueueCaller{{SessionID: "a", Timestamp: 1676206249}, {SessionID: "b", Timestamp: 1676206250}}}},
		{"caller type and reason lower-cased, placeholder dropped",
			`{"event_type":"queue_caller_status","updated_callers":[{"type":"CallBack","reason":"Agent_Answered"},{"type":"Normal/Callback","reason":"hangup/overflow"},{"type":"normal","reason":"HANGUP"}]}`,
			&QueueCallerStatus{Header: Header{EventType: TypeQueueCallerStatus},
				Callers: []QueueCaller{{Type: "callback", Reason: "agent_answered"}, {}, {Type: "normal", Reason: "hangup"}}}},
		{"other enums as sent",
			`{"event_type":"queue_agent_status","queue_number":"8001","updated_agents":[{"state":"Not Ready","agent_extension_number":101},{"state":"ready","agent_extension_number":"102"}]}`,
			&QueueAgentStatus{Header: Header{EventType: TypeQueueAgentStatus, Quirks: quirks(QuirkVersionSpelling)}, QueueNumber: "8001",
				Updated: []QueueAgent{{State: "Not Ready", Extension: "101"}, {State: "ready", Extension: "102"}}}},
		{"removed agents as objects or bare numbers",
			`{"event_type":"queue_agent_status","removed_agents":[{"agent_extension_number":"102"},"103",104,null,{},"",{"agent_extension_number":""}]}`,
			&QueueAgentStatus{Header: Header{EventType: TypeQueueAgentStatus, Quirks: quirks(QuirkVersionSpelling)}, Removed: []string{"102", "103", "104"}}},
		{"booleans in every spelling",
			`{"event_type":"extension_status","status":[{"extension":"1","online":true,"push_online":"true"},{"extension":"2","online":1,"push_online":"1"},{"extension":"3","online":"TRUE","push_online":false},{"extension":"4","online":"false","push_online":0},{"extension":"5","online":"0","push_online":null},{"extension":"6","online":""}]}`,
			&ExtensionStatus{Header: Header{EventType: TypeExtensionStatus}, Status: []ExtensionState{
				{Extension: "1", Online: true, PushOnline: true}, {Extension: "2", Online: true, PushOnline: true},
				{Extension: "3", Online: true}, {Extension: "4"}, {Extension: "5"}, {Extension: "6"}}}},
		// Early v16 sent call_status as a boolean: passed on as its text,
		// for the collector to read (and count) as another version's spelling.
		{"call_status as a boolean",
			`{"event_type":"extension_status","status":[{"extension":"1","call_status":true},{"extension":"2","call_status":false},{"extension":"3","call_status":"ON_CALL"}]}`,
			&ExtensionStatus{Header: Header{EventType: TypeExtensionStatus}, Status: []ExtensionState{
				{Extension: "1", CallStatus: "true"}, {Extension: "2", CallStatus: "false"}, {Extension: "3", CallStatus: "ON_CALL"}}}},
		{"call_status as a boolean in extension_call",
			`{"event_type":"extension_call","extension":"sip:101@test.io","call_status":false}`,
			&ExtensionCall{Header: Header{EventType: TypeExtensionCall}, Extension: "sip:101@test.io", CallStatus: "false"}},
		{"durations: number, string, absent, empty, null",
			`{"event_type":"call_cdr","talk_duration":21,"ring_duration":"0"}`,
			&CallCDR{Header: Header{EventType: TypeCallCDR}, TalkDuration: OptInt{21, true}, RingDuration: OptInt{0, true}}},
		{"durations: empty and null are absent",
			`{"event_type":"call_cdr","talk_duration":"","ring_duration":null}`,
			&CallCDR{Header: Header{EventType: TypeCallCDR}}},
		{"end_reason when alone",
			`{"event_type":"call_cdr","end_reason":"cancelled"}`,
			&CallCDR{Header: Header{EventType: TypeCallCDR}, EndedReason: "cancelled"}},
		{"ended_reason wins over end_reason, in either order",
			`{"event_type":"call_cdr","ended_reason":"new","end_reason":"old"}`,
			&CallCDR{Header: Header{EventType: TypeCallCDR}, EndedReason: "new"}},
		{"ended_reason wins over end_reason, in either order",
			`{"event_type":"call_cdr","end_reason":"old","ended_reason":"new"}`,
			&CallCDR{Header: Header{EventType: TypeCallCDR}, EndedReason: "new"}},
		// Nothing reads them: whatever their shape, they are skipped, not
		// checked.
		{"keys no event carries, of any type",
			`{"event_type":"call_cdr","user_data":{"crm":[1,true]},"did":5,"status_code":{},"call_targets":[{"cost":{}},1,"x",[[]]],"caller":[]}`,
			&CallCDR{Header: Header{EventType: TypeCallCDR}}},
		{"an id nothing reads, as a number",
			`{"event_type":"extension_call","extension_id":792406615960584220,"extension":"sip:101@test.io"}`,
			&ExtensionCall{Header: Header{EventType: TypeExtensionCall, Quirks: quirks(QuirkVersionSpelling)}, Extension: "sip:101@test.io"}},
		{"entries holding nothing to key them by are dropped",
			`{"event_type":"queue_status","waiting_list":[{},{"position":1,"timestamp":5,"type":"normal"},{"session_id":""},{"caller_number":null},{"reason":"hangup"}],"agents":[{},{"state":"READY"},{"agent_extension_number":""}]}`,
			&QueueStatus{Header: Header{EventType: TypeQueueStatus}, Waiting: []QueueCaller{{Reason: "hangup"}}}},
		{"nulls are absent, unknown keys of any type ignored",
			`{"event_type":"queue_status","tenant_id":null,"queue_name":null,"waiting_list":null,"agents":[null],"future":{"a":[1,{"b":null}]},"also":-1.5e-3}`,
			&QueueStatus{Header: Header{EventType: TypeQueueStatus}}},
		{"SLA breach numbers as strings",
			`{"event_type":"queue_sla_breached","total_callers_breached":"6","sla_time_secs":"90","waiting_callers":"100","timestamp":1676206249,"caller":431334081002}`,
			&QueueSLABreached{Header: Header{EventType: TypeQueueSLABreached}, SLATimeSecs: 90, Timestamp: 1676206249}},
		{"queue management with id and name",
			`{"event_type":"queue_destroy","queue_number":8800,"queue_id":"9","queue_name":"Support","tenant_id":"1"}`,
			&QueueManagement{Header: Header{EventType: TypeQueueDestroy, TenantID: "1", Quirks: quirks(QuirkVersionSpelling)}, QueueNumber: "8800", QueueID: "9", QueueName: "Support"}},
		{"white space everywhere",
			" \t\r\n{ \"event_type\" :\n\"extension_call\" , \"time\" : \"5\" }\n ",
			&ExtensionCall{Header: Header{EventType: TypeExtensionCall}, Time: 5}},
		{"escaped key and type",
			`{"event\u005ftype":"extension\u005fcall","call\u005fstatus":"RINGING"}`,
			&ExtensionCall{Header: Header{EventType: TypeExtensionCall}, CallStatus: "RINGING"}},
		{"event_type wins over command",
			`{"command":"auth","event_type":"queue_created","queue_number":"1"}`,
			&QueueManagement{Header: Header{EventType: TypeQueueCreated}, QueueNumber: "1"}},
		{"subscribe reply with an error",
			`{"command":"subscribe","status":"-1","error":"permission denied","id":7}`,
			&Reply{Command: "subscribe", Status: -1, Error: "permission denied", ID: "7"}},
		{"duplicate unknown keys are not ambiguous for us",
			`{"event_type":"extension_call","x":1,"x":2}`,
			&ExtensionCall{Header: Header{EventType: TypeExtensionCall}}},
		// A repeated key takes its last value, as encoding/json reads it,
		// wherever it is and whatever the values' types.
		{"repeated keys: the last value wins",
			`{"event_type":"call_cdr","tenant_id":"1","tenant_id":"2","talk_duration":5,"talk_duration":null,"ring_duration":null,"ring_duration":"3","call_status":"answered","call_status":"noanswer"}`,
			&CallCDR{Header: Header{EventType: TypeCallCDR, TenantID: "2", Quirks: quirks(QuirkDuplicateKey)},
				RingDuration: OptInt{3, true}, CallStatus: "noanswer"}},
		{"repeated arrays: the last one",
			`{"event_type":"queue_agent_status","updated_agents":[{"agent_extension_number":"1"}],"updated_agents":[{"agent_extension_number":"2"}]}`,
			&QueueAgentStatus{Header: Header{EventType: TypeQueueAgentStatus, Quirks: quirks(QuirkDuplicateKey)},
				Updated: []QueueAgent{{Extension: "2"}}}},
		{"a repeated key nothing reads",
			`{"event_type":"extension_created","extension_number":"1001","username":"a","username":"b"}`,
			&ExtensionManagement{Header: Header{EventType: TypeExtensionCreated, Quirks: quirks(QuirkDuplicateKey)}, ExtensionNumber: "1001"}},
		{"repeated keys in array entries",
			`{"event_type":"queue_caller_status","updated_callers":[{"session_id":"1","session_id":"2","reason":"enqueue","reason":"hangup"}]}`,
			&QueueCallerStatus{Header: Header{EventType: TypeQueueCallerStatus, Quirks: quirks(QuirkDuplicateKey)},
				Callers: []QueueCaller{{SessionID: "2", Reason: "hangup"}}}},
		{"repeated event_type: the last decides the type",
			`{"event_type":"call_cdr","session_id":"7","event_type":"call_start"}`,
			&CallStart{Header: Header{EventType: TypeCallStart, Quirks: quirks(QuirkDuplicateKey)}, SessionID: "7"}},
		{"repeated event_type: the first not a string",
			`{"event_type":5,"queue_number":"1","event_type":"queue_created"}`,
			&QueueManagement{Header: Header{EventType: TypeQueueCreated, Quirks: quirks(QuirkDuplicateKey)}, QueueNumber: "1"}},
		{"repeated event_type of an unknown type",
			`{"event_type":"unknown_thing","tenant_id":"1","tenant_id":"1","event_type":"unknown_thing"}`,
			&Unknown{Header: Header{EventType: "unknown_thing", TenantID: "1", Quirks: quirks(QuirkDuplicateKey)}}},
		{"repeated reply status",
			`{"command":"auth","status":0,"status":-1}`,
			&Reply{Command: "auth", Status: -1}},
		{"ids as numbers, as old servers send them",
			`{"event_type":"extension_agent_status","extension_id":806406815892897792,"tenant_id":"1","agent_status":[{"queue_number":8002,"status":"READY"}]}`,
			&ExtensionAgentStatus{Header: Header{EventType: TypeExtensionAgentStatus, TenantID: "1", Quirks: quirks(QuirkVersionSpelling)},
				AgentStatus: []AgentQueueState{{QueueNumber: "8002", Status: "READY"}}}},
		{"minimum int64",
			`{"event_type":"extension_call","time":"-9223372036854775808"}`,
			&ExtensionCall{Header: Header{EventType: TypeExtensionCall}, Time: -9223372036854775808}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, rep := decodeOK(t, []byte(tc.frame))
			if rep != nil {
				checkEqual(t, tc.name, rep, tc.want)
			} else {
				checkEqual(t, tc.name, ev, tc.want)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, tc := range []struct{ frame, reason string }{
		// Not JSON, or not one JSON object.
		{``, ReasonMalformedJSON},
		{` `, ReasonMalformedJSON},
		{`[]`, ReasonMalformedJSON},
		{`"event_type"`, ReasonMalformedJSON},
		{`42`, ReasonMalformedJSON},
		{`null`, ReasonMalformedJSON},
		{`{`, ReasonMalformedJSON},
		{`{"event_type":"call_cdr"`, ReasonMalformedJSON},
		{`{"event_type":"call_cdr"}}`, ReasonMalformedJSON},
		{`{"event_type":"call_cdr"} {}`, ReasonMalformedJSON},
		{`{"event_type":"call_cdr",}`, ReasonMalformedJSON},
		{`{"event_type":"call_cdr","call_targets":[{},]}`, ReasonMalformedJSON},
		{`{"event_type":'call_cdr'}`, ReasonMalformedJSON},
		{`{event_type:"call_cdr"}`, ReasonMalformedJSON},
		{`{"event_type" "call_cdr"}`, ReasonMalformedJSON},
		{`{"event_type":"call_cdr" "x":1}`, ReasonMalformedJSON},
		{`{"event_type":"call_cdr","talk_duration":021}`, ReasonMalformedJSON},
		{`{"event_type":"call_cdr","talk_duration":1.}`, ReasonMalformedJSON},
		{`{"event_type":"call_cdr","talk_duration":1e}`, ReasonMalformedJSON},
		{`{"event_type":"call_cdr","talk_duration":-}`, ReasonMalformedJSON},
		{`{"event_type":"call_cdr","talk_duration":+1}`, ReasonMalformedJSON},
		{`{"event_type":"call_cdr","x":tru}`, ReasonMalformedJSON},
		{`{"event_type":"call_cdr","x":NaN}`, ReasonMalformedJSON},
		{`{"event_type":"call_cdr","caller":"a\x"}`, ReasonMalformedJSON},
		{`{"event_type":"call_cdr","caller":"a\u12"}`, ReasonMalformedJSON},
		{"{\"event_type\":\"call_cdr\",\"caller\":\"a\tb\"}", ReasonMalformedJSON},
		{"{\"event_type\":\"call_cdr\",\"x\":\"a\nb\"}", ReasonMalformedJSON},
		{`{"event_type":"call_cdr","caller":"abc`, ReasonMalformedJSON},
		{"{\"event_type\":\"call_cdr\"}\x00", ReasonMalformedJSON},
		{"\xef\xbb\xbf{\"event_type\":\"call_cdr\"}", ReasonMalformedJSON}, // a BOM is not JSON
		// A type error and a syntax error: the frame is not JSON.
		{`{"event_type":"extension_status","online":{},"x":]`, ReasonMalformedJSON},
		{`{"event_type":5,`, ReasonMalformedJSON},

		// JSON, but not an event or reply.
		{`{}`, ReasonInvalidEvent},
		{`{"tenant_id":"1"}`, ReasonInvalidEvent},
		{`{"event_type":""}`, ReasonInvalidEvent},
		{`{"event_type":null}`, ReasonInvalidEvent},
		{`{"event_type":5}`, ReasonInvalidEvent},
		{`{"event_type":["call_cdr"]}`, ReasonInvalidEvent},
		{`{"command":5}`, ReasonInvalidEvent},
		{`{"command":""}`, ReasonInvalidEvent},
		{`{"command":"auth","status":"ok"}`, ReasonInvalidEvent},
		{`{"event_type":"queue_caller_status","updated_callers":"x"}`, ReasonInvalidEvent},
		{`{"event_type":"queue_caller_status","updated_callers":{}}`, ReasonInvalidEvent},
		{`{"event_type":"queue_caller_status","updated_callers":[1]}`, ReasonInvalidEvent},
		{`{"event_type":"queue_caller_status","updated_callers":[{"timestamp":true}]}`, ReasonInvalidEvent},
		{`{"event_type":"queue_caller_status","updated_callers":[{"timestamp":"two"}]}`, ReasonInvalidEvent},
		{`{"event_type":"queue_caller_status","updated_callers":[{"timestamp":2.5}]}`, ReasonInvalidEvent},
		{`{"event_type":"queue_caller_status","updated_callers":[{"timestamp":" 2"}]}`, ReasonInvalidEvent},
		{`{"event_type":"queue_caller_status","updated_callers":[{"timestamp":1e3}]}`, ReasonInvalidEvent},
		{`{"event_type":"extension_status","status":[{"online":{}}]}`, ReasonInvalidEvent},
		{`{"event_type":"extension_status","status":[{"online":2}]}`, ReasonInvalidEvent},
		{`{"event_type":"extension_status","status":[{"online":"yes"}]}`, ReasonInvalidEvent},
		{`{"event_type":"extension_status","status":[{"extension":true}]}`, ReasonInvalidEvent},
		{`{"event_type":"extension_status","status":[{"extension":[]}]}`, ReasonInvalidEvent},
		{`{"event_type":"call_cdr","talk_duration":"9223372036854775808"}`, ReasonInvalidEvent},
		{`{"event_type":"call_cdr","talk_duration":-9223372036854775809}`, ReasonInvalidEvent},
		{`{"event_type":"call_cdr","talk_duration":"-"}`, ReasonInvalidEvent},
		{`{"event_type":"call_cdr","call_status":{}}`, ReasonInvalidEvent},
		{`{"event_type":"queue_agent_status","removed_agents":[true]}`, ReasonInvalidEvent},
		{`{"event_type":"queue_agent_status","removed_agents":[[]]}`, ReasonInvalidEvent},
		{`{"event_type":"call_cdr","tenant_id":{"id":1}}`, ReasonInvalidEvent},
		// A repeated key whose last value is of the wrong type.
		{`{"event_type":"call_cdr","event_type":5}`, ReasonInvalidEvent},
		{`{"event_type":"call_cdr","event_type":""}`, ReasonInvalidEvent},
		{`{"event_type":"call_cdr","event_type":null}`, ReasonInvalidEvent},
		{`{"event_type":5,"event_type":null}`, ReasonInvalidEvent},
		{`{"event_type":"call_cdr","talk_duration":1,"talk_duration":"x"}`, ReasonInvalidEvent},
	} {
		checkReject(t, []byte(tc.frame), tc.reason)
	}
}

// Strings decode exactly as encoding/json decodes them, invalid UTF-8 and
// lone surrogates included.
func TestDecodeStrings(t *testing.T) {
	for _, lit := range []string{
		`""`, `"plain"`, `"Jürgen Straße"`, `"日本語"`, `"emoji 😀"`,
		`"\" \\ \/ \b \f \n \r \t"`, `"\u0041\u00e9\u65e5"`, `"\ud83d\ude00"`,
		`"\ud83d"`, `"\ude00"`, `"\ud83dx"`, `"\ud83d\u0041"`, `"\ud83d\ud83d\ude00"`, `"a\u0000b"`,
		"\"\xff\"", "\"a\xc3\"", "\"\xc3\x28\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"ok\xe2\x82\xac\xe2\x82\"",
		"\"\xff\\n\"",
	} {
		var want string
		if err := json.Unmarshal([]byte(lit), &want); err != nil {
			t.Fatalf("encoding/json rejects %q: %v", lit, err)
		}
		frame := `{"event_type":"extension_presence","presence":` + lit + `,"extension":` + lit + `}`
		ev, _ := decodeOK(t, []byte(frame))
		p := ev.(*ExtensionPresence)
		if p.Presence != want || p.Extension != want {
			t.Errorf("%q: got %q and %q, want %q", lit, p.Presence, p.Extension, want)
		}
	}
}

// The event owns its strings: a reused read buffer cannot change it.
func TestDecodeDoesNotAliasInput(t *testing.T) {
	frame := readTestdata(t, "frames/call_cdr.json")
	ev, _ := decodeOK(t, frame)
	want, _ := decodeOK(t, readTestdata(t, "frames/call_cdr.json"))
	for i := range frame {
		frame[i] = 'X'
	}
	checkEqual(t, "after overwriting the input", ev, want)
}

// Decoders are pooled and reuse their buffer for escaped strings: events
// decoded at the same time, escaped strings included, keep their own.
func TestDecodeConcurrently(t *testing.T) {
	var frames [][]byte
	for i := range 50 {
		frames = append(frames, fmt.Appendf(nil,
			`{"event_type":"queue_caller_status","tenant_id":"t\u00e9%d","updated_callers":[{"session_id":"s\n%d","reason":"Hang\u0055p"}]}`, i, i))
	}
	want := make([]Event, len(frames))
	for i, f := range frames {
		want[i], _ = decodeOK(t, f)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				for i, f := range frames {
					if ev, _, err := Decode(f); err != nil || !reflect.DeepEqual(ev, want[i]) {
						t.Errorf("frame %d decoded as %+v, %v, want %+v", i, ev, err, want[i])
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestDecodeNesting(t *testing.T) {
	nest := func(n int) string {
		return `{"event_type":"x","a":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}`
	}
	// encoding/json's limit, counting the outer object.
	decodeOK(t, []byte(nest(10000)))
	if json.Valid([]byte(nest(10001))) {
		t.Fatal("encoding/json changed its nesting limit")
	}
	checkReject(t, []byte(nest(10001)), ReasonMalformedJSON)
	// Deep enough to overflow a recursive parser's stack: a clean rejection.
	checkReject(t, []byte(strings.Repeat(`{"a":[`, 1<<20)), ReasonMalformedJSON)
	checkReject(t, []byte(`{"event_type":"call_cdr","call_targets":[`+strings.Repeat("[", 20000)), ReasonMalformedJSON)
}

func TestDecodeErrorMessages(t *testing.T) {
	for frame, want := range map[string]string{
		`{"event_type":"queue_caller_status","updated_callers":"x"}`: `invalid_event: updated_callers: want an array, got a string`,
		`{"event_type":"extension_status","status":[{"online":{}}]}`: `invalid_event: online: want a boolean, got an object`,
		`{"event_type":"call_cdr","event_type":null}`:                `invalid_event: event_type: want a non-empty string`,
		`{"event_type":"call_cdr","talk_duration":"1.5"}`:            `invalid_event: talk_duration: "1.5" is not an integer`,
		`{"event_type":"call_cdr",}`:                                 `malformed_json: offset 25: want a string key`,
		`[1]`:                                                        `malformed_json: offset 0: frame is not a JSON object`,
	} {
		_, _, err := Decode([]byte(frame))
		if err == nil || err.Error() != want {
			t.Errorf("Decode(%s) error %v, want %s", frame, err, want)
		}
	}
}

func ExampleDecode() {
	frame := []byte(`{"event_type":"queue_caller_status","tenant_id":"1","queue_id":"677046776364007424",
		"updated_callers":[{"position":"2","session_id":"42","reason":"Hangup","timestamp":1676206249}]}`)
	ev, reply, err := Decode(frame)
	var de *DecodeError
	switch e := ev.(type) {
	case *QueueCallerStatus:
		for _, c := range e.Callers {
			fmt.Println(e.QueueID, c.SessionID, c.Reason, c.Timestamp)
		}
	case nil:
		if errors.As(err, &de) {
			fmt.Println("rejected:", de.Reason)
		} else {
			fmt.Println("reply:", reply.Command, reply.OK())
		}
	}
	// Output: 677046776364007424 42 hangup 1676206249
}

// Replies are undocumented beyond auth: whatever shape a PBX gives them,
// the client must still read which command failed and why.
func TestDecodeReplyShapes(t *testing.T) {
	for _, tc := range []struct {
		frame string
		want  *Reply
		ok    bool
	}{
		{`{"command":"subscribe","status":0}`, &Reply{Command: "subscribe"}, true},
		{`{"command":"subscribe","status":"0","id":3,"topics":["cdr_events","queue_events"],"tenants":["1"],"server":{"v":"22.3"}}`,
			&Reply{Command: "subscribe", ID: "3", Topics: []string{"cdr_events", "queue_events"}}, true},
		{`{"command":"subscribe","topics":"cdr_events","status":-1,"error":"permission denied"}`,
			&Reply{Command: "subscribe", Topics: []string{"cdr_events"}, Status: -1, Error: "permission denied"}, false},
		{`{"command":"auth","error":"wrong password"}`, &Reply{Command: "auth", Status: -1, Error: "wrong password"}, false},
		{`{"command":"auth","status":null,"error":"wrong password"}`, &Reply{Command: "auth", Status: -1, Error: "wrong password"}, false},
		{`{"command":"subscribe","status":0,"error":"already subscribed"}`, &Reply{Command: "subscribe", Error: "already subscribed"}, true},
		{`{"command":"auth","status":"0","error":"success"}`, &Reply{Command: "auth", Error: "success"}, true},
		{`{"command":"auth","status":-1}`, &Reply{Command: "auth", Status: -1}, false},
		{`{"command":"auth","status":0,"error":null}`, &Reply{Command: "auth"}, true},
		{`{"command":"auth","status":-1,"error":{"code":403,"text":"no"}}`, &Reply{Command: "auth", Status: -1, Error: `{"code":403,"text":"no"}`}, false},
		{`{"command":"auth","status":-1,"error":403}`, &Reply{Command: "auth", Status: -1, Error: "403"}, false},
	} {
		_, rep := decodeOK(t, []byte(tc.frame))
		checkEqual(t, tc.frame, rep, tc.want)
		if rep.OK() != tc.ok {
			t.Errorf("%s: OK() = %v, want %v", tc.frame, rep.OK(), tc.ok)
		}
	}
}

// The client reads frames with decodeNext: a byte order mark and objects
// sent back to back in one frame cost nothing, while Decode keeps to one
// object per frame as encoding/json does.
func TestDecodeNext(t *testing.T) {
	const (
		a = `{"event_type":"queue_created","queue_number":"1"}`
		b = `{"command":"subscribe","status":0}`
	)
	type result struct {
		ev     string // event_type, or "reply", or the error reason
		rest   int    // bytes left
		number string
	}
	decodeAll := func(frame string) []result {
		var out []result
		data := []byte(frame)
		for more := true; more; more = len(data) > 0 {
			ev, rep, rest, err := decodeNext(data)
			var de *DecodeError
			switch {
			case errors.As(err, &de):
				out = append(out, result{ev: de.Reason, rest: len(rest)})
			case rep != nil:
				out = append(out, result{ev: "reply", rest: len(rest)})
			case ev != nil:
				r := result{ev: ev.Head().EventType, rest: len(rest)}
				if qm, ok := ev.(*QueueManagement); ok {
					r.number = qm.QueueNumber
				}
				out = append(out, r)
			default:
				t.Fatalf("decodeNext(%q): nothing", data)
			}
			data = rest
		}
		return out
	}
	for _, tc := range []struct {
		frame string
		want  []result
	}{
		{a, []result{{TypeQueueCreated, 0, "1"}}},
		{"\xef\xbb\xbf" + a, []result{{TypeQueueCreated, 0, "1"}}},
		{"\xef\xbb\xbf \n" + b + "\n", []result{{"reply", 0, ""}}},
		{b + a, []result{{"reply", len(a), ""}, {TypeQueueCreated, 0, "1"}}},
		{a + "\n" + a + "\r\n", []result{{TypeQueueCreated, len(a) + 2, "1"}, {TypeQueueCreated, 0, "1"}}},
		{`{"command":5}` + a, []result{{ReasonInvalidEvent, len(a), ""}, {TypeQueueCreated, 0, "1"}}},
		{a + `{"event_type":`, []result{{TypeQueueCreated, len(`{"event_type":`), "1"}, {ReasonMalformedJSON, 0, ""}}},
		{a + ` x` + a, []result{{ReasonMalformedJSON, 0, ""}}},
		{a + `[` + a + `]`, []result{{ReasonMalformedJSON, 0, ""}}},
		{"", []result{{ReasonMalformedJSON, 0, ""}}},
		{"\xef\xbb", []result{{ReasonMalformedJSON, 0, ""}}},
	} {
		if got := decodeAll(tc.frame); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("decodeNext(%q) = %+v, want %+v", tc.frame, got, tc.want)
		}
	}
	checkReject(t, []byte(a+a), ReasonMalformedJSON)
	checkReject(t, []byte("\xef\xbb\xbf"+a), ReasonMalformedJSON)
}
