package wsitest

import (
	"strconv"
	"time"
)

// Call is a call as call_start and call_update_info describe it. Ids are
// generated when empty (StartCall returns the call with them filled in).
type Call struct {
	SessionID, CDRID, CallID string
	// Direction as on the wire: older servers ext, in, out, in2out; newer
	// internal, inbound, outbound, inbound_outbound.
	Direction string
	// Caller and Callee are SIP URIs ("sip:101@test.io") or numbers.
	Caller, CallerDisplayName string
	Callee, CalleeDisplayName string
	DID, OutboundCallerID     string
	UserData                  string
}

// CDR is the final record of a call (call_cdr). Zero times are sent as
// "0" (did not happen); durations are derived from the times.
type CDR struct {
	Call
	Start, Ring, Answered, Ended time.Time
	CallStatus                   string // answered, noanswer, fail
	StatusCode                   int    // SIP status, 0 when answered
	EndedReason                  string // e.g. caller_disconnect, callee_disconnect, cancelled
	TrunkName                    string // "name:id", empty for internal calls
	CallerDomain, CalleeDomain   string
	Targets                      []CallTarget
	// Legacy sends the oldest servers' shape: no durations and no
	// call_status, did_cid and end_reason instead of did and ended_reason.
	Legacy bool
}

// CallTarget is one leg of a call (call_targets).
type CallTarget struct {
	ID                           string // generated when empty
	CallType                     string // normal_call, queue_call, queue_callback_call, ring_group_call, callback_call, none
	Caller, Callee, Destination  string
	DID, OutboundCallerID        string
	Start, Ring, Answered, Ended time.Time
	Status                       string // answered, noanswer
	StatusCode                   int
	EndReason                    string
	TrunkName                    string
}

// StartCall publishes call_start on the CDR topics and returns the call
// with its ids filled in.
func (s *Server) StartCall(tenantID string, c Call) Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fillCallLocked(&c)
	m := s.callStartLocked(tenantID, c)
	m.EventType = "call_start"
	s.tenants[tenantID].calls[c.SessionID] = struct{}{}
	s.publishLocked(route{fam: famCDR, tenant: tenantID}, m)
	return c
}

// UpdateCall publishes call_update_info (the call_start keys without
// call_id and user_data).
func (s *Server) UpdateCall(tenantID string, c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fillCallLocked(&c)
	m := s.callStartLocked(tenantID, c)
	m.EventType, m.CallID, m.UserData = "call_update_info", "", ""
	s.publishLocked(route{fam: famCDR, tenant: tenantID}, m)
}

// EndCall publishes call_cdr with the tenant's name.
func (s *Server) EndCall(tenantID string, r CDR) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenantLocked(tenantID)
	s.fillCallLocked(&r.Call)
	delete(t.calls, r.SessionID)
	t.ended.record(r)
	if !s.listeningLocked() {
		return
	}
	targets := make([]wireTarget, 0, len(r.Targets))
	for _, x := range r.Targets {
		targets = append(targets, s.wireTargetLocked(x))
	}
	route := route{fam: famCDR, tenant: tenantID}
	if r.Legacy {
		s.publishTwiceLocked(route, legacyCallCDRMsg{
			EventType: "call_cdr", SessionID: r.SessionID, CallID: r.CallID, TenantID: t.ID, TenantName: t.Name,
			StartTime: s.stamp(r.Start), RingTime: s.stamp(r.Ring), AnsweredTime: s.stamp(r.Answered), EndedTime: s.stamp(r.Ended),
			Caller: r.Caller, CallerDisplayName: r.CallerDisplayName, CallerDomain: r.CallerDomain,
			Callee: r.Callee, CalleeDomain: r.CalleeDomain, DIDCID: r.DID, StatusCode: r.StatusCode,
			EndReason: s.endReason(r.EndedReason), Direction: r.Direction, TrunkName: r.TrunkName, CallTargets: targets,
		})
		return
	}
	ring, talk := durations(r.Ring, r.Answered, r.Ended)
	frame := mustMarshal(callCDRMsg{
		EventType: "call_cdr", SessionID: r.SessionID, CallID: r.CallID, CDRID: r.CDRID,
		TenantID: t.ID, TenantName: t.Name,
		StartTime: s.stamp(r.Start), RingTime: s.stamp(r.Ring), AnsweredTime: s.stamp(r.Answered), EndedTime: s.stamp(r.Ended),
		RingDuration: strconv.FormatInt(ring, 10), TalkDuration: talk,
		Caller: r.Caller, CallerDisplayName: r.CallerDisplayName, CallerDomain: r.CallerDomain,
		Callee: r.Callee, CalleeDomain: r.CalleeDomain, DID: r.DID, OutboundCallerID: r.OutboundCallerID,
		CallStatus: r.CallStatus, StatusCode: strconv.Itoa(r.StatusCode), EndedReason: s.endReason(r.EndedReason),
		Direction: r.Direction, TrunkName: r.TrunkName, UserData: r.UserData, CallTargets: targets,
	})
	if s.quirks.DuplicateKeys {
		decoy := "fail"
		if r.CallStatus == decoy {
			decoy = "answered"
		}
		frame = withDecoy(frame, "call_status", decoy)
	}
	s.publishFrameLocked(route, frame, s.quirks.Duplicates)
}

func (s *Server) wireTargetLocked(x CallTarget) wireTarget {
	if x.ID == "" {
		x.ID = s.newIDLocked()
	}
	ring, talk := durations(x.Ring, x.Answered, x.Ended)
	return wireTarget{
		ID: x.ID, CallType: x.CallType, Caller: x.Caller, Callee: x.Callee, Destination: x.Destination,
		DID: x.DID, OutboundCallerID: x.OutboundCallerID,
		StartTime: s.stamp(x.Start), RingTime: s.stamp(x.Ring), AnsweredTime: s.stamp(x.Answered), EndedTime: s.stamp(x.Ended),
		RingDuration: strconv.FormatInt(ring, 10), TalkDuration: strconv.FormatInt(talk, 10),
		Status: x.Status, StatusCode: x.StatusCode, EndReason: s.endReason(x.EndReason), TrunkName: x.TrunkName,
	}
}

// Events newer PBXs send as a call's target (leg) progresses.
const (
	TargetAdd      = "cdr_target_add"
	TargetRinging  = "cdr_target_ringing"
	TargetAnswer   = "cdr_target_answer"
	TargetNoAnswer = "cdr_target_noanswer"
	TargetFail     = "cdr_target_fail"
	TargetEnd      = "cdr_target_end"
)

// PublishCDRTarget publishes a cdr_target_* event (eventType, e.g.
// TargetAnswer) on the CDR topics: the target's keys next to the call's
// ids at the top level, as newer PBXs send it. Give the same target ID
// for every event of one leg.
func (s *Server) PublishCDRTarget(tenantID, eventType string, c Call, tg CallTarget) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tenantLocked(tenantID)
	s.publishLocked(route{fam: famCDR, tenant: tenantID}, cdrTargetMsg{
		EventType: eventType, SessionID: c.SessionID, CDRID: c.CDRID, CallID: c.CallID, TenantID: tenantID,
		wireTarget: s.wireTargetLocked(tg),
	})
}

// ActiveCalls is the number of calls of a tenant started and not ended.
func (s *Server) ActiveCalls(tenantID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tenantLocked(tenantID).calls)
}

// durations in whole seconds: ringing until answered (or the end), talk
// from answered to the end.
func durations(ring, answered, ended time.Time) (ringSecs, talkSecs int64) {
	if !ring.IsZero() {
		until := ended
		if !answered.IsZero() {
			until = answered
		}
		if !until.IsZero() && until.After(ring) {
			ringSecs = int64(until.Sub(ring) / time.Second)
		}
	}
	if !answered.IsZero() && ended.After(answered) {
		talkSecs = int64(ended.Sub(answered) / time.Second)
	}
	return ringSecs, talkSecs
}

func (s *Server) fillCallLocked(c *Call) {
	if c.SessionID == "" {
		c.SessionID = s.newIDLocked()
	}
	if c.CDRID == "" {
		c.CDRID = s.newIDLocked()
	}
	if c.CallID == "" {
		c.CallID = "wsitest-" + c.SessionID
	}
}

func (s *Server) callStartLocked(tenantID string, c Call) callStartMsg {
	s.tenantLocked(tenantID)
	return callStartMsg{
		CallID: c.CallID, Callee: c.Callee, CalleeDisplayName: c.CalleeDisplayName,
		Caller: c.Caller, CallerDisplayName: c.CallerDisplayName, CDRID: c.CDRID, DID: c.DID,
		Direction: c.Direction, OutboundCallerID: c.OutboundCallerID, SessionID: c.SessionID,
		TenantID: tenantID, Time: s.stamp(s.Now()), UserData: c.UserData,
	}
}
