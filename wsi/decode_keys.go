package wsi

// The keys the decoder knows, numbered so that an object can note which it
// has seen in a bit set and a decoder can switch on small integers.

type key uint8

const (
	kUnknown key = iota
	kEventType
	kCommand
	kID
	kStatus
	kError
	kTenantID
	kTenantName
	kQueueID
	kQueueNumber
	kQueueName
	kWaitingList
	kAgents
	kUpdatedCallers
	kUpdatedAgents
	kRemovedAgents
	kPosition
	kSessionID
	kCallerNumber
	kCallerName
	kTimestamp
	kType
	kReason
	kState
	kAgentExtensionNumber
	kCaller
	kTotalCallersBreached
	kSLATimeSecs
	kWaitingCallers
	kExtension
	kExtensionID
	kCallStatus
	kOnline
	kPushOnline
	kPresence
	kPresenceNote
	kTime
	kAgentStatus
	kExtensionNumber
	kDispName
	kEmail
	kUsername
	kDepartment
	kEnabled
	kCDRID
	kCallID
	kDirection
	kCallerDisplayName
	kCallee
	kCalleeDisplayName
	kDID
	kDIDCID
	kOutboundCallerID
	kUserData
	kStartTime
	kRingTime
	kAnsweredTime
	kEndedTime
	kRingDuration
	kTalkDuration
	kCallerDomain
	kCalleeDomain
	kStatusCode
	kEndedReason
	kEndReason
	kTrunkName
	kCallTargets
	kCallType
	kDestination
	kCost
	kTopics
	numKeys
)

var keyNames = [numKeys]string{
	kUnknown:              "(unknown)",
	kEventType:            "event_type",
	kCommand:              "command",
	kID:                   "id",
	kStatus:               "status",
	kError:                "error",
	kTenantID:             "tenant_id",
	kTenantName:           "tenant_name",
	kQueueID:              "queue_id",
	kQueueNumber:          "queue_number",
	kQueueName:            "queue_name",
	kWaitingList:          "waiting_list",
	kAgents:               "agents",
	kUpdatedCallers:       "updated_callers",
	kUpdatedAgents:        "updated_agents",
	kRemovedAgents:        "removed_agents",
	kPosition:             "position",
	kSessionID:            "session_id",
	kCallerNumber:         "caller_number",
	kCallerName:           "caller_name",
	kTimestamp:            "timestamp",
	kType:                 "type",
	kReason:               "reason",
	kState:                "state",
	kAgentExtensionNumber: "agent_extension_number",
	kCaller:               "caller",
	kTotalCallersBreached: "total_callers_breached",
	kSLATimeSecs:          "sla_time_secs",
	kWaitingCallers:       "waiting_callers",
	kExtension:            "extension",
	kExtensionID:          "extension_id",
	kCallStatus:           "call_status",
	kOnline:               "online",
	kPushOnline:           "push_online",
	kPresence:             "presence",
	kPresenceNote:         "presence_note",
	kTime:                 "time",
	kAgentStatus:          "agent_status",
	kExtensionNumber:      "extension_number",
	kDispName:             "disp_name",
	kEmail:                "email",
	kUsername:             "username",
	kDepartment:           "department",
	kEnabled:              "enabled",
	kCDRID:                "cdr_id",
	kCallID:               "call_id",
	kDirection:            "direction",
	kCallerDisplayName:    "caller_display_name",
	kCallee:               "callee",
	kCalleeDisplayName:    "callee_display_name",
	kDID:                  "did",
	kDIDCID:               "did_cid",
	kOutboundCallerID:     "outbound_caller_id",
	kUserData:             "user_data",
	kStartTime:            "start_time",
	kRingTime:             "ring_time",
	kAnsweredTime:         "answered_time",
	kEndedTime:            "ended_time",
	kRingDuration:         "ring_duration",
	kTalkDuration:         "talk_duration",
	kCallerDomain:         "caller_domain",
	kCalleeDomain:         "callee_domain",
	kStatusCode:           "status_code",
	kEndedReason:          "ended_reason",
	kEndReason:            "end_reason",
	kTrunkName:            "trunk_name",
	kCallTargets:          "call_targets",
	kCallType:             "call_type",
	kDestination:          "destination",
	kCost:                 "cost",
	kTopics:               "topics",
}

// keyID returns the number of a known key, kUnknown for any other.
func keyID(name []byte) key {
	switch string(name) {
	case "event_type":
		return kEventType
	case "command":
		return kCommand
	case "id":
		return kID
	case "status":
		return kStatus
	case "error":
		return kError
	case "tenant_id":
		return kTenantID
	case "tenant_name":
		return kTenantName
	case "queue_id":
		return kQueueID
	case "queue_number":
		return kQueueNumber
	case "queue_name":
		return kQueueName
	case "waiting_list":
		return kWaitingList
	case "agents":
		return kAgents
	case "updated_callers":
		return kUpdatedCallers
	case "updated_agents":
		return kUpdatedAgents
	case "removed_agents":
		return kRemovedAgents
	case "position":
		return kPosition
	case "session_id":
		return kSessionID
	case "caller_number":
		return kCallerNumber
	case "caller_name":
		return kCallerName
	case "timestamp":
		return kTimestamp
	case "type":
		return kType
	case "reason":
		return kReason
	case "state":
		return kState
	case "agent_extension_number":
		return kAgentExtensionNumber
	case "caller":
		return kCaller
	case "total_callers_breached":
		return kTotalCallersBreached
	case "sla_time_secs":
		return kSLATimeSecs
	case "waiting_callers":
		return kWaitingCallers
	case "extension":
		return kExtension
	case "extension_id":
		return kExtensionID
	case "call_status":
		return kCallStatus
	case "online":
		return kOnline
	case "push_online":
		return kPushOnline
	case "presence":
		return kPresence
	case "presence_note":
		return kPresenceNote
	case "time":
		return kTime
	case "agent_status":
		return kAgentStatus
	case "extension_number":
		return kExtensionNumber
	case "disp_name":
		return kDispName
	case "email":
		return kEmail
	case "username":
		return kUsername
	case "department":
		return kDepartment
	case "enabled":
		return kEnabled
	case "cdr_id":
		return kCDRID
	case "call_id":
		return kCallID
	case "direction":
		return kDirection
	case "caller_display_name":
		return kCallerDisplayName
	case "callee":
		return kCallee
	case "callee_display_name":
		return kCalleeDisplayName
	case "did":
		return kDID
	case "did_cid":
		return kDIDCID
	case "outbound_caller_id":
		return kOutboundCallerID
	case "user_data":
		return kUserData
	case "start_time":
		return kStartTime
	case "ring_time":
		return kRingTime
	case "answered_time":
		return kAnsweredTime
	case "ended_time":
		return kEndedTime
	case "ring_duration":
		return kRingDuration
	case "talk_duration":
		return kTalkDuration
	case "caller_domain":
		return kCallerDomain
	case "callee_domain":
		return kCalleeDomain
	case "status_code":
		return kStatusCode
	case "ended_reason":
		return kEndedReason
	case "end_reason":
		return kEndReason
	case "trunk_name":
		return kTrunkName
	case "call_targets":
		return kCallTargets
	case "call_type":
		return kCallType
	case "destination":
		return kDestination
	case "cost":
		return kCost
	case "topics":
		return kTopics
	}
	return kUnknown
}

// keySet is a set of keys.
type keySet [(numKeys + 63) / 64]uint64

func (s *keySet) has(k key) bool { return s[k/64]&(1<<(k%64)) != 0 }
func (s *keySet) add(k key)      { s[k/64] |= 1 << (k % 64) }

// internType returns the constant for a known event type, so that the
// common case allocates nothing.
func internType(b []byte) string {
	switch string(b) {
	case TypeQueueStatus:
		return TypeQueueStatus
	case TypeQueueCallerStatus:
		return TypeQueueCallerStatus
	case TypeQueueAgentStatus:
		return TypeQueueAgentStatus
	case TypeQueueSLABreached:
		return TypeQueueSLABreached
	case TypeQueueCreated:
		return TypeQueueCreated
	case TypeQueueUpdated:
		return TypeQueueUpdated
	case TypeQueueDestroy:
		return TypeQueueDestroy
	case TypeExtensionStatus:
		return TypeExtensionStatus
	case TypeExtensionCall:
		return TypeExtensionCall
	case TypeExtensionPresence:
		return TypeExtensionPresence
	case TypeExtensionAgentStatus:
		return TypeExtensionAgentStatus
	case TypeExtensionCreated:
		return TypeExtensionCreated
	case TypeExtensionUpdated:
		return TypeExtensionUpdated
	case TypeExtensionDestroyed:
		return TypeExtensionDestroyed
	case TypeCallStart:
		return TypeCallStart
	case TypeCallUpdateInfo:
		return TypeCallUpdateInfo
	case TypeCallCDR:
		return TypeCallCDR
	case TypeCDRTargetAdd:
		return TypeCDRTargetAdd
	case TypeCDRTargetRinging:
		return TypeCDRTargetRinging
	case TypeCDRTargetAnswer:
		return TypeCDRTargetAnswer
	case TypeCDRTargetNoAnswer:
		return TypeCDRTargetNoAnswer
	case TypeCDRTargetFail:
		return TypeCDRTargetFail
	case TypeCDRTargetEnd:
		return TypeCDRTargetEnd
	}
	return string(b)
}

// intern returns a constant for the enumeration values PBXs send (agent
// states, presence, call states, directions, outcomes), so that decoding
// them allocates nothing; anything else is copied.
func intern(b []byte) string {
	switch string(b) {
	case "":
		return ""
	// Agent states (wire and REST spellings).
	case "READY":
		return "READY"
	case "NOT_READY":
		return "NOT_READY"
	case "QUEUE_CALL":
		return "QUEUE_CALL"
	case "OTHER_CALL":
		return "OTHER_CALL"
	case "WRAP_UP":
		return "WRAP_UP"
	case "BREAK":
		return "BREAK"
	case "LUNCH":
		return "LUNCH"
	case "LOGGED_OUT":
		return "LOGGED_OUT"
	case "OFFLINE":
		return "OFFLINE"
	// Presence and call status.
	case "ONLINE":
		return "ONLINE"
	case "AVAILABLE":
		return "AVAILABLE"
	case "BUSINESS_TRIP":
		return "BUSINESS_TRIP"
	case "DO_NOT_DISTURB":
		return "DO_NOT_DISTURB"
	case "AWAY":
		return "AWAY"
	case "ON_CALL":
		return "ON_CALL"
	case "RINGING":
		return "RINGING"
	// Queue callers.
	case "normal":
		return "normal"
	case "callback":
		return "callback"
	case "enqueue":
		return "enqueue"
	case "agent_answered":
		return "agent_answered"
	case "overflow":
		return "overflow"
	case "hangup":
		return "hangup"
	// Calls.
	case "answered":
		return "answered"
	case "noanswer":
		return "noanswer"
	case "fail":
		return "fail"
	case "ext":
		return "ext"
	case "in":
		return "in"
	case "out":
		return "out"
	case "in2out":
		return "in2out"
	case "internal":
		return "internal"
	case "inbound":
		return "inbound"
	case "outbound":
		return "outbound"
	case "inbound_outbound":
		return "inbound_outbound"
	case "normal_call":
		return "normal_call"
	case "queue_call":
		return "queue_call"
	case "queue_callback_call":
		return "queue_callback_call"
	case "ring_group_call":
		return "ring_group_call"
	case "callback_call":
		return "callback_call"
	case "none":
		return "none"
	case "None":
		return "None"
	case "callee_disconnect":
		return "callee_disconnect"
	case "callee_disconnected":
		return "callee_disconnected"
	case "caller_disconnect":
		return "caller_disconnect"
	case "caller_disconnected":
		return "caller_disconnected"
	case "replaced":
		return "replaced"
	case "referred":
		return "referred"
	case "redirected":
		return "redirected"
	case "blind_transfer_complete":
		return "blind_transfer_complete"
	case "attended_transfer_complete":
		return "attended_transfer_complete"
	case "cancelled":
		return "cancelled"
	}
	return string(b)
}
