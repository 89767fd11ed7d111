package reliability

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi"
	"github.com/portsip-exporter/portsip_exporter/wsi/wsitest"
)

// The vendor's page is silent or contradicts itself in places. For each
// reading the simulated PBX can speak (wsitest.Quirks), these tests run
// the exporter against it and compare the exporter's numbers with what
// the simulator really did (its truth, kept apart from the frames; times
// within 2 s), and check that the quirk counter says which reading it
// was.

// tolerance is how far a time may be off: timestamps have one-second
// resolution, on both ends of a wait.
const tolerance = 2 * time.Second

// readingsPBX is newPBX speaking q, with the exporter up against it.
func readingsPBX(t *testing.T, q wsitest.Quirks) (*wsitest.Server, *exporter) {
	t.Helper()
	pbx := newPBX(t)
	pbx.SetQuirks(q)
	e := startExporter(t, clientConfig(pbx.URL))
	e.awaitUp()
	return pbx, e
}

// check is a comparison that says what differs; none is a match.
type check func(s scrape) []string

// awaitMatch scrapes until every check matches, and fails with what still
// differs when it does not within awaitTimeout.
func (e *exporter) awaitMatch(what string, checks ...check) scrape {
	e.t.Helper()
	deadline := time.Now().Add(awaitTimeout)
	for {
		s := e.scrape()
		var diffs []string
		for _, c := range checks {
			diffs = append(diffs, c(s)...)
		}
		if len(diffs) == 0 {
			return s
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: after %s the exporter still differs from the simulator's truth:\n  %s\n%s",
				what, awaitTimeout, strings.Join(diffs, "\n  "), portsipLines(s.body))
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}

// equal compares a series (0 when absent) with a count.
func equal(name string, want int, labels ...string) check {
	return func(s scrape) []string {
		if got := s.counter(name, labels...); got != float64(want) {
			return []string{fmt.Sprintf("%s%v = %v, truth %d", name, labels, got, want)}
		}
		return nil
	}
}

// near compares a series with a time, within tol.
func near(name string, want, tol time.Duration, labels ...string) check {
	return func(s scrape) []string {
		got, ok := s.find(name, labels...)
		if !ok || math.Abs(got-want.Seconds()) > tol.Seconds() {
			return []string{fmt.Sprintf("%s%v = %v (present %v), truth %v ± %v", name, labels, got, ok, want.Seconds(), tol)}
		}
		return nil
	}
}

// histogram compares a histogram's count and sum with the truth's; each
// observation may be off by tolerance.
func histogram(name string, want wsitest.Durations, labels ...string) check {
	return func(s scrape) []string {
		count, sum := s.histogram(name, labels...)
		tol := time.Duration(want.Count) * tolerance
		if count != uint64(want.Count) || math.Abs(sum-want.Sum.Seconds()) > tol.Seconds() {
			return []string{fmt.Sprintf("%s%v: %d observations summing to %.1fs, truth %d summing to %.1fs (± %v)",
				name, labels, count, sum, want.Count, want.Sum.Seconds(), tol)}
		}
		return nil
	}
}

// quirk checks that the exporter counted a reading at least n times.
func quirk(name string, n int) check {
	return func(s scrape) []string {
		if got := s.counter("portsip_wsi_quirks_total", "quirk", name); got < float64(n) {
			return []string{fmt.Sprintf("portsip_wsi_quirks_total{quirk=%q} = %v, want at least %d", name, got, n)}
		}
		return nil
	}
}

// histogram is the sample count and sum of the first histogram series of
// name whose labels include the given pairs.
func (s scrape) histogram(name string, labels ...string) (count uint64, sum float64) {
	mf := s.mfs[name]
	if mf == nil {
		return 0, 0
	}
	for _, m := range mf.GetMetric() {
		if h := m.GetHistogram(); h != nil && hasLabels(m, labels...) {
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	return 0, 0
}

// The documented values of the enumerations compared: every one is
// compared, so that a value the exporter shows and the truth has not is
// found too.
var (
	agentLabels     = []string{"ready", "not_ready", "queue_call", "other_call", "wrap_up", "break", "lunch", "logged_out", "offline"}
	presenceLabels  = []string{"available", "away", "lunch", "business_trip", "do_not_disturb", "break"}
	callStateLabels = []string{"on_call", "ringing", "idle"}
)

// queueMatches compares what the exporter shows of a queue with its truth:
// the leavers by outcome with their waits, the SLA breaches, the waiting
// callers and the agents by state.
func queueMatches(label string, q wsitest.QueueTruth) check {
	return func(s scrape) []string {
		var diffs []string
		for _, o := range []string{"answered", "abandoned", "overflow", "callback"} {
			diffs = append(diffs, histogram("portsip_queue_wait_seconds", q.Left[o], "queue", label, "outcome", o)(s)...)
		}
		diffs = append(diffs, equal("portsip_queue_sla_breaches_total", q.SLABreaches, "queue", label)(s)...)
		for _, kind := range []string{"normal", "callback"} {
			diffs = append(diffs, equal("portsip_queue_waiting_callers", q.WaitingKind(kind), "queue", label, "kind", kind)(s)...)
		}
		for _, state := range agentLabels {
			diffs = append(diffs, equal("portsip_queue_agents", q.Agents[state], "queue", label, "state", state)(s)...)
		}
		return diffs
	}
}

// slaMatches compares the callers answered within the queue's SLA time.
func slaMatches(label string, q wsitest.QueueTruth) check {
	return equal("portsip_queue_answered_within_sla_total", q.AnsweredWithinSLA, "queue", label)
}

// extensionsMatch compares a tenant's extension gauges with its truth.
func extensionsMatch(tenant string, x wsitest.ExtensionTruth) check {
	return func(s scrape) []string {
		diffs := equal("portsip_extensions_online", x.Registered, "tenant_id", tenant)(s)
		diffs = append(diffs, equal("portsip_extensions_push_online", x.PushOnline, "tenant_id", tenant)(s)...)
		for _, p := range presenceLabels {
			diffs = append(diffs, equal("portsip_extensions_by_presence", x.ByPresence[p], "tenant_id", tenant, "presence", p)(s)...)
		}
		for _, st := range callStateLabels {
			diffs = append(diffs, equal("portsip_extensions_by_call_state", x.ByCallState[st], "tenant_id", tenant, "state", st)(s)...)
		}
		return diffs
	}
}

// callsMatch compares a tenant's call counters and histograms with its
// truth.
func callsMatch(tenant string, c wsitest.CallTruth) check {
	return func(s scrape) []string {
		var diffs []string
		for k, n := range c.Ended {
			diffs = append(diffs, equal("portsip_calls_total", n, "tenant_id", tenant, "direction", k.Direction, "status", k.Status)(s)...)
		}
		for d, x := range c.Talk {
			diffs = append(diffs, histogram("portsip_call_talk_seconds", x, "tenant_id", tenant, "direction", d)(s)...)
		}
		for d, x := range c.Ring {
			diffs = append(diffs, histogram("portsip_call_ring_seconds", x, "tenant_id", tenant, "direction", d)(s)...)
		}
		for r, n := range c.EndReasons {
			diffs = append(diffs, equal("portsip_call_end_reasons_total", n, "tenant_id", tenant, "reason", r)(s)...)
		}
		for k, n := range c.Trunks {
			diffs = append(diffs, equal("portsip_trunk_calls_total", n, "tenant_id", tenant, "trunk", k.Trunk,
				"direction", k.Direction, "status", k.Status)(s)...)
		}
		return diffs
	}
}

// noSeries checks that no series of a family has a label value with the
// given prefix.
func noSeries(name, label, prefix string) check {
	return func(s scrape) []string {
		var diffs []string
		for _, m := range s.mfs[name].GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && strings.HasPrefix(lp.GetValue(), prefix) {
					diffs = append(diffs, fmt.Sprintf("%s has a series with %s=%q", name, label, lp.GetValue()))
				}
			}
		}
		return diffs
	}
}

func TestReadingLeaveRepeatsEnqueueTime(t *testing.T) {
	pbx := newPBX(t)
	pbx.SetQuirks(wsitest.Quirks{LeaveRepeatsEnqueueTime: true})
	now := time.Now()
	pbx.Enqueue(tenantID, queue, wsitest.Caller{SessionID: "c1", Number: "5551001", Since: now.Add(-12 * time.Second)})
	pbx.Enqueue(tenantID, queue, wsitest.Caller{SessionID: "c2", Number: "5551002", Since: now.Add(-40 * time.Second)})
	e := startExporter(t, clientConfig(pbx.URL))
	e.awaitUp()
	e.awaitMatch("the waiting callers", queueMatches(queue, pbx.QueueTruth(tenantID, queue)))

	pbx.Dequeue(tenantID, queue, "c1", wsitest.ReasonAgentAnswered)
	pbx.Dequeue(tenantID, queue, "c2", wsitest.ReasonHangup)
	q := pbx.QueueTruth(tenantID, queue)
	e.awaitMatch("waits that end when the leave arrived", queueMatches(queue, q), slaMatches(queue, q),
		quirk("leave_time_repeated", 2))
}

func TestReadingClockSkew(t *testing.T) {
	for _, skew := range []time.Duration{-2 * time.Minute, 2 * time.Minute} {
		t.Run(skew.String(), func(t *testing.T) {
			pbx := newPBX(t)
			pbx.SetQuirks(wsitest.Quirks{ClockSkew: skew})
			pbx.Enqueue(tenantID, queue, wsitest.Caller{SessionID: "c1", Number: "5551001", Since: time.Now().Add(-5 * time.Second)})
			e := startExporter(t, clientConfig(pbx.URL))
			e.awaitUp()
			for i := range 4 { // fresh events for the clock offset
				pbx.SetPresence(tenantID, "101", []string{"AWAY", "AVAILABLE"}[i%2], "")
			}
			e.awaitMatch("the PBX clock's offset", near("portsip_wsi_clock_offset_seconds", -skew, tolerance))
			q := pbx.QueueTruth(tenantID, queue)
			e.awaitMatch("the oldest wait on the PBX clock corrected",
				near("portsip_queue_oldest_wait_seconds", q.OldestWait(time.Now()), tolerance, "queue", queue))
			pbx.Dequeue(tenantID, queue, "c1", wsitest.ReasonAgentAnswered)
			e.awaitMatch("the wait", queueMatches(queue, pbx.QueueTruth(tenantID, queue)))
		})
	}
}

// A queue created after subscribe is known only by its id until a later
// snapshot pairs it with its number; then it merges, counts included.
func TestReadingNewQueueIDOnly(t *testing.T) {
	pbx, e := readingsPBX(t, wsitest.Quirks{NewQueueIDOnly: true})
	const id, number = "877046776364007499", "8009"
	pbx.AddQueue(tenantID, wsitest.Queue{ID: id, Number: number, Name: "Late", SLASeconds: 20})
	now := time.Now()
	pbx.Enqueue(tenantID, number, wsitest.Caller{SessionID: "c1", Number: "5551001", Since: now.Add(-8 * time.Second)})
	pbx.Enqueue(tenantID, number, wsitest.Caller{SessionID: "c2", Number: "5551002", Since: now.Add(-3 * time.Second)})
	pbx.Dequeue(tenantID, number, "c1", wsitest.ReasonAgentAnswered)
	pbx.SetAgentState(tenantID, number, "101", "WRAP_UP")
	e.awaitMatch("the new queue under its id", queueMatches("id:"+id, pbx.QueueTruth(tenantID, number)),
		quirk("queue_id_only", 1))

	pbx.DropSessions() // the next subscribe's snapshot names the queue
	e.awaitMatch("the queue merged into its number", queueMatches(number, pbx.QueueTruth(tenantID, number)),
		equal("portsip_queue_callers_total", 2, "queue", number, "reason", "enqueue"),
		noSeries("portsip_queue_callers_total", "queue", "id:"), noSeries("portsip_queue_wait_seconds", "queue", "id:"),
		noSeries("portsip_queue_waiting_callers", "queue", "id:"))
}

func TestReadingDuplicateKeys(t *testing.T) {
	pbx, e := readingsPBX(t, wsitest.Quirks{DuplicateKeys: true})
	now := time.Now()
	pbx.AddExtensionInfo(tenantID, wsitest.Extension{Number: "101", Username: "testuser1"})
	pbx.SetPresence(tenantID, "101", "LUNCH", "") // AWAY first
	pbx.EndCall(tenantID, wsitest.CDR{Call: wsitest.Call{Direction: "inbound"}, Start: now.Add(-30 * time.Second),
		Ring: now.Add(-30 * time.Second), Answered: now.Add(-25 * time.Second), Ended: now, CallStatus: "answered",
		EndedReason: "caller_disconnect", TrunkName: "Telia:1"}) // fail first
	e.awaitMatch("the last value of each repeated key",
		equal("portsip_extension_management_events_total", 1, "event_type", wsi.TypeExtensionUpdated),
		extensionsMatch(tenantID, pbx.ExtensionTruth(tenantID)), callsMatch(tenantID, pbx.CallTruth(tenantID)),
		quirk("duplicate_key", 3))
}

func TestReadingPresenceOnline(t *testing.T) {
	pbx, e := readingsPBX(t, wsitest.Quirks{PresenceOnline: true})
	pbx.SetExtensionOnline(tenantID, "102", true)
	pbx.SetExtensionOnline(tenantID, "103", true)
	pbx.SetPresence(tenantID, "103", "AWAY", "")
	pbx.SetPresence(tenantID, "103", "AVAILABLE", "")
	pbx.SetPresence(tenantID, "102", "DO_NOT_DISTURB", "")
	e.awaitMatch("ONLINE read as available", extensionsMatch(tenantID, pbx.ExtensionTruth(tenantID)),
		equal("portsip_extensions_by_presence", 0, "presence", "online"), quirk("presence_online", 1))
}

func TestReadingPushOnline(t *testing.T) {
	pbx, e := readingsPBX(t, wsitest.Quirks{}) // push reachability is state: SetPushOnline
	for _, ext := range []string{"102", "103", "104"} {
		pbx.SetPushOnline(tenantID, ext, true) // mobile apps in the background
	}
	pbx.SetExtensionOnline(tenantID, "104", true) // in the foreground
	pbx.SetExtensionOnline(tenantID, "101", false)
	x := pbx.ExtensionTruth(tenantID)
	if x.PushOnline != 2 || x.Registered != 1 {
		t.Fatalf("truth %+v, want 2 push-only and 1 registered", x)
	}
	e.awaitMatch("push-only extensions", extensionsMatch(tenantID, x),
		equal("portsip_extensions", x.Known, "tenant_id", tenantID), quirk("push_online", 1))
}

func TestReadingAdminGlobalsRefused(t *testing.T) {
	pbx := newPBX(t)
	pbx.SetQuirks(wsitest.Quirks{AdminGlobalsRefused: true})
	e := startExporter(t, clientConfig(pbx.URL))
	var checks []check
	for _, topic := range globalTopics {
		want := 0
		if topic == wsi.TopicGlobalExtensionManagement {
			want = 1
		}
		checks = append(checks, equal("portsip_wsi_subscription_active", want, "topic", topic))
	}
	e.awaitMatch("a session with extension management alone", append(checks, equal("portsip_up", 1),
		equal("portsip_wsi_quirks_total", 1, "quirk", "topics_refused"))...)
	pbx.AddExtension(tenantID, "150")
	e.awaitMatch("the extension management event", equal("portsip_extension_management_events_total", 1,
		"event_type", wsi.TypeExtensionCreated))
}

func TestReadingCallerUpdates(t *testing.T) {
	pbx, e := readingsPBX(t, wsitest.Quirks{CallerUpdates: true})
	now := time.Now()
	for i, id := range []string{"c1", "c2", "c3"} {
		pbx.Enqueue(tenantID, queue, wsitest.Caller{SessionID: id, Number: "555100" + id[1:], Callback: id == "c3",
			Since: now.Add(-time.Duration(10-i) * time.Second)})
	}
	first := pbx.QueueTruth(tenantID, queue).Waiting[0].SessionID // newPBX's caller
	pbx.Dequeue(tenantID, queue, first, wsitest.ReasonAgentAnswered)
	pbx.Dequeue(tenantID, queue, "c1", wsitest.ReasonHangup)
	q := pbx.QueueTruth(tenantID, queue)
	e.awaitMatch("callers moved up, still waiting", queueMatches(queue, q),
		near("portsip_queue_oldest_wait_seconds", q.OldestWait(time.Now()), tolerance, "queue", queue),
		quirk("caller_update", 1))
}

func TestReadingEndReasons(t *testing.T) {
	for _, past := range []bool{false, true} {
		t.Run(fmt.Sprintf("past tense %v", past), func(t *testing.T) {
			pbx, e := readingsPBX(t, wsitest.Quirks{EndReasonsPastTense: past})
			now := time.Now()
			for _, r := range []string{"callee_disconnect", "caller_disconnect", "callee_disconnect", "cancelled"} {
				pbx.EndCall(tenantID, wsitest.CDR{Call: wsitest.Call{Direction: "in"}, Start: now.Add(-time.Minute),
					Ring: now.Add(-time.Minute), Answered: now.Add(-50 * time.Second), Ended: now, CallStatus: "answered", EndedReason: r})
			}
			spelling := equal("portsip_wsi_quirks_total", 0, "quirk", "end_reason_spelling")
			if !past {
				spelling = quirk("end_reason_spelling", 3)
			}
			e.awaitMatch("one label per end reason", callsMatch(tenantID, pbx.CallTruth(tenantID)), spelling,
				equal("portsip_call_end_reasons_total", 0, "reason", "callee_disconnect"))
		})
	}
}

func TestReadingDuplicates(t *testing.T) {
	pbx, e := readingsPBX(t, wsitest.Quirks{Duplicates: true})
	now := time.Now()
	pbx.Enqueue(tenantID, queue, wsitest.Caller{SessionID: "c1", Number: "5551001", Since: now.Add(-7 * time.Second)})
	pbx.Dequeue(tenantID, queue, "c1", wsitest.ReasonAgentAnswered)
	pbx.EndCall(tenantID, wsitest.CDR{Call: wsitest.Call{SessionID: "s1", Direction: "inbound"}, Start: now.Add(-20 * time.Second),
		Ring: now.Add(-20 * time.Second), Answered: now.Add(-15 * time.Second), Ended: now, CallStatus: "answered",
		EndedReason: "callee_disconnect"})
	pbx.SetPresence(tenantID, "101", "AWAY", "") // the call_cdr's copy comes after it
	e.awaitMatch("each leave and call counted once", queueMatches(queue, pbx.QueueTruth(tenantID, queue)),
		callsMatch(tenantID, pbx.CallTruth(tenantID)), equal("portsip_queue_callers_total", 1, "reason", "agent_answered"),
		quirk("duplicate_event", 2))
}

func TestReadingSpellings(t *testing.T) {
	for name, sp := range map[string]wsitest.Spelling{"title case": wsitest.SpellingTitleCase, "lower case": wsitest.SpellingLowerCase} {
		t.Run(name, func(t *testing.T) {
			pbx, e := readingsPBX(t, wsitest.Quirks{Spelling: sp})
			pbx.SetAgentState(tenantID, queue, "101", "NOT_READY")
			pbx.SetAgentState(tenantID, queue, "102", "QUEUE_CALL")
			pbx.SetAgentState(tenantID, queue, "103", "WRAP_UP")
			pbx.SetExtensionOnline(tenantID, "102", true)
			pbx.SetExtensionOnline(tenantID, "103", true)
			pbx.SetCallStatus(tenantID, "102", "ON_CALL")
			pbx.SetCallStatus(tenantID, "103", "RINGING")
			pbx.SetPresence(tenantID, "101", "BREAK", "")
			e.awaitMatch("documented values", queueMatches(queue, pbx.QueueTruth(tenantID, queue)),
				extensionsMatch(tenantID, pbx.ExtensionTruth(tenantID)),
				noSeries("portsip_queue_agents", "state", "not ready"), quirk("version_spelling", 1))
		})
	}
}

// The demo's traffic with every reading at once (but the refused topics:
// nothing would flow), run on the wall clock for a while and stopped:
// every queue, extension and call number the exporter shows is what the
// simulator did.
func TestReadingsTraffic(t *testing.T) {
	pbx := wsitest.NewUnstartedServer()
	q := wsitest.AllQuirks()
	q.AdminGlobalsRefused = false
	tr := wsitest.NewTraffic(pbx, wsitest.TrafficConfig{Seed: 3, Quirks: q, Tick: 50 * time.Millisecond})
	pbx.Start()
	t.Cleanup(pbx.Close)
	user, pass := tr.Credentials()
	cfg := clientConfig(pbx.URL)
	cfg.Username, cfg.Password, cfg.Tenants = user, pass, tr.TenantIDs()
	e := startExporter(t, cfg)
	e.await("portsip_up 1", func(s scrape) bool { return s.up() == 1 && s.count("portsip_queue_info") >= 4 })

	runTraffic(t, tr, 20*time.Second)
	var checks []check
	for _, id := range tr.TenantIDs() {
		for _, qu := range pbx.Queues(id) {
			if strings.HasPrefix(qu.Name, "Campaign") {
				continue // known by id alone (NewQueueIDOnly) until a reconnect
			}
			// Not answered within SLA: the exporter learns a queue's SLA time
			// from its first breach only.
			checks = append(checks, queueMatches(qu.Number, pbx.QueueTruth(id, qu.Number)))
		}
		checks = append(checks, extensionsMatch(id, pbx.ExtensionTruth(id)), callsMatch(id, pbx.CallTruth(id)))
	}
	e.awaitMatch("the traffic's numbers", checks...)
}

// runTraffic runs the traffic on the wall clock for d, then stops it.
func runTraffic(t *testing.T, tr *wsitest.Traffic, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := tr.Run(ctx); err != nil {
		t.Fatal(err)
	}
}
