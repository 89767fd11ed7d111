package wsi

import "time"

// Event types as they appear in the event_type key.
const (
	TypeQueueStatus       = "queue_status"
	TypeQueueCallerStatus = "queue_caller_status"
	TypeQueueAgentStatus  = "queue_agent_status"
	TypeQueueSLABreached  = "queue_sla_breached"

	TypeQueueCreated = "queue_created"
	TypeQueueUpdated = "queue_updated"
	TypeQueueDestroy = "queue_destroy"

	TypeExtensionStatus      = "extension_status"
	TypeExtensionCall        = "extension_call"
	TypeExtensionPresence    = "extension_presence"
	TypeExtensionAgentStatus = "extension_agent_status"

	TypeExtensionCreated   = "extension_created"
	TypeExtensionUpdated   = "extension_updated"
	TypeExtensionDestroyed = "extension_destroyed"

	TypeCallStart      = "call_start"
	TypeCallUpdateInfo = "call_update_info"
	TypeCallCDR        = "call_cdr"

	TypeCDRTargetAdd      = "cdr_target_add"
	TypeCDRTargetRinging  = "cdr_target_ringing"
	TypeCDRTargetAnswer   = "cdr_target_answer"
	TypeCDRTargetNoAnswer = "cdr_target_noanswer"
	TypeCDRTargetFail     = "cdr_target_fail"
	TypeCDRTargetEnd      = "cdr_target_end"

	// TypeOther is how events of an unknown event_type are counted.
	TypeOther = "other"
)

// KnownEventTypes lists every event_type the package decodes into a typed
// event, in a stable order. Anything else arrives as *Unknown.
var KnownEventTypes []string

// Topics. Tenant topics are used with a tenant user (a domain is set);
// global topics by a system administrator together with "tenants".
const (
	TopicQueueEvents               = "queue_events"
	TopicQueueManagementEvents     = "queue_management_events"
	TopicExtensionEvents           = "extension_events"
	TopicCDREvents                 = "cdr_events"
	TopicGlobalQueueEvents         = "global_queue_events"
	TopicGlobalQueueManagement     = "global_queue_management_events"
	TopicGlobalExtensionEvents     = "global_extension_events"
	TopicGlobalExtensionManagement = "global_extension_management_events"
	TopicGlobalCDREvents           = "global_cdr_events"
)

// Header is common to every event.
type Header struct {
	EventType string    // as sent (lower case on the wire)
	TenantID  string    // a string even when sent as a number
	Received  time.Time // when the Client read the frame; zero when decoded elsewhere
	Quirks    QuirkSet  // the compensations the decoder made for this event
}

// Head gives access to the header of any event.
func (h *Header) Head() *Header { return h }

// Event is one decoded event. The concrete types are the pointer types in
// this file; switch on them.
type Event interface {
	Head() *Header
}

// OptInt is an integer key that may be absent: older CDRs omit durations,
// and 0 means something else than "not sent".
type OptInt struct {
	Value int64
	Set   bool
}

// The events carry what the exporter's metrics read, nothing more: names
// of people, call targets, user data are skipped, not decoded.

// QueueStatus (queue_status) is the full state of one queue, pushed right
// after subscribing. It replaces whatever was known about the queue.
type QueueStatus struct {
	Header
	QueueID     string
	QueueNumber string
	QueueName   string
	Waiting     []QueueCaller // waiting_list
	Agents      []QueueAgent  // agents
}

// QueueCaller is an entry of waiting_list or updated_callers; entries with
// neither a session id, a caller number nor a reason are dropped.
type QueueCaller struct {
	SessionID    string
	CallerNumber string
	// Timestamp is UNIX seconds: the enqueue time in waiting_list and for
	// reason enqueue, the leave time for the other reasons.
	Timestamp int64
	// Type is "normal" or "callback", lower-cased; "" (read: normal) when
	// not sent or a list of alternatives (the vendor's "normal/callback").
	Type string
	// Reason, in queue_caller_status only: enqueue, agent_answered,
	// overflow, hangup, callback, lower-cased; "" like Type.
	Reason string
}

// QueueAgent is an entry of agents or updated_agents; entries without an
// extension are dropped.
type QueueAgent struct {
	State     string // as sent, e.g. "QUEUE_CALL", "READY", "Not Ready"
	Extension string // agent_extension_number
	Timestamp int64
}

// QueueCallerStatus (queue_caller_status) reports callers joining or
// leaving a queue. Real PBXs send queue_id only.
type QueueCallerStatus struct {
	Header
	QueueID     string
	QueueNumber string
	Callers     []QueueCaller // updated_callers
}

// QueueAgentStatus (queue_agent_status) reports agents changed, added or
// removed.
type QueueAgentStatus struct {
	Header
	QueueID     string
	QueueNumber string
	Updated     []QueueAgent // updated_agents
	Removed     []string     // removed_agents[].agent_extension_number
}

// QueueSLABreached (queue_sla_breached): a waiting caller passed the
// queue's SLA time.
type QueueSLABreached struct {
	Header
	QueueID     string
	QueueNumber string
	SLATimeSecs int64
	Timestamp   int64
}

// QueueManagement is queue_created, queue_updated or queue_destroy (see
// Header.EventType). The current queues are pushed on subscribe.
type QueueManagement struct {
	Header
	QueueNumber string
	QueueID     string // when sent
	QueueName   string // when sent
}

// ExtensionStatus (extension_status): pushed on subscribe and when an
// extension registers or unregisters.
type ExtensionStatus struct {
	Header
	Status []ExtensionState
}

// ExtensionState is one entry of extension_status.status; entries without
// an extension are dropped.
type ExtensionState struct {
	Extension  string // SIP URI, e.g. "sip:101@test.io"
	CallStatus string // ON_CALL, RINGING, "" (and typos such as ON_ACLL); "true"/"false" from early v16
	Online     bool
	PushOnline bool
	Presence   string // ONLINE/AVAILABLE, LUNCH, BUSINESS_TRIP, DO_NOT_DISTURB, AWAY, ...
	Time       int64
}

// ExtensionCall (extension_call): an extension started, received or ended a call.
type ExtensionCall struct {
	Header
	Extension  string
	CallStatus string
	Time       int64
}

// ExtensionPresence (extension_presence): an extension changed presence.
type ExtensionPresence struct {
	Header
	Extension string
	Presence  string
	Time      int64
}

// ExtensionAgentStatus (extension_agent_status): an agent's state in the
// queues it serves.
type ExtensionAgentStatus struct {
	Header
	Extension   string
	Time        int64
	AgentStatus []AgentQueueState
}

// AgentQueueState is one entry of agent_status; entries without a queue
// number are dropped.
type AgentQueueState struct {
	QueueNumber string
	Status      string
}

// ExtensionManagement is extension_created, extension_updated or
// extension_destroyed (see Header.EventType).
type ExtensionManagement struct {
	Header
	ExtensionNumber string
}

// CallStart is call_start or call_update_info (see Header.EventType).
type CallStart struct {
	Header
	Time      int64
	SessionID string
	CDRID     string
	CallID    string
	Direction string // as sent: ext/in/out/in2out or internal/inbound/outbound/inbound_outbound
}

// CallCDR (call_cdr) is the final record of a call.
type CallCDR struct {
	Header
	TenantName   string
	SessionID    string
	CallID       string
	CDRID        string
	RingTime     int64 // UNIX seconds; 0 when it did not happen
	AnsweredTime int64
	EndedTime    int64
	RingDuration OptInt
	TalkDuration OptInt
	CallStatus   string // answered, noanswer, fail; empty on the oldest servers
	EndedReason  string // ended_reason, or end_reason when that is absent
	Direction    string // as sent, old or new spelling
	TrunkName    string // e.g. "122:883631675865563136"
}

// CDRTarget is a cdr_target_* event (newer servers): one target of a call
// changed: counted by type; its keys are read only for their spelling.
type CDRTarget struct {
	Header
}

// Unknown is an event whose event_type this package does not know. It is
// delivered (and counted as "other") rather than rejected.
type Unknown struct {
	Header
}

// Reply is a reply to a command (auth, subscribe): a frame with "command"
// and no "event_type".
type Reply struct {
	Command string
	ID      string
	Status  int64    // 0 for success, as documented; -1 for an error without a status
	Error   string   // a non-string error is kept as its JSON text
	Topics  []string // the topics a subscribe reply names, if any (undocumented)
}

// OK reports whether the command succeeded. The documented status
// decides: a PBX may put text in error on success ("already subscribed").
func (r *Reply) OK() bool { return r.Status == 0 }
