package wsitest

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
)

// Tenant is a PBX tenant. Its users authenticate with Domain.
type Tenant struct{ ID, Name, Domain string }

// Queue is a call queue of a tenant. ID is generated when empty.
type Queue struct {
	ID, Number, Name string
	SLASeconds       int // for queue_sla_breached's sla_time_secs
}

// Extension is an extension of a tenant; empty fields are derived from the
// number.
type Extension struct {
	Number      string
	ID          string
	DisplayName string
	Email       string
	Username    string
	Department  string
}

// Caller is a call waiting in a queue. SessionID is generated when empty.
// Callback marks a scheduled callback waiting for an agent (type
// "callback" on the wire) rather than a caller on the line.
type Caller struct {
	SessionID, Number, Name string
	Callback                bool
	// Since is when the caller joined the queue: zero is now, an earlier
	// time makes a caller who has been waiting a while.
	Since time.Time
}

// Agent is an agent's state in one queue. The call keys are set while the
// agent is on a queue call.
type Agent struct {
	Extension    string
	State        string // as on the wire: READY, NOT_READY, QUEUE_CALL, WRAP_UP, OTHER_CALL, BREAK, LUNCH, ...
	SessionID    string
	CallerNumber string
	CallerName   string
}

// Leave reasons of a queue_caller_status, as on the wire.
const (
	ReasonAgentAnswered = "agent_answered"
	ReasonOverflow      = "overflow"
	ReasonHangup        = "hangup"
	ReasonCallback      = "callback"
)

type tenant struct {
	Tenant
	queues []*queue // in the order added
	exts   []*extension
	calls  map[string]struct{} // session ids of calls started and not ended
	ended  CallTruth           // the truth about ended calls; Active is filled when asked
}

type queue struct {
	Queue
	waiting  []waiter
	agents   []*agent
	breached int // callers breached so far: total_callers_breached
	// The truth about the callers who left: by outcome, and how many
	// answered within the SLA time in force.
	left      map[string]Durations
	withinSLA int
}

type waiter struct {
	Caller
	since time.Time
}

type agent struct {
	Agent
	since time.Time
}

type extension struct {
	Extension
	online, pushOnline bool
	presence, note     string
	callStatus         string
	changed            time.Time
}

func (t *tenant) queue(number string) *queue {
	for _, q := range t.queues {
		if q.Number == number {
			return q
		}
	}
	return nil
}

func (t *tenant) ext(number string) *extension {
	for _, e := range t.exts {
		if e.Number == number {
			return e
		}
	}
	return nil
}

func (t *tenant) uri(number string) string { return "sip:" + number + "@" + t.Domain }

// NewID returns a fresh id in the PBX's style: an 18-digit decimal string.
func (s *Server) NewID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newIDLocked()
}

func (s *Server) newIDLocked() string {
	s.nextID++
	return strconv.FormatUint(800000000000000000+s.nextID, 10)
}

// ---- set-up ----

// AddUser adds an account. Users may be added at any time.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u.Queues = append([]string(nil), u.Queues...)
	u.Denied = append([]string(nil), u.Denied...)
	s.users = append(s.users, &u)
}

// AddTenant adds a tenant, or renames it if its ID is known.
func (s *Server) AddTenant(t Tenant) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.tenants[t.ID]; old != nil {
		old.Tenant = t
		return
	}
	s.tenants[t.ID] = &tenant{Tenant: t, calls: make(map[string]struct{}), ended: newCallTruth()}
	s.tenantIDs = append(s.tenantIDs, t.ID)
}

func (s *Server) tenantLocked(id string) *tenant {
	t := s.tenants[id]
	if t == nil {
		panic("wsitest: unknown tenant " + strconv.Quote(id))
	}
	return t
}

// queueLocked finds a queue; a test naming one that does not exist has a
// bug, so it panics like a bad index would.
func (s *Server) queueLocked(tenantID, number string) (*tenant, *queue) {
	t := s.tenantLocked(tenantID)
	q := t.queue(number)
	if q == nil {
		panic("wsitest: unknown queue " + strconv.Quote(number) + " in tenant " + tenantID)
	}
	return t, q
}

// extLocked finds an extension, adding it when new so that tests need not
// declare every extension they touch.
func (s *Server) extLocked(t *tenant, number string) *extension {
	if e := t.ext(number); e != nil {
		return e
	}
	return s.addExtLocked(t, Extension{Number: number}, false)
}

func (s *Server) addExtLocked(t *tenant, x Extension, publish bool) *extension {
	if x.ID == "" {
		x.ID = s.newIDLocked()
	}
	if x.DisplayName == "" {
		x.DisplayName = "Extension " + x.Number
	}
	if x.Username == "" {
		x.Username = "ext" + x.Number
	}
	if x.Email == "" {
		x.Email = x.Username + "@" + t.Domain
	}
	e := &extension{Extension: x, presence: "AVAILABLE", changed: s.Now()}
	t.exts = append(t.exts, e)
	if publish {
		s.publishExtMgmtLocked("extension_created", t, e)
	}
	return e
}

// AddQueue adds a queue to a tenant (publishing queue_created to the
// queue management topics), or updates it when the number is known
// (publishing queue_updated). Either way the queue's queue_status follows
// on the queue topics to the sessions subscribed to every queue of the
// tenant (global_queue_events, queue_events without a queue list): the
// management events carry only the number, and a PBX publishes the queue
// events of every queue of a subscribed tenant, so this is how such a
// subscriber learns the queue's id and name without subscribing again.
func (s *Server) AddQueue(tenantID string, q Queue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenantLocked(tenantID)
	typ := "queue_created"
	qq := t.queue(q.Number)
	if qq != nil {
		if q.ID == "" {
			q.ID = qq.ID
		}
		qq.Queue = q
		typ = "queue_updated"
	} else {
		if q.ID == "" {
			q.ID = s.newIDLocked()
		}
		qq = &queue{Queue: q, left: make(map[string]Durations)}
		t.queues = append(t.queues, qq)
	}
	r := route{fam: famQueueMgmt, tenant: t.ID, queue: q.Number}
	s.publishLocked(r, queueMgmtMsg{EventType: typ, QueueNumber: q.Number, TenantID: t.ID})
	if typ == "queue_created" && s.quirks.NewQueueIDOnly {
		return // the number reaches subscribers without the id
	}
	r.fam = famQueue
	s.publishLocked(r, s.queueStatusLocked(t, qq))
}

// UpdateQueue publishes queue_updated for an existing queue without
// changing it, as the PBX does when a setting the simulator does not
// model changes.
func (s *Server) UpdateQueue(tenantID, number string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, q := s.queueLocked(tenantID, number)
	s.publishLocked(route{fam: famQueueMgmt, tenant: t.ID, queue: q.Number},
		queueMgmtMsg{EventType: "queue_updated", QueueNumber: q.Number, TenantID: t.ID})
}

// RemoveQueue deletes a queue and publishes queue_destroy.
func (s *Server) RemoveQueue(tenantID, number string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, q := s.queueLocked(tenantID, number)
	for i, x := range t.queues {
		if x == q {
			t.queues = append(t.queues[:i], t.queues[i+1:]...)
			break
		}
	}
	s.publishLocked(route{fam: famQueueMgmt, tenant: t.ID, queue: q.Number},
		queueMgmtMsg{EventType: "queue_destroy", QueueNumber: q.Number, TenantID: t.ID})
}

// Queues lists a tenant's queues in the order added.
func (s *Server) Queues(tenantID string) []Queue {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenantLocked(tenantID)
	out := make([]Queue, 0, len(t.queues))
	for _, q := range t.queues {
		out = append(out, q.Queue)
	}
	return out
}

// AddExtension adds an extension (offline, presence AVAILABLE) and
// publishes extension_created.
func (s *Server) AddExtension(tenantID, number string) {
	s.AddExtensionInfo(tenantID, Extension{Number: number})
}

// AddExtensionInfo adds an extension with its details and publishes
// extension_created; a known number publishes extension_updated.
func (s *Server) AddExtensionInfo(tenantID string, x Extension) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenantLocked(tenantID)
	if e := t.ext(x.Number); e != nil {
		if x.ID == "" {
			x.ID = e.ID
		}
		if x.DisplayName != "" {
			e.DisplayName = x.DisplayName
		}
		if x.Email != "" {
			e.Email = x.Email
		}
		if x.Username != "" {
			e.Username = x.Username
		}
		e.Department = x.Department
		s.publishExtMgmtLocked("extension_updated", t, e)
		return
	}
	s.addExtLocked(t, x, true)
}

// RemoveExtension deletes an extension and publishes extension_destroyed.
func (s *Server) RemoveExtension(tenantID, number string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenantLocked(tenantID)
	for i, e := range t.exts {
		if e.Number == number {
			t.exts = append(t.exts[:i], t.exts[i+1:]...)
			s.publishExtMgmtLocked("extension_destroyed", t, e)
			return
		}
	}
}

// Extensions lists a tenant's extension numbers in the order added.
func (s *Server) Extensions(tenantID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenantLocked(tenantID)
	out := make([]string, 0, len(t.exts))
	for _, e := range t.exts {
		out = append(out, e.Number)
	}
	return out
}

func (s *Server) publishExtMgmtLocked(typ string, t *tenant, e *extension) {
	if !s.listeningLocked() {
		return
	}
	frame := mustMarshal(extensionMgmtMsg{
		EventType: typ, ExtensionNumber: e.Number, DispName: e.DisplayName, Email: e.Email,
		ExtensionID: e.ID, TenantID: t.ID, Username: e.Username, Department: e.Department, Enabled: true,
	})
	if s.quirks.DuplicateKeys {
		frame = withDecoy(frame, "username", e.Username) // as the vendor's sample
	}
	s.publishFrameLocked(route{fam: famExtMgmt, tenant: t.ID}, frame, false)
}

// ---- queue state changes ----

// Enqueue adds a caller to the end of a queue's waiting list and publishes
// queue_caller_status with reason enqueue.
func (s *Server) Enqueue(tenantID, queueNumber string, c Caller) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, q := s.queueLocked(tenantID, queueNumber)
	if c.SessionID == "" {
		c.SessionID = s.newIDLocked()
	}
	since := c.Since
	if since.IsZero() {
		since = s.Now()
	}
	q.waiting = append(q.waiting, waiter{Caller: c, since: since})
	wc := s.wireCallerOf(c, len(q.waiting), since)
	wc.Reason = "enqueue"
	s.publishLocked(route{fam: famQueue, tenant: t.ID, queue: q.Number},
		queueCallerStatusMsg{EventType: "queue_caller_status", TenantID: t.ID, QueueID: q.ID, UpdatedCallers: []wireCaller{wc}})
}

// Dequeue removes a waiting caller and publishes queue_caller_status with
// reason (ReasonAgentAnswered, ReasonOverflow, ReasonHangup,
// ReasonCallback). It reports whether the caller was waiting.
func (s *Server) Dequeue(tenantID, queueNumber, sessionID, reason string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, q := s.queueLocked(tenantID, queueNumber)
	for i, w := range q.waiting {
		if w.SessionID != sessionID {
			continue
		}
		now := s.Now()
		q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
		q.recordLeave(reason, now.Sub(w.since))
		left := now
		if s.quirks.LeaveRepeatsEnqueueTime {
			left = w.since
		}
		wc := s.wireCallerOf(w.Caller, i+1, left)
		wc.Reason = reason
		r := route{fam: famQueue, tenant: t.ID, queue: q.Number}
		s.publishTwiceLocked(r, queueCallerStatusMsg{EventType: "queue_caller_status", TenantID: t.ID, QueueID: q.ID,
			UpdatedCallers: []wireCaller{wc}})
		if s.quirks.CallerUpdates && i < len(q.waiting) {
			moved := make([]wireCaller, 0, len(q.waiting)-i)
			for j := i; j < len(q.waiting); j++ {
				c := s.wireCallerOf(q.waiting[j].Caller, j+1, q.waiting[j].since)
				c.Reason = ReasonUpdate
				moved = append(moved, c)
			}
			s.publishLocked(r, queueCallerStatusMsg{EventType: "queue_caller_status", TenantID: t.ID, QueueID: q.ID,
				UpdatedCallers: moved})
		}
		return true
	}
	return false
}

// Waiting is the number of callers waiting in a queue.
func (s *Server) Waiting(tenantID, queueNumber string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, q := s.queueLocked(tenantID, queueNumber)
	return len(q.waiting)
}

func (s *Server) wireCallerOf(c Caller, pos int, ts time.Time) wireCaller {
	typ := "normal"
	if c.Callback {
		typ = "callback"
	}
	return wireCaller{
		Position: strconv.Itoa(pos), SessionID: c.SessionID, CallerNumber: c.Number,
		CallerName: c.Name, Timestamp: s.stamp(ts), Type: typ,
	}
}

// SetAgentState sets an agent's state in a queue, adding the agent if new.
func (s *Server) SetAgentState(tenantID, queueNumber, ext, state string) {
	s.SetAgent(tenantID, queueNumber, Agent{Extension: ext, State: state})
}

// SetAgent sets an agent's state (and call) in a queue, adding the agent
// if new, and publishes queue_agent_status on the queue topics and
// extension_agent_status on the extension topics.
func (s *Server) SetAgent(tenantID, queueNumber string, a Agent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, q := s.queueLocked(tenantID, queueNumber)
	now := s.Now()
	var ag *agent
	for _, x := range q.agents {
		if x.Extension == a.Extension {
			ag = x
		}
	}
	if ag == nil {
		ag = &agent{}
		q.agents = append(q.agents, ag)
	}
	ag.Agent, ag.since = a, now
	s.publishLocked(route{fam: famQueue, tenant: t.ID, queue: q.Number}, queueAgentStatusMsg{
		EventType: "queue_agent_status", QueueID: q.ID, TenantID: t.ID,
		UpdatedAgents: []wireAgent{s.wireAgentOf(ag)}, RemovedAgents: []wireRemovedAgent{},
	})
	s.publishAgentQueuesLocked(t, a.Extension, now)
}

// RemoveAgent removes an agent from a queue and publishes
// queue_agent_status with removed_agents.
func (s *Server) RemoveAgent(tenantID, queueNumber, ext string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, q := s.queueLocked(tenantID, queueNumber)
	for i, x := range q.agents {
		if x.Extension != ext {
			continue
		}
		q.agents = append(q.agents[:i], q.agents[i+1:]...)
		s.publishLocked(route{fam: famQueue, tenant: t.ID, queue: q.Number}, queueAgentStatusMsg{
			EventType: "queue_agent_status", QueueID: q.ID, TenantID: t.ID,
			UpdatedAgents: []wireAgent{}, RemovedAgents: []wireRemovedAgent{{AgentExtensionNumber: ext}},
		})
		s.publishAgentQueuesLocked(t, ext, s.Now())
		return
	}
}

// publishAgentQueuesLocked sends extension_agent_status: the agent's state
// in every queue it serves.
func (s *Server) publishAgentQueuesLocked(t *tenant, ext string, now time.Time) {
	e := s.extLocked(t, ext)
	list := []wireAgentQueue{}
	for _, q := range t.queues {
		for _, a := range q.agents {
			if a.Extension == ext {
				list = append(list, wireAgentQueue{QueueNumber: q.Number, Status: s.agentState(a.State)})
			}
		}
	}
	s.publishLocked(route{fam: famExt, tenant: t.ID, ext: ext}, extensionAgentStatusMsg{
		AgentStatus: list, EventType: "extension_agent_status", Extension: t.uri(ext),
		ExtensionID: s.extID(e.ID), TenantID: t.ID, Time: s.stamp(now),
	})
}

func (s *Server) wireAgentOf(a *agent) wireAgent {
	return wireAgent{
		State: s.agentState(a.State), AgentExtensionNumber: a.Extension, SessionID: a.SessionID,
		CallerNumber: a.CallerNumber, CallerName: a.CallerName, Timestamp: s.stamp(a.since),
	}
}

// BreachSLA publishes queue_sla_breached for a waiting caller (its
// number, as the PBX sends it).
func (s *Server) BreachSLA(tenantID, queueNumber, caller string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, q := s.queueLocked(tenantID, queueNumber)
	q.breached++
	s.publishLocked(route{fam: famQueue, tenant: t.ID, queue: q.Number}, queueSLABreachedMsg{
		EventType: "queue_sla_breached", QueueID: q.ID, TenantID: t.ID, Caller: caller,
		TotalCallersBreached: q.breached, SLATimeSecs: q.SLASeconds, WaitingCallers: len(q.waiting),
		Timestamp: s.stamp(s.Now()),
	})
}

func (s *Server) queueStatusLocked(t *tenant, q *queue) queueStatusMsg {
	m := queueStatusMsg{
		EventType: "queue_status", TenantID: t.ID, QueueID: q.ID, QueueNumber: q.Number, QueueName: q.Name,
		WaitingList: make([]wireCaller, 0, len(q.waiting)), Agents: make([]wireAgent, 0, len(q.agents)),
	}
	for i, w := range q.waiting {
		m.WaitingList = append(m.WaitingList, s.wireCallerOf(w.Caller, i+1, w.since))
	}
	for _, a := range q.agents {
		m.Agents = append(m.Agents, s.wireAgentOf(a))
	}
	return m
}

// ---- extension state changes ----

// SetExtensionOnline registers or unregisters an extension (adding it if
// new) and publishes extension_status with its entry.
func (s *Server) SetExtensionOnline(tenantID, ext string, online bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenantLocked(tenantID)
	e := s.extLocked(t, ext)
	e.online, e.changed = online, s.Now()
	if !online {
		e.callStatus = ""
	}
	s.publishLocked(route{fam: famExt, tenant: t.ID, ext: ext}, s.extensionStatusLocked(t, e))
}

// SetPushOnline sets whether an extension is reachable by push while it
// is not registered (a mobile app in the background) and publishes
// extension_status with its entry.
func (s *Server) SetPushOnline(tenantID, ext string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenantLocked(tenantID)
	e := s.extLocked(t, ext)
	e.pushOnline, e.changed = on, s.Now()
	s.publishLocked(route{fam: famExt, tenant: t.ID, ext: ext}, s.extensionStatusLocked(t, e))
}

// SetPresence changes an extension's presence (AVAILABLE, ONLINE, LUNCH,
// BUSINESS_TRIP, DO_NOT_DISTURB, AWAY) and publishes extension_presence.
func (s *Server) SetPresence(tenantID, ext, presence, note string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenantLocked(tenantID)
	e := s.extLocked(t, ext)
	e.presence, e.note, e.changed = presence, note, s.Now()
	if !s.listeningLocked() {
		return
	}
	frame := mustMarshal(extensionPresenceMsg{
		EventType: "extension_presence", Extension: t.uri(ext), Presence: s.presence(presence), PresenceNote: note,
		TenantID: t.ID, ExtensionID: s.extID(e.ID), Time: s.stamp(e.changed),
	})
	if s.quirks.DuplicateKeys {
		decoy := "AWAY"
		if presence == decoy {
			decoy = "LUNCH"
		}
		frame = withDecoy(frame, "presence", decoy)
	}
	s.publishFrameLocked(route{fam: famExt, tenant: t.ID, ext: ext}, frame, false)
}

// SetCallStatus changes an extension's call state (ON_CALL, RINGING, or ""
// for none) and publishes extension_call.
func (s *Server) SetCallStatus(tenantID, ext, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenantLocked(tenantID)
	e := s.extLocked(t, ext)
	e.callStatus, e.changed = status, s.Now()
	s.publishLocked(route{fam: famExt, tenant: t.ID, ext: ext}, extensionCallMsg{
		EventType: "extension_call", Extension: t.uri(ext), CallStatus: s.callStatus(status),
		TenantID: t.ID, ExtensionID: s.extID(e.ID), Time: s.stamp(e.changed),
	})
}

func (s *Server) extensionStatusLocked(t *tenant, list ...*extension) extensionStatusMsg {
	m := extensionStatusMsg{EventType: "extension_status", TenantID: t.ID, Status: make([]wireExtState, 0, len(list))}
	for _, e := range list {
		m.Status = append(m.Status, wireExtState{
			Extension: t.uri(e.Number), ExtensionID: s.extID(e.ID), CallStatus: s.callStatus(e.callStatus), Online: e.online,
			Presence: s.presence(e.presence), PresenceNote: e.note, PushOnline: e.pushOnline, Time: s.stamp(e.changed),
		})
	}
	return m
}

// ---- publishing ----

// PublishEvent marshals v (a map or struct in the vendor's shape) and
// sends it to the sessions subscribed to topic's family (topic may name
// the tenant or the global form) for tenantID. Its queue_number and
// extension keys, when present, are matched against the sessions' queue
// and extension filters. The state is not changed.
func (s *Server) PublishEvent(topic, tenantID string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("wsitest: cannot marshal event: " + err.Error())
	}
	s.PublishRaw(topic, tenantID, b)
}

// PublishRaw sends frame unchanged as a text frame to the sessions
// subscribed to topic's family for tenantID, like PublishEvent; frames
// that are not JSON reach every such session.
func (s *Server) PublishRaw(topic, tenantID string, frame []byte) {
	ti, ok := topics[topic]
	if !ok {
		panic("wsitest: unknown topic " + strconv.Quote(topic))
	}
	r := route{fam: ti.fam, tenant: tenantID}
	var keys struct {
		QueueNumber string `json:"queue_number"`
		Extension   string `json:"extension"`
	}
	if json.Unmarshal(frame, &keys) == nil {
		r.queue = keys.QueueNumber
		r.ext = extensionNumber(keys.Extension)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publishFrameLocked(r, frame, false)
}

// extensionNumber is the user part of a SIP URI ("sip:101@x" -> "101").
func extensionNumber(uri string) string {
	if len(uri) > 4 && uri[:4] == "sip:" {
		uri = uri[4:]
	}
	for i := 0; i < len(uri); i++ {
		if uri[i] == '@' {
			return uri[:i]
		}
	}
	return uri
}

// listeningLocked reports whether anyone may receive a frame: with no
// session and no tap there is nobody to marshal for (a demo PBX between
// sessions, hours of traffic in a test).
func (s *Server) listeningLocked() bool {
	if len(s.sessions) == 0 && s.tap == nil {
		s.held = nil
		return false
	}
	return true
}

// publishLocked sends v to the sessions subscribed to r.
func (s *Server) publishLocked(r route, v any) {
	if s.listeningLocked() {
		s.publishFrameLocked(r, mustMarshal(v), false)
	}
}

// publishTwiceLocked is publishLocked for the events Quirks.Duplicates
// delivers twice.
func (s *Server) publishTwiceLocked(r route, v any) {
	if s.listeningLocked() {
		s.publishFrameLocked(r, mustMarshal(v), s.quirks.Duplicates)
	}
}

// heldFrame is a copy due to one session (nil: the tap) after its next
// frame.
type heldFrame struct {
	sess *session
	f    outFrame
}

// publishFrameLocked sends frame to the tap and to the sessions subscribed
// to r, then the copies held back since the previous frame. With twice, a
// copy is held back for each of them: a duplicate that arrives out of
// order.
func (s *Server) publishFrameLocked(r route, frame []byte, twice bool) {
	due := s.held
	s.held = nil
	f := outFrame{typ: websocket.TextMessage, data: frame}
	if s.tap != nil {
		s.tap(frame)
		if twice {
			s.held = append(s.held, heldFrame{f: f})
		}
	}
	for sess := range s.sessions {
		if sess.user != nil && sess.wants(r) {
			sess.send(f)
			if twice {
				s.held = append(s.held, heldFrame{sess: sess, f: f})
			}
		}
	}
	for _, h := range due {
		if h.sess == nil {
			if s.tap != nil {
				s.tap(h.f.data)
			}
			continue
		}
		if _, open := s.sessions[h.sess]; open {
			h.sess.send(h.f)
		}
	}
}

// mustMarshal marshals the package's own payload types, which cannot fail.
func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("wsitest: cannot marshal event: " + err.Error())
	}
	return b
}
