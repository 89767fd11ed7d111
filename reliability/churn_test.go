package reliability

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// churn is a contact centre that runs for days: callers enqueue and leave,
// agents change state, extensions flap and change presence, calls start
// and end with CDRs, a campaign queue and temporary extensions come and
// go. Every caller, call, temporary extension and campaign queue id is
// new, while the number of live entities stays bounded: the input under
// which an exporter's memory must stay flat.
//
// next writes the frames as the PBX does (wsitest's wire shapes: ids as
// strings, numbers sometimes as strings) into one reused buffer.
type churn struct {
	rng     *rand.Rand
	now     int64 // the PBX's clock, UNIX seconds
	n       int   // frames made
	seq     uint64
	buf     []byte
	tenants []*churnTenant
	queued  []*churnTenant // tenants whose snapshot is still to be sent

	// What was sent, by event type and by caller reason: the counts the
	// exporter must show.
	sent    map[string]int
	reasons map[string]int
}

type churnTenant struct {
	id, domain string
	queues     []*churnQueue
	exts       []*churnExt // exts[:agents] are agents
	temp       []string    // temporary extensions
	calls      []churnCall
	campaign   *churnQueue // the campaign queue while it exists
	snapshot   int         // queues whose snapshot is sent
}

type churnQueue struct {
	id, number string
	waiting    []churnCaller
	agents     []*churnExt
}

type churnCaller struct {
	session string
	since   int64
}

type churnExt struct {
	number, id, agentState string
	online                 bool
}

type churnCall struct {
	session, cdr, caller, callee, direction string
	start                                   int64
}

// Bounds of the live entities.
const (
	churnTenants   = 3
	churnQueues    = 4  // per tenant, plus the campaign queue
	churnAgents    = 12 // per queue
	churnExts      = 120
	churnMaxWait   = 30 // callers per queue
	churnMaxCalls  = 150
	churnMaxTemp   = 5
	churnFramesSec = 20 // frames per second of PBX time
)

var (
	agentStates  = []string{"READY", "READY", "QUEUE_CALL", "QUEUE_CALL", "WRAP_UP", "NOT_READY", "OTHER_CALL", "BREAK", "LUNCH"}
	presences    = []string{"AVAILABLE", "ONLINE", "AWAY", "DO_NOT_DISTURB", "BUSINESS_TRIP", "LUNCH"}
	callStatuses = []string{"ON_CALL", "RINGING", ""}
	directions   = []string{"internal", "inbound", "outbound", "inbound_outbound", "ext", "in", "out"}
	endReasons   = []string{"caller_disconnect", "callee_disconnect", "cancelled", "referred", "blind_transfer_complete"}
	trunks       = []string{"Telia:883631675865563136", "BT-SIP:883631675865563137", "Twilio:883631675865563138"}
)

func newChurn(seed uint64) *churn {
	g := &churn{
		rng:     rand.New(rand.NewPCG(seed, 0x5eed)),
		now:     1_704_186_780,
		sent:    map[string]int{},
		reasons: map[string]int{},
	}
	for ti := range churnTenants {
		t := &churnTenant{id: strconv.Itoa(883634229655633920 + ti), domain: fmt.Sprintf("t%d.example.com", ti)}
		for i := range churnExts {
			x := &churnExt{number: strconv.Itoa(100 + i), id: g.id(), online: i%3 != 0, agentState: "READY"}
			t.exts = append(t.exts, x)
		}
		for qi := range churnQueues {
			q := &churnQueue{id: g.id(), number: strconv.Itoa(8000 + qi)}
			q.agents = t.exts[qi*churnAgents : (qi+1)*churnAgents]
			t.queues = append(t.queues, q)
		}
		g.tenants = append(g.tenants, t)
	}
	g.queued = slices.Clone(g.tenants)
	return g
}

func (g *churn) id() string {
	g.seq++
	return strconv.FormatUint(900000000000000000+g.seq, 10)
}

func (g *churn) pick(n int) int { return g.rng.IntN(n) }

func (g *churn) chance(p float64) bool { return g.rng.Float64() < p }

// Tenants lists the tenant ids, for the subscription.
func (g *churn) tenantIDs() []string {
	ids := make([]string, len(g.tenants))
	for i, t := range g.tenants {
		ids[i] = t.id
	}
	return ids
}

// next returns the next frame, its topic (global form) and tenant. The
// frame is valid until the next call.
func (g *churn) next() (frame []byte, topic, tenant string) {
	g.n++
	if g.n%churnFramesSec == 0 {
		g.now++
	}
	g.buf = g.buf[:0]
	if len(g.queued) > 0 { // the snapshots a subscriber gets first
		t := g.queued[0]
		if t.snapshot < len(t.queues) {
			g.queueStatus(t, t.queues[t.snapshot])
			t.snapshot++
			return g.buf, wsi.TopicGlobalQueueEvents, t.id
		}
		g.queued = g.queued[1:]
		g.extensionStatus(t, t.exts...)
		return g.buf, wsi.TopicGlobalExtensionEvents, t.id
	}

	t := g.tenants[g.pick(len(g.tenants))]
	switch r := g.rng.Float64(); {
	case r < 0.34:
		g.callerChange(t)
		return g.buf, wsi.TopicGlobalQueueEvents, t.id
	case r < 0.46:
		g.agentChange(t)
		return g.buf, wsi.TopicGlobalQueueEvents, t.id
	case r < 0.52:
		x := t.exts[g.pick(len(t.exts))]
		x.online = !x.online
		g.extensionStatus(t, x)
		return g.buf, wsi.TopicGlobalExtensionEvents, t.id
	case r < 0.60:
		x := t.exts[g.pick(len(t.exts))]
		g.event(wsi.TypeExtensionPresence)
		g.buf = fmt.Appendf(g.buf, `{"event_type":"extension_presence","extension":"sip:%s@%s","presence":%q,"presence_note":"","tenant_id":%q,"extension_id":%q,"time":"%d"}`,
			x.number, t.domain, presences[g.pick(len(presences))], t.id, x.id, g.now)
		return g.buf, wsi.TopicGlobalExtensionEvents, t.id
	case r < 0.70:
		x := t.exts[g.pick(len(t.exts))]
		g.event(wsi.TypeExtensionCall)
		g.buf = fmt.Appendf(g.buf, `{"event_type":"extension_call","extension":"sip:%s@%s","call_status":%q,"tenant_id":%q,"extension_id":%q,"time":"%d"}`,
			x.number, t.domain, callStatuses[g.pick(len(callStatuses))], t.id, x.id, g.now)
		return g.buf, wsi.TopicGlobalExtensionEvents, t.id
	case r < 0.95:
		g.callChange(t)
		return g.buf, wsi.TopicGlobalCDREvents, t.id
	case r < 0.965:
		q := t.queues[g.pick(len(t.queues))]
		if len(q.waiting) == 0 {
			g.callerChange(t)
			return g.buf, wsi.TopicGlobalQueueEvents, t.id
		}
		g.event(wsi.TypeQueueSLABreached)
		g.buf = fmt.Appendf(g.buf, `{"event_type":"queue_sla_breached","queue_id":%q,"tenant_id":%q,"caller":"5550100","total_callers_breached":%d,"sla_time_secs":20,"waiting_callers":%d,"timestamp":"%d"}`,
			q.id, t.id, g.n, len(q.waiting), g.now)
		return g.buf, wsi.TopicGlobalQueueEvents, t.id
	case r < 0.98:
		return g.campaign(t)
	default:
		g.tempExtension(t)
		return g.buf, wsi.TopicGlobalExtensionManagement, t.id
	}
}

func (g *churn) event(typ string) { g.sent[typ]++ }

func (g *churn) queueStatus(t *churnTenant, q *churnQueue) {
	g.event(wsi.TypeQueueStatus)
	g.buf = fmt.Appendf(g.buf, `{"event_type":"queue_status","tenant_id":%q,"queue_id":%q,"queue_number":%q,"queue_name":"Queue %s","waiting_list":[`,
		t.id, q.id, q.number, q.number)
	for i, c := range q.waiting {
		if i > 0 {
			g.buf = append(g.buf, ',')
		}
		g.buf = fmt.Appendf(g.buf, `{"position":"%d","session_id":%q,"caller_number":"5550100","caller_name":"Caller","timestamp":"%d","type":"normal"}`,
			i+1, c.session, c.since)
	}
	g.buf = append(g.buf, `],"agents":[`...)
	for i, a := range q.agents {
		if i > 0 {
			g.buf = append(g.buf, ',')
		}
		g.buf = fmt.Appendf(g.buf, `{"state":%q,"agent_extension_number":%q,"session_id":"","caller_number":"","caller_name":"","timestamp":"%d"}`,
			a.agentState, a.number, g.now)
	}
	g.buf = append(g.buf, "]}"...)
}

func (g *churn) extensionStatus(t *churnTenant, xs ...*churnExt) {
	g.event(wsi.TypeExtensionStatus)
	g.buf = append(g.buf, `{"event_type":"extension_status","status":[`...)
	for i, x := range xs {
		if i > 0 {
			g.buf = append(g.buf, ',')
		}
		g.buf = fmt.Appendf(g.buf, `{"extension":"sip:%s@%s","extension_id":%q,"call_status":"","online":%t,"presence":"AVAILABLE","presence_note":"","push_online":false,"time":"%d"}`,
			x.number, t.domain, x.id, x.online, g.now)
	}
	g.buf = fmt.Appendf(g.buf, `],"tenant_id":%q}`, t.id)
}

// callerChange enqueues a new caller or lets a waiting one leave.
func (g *churn) callerChange(t *churnTenant) {
	q := t.queues[g.pick(len(t.queues))]
	if t.campaign != nil && g.chance(0.1) {
		q = t.campaign
	}
	g.event(wsi.TypeQueueCallerStatus)
	var c churnCaller
	reason := "enqueue"
	pos := len(q.waiting) + 1
	if len(q.waiting) < churnMaxWait && (len(q.waiting) == 0 || g.chance(0.5)) {
		c = churnCaller{session: g.id(), since: g.now}
		q.waiting = append(q.waiting, c)
	} else {
		i := g.pick(len(q.waiting))
		c, pos = q.waiting[i], i+1
		q.waiting = slices.Delete(q.waiting, i, i+1)
		switch r := g.rng.Float64(); {
		case r < 0.7:
			reason = "agent_answered"
		case r < 0.9:
			reason = "hangup"
		case r < 0.95:
			reason = "overflow"
		default:
			reason = "callback"
		}
	}
	g.reasons[reason]++
	g.buf = fmt.Appendf(g.buf, `{"event_type":"queue_caller_status","tenant_id":%q,"queue_id":%q,"updated_callers":[{"position":"%d","session_id":%q,"caller_number":"5550100","caller_name":"Caller","reason":%q,"timestamp":"%d","type":"normal"}]}`,
		t.id, q.id, pos, c.session, reason, g.now)
}

func (g *churn) agentChange(t *churnTenant) {
	q := t.queues[g.pick(len(t.queues))]
	a := q.agents[g.pick(len(q.agents))]
	a.agentState = agentStates[g.pick(len(agentStates))]
	g.event(wsi.TypeQueueAgentStatus)
	g.buf = fmt.Appendf(g.buf, `{"event_type":"queue_agent_status","queue_id":%q,"tenant_id":%q,"updated_agents":[{"state":%q,"agent_extension_number":%q,"session_id":"","caller_number":"","caller_name":"","timestamp":"%d"}],"removed_agents":[]}`,
		q.id, t.id, a.agentState, a.number, g.now)
}

// callChange starts a new call or ends an active one with its CDR.
func (g *churn) callChange(t *churnTenant) {
	if len(t.calls) < churnMaxCalls && (len(t.calls) == 0 || g.chance(0.5)) {
		x := t.exts[g.pick(len(t.exts))]
		c := churnCall{session: g.id(), cdr: g.id(), caller: "sip:" + x.number + "@" + t.domain,
			callee: "sip:" + g.id()[12:] + "@pstn", direction: directions[g.pick(len(directions))], start: g.now}
		t.calls = append(t.calls, c)
		g.event(wsi.TypeCallStart)
		g.buf = fmt.Appendf(g.buf, `{"event_type":"call_start","call_id":"%s@pbx","callee":%q,"callee_display_name":"","caller":%q,"caller_display_name":"Agent","cdr_id":%q,"did":"","direction":%q,"outbound_caller_id":"","session_id":%q,"tenant_id":%q,"time":"%d"}`,
			c.session, c.callee, c.caller, c.cdr, c.direction, c.session, t.id, c.start)
		return
	}
	i := g.pick(len(t.calls))
	c := t.calls[i]
	t.calls = slices.Delete(t.calls, i, i+1)
	status, answered, code := "answered", c.start+3, 0
	switch r := g.rng.Float64(); {
	case r < 0.15:
		status, answered, code = "noanswer", 0, 480
	case r < 0.2:
		status, answered, code = "fail", 0, 503
	}
	ended := max(g.now, c.start+4)
	talk := int64(0)
	if answered > 0 {
		talk = ended - answered
	}
	g.event(wsi.TypeCallCDR)
	g.buf = fmt.Appendf(g.buf, `{"event_type":"call_cdr","session_id":%q,"call_id":"%s@pbx","cdr_id":%q,"tenant_id":%q,"tenant_name":"Tenant %s","start_time":"%d","ring_time":"%d","answered_time":"%d","ended_time":"%d","ring_duration":"3","talk_duration":%d,"caller":%q,"caller_display_name":"Agent","caller_domain":%q,"callee":%q,"callee_domain":"pstn","did":"","outbound_caller_id":"","call_status":%q,"status_code":"%d","ended_reason":%q,"direction":%q,"trunk_name":%q,"user_data":"","call_targets":[{"id":%q,"call_type":"normal_call","caller":%q,"callee":%q,"destination":%q,"did":"","outbound_caller_id":"","start_time":"%d","ring_time":"%d","answered_time":"%d","ended_time":"%d","ring_duration":"3","talk_duration":"%d","status":%q,"status_code":%d,"end_reason":%q,"trunk_name":""}]}`,
		c.session, c.session, c.cdr, t.id, t.id[len(t.id)-1:], c.start, c.start, answered, ended, talk,
		c.caller, t.domain, c.callee, status, code, endReasons[g.pick(len(endReasons))], c.direction,
		trunks[g.pick(len(trunks))], g.id(), c.caller, c.callee, c.callee, c.start, c.start, answered, ended, talk,
		status, code, endReasons[g.pick(len(endReasons))])
}

// campaign creates the tenant's campaign queue (number 8090, a new id each
// time, pushed with its snapshot as a PBX does) or destroys it.
func (g *churn) campaign(t *churnTenant) (frame []byte, topic, tenant string) {
	if t.campaign == nil {
		t.campaign = &churnQueue{id: g.id(), number: "8090", agents: t.queues[0].agents[:3]}
		if g.chance(0.5) {
			g.queueStatus(t, t.campaign)
			return g.buf, wsi.TopicGlobalQueueEvents, t.id
		}
		g.event(wsi.TypeQueueCreated)
		g.buf = fmt.Appendf(g.buf, `{"event_type":"queue_created","queue_number":"8090","queue_id":%q,"queue_name":"Campaign","tenant_id":%q}`, t.campaign.id, t.id)
		return g.buf, wsi.TopicGlobalQueueManagement, t.id
	}
	// The callers still waiting in a destroyed queue never get a leave
	// event: the exporter must forget them with the queue.
	g.event(wsi.TypeQueueDestroy)
	g.buf = fmt.Appendf(g.buf, `{"event_type":"queue_destroy","queue_number":"8090","tenant_id":%q}`, t.id)
	t.campaign = nil
	return g.buf, wsi.TopicGlobalQueueManagement, t.id
}

// tempExtension creates an extension with a new number, or destroys the
// oldest temporary one.
func (g *churn) tempExtension(t *churnTenant) {
	typ, number := wsi.TypeExtensionCreated, ""
	if len(t.temp) < churnMaxTemp && (len(t.temp) == 0 || g.chance(0.5)) {
		number = strconv.FormatUint(10000+g.seq, 10)
		g.seq++
		t.temp = append(t.temp, number)
	} else {
		typ, number = wsi.TypeExtensionDestroyed, t.temp[0]
		t.temp = t.temp[1:]
	}
	g.event(typ)
	g.buf = fmt.Appendf(g.buf, `{"event_type":%q,"extension_number":%q,"disp_name":"Temp","email":"","extension_id":"%s","tenant_id":%q,"username":"temp%s","enabled":true}`,
		typ, number, number, t.id, number)
}
