// Package collector turns WSI events into contact-centre state and renders
// that state as Prometheus metrics at scrape time.
//
// One concern per file: the metric catalogue (catalogue.go), tenants,
// queues, extensions and calls (one file each), normalisation of what the
// PBX spells (normalize.go), the limits (limits.go), rendering under the
// lock (render.go) into the scrape's copy (samples.go), and its exposition
// (exposition.go).
// ARCHITECTURE.md in the repository describes the data path and the
// measured reasons behind these choices; this comment records the rules.
//
// # Locking
//
// Ingest (the wsi.Handler methods, called from one goroutine) and scrapes
// (Snapshot; Collect for a registry) share one mutex. A scrape holds it
// only while copying values into columns, and sorts and writes them after
// releasing it: a stuck scraper never stalls ingest, and ingest waits for
// a scrape only as long as the copy takes. Histograms (hist.go) are kept by the entity they
// belong to and copied like the rest: the classic buckets of the
// catalogue plus native buckets made as client_golang makes them (a test
// compares the two), in the Collector's own type so that a queue known by
// its id can be merged into its numbered queue. BenchmarkObserve and
// BenchmarkHistogramScrape compare it with client_golang's histograms.
//
// # Sessions
//
// While no session is up, every gauge built from PBX state (queue_info,
// waiting callers, oldest wait, agents, agent state and its change time,
// SLA threshold, extensions, active calls) is withheld and that state is
// dropped, with agent time accrued up to that moment. After SessionUp the
// PBX's snapshots rebuild it: callers who left meanwhile are never
// counted, and a snapshot is never counted as activity. portsip_tenant_info
// stays: it names the tenants of the counters, which stay too. A queue's
// SLA time is withheld but kept: it is a setting the PBX sends only with a
// breach, shown again once the queue's snapshot vouches for the queue.
// Counters and histograms never reset while the process lives.
//
// # Time
//
// The PBX stamps events with its own clock. pbxClock (clock.go) estimates
// our clock minus the PBX's from fresh events; every age or duration that
// compares now with a PBX timestamp is taken on the PBX's clock corrected
// by it: the oldest wait, a wait that ends when its leave arrived, when an
// agent entered its state. Agent time in state is measured on our clock
// alone, from when we saw each change.
//
// # Queues
//
// queue_caller_status, queue_agent_status and queue_sla_breached carry
// only queue_id. Until something ties the id to a number (queue_status, a
// management event, any event with both), they are counted under
// queue="id:<queue_id>" (the quirk queue_id_only); then the id-derived
// queue merges into the numbered one, live state, counters and histograms
// alike, and is forgotten (queues.go). A leaving caller's wait is the
// leave timestamp minus the enqueue timestamp (from enqueue or the
// snapshot's waiting_list); when the leave's timestamp is missing or not
// after the enqueue (the PBX repeated the enqueue time: the quirk
// leave_time_repeated), the wait ends when the leave arrived, on the PBX's
// clock. A leave of a caller never seen is counted by reason without a wait
// observation. A change with a reason that is neither enqueue nor a
// documented leave updates a waiting caller (the quirk caller_update) and
// is counted under its reason. A second enqueue of a waiting caller and a
// second leave of a caller who left are not counted again
// (duplicate_event); an enqueue older than the caller's leave is counted
// but does not make the caller wait again. Each queue remembers its last
// 64 leavers for this (recent.go). An answered caller whose wait was
// within the queue's SLA time in force (the last sla_time_secs, else
// Config.DefaultSLATime; equal included) counts in
// answered_within_sla_total. A queue's callers_total reasons,
// wait_seconds outcomes and answered_within_sla exist from the queue's
// first event, at 0, so rate() sees its first caller: a series born at 1
// shows no increase. Callers with neither a session_id nor a number cannot
// be followed and are not tracked. Waiting entries of type "callback" are
// kind="callback", all others "normal".
// queue_destroy drops the queue's live state; its counters stay 10 minutes
// (retiredTTL), long enough to be scraped, or until room is needed for a
// new queue, and are then forgotten. A queue the PBX did not name in a
// session (the PBX lists its queues and their state at every subscribe) is
// forgotten, counters included, once that session has been up 10 minutes
// (unseenTTL): a queue the PBX still has is named in every session and
// kept however quiet it is, and what a PBX invented lasts no longer than
// the session it was invented in, plus ten minutes. A queue forgotten and
// named again starts from zero, which rate() and increase() read as a
// counter reset. portsip_queue_management_events_total counts
// every queue_updated and queue_destroy; a queue_created for a queue known
// and not destroyed is the queue list the PBX replays on subscribe and is
// not counted. At the process's first session nothing is known yet, so
// that list counts as created once: it only sets the counter's starting
// value, which increase() and rate() ignore. From a tenant's first queue
// (or extension) management event, every type of it is rendered, 0
// included, so the first real update or destroy shows in rate().
//
// Agent time (portsip_queue_agent_state_seconds_total) is measured with the
// collector's clock from each state change, rendered as accrued plus in
// progress so it rises continuously. A snapshot repeating an agent's state
// continues its time; an agent's time stops at its removal, at a snapshot
// without it, at queue_destroy and at session down. When an agent entered
// its state is the PBX's time of the change corrected by the clock offset:
// extension_agent_status's time, a snapshot agent's timestamp (a guess:
// the page does not say what it is); a queue_agent_status change is taken
// as it arrives.
//
// # Extensions
//
// The extension label is the user part of the SIP URI. Spellings of other
// server versions are read as the documented value (normalize.go, the
// quirk version_spelling): call status On Call, Ringing, on_call, none, a
// boolean, and the samples' typo ON_ACLL; presences and agent states in
// title or lower case; Logout. Presence ONLINE and AVAILABLE are one
// state, available (the quirk presence_online). The documented presences
// and call states are always present in the by_presence and by_call_state
// aggregates, 0 included, as the known agent states are in
// portsip_queue_agents. An extension not registered but push_online counts
// in portsip_extensions_push_online, not as online. An extension seen only
// in call or presence events has no portsip_extension_online series until
// a status says whether it is registered. An extension named only by a
// management event (extension_created, extension_updated) is known too,
// and counts in portsip_extensions until extension_destroyed or the end of
// the session. A tenant's extension gauges
// appear with its first extension event of the session: until then zeros
// would claim a mass logout at every reconnect, or no extensions for a
// tenant whose extensions are not subscribed.
//
// # Calls
//
// call_start and call_update_info make a call active (an update for a call
// whose start was missed, across a reconnect, counts too); call_cdr ends
// it. An active call with no call_cdr is forgotten CallExpiry after it was
// first seen, checked at most once a minute. call_status says whether a
// call was answered; without it, a call is answered when answered_time or
// talk_duration is positive, else noanswer. Talk time is observed for answered calls only: talk_duration,
// else ended_time - answered_time. Ring time is observed for calls that
// rang (ring_time or ring_duration positive): ring_duration, else from
// ring_time to answered_time (ended_time when unanswered). Times of 0 did
// not happen; negative or inverted values are not observed. An empty
// direction or end reason is "unknown". trunk is the name part of
// trunk_name; a call without one has no trunk series. At a tenant's first
// call event, portsip_calls_total for every known direction and status
// and the talk and ring histograms for every known direction start at 0,
// so rate() sees the first call of each; not earlier, so a tenant whose
// calls are not received shows no data rather than zero calls. Trunk
// names are open-ended: a trunk's series starts with its first call. A
// second call_cdr with the same session_id and call_id is not counted
// again (duplicate_event; the last 16,384 records are remembered). End
// reasons that differ only by tense or suffix are one value
// (end_reason_spelling).
//
// # Quirks
//
// The Collector is the one place that counts portsip_wsi_quirks_total: the
// decoder's compensations arrive in each event's header, the Collector
// adds its own (quirks.go). Every quirk is rendered from the first
// SessionUp on, 0 included, also without a client (a replay, a test).
// topics_refused counts once per session that came up with a topic
// refused.
//
// # Bounds
//
// Enum label values are lower case, made of [a-z0-9_], at most 32
// characters (unknown values pass through so); every value taken from the PBX
// is valid UTF-8 and at most Limits.LabelLength bytes. Each enum label
// takes at most 64 distinct values in the whole process, whatever the
// tenant or queue; further values count as "other". The tracked tenants,
// queues, callers and agents per queue, extensions, active calls and trunk
// series are bounded by Limits, waiting callers of all queues together by
// Limits.ActiveCalls; the series all of them make together by the series
// budget, Config.MaxSeries (budget.go: what a series costs, what a refusal
// does). What does not fit is counted in
// portsip_exporter_dropped_entities_total{entity} (tenant, queue, caller,
// agent, extension, call, trunk, label_value for enum overflow, series for
// the budget). Memory grows with live entities, not with events.
//
// # Redaction
//
// No label value holds the password (Config.Redactor): every value taken
// from the PBX has it replaced by <redacted> before it is stored, and an
// enum value before and after it is normalised. The redactor runs when an
// entity or a spelling is new, not per event: entities are stored under
// their redacted key and found with one map lookup of the value sent, a
// second, redacted, one only when that misses (find).
//
// # Implausible values
//
// A PBX timestamp further than a day from the PBX's clock, a duration
// negative or longer than a day, and an SLA time longer than a day are
// treated as not sent, and the event that carried one is counted once in
// portsip_wsi_events_ignored_total{reason="implausible"}; the rest of the
// event applies (plausible.go lists what replaces each).
//
// # Without a client
//
// With a nil StatsSource the portsip_wsi_* series that only a client can
// know are not rendered: zeros would claim a client that does not exist.
// The quirks and the clock offset are the Collector's own and are.
package collector
