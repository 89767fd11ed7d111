// Package collector turns WSI events into contact-centre state and renders
// that state as Prometheus metrics at scrape time.
//
// One concern per file: the metric catalogue (catalogue.go), tenants,
// queues, extensions and calls (one file each), normalisation of what the
// PBX spells (normalize.go), the limits (limits.go), rendering under the
// lock (render.go) and the scrape's sample slabs (samples.go).
// ARCHITECTURE.md in the repository describes the data path and the
// measured reasons behind these choices; this comment records the rules.
//
// # Locking
//
// Ingest (the wsi.Handler methods, called from one goroutine) and scrapes
// (Collect) share one mutex. Collect holds it only while copying values
// into a buffer, and builds and sends the metrics after releasing it: a
// stuck scraper never stalls ingest, and ingest waits for a scrape only as
// long as the copy takes. Histograms (hist.go) are kept by the entity they
// belong to and copied like the rest: the classic buckets of the
// catalogue plus native buckets made as client_golang makes them (a test
// compares the two), in the Collector's own type so that a queue known by
// its id can be merged into its numbered queue. BenchmarkObserve and
// BenchmarkHistogramScrape compare it with client_golang's histograms.
//
// # Sessions
//
// While no session is up, every gauge built from PBX state (queue_info,
// waiting callers, oldest wait, agents, agent state, SLA threshold,
// extensions, active calls) is withheld and that state is dropped, with
// agent time accrued up to that moment. After SessionUp the PBX's
// snapshots rebuild it: callers who left meanwhile are never counted, and a
// snapshot is never counted as activity. portsip_tenant_info stays: it
// names the tenants of the counters, which stay too. A queue's SLA time
// is withheld but kept: it is a setting the PBX sends only with a breach,
// shown again once the queue's snapshot vouches for the queue. Counters and
// histograms never reset while the process lives.
//
// # Queues
//
// queue_caller_status, queue_agent_status and queue_sla_breached carry
// only queue_id. Until queue_status or a management event ties the id to a
// number, they are counted under queue="id:<queue_id>"; from then on under
// the number. The id-derived queue's waiting callers and agents move to the
// numbered queue; its counters stay where they were counted. A leaving
// caller's wait is the leave timestamp minus the enqueue timestamp (from
// enqueue or the snapshot's waiting_list), clamped at 0; a missing
// timestamp is the collector's clock. A leave of a caller never seen is
// counted by reason without a wait observation. Every reason but enqueue
// ends a caller's wait; one the vendor does not document (or none) ends it
// without an observation: kept waiting, the caller would age until the
// next snapshot and raise false alerts. A queue's callers_total
// reasons and wait_seconds outcomes exist from the queue's first event, at
// 0, so rate() sees its first caller: a series born at 1 shows no
// increase. Callers with neither a session_id nor a number cannot be
// followed and are not tracked. Waiting entries of type "callback" are
// kind="callback", all others "normal".
// queue_destroy drops the queue's live state; its counters stay until room
// is needed for a new queue. portsip_queue_management_events_total counts
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
// without it, at queue_destroy and at session down.
//
// # Extensions
//
// The extension label is the user part of the SIP URI. The call status
// ON_ACLL, a typo in the vendor's own sample, is on_call. Presence is kept as
// sent, lower-cased: v22.2 says "available" where v22.3 says "online", and
// merging them silently would hide which one the PBX sends (sum both in a
// query when they mean the same). The documented presences and call
// states are always present in the by_presence and by_call_state
// aggregates, 0 included, as the known agent states are in
// portsip_queue_agents. An extension seen only in call or
// presence events has no portsip_extension_online series until a status
// says whether it is registered. A tenant's extension gauges appear with
// its first extension event of the session: until then zeros would claim a
// mass logout at every reconnect, or no extensions for a tenant whose
// extensions are not subscribed.
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
// names are open-ended: a trunk's series starts with its first call.
//
// # Bounds
//
// Enum label values are lower case, made of [a-z0-9_], at most 32
// characters (unknown values pass through so); every value taken from the PBX
// is valid UTF-8 and at most Limits.LabelLength bytes. Each enum label
// takes at most 64 distinct values; further values count as "other". The
// tracked tenants, queues, callers and agents per queue, extensions,
// active calls and trunk series are bounded by Limits; what does not fit is
// counted in portsip_exporter_dropped_entities_total{entity} (tenant,
// queue, caller, agent, extension, call, trunk, and label_value for enum
// overflow). Memory grows with live entities, not with events.
//
// # Without a client
//
// With a nil StatsSource the portsip_wsi_* series are not rendered: zeros
// would claim a client that does not exist.
package collector
