package collector

import (
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// The metric catalogue: every family the Collector emits, declared once
// here with its type, help and labels. Describe, MetricNames, the scrape's
// sample slabs and the tests all read it; nothing else lists families.

// kind is a family's metric type.
type kind uint8

const (
	gauge kind = iota
	counter
	histogram
)

// labelID numbers the label names the families use, so that a scrape can
// keep the label pairs of each name in arrays (see samples).
type labelID uint8

const (
	lTenantID labelID = iota
	lTenantName
	lQueue
	lQueueID
	lQueueName
	lAgent
	lExtension
	lTrunk
	lKind
	lState
	lReason
	lEventType
	lPresence
	lDirection
	lStatus
	lOutcome
	lStage
	lTopic
	lEntity
	lQuirk
	numLabels
)

// labels gives each label its name and says whether its values come from
// a bounded set (an enumeration or a fixed list): a scrape shares one pair
// per such value across all series, while the pairs of open-ended labels
// (ids, numbers, names) are shared only between neighbouring series.
var labels = [numLabels]struct {
	name    string
	bounded bool
}{
	lTenantID:   {"tenant_id", false},
	lTenantName: {"tenant_name", false},
	lQueue:      {"queue", false},
	lQueueID:    {"queue_id", false},
	lQueueName:  {"queue_name", false},
	lAgent:      {"agent", false},
	lExtension:  {"extension", false},
	lTrunk:      {"trunk", false},
	lKind:       {"kind", true},
	lState:      {"state", true},
	lReason:     {"reason", true},
	lEventType:  {"event_type", true},
	lPresence:   {"presence", true},
	lDirection:  {"direction", true},
	lStatus:     {"status", true},
	lOutcome:    {"outcome", true},
	lStage:      {"stage", true},
	lTopic:      {"topic", true},
	lEntity:     {"entity", true},
	lQuirk:      {"quirk", true},
}

// family is one metric family of the catalogue.
type family struct {
	name, help string
	kind       kind
	ids        []labelID // variable labels, in the order values are given
	buckets    []float64 // classic buckets of a histogram

	desc  *prometheus.Desc
	names []string // label names of ids
	order []int    // indexes into ids, sorted by name as the exposition wants
	idx   int      // in catalogue
}

// catalogue lists every family in declaration order; each is added by the
// constructor that declares it.
var catalogue []*family

func declare(k kind, name, help string, buckets []float64, ids ...labelID) *family {
	f := &family{name: name, help: help, kind: k, ids: ids, buckets: buckets, idx: len(catalogue)}
	f.names = make([]string, len(ids))
	f.order = make([]int, len(ids))
	for i, id := range ids {
		f.names[i] = labels[id].name
		f.order[i] = i
	}
	slices.SortFunc(f.order, func(a, b int) int { return strings.Compare(f.names[a], f.names[b]) })
	f.desc = prometheus.NewDesc(name, help, f.names, nil)
	catalogue = append(catalogue, f)
	return f
}

func newGauge(name, help string, ids ...labelID) *family {
	return declare(gauge, name, help, nil, ids...)
}

func newCounter(name, help string, ids ...labelID) *family {
	return declare(counter, name, help, nil, ids...)
}

func newHistogram(name, help string, buckets []float64, ids ...labelID) *family {
	return declare(histogram, name, help, buckets, ids...)
}

// Classic histogram buckets, in seconds. Native buckets come with them.
var (
	WaitBuckets = []float64{1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600}
	TalkBuckets = []float64{5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600}
	RingBuckets = []float64{1, 2, 3, 5, 8, 10, 15, 20, 30, 45, 60}
)

var (
	mUp = newGauge("portsip_up", "1 while a WSI session is connected, authenticated and subscribed.")

	mWSIAttempts = newCounter("portsip_wsi_connection_attempts_total", "WSI session attempts (dial, auth, subscribe).")
	mWSIErrors   = newCounter("portsip_wsi_connection_errors_total", "WSI session attempts that failed and sessions that broke, by stage.", lStage)
	mWSISubs     = newGauge("portsip_wsi_subscription_active", "1 when the PBX accepted the topic in the current session.", lTopic)
	mWSIEvents   = newCounter("portsip_wsi_events_total", "Events received, by event_type (unknown types as other).", lEventType)
	mWSIInvalid  = newCounter("portsip_wsi_invalid_messages_total", "Frames rejected, by reason.", lReason)
	mWSILast     = newGauge("portsip_wsi_last_event_timestamp_seconds", "When the last event was received (UNIX seconds; 0 before the first).")
	mIgnored     = newCounter("portsip_wsi_events_ignored_total", "Well-formed events not applied, by reason: a tenant not configured or not logged in, no tenant, an implausible value.", lReason)
	mQuirks      = newCounter("portsip_wsi_quirks_total", "Compensations for a reading of the vendor's protocol page where it is silent or contradicts itself, by quirk (each is described in the README).", lQuirk)
	mClockOffset = newGauge("portsip_wsi_clock_offset_seconds", "The exporter's clock minus the PBX's, estimated from the times of fresh events; ages and durations are measured on the PBX clock corrected by it.")

	mTenantInfo = newGauge("portsip_tenant_info", "Tenant names learnt from call_cdr.", lTenantID, lTenantName)

	mQueueInfo    = newGauge("portsip_queue_info", "Queues known in the current session.", lTenantID, lQueue, lQueueID, lQueueName)
	mQueueWaiting = newGauge("portsip_queue_waiting_callers", "Callers waiting in a queue, by kind.", lTenantID, lQueue, lKind)
	mQueueOldest  = newGauge("portsip_queue_oldest_wait_seconds", "Age of the longest-waiting entry of a queue; 0 when none waits.", lTenantID, lQueue)
	mQueueAgents  = newGauge("portsip_queue_agents", "Agents of a queue by state.", lTenantID, lQueue, lState)
	mAgentState   = newGauge("portsip_queue_agent_state", "The current state of each agent in each queue (always 1).", lTenantID, lQueue, lAgent, lState)
	mAgentChanged = newGauge("portsip_queue_agent_state_changed_timestamp_seconds", "When the agent entered its current state in the queue (UNIX seconds: the PBX's time corrected by the clock offset).", lTenantID, lQueue, lAgent)
	mAgentSeconds = newCounter("portsip_queue_agent_state_seconds_total", "Time the agents of a queue spent in each state, summed.", lTenantID, lQueue, lState)
	mQueueCallers = newCounter("portsip_queue_callers_total", "Caller changes of a queue, by reason.", lTenantID, lQueue, lReason)
	mQueueWait    = newHistogram("portsip_queue_wait_seconds", "Time callers waited in a queue before leaving it, by outcome.",
		WaitBuckets, lTenantID, lQueue, lOutcome)
	mAnsweredInSLA = newCounter("portsip_queue_answered_within_sla_total", "Callers answered after a wait within the queue's SLA time in force when they were answered.", lTenantID, lQueue)
	mSLABreaches   = newCounter("portsip_queue_sla_breaches_total", "queue_sla_breached events.", lTenantID, lQueue)
	mSLAThreshold  = newGauge("portsip_queue_sla_threshold_seconds", "The queue's SLA time in force: the last sla_time_secs the PBX sent, else the configured default.", lTenantID, lQueue)
	mQueueMgmt     = newCounter("portsip_queue_management_events_total", "Queue management events. A queue_created for a known queue is the list the PBX replays on subscribe and is not counted; at the first session that list sets the starting value.", lTenantID, lEventType)

	mExtOnline      = newGauge("portsip_extension_online", "1 when the extension is registered.", lTenantID, lExtension)
	mExtPresence    = newGauge("portsip_extension_presence", "The extension's presence (always 1).", lTenantID, lExtension, lPresence)
	mExtCallState   = newGauge("portsip_extension_call_state", "The extension's call state (always 1).", lTenantID, lExtension, lState)
	mExts           = newGauge("portsip_extensions", "Extensions known.", lTenantID)
	mExtsOnline     = newGauge("portsip_extensions_online", "Extensions registered.", lTenantID)
	mExtsPush       = newGauge("portsip_extensions_push_online", "Extensions not registered but reachable by push (push_online).", lTenantID)
	mExtsByPresence = newGauge("portsip_extensions_by_presence", "Extensions by presence.", lTenantID, lPresence)
	mExtsByCall     = newGauge("portsip_extensions_by_call_state", "Extensions by call state.", lTenantID, lState)
	mExtMgmt        = newCounter("portsip_extension_management_events_total", "Extension management events.", lTenantID, lEventType)

	mCallsActive = newGauge("portsip_calls_active", "Calls started and not yet ended (forgotten after the call expiry).", lTenantID)
	mCallsTotal  = newCounter("portsip_calls_total", "Calls ended, from call_cdr.", lTenantID, lDirection, lStatus)
	mTalk        = newHistogram("portsip_call_talk_seconds", "Talk time of answered calls, from call_cdr.", TalkBuckets, lTenantID, lDirection)
	mRing        = newHistogram("portsip_call_ring_seconds", "Ring time of calls that rang, from call_cdr.", RingBuckets, lTenantID, lDirection)
	mEndReasons  = newCounter("portsip_call_end_reasons_total", "Calls ended, by end reason.", lTenantID, lReason)
	mTrunkCalls  = newCounter("portsip_trunk_calls_total", "Calls ended that used a trunk.", lTenantID, lTrunk, lDirection, lStatus)

	mDropped = newCounter("portsip_exporter_dropped_entities_total",
		"Entities not tracked because a limit was reached (label_value: an enum label full of values, counted as other; series: a series refused by the series budget, --collector.max-series).", lEntity)
)

// MetricNames lists every metric family a Collector can emit, in the
// catalogue's order: for dashboards and documentation.
func MetricNames() []string {
	names := make([]string, len(catalogue))
	for i, f := range catalogue {
		names[i] = f.name
	}
	return names
}

// Describe lists every metric the Collector can emit.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range catalogue {
		ch <- f.desc
	}
}
