package wsitest

import "encoding/json"

// The payloads as a PortSIP PBX sends them: the vendor's key names, ids as
// strings (extension ids are json.RawMessage: older versions send numbers),
// and its habit of sending some numbers as strings ("position",
// "timestamp", "time", "ring_duration") and others as JSON numbers
// ("total_callers_breached", "talk_duration"). Field order follows the
// vendor's samples.

type wireCaller struct {
	Position     string `json:"position"`
	SessionID    string `json:"session_id"`
	CallerNumber string `json:"caller_number"`
	CallerName   string `json:"caller_name,omitempty"`
	Reason       string `json:"reason,omitempty"`
	Timestamp    string `json:"timestamp"`
	Type         string `json:"type"`
}

type wireAgent struct {
	State                string `json:"state"`
	AgentExtensionNumber string `json:"agent_extension_number"`
	SessionID            string `json:"session_id"`
	CallerNumber         string `json:"caller_number"`
	CallerName           string `json:"caller_name"`
	Timestamp            string `json:"timestamp"`
}

type wireRemovedAgent struct {
	AgentExtensionNumber string `json:"agent_extension_number"`
}

type queueStatusMsg struct {
	EventType   string       `json:"event_type"`
	TenantID    string       `json:"tenant_id"`
	QueueID     string       `json:"queue_id"`
	QueueNumber string       `json:"queue_number"`
	QueueName   string       `json:"queue_name"`
	WaitingList []wireCaller `json:"waiting_list"`
	Agents      []wireAgent  `json:"agents"`
}

// queueCallerStatusMsg has no queue_number: real PBXs send queue_id only.
type queueCallerStatusMsg struct {
	EventType      string       `json:"event_type"`
	TenantID       string       `json:"tenant_id"`
	QueueID        string       `json:"queue_id"`
	UpdatedCallers []wireCaller `json:"updated_callers"`
}

type queueAgentStatusMsg struct {
	EventType     string             `json:"event_type"`
	QueueID       string             `json:"queue_id"`
	TenantID      string             `json:"tenant_id"`
	UpdatedAgents []wireAgent        `json:"updated_agents"`
	RemovedAgents []wireRemovedAgent `json:"removed_agents"`
}

type queueSLABreachedMsg struct {
	EventType            string `json:"event_type"`
	QueueID              string `json:"queue_id"`
	TenantID             string `json:"tenant_id"`
	Caller               string `json:"caller"`
	TotalCallersBreached int    `json:"total_callers_breached"`
	SLATimeSecs          int    `json:"sla_time_secs"`
	WaitingCallers       int    `json:"waiting_callers"`
	Timestamp            string `json:"timestamp"`
}

type queueMgmtMsg struct {
	EventType   string `json:"event_type"`
	QueueNumber string `json:"queue_number"`
	TenantID    string `json:"tenant_id"`
}

type wireExtState struct {
	Extension    string          `json:"extension"`
	ExtensionID  json.RawMessage `json:"extension_id"`
	CallStatus   string          `json:"call_status"`
	Online       bool            `json:"online"`
	Presence     string          `json:"presence"`
	PresenceNote string          `json:"presence_note"`
	PushOnline   bool            `json:"push_online"`
	Time         string          `json:"time"`
}

type extensionStatusMsg struct {
	EventType string         `json:"event_type"`
	Status    []wireExtState `json:"status"`
	TenantID  string         `json:"tenant_id"`
}

type extensionCallMsg struct {
	EventType   string          `json:"event_type"`
	Extension   string          `json:"extension"`
	CallStatus  string          `json:"call_status"`
	TenantID    string          `json:"tenant_id"`
	ExtensionID json.RawMessage `json:"extension_id"`
	Time        string          `json:"time"`
}

type extensionPresenceMsg struct {
	EventType    string          `json:"event_type"`
	Extension    string          `json:"extension"`
	Presence     string          `json:"presence"`
	PresenceNote string          `json:"presence_note"`
	TenantID     string          `json:"tenant_id"`
	ExtensionID  json.RawMessage `json:"extension_id"`
	Time         string          `json:"time"`
}

type wireAgentQueue struct {
	QueueNumber string `json:"queue_number"`
	Status      string `json:"status"`
}

type extensionAgentStatusMsg struct {
	AgentStatus []wireAgentQueue `json:"agent_status"`
	EventType   string           `json:"event_type"`
	Extension   string           `json:"extension"`
	ExtensionID json.RawMessage  `json:"extension_id"`
	TenantID    string           `json:"tenant_id"`
	Time        string           `json:"time"`
}

type extensionMgmtMsg struct {
	EventType       string `json:"event_type"`
	ExtensionNumber string `json:"extension_number"`
	DispName        string `json:"disp_name"`
	Email           string `json:"email"`
	ExtensionID     string `json:"extension_id"`
	TenantID        string `json:"tenant_id"`
	Username        string `json:"username"`
	Department      string `json:"department,omitempty"`
	Enabled         bool   `json:"enabled"`
}

type callStartMsg struct {
	EventType         string `json:"event_type"`
	CallID            string `json:"call_id,omitempty"`
	Callee            string `json:"callee"`
	CalleeDisplayName string `json:"callee_display_name"`
	Caller            string `json:"caller"`
	CallerDisplayName string `json:"caller_display_name"`
	CDRID             string `json:"cdr_id"`
	DID               string `json:"did"`
	Direction         string `json:"direction"`
	OutboundCallerID  string `json:"outbound_caller_id"`
	SessionID         string `json:"session_id"`
	TenantID          string `json:"tenant_id"`
	Time              string `json:"time"`
	UserData          string `json:"user_data,omitempty"`
}

type wireTarget struct {
	ID               string `json:"id"`
	CallType         string `json:"call_type"`
	Caller           string `json:"caller"`
	Callee           string `json:"callee"`
	Destination      string `json:"destination"`
	DID              string `json:"did"`
	OutboundCallerID string `json:"outbound_caller_id"`
	StartTime        string `json:"start_time"`
	RingTime         string `json:"ring_time"`
	AnsweredTime     string `json:"answered_time"`
	EndedTime        string `json:"ended_time"`
	RingDuration     string `json:"ring_duration"`
	TalkDuration     string `json:"talk_duration"`
	Status           string `json:"status"`
	StatusCode       int    `json:"status_code"`
	EndReason        string `json:"end_reason"`
	TrunkName        string `json:"trunk_name"`
}

// callCDRMsg is the modern call_cdr; legacyCallCDRMsg the oldest form.
type callCDRMsg struct {
	EventType         string       `json:"event_type"`
	SessionID         string       `json:"session_id"`
	CallID            string       `json:"call_id"`
	CDRID             string       `json:"cdr_id"`
	TenantID          string       `json:"tenant_id"`
	TenantName        string       `json:"tenant_name"`
	StartTime         string       `json:"start_time"`
	RingTime          string       `json:"ring_time"`
	AnsweredTime      string       `json:"answered_time"`
	EndedTime         string       `json:"ended_time"`
	RingDuration      string       `json:"ring_duration"`
	TalkDuration      int64        `json:"talk_duration"`
	Caller            string       `json:"caller"`
	CallerDisplayName string       `json:"caller_display_name"`
	CallerDomain      string       `json:"caller_domain"`
	Callee            string       `json:"callee"`
	CalleeDomain      string       `json:"callee_domain"`
	DID               string       `json:"did"`
	OutboundCallerID  string       `json:"outbound_caller_id"`
	CallStatus        string       `json:"call_status"`
	StatusCode        string       `json:"status_code"`
	EndedReason       string       `json:"ended_reason"`
	Direction         string       `json:"direction"`
	TrunkName         string       `json:"trunk_name"`
	UserData          string       `json:"user_data"`
	CallTargets       []wireTarget `json:"call_targets"`
}

// legacyCallCDRMsg is what the oldest servers send: no durations, no
// call_status, did_cid and end_reason.
type legacyCallCDRMsg struct {
	EventType         string       `json:"event_type"`
	SessionID         string       `json:"session_id"`
	CallID            string       `json:"call_id"`
	TenantID          string       `json:"tenant_id"`
	TenantName        string       `json:"tenant_name"`
	StartTime         string       `json:"start_time"`
	RingTime          string       `json:"ring_time"`
	AnsweredTime      string       `json:"answered_time"`
	EndedTime         string       `json:"ended_time"`
	Caller            string       `json:"caller"`
	CallerDisplayName string       `json:"caller_display_name"`
	CallerDomain      string       `json:"caller_domain"`
	Callee            string       `json:"callee"`
	CalleeDomain      string       `json:"callee_domain"`
	DIDCID            string       `json:"did_cid"`
	StatusCode        int          `json:"status_code"`
	EndReason         string       `json:"end_reason"`
	Direction         string       `json:"direction"`
	TrunkName         string       `json:"trunk_name"`
	CallTargets       []wireTarget `json:"call_targets"`
}

// cdrTargetMsg is a cdr_target_* event: the target's keys are promoted to
// the top level.
type cdrTargetMsg struct {
	EventType string `json:"event_type"`
	SessionID string `json:"session_id"`
	CDRID     string `json:"cdr_id"`
	CallID    string `json:"call_id"`
	TenantID  string `json:"tenant_id"`
	wireTarget
}
