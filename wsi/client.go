package wsi

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/portsip-exporter/portsip_exporter/internal/secret"
)

// Session describes an established session (connected, authenticated,
// subscribed): whether the PBX accepted each topic subscribed (true also
// when it sent no reply).
type Session struct{ Topics map[string]bool }

// Handler receives what a Client reads. The Client calls it from one
// goroutine, in order, never concurrently.
type Handler interface {
	// SessionUp: the session is connected, authenticated and subscribed.
	// The PBX's snapshots follow as events.
	SessionUp(Session)
	// HandleEvent receives each decoded event of the tenants watched.
	HandleEvent(Event)
	// SessionDown: the session that was up ended, with the reason.
	SessionDown(err error)
}

// Reasons a well-formed event is not handed to the Handler, as counted by
// portsip_wsi_events_ignored_total.
const (
	// IgnoredOtherTenant: a tenant not in Config.Tenants (global mode), or
	// not the logged-in tenant (tenant mode): the tenant_id of the first
	// event naming one, kept for the Client's life.
	IgnoredOtherTenant = "other_tenant"
	IgnoredNoTenant    = "no_tenant" // an event without a tenant_id
)

// IgnoredReasons lists every reason, in a stable order.
var IgnoredReasons = []string{IgnoredOtherTenant, IgnoredNoTenant}

// Stats are the Client's counters since it was created. They never reset.
type Stats struct {
	Up                 bool
	ConnectionAttempts uint64
	ConnectionErrors   map[string]uint64 // by Stage*
	InvalidMessages    map[string]uint64 // by Reason*
	Events             map[string]uint64 // handed to the Handler, by event type; unknown types under TypeOther
	Ignored            map[string]uint64 // by Ignored*
	LastEvent          time.Time         // receive time of the last event handed over; zero before
	Subscriptions      map[string]bool   // topic -> active in the current session; all false when down
}

// Client keeps one WSI session and reconnects it forever, backing off
// (see Config), longer after a refused login. Run, Check and Feed must not
// be called concurrently on one Client; Stats may be called at any time.
type Client struct {
	cfg     Config
	log     *slog.Logger
	red     *secret.Redactor
	global  bool            // system administrator: global_* topics with tenants
	tenants map[string]bool // global mode: Config.Tenants
	learn   bool            // tenant mode without Queues: learn them from queue_management_events

	// Tests replace these: sleep, to see the back-off without waiting;
	// maxEarlyBytes, to reach the bound with fewer frames.
	sleep         func(ctx context.Context, d time.Duration) bool
	maxEarlyBytes int

	mu    sync.Mutex
	stats Stats

	// Only touched by the goroutine running Run, Check or Feed.
	tenant      string            // tenant mode: the logged-in tenant (see IgnoredOtherTenant)
	lastFailure string            // the failure logged last, so that repeats go to debug
	refusals    map[string]string // topic/queue -> the refusal logged last
}

// New validates cfg (see Config.Validate) and returns a Client. It does
// not connect.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	red, h := secret.NewRedactor(cfg.Password), slog.DiscardHandler
	if cfg.Logger != nil {
		h = cfg.Logger.Handler()
	}
	c := &Client{
		cfg: cfg, log: slog.New(red.Handler(h)), red: red,
		global: cfg.Domain == "", learn: cfg.Domain != "" && len(cfg.Queues) == 0, tenants: map[string]bool{},
		sleep: sleepCtx, maxEarlyBytes: maxEarlyBytes, refusals: map[string]string{},
		stats: Stats{
			ConnectionErrors: zeroed[uint64](Stages), InvalidMessages: zeroed[uint64](InvalidReasons),
			Events:  zeroed[uint64](append(slices.Clone(KnownEventTypes), TypeOther)),
			Ignored: zeroed[uint64](IgnoredReasons), Subscriptions: zeroed[bool](cfg.topics()),
		},
	}
	for _, t := range cfg.Tenants {
		c.tenants[t] = true
	}
	if cfg.TLS.InsecureSkipVerify {
		c.log.Warn("TLS certificate verification of the PBX is disabled: anyone on the path can impersonate it and read the password", "url", cfg.URL)
	}
	return c, nil
}

// Redactor removes the password from text, in every form a PBX may echo
// it in: for what else reaches the outside (label values, reports).
func (c *Client) Redactor() *secret.Redactor { return c.red }

// maxText bounds text from the PBX that the client keeps or logs: a
// hostile one must not make megabyte log lines.
const maxText = 256

// text is text from the PBX made safe to keep or log: redacted first (a
// cut must not leave half a password), then bounded.
func (c *Client) text(s string) string { return clip(c.red.String(s), maxText) }

// clip cuts s to at most n bytes, at a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// zeroed maps each of keys to the zero V.
func zeroed[V any](keys []string) map[string]V {
	m := make(map[string]V, len(keys))
	var zero V
	for _, k := range keys {
		m[k] = zero
	}
	return m
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Run connects and keeps a session until ctx is cancelled, handing events
// to h. It returns nil after ctx is cancelled and every goroutine it
// started has ended; a session up at that moment ends with a close frame
// to the PBX and h.SessionDown(ctx.Err()).
func (c *Client) Run(ctx context.Context, h Handler) error {
	retry := newBackoff(c.cfg.BackoffInitial, c.cfg.BackoffMax, false)
	login := newBackoff(c.cfg.LoginBackoffInitial, c.cfg.LoginBackoffMax, true)
	for ctx.Err() == nil {
		_, upFor, err := c.attempt(ctx, h, 0, nil)
		if ctx.Err() != nil {
			break
		}
		if upFor >= c.cfg.HealthyAfter {
			retry.reset()
		}
		var e *Error
		errors.As(err, &e)
		if e != nil && (e.Stage == StageSubscribe || e.Stage == StageRead) {
			login.reset() // the login worked
		}
		delay := retry.next
		if e != nil && e.Kind == KindAuth {
			delay = login.next // retrying a refused login fast locks the account on many PBXs
		}
		if !c.sleep(ctx, c.logFailure(e, upFor > 0, delay())) {
			break
		}
	}
	return nil
}

// attempt makes one attempt: it dials (fed is nil) or takes the fed
// session, authenticates, subscribes, and serves the session until it
// ends, ctx is done, or listen (when not 0) has passed since it came up.
// Run, Check and Feed all go through here. upFor is how long the session
// was up (0 when it never came up).
func (c *Client) attempt(ctx context.Context, h Handler, listen time.Duration, fed *session) (s *session, upFor time.Duration, err error) {
	c.mu.Lock()
	c.stats.ConnectionAttempts++
	c.mu.Unlock()
	s = fed
	if s == nil {
		s, err = c.connect(ctx)
	}
	if err == nil {
		err = s.auth(ctx)
	}
	if err == nil {
		err = s.subscribeAll(ctx)
	}
	if err == nil {
		upAt := time.Now()
		topics := s.topics()
		c.publish(true, topics)
		c.logUp(topics)
		c.tap(Record{Time: upAt, Session: RecordUp, Topics: topics})
		h.SessionUp(Session{Topics: topics})
		err = s.serve(ctx, h, listen)
		upFor = time.Since(upAt)
	}
	if errors.Is(err, errFeedEnd) {
		return s, upFor, err // the recording ends here, with the session as it was
	}
	if s != nil {
		s.close()
	}
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	var e *Error
	if errors.As(err, &e) {
		c.count(c.stats.ConnectionErrors, e.Stage)
	}
	c.tapDown(err)
	if s != nil && s.up {
		c.publish(false, nil)
		h.SessionDown(err)
	}
	return s, upFor, err
}

// fail is the *Error of a failure at stage.
func (c *Client) fail(stage string, kind Kind, err error) *Error {
	return &Error{Stage: stage, Kind: kind, Err: err, red: c.red}
}

// Stats returns a snapshot of the counters. Safe for concurrent use.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.ConnectionErrors, s.InvalidMessages = maps.Clone(s.ConnectionErrors), maps.Clone(s.InvalidMessages)
	s.Events, s.Ignored, s.Subscriptions = maps.Clone(s.Events), maps.Clone(s.Ignored), maps.Clone(s.Subscriptions)
	return s
}

func (c *Client) count(m map[string]uint64, key string) {
	c.mu.Lock()
	m[key]++
	c.mu.Unlock()
}

func (c *Client) countEvent(ev Event) {
	t := ev.Head().EventType
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, known := c.stats.Events[t]; !known {
		t = TypeOther // a hostile PBX must not grow the map
	}
	c.stats.Events[t]++
	c.stats.LastEvent = ev.Head().Received
}

// publish records the session state and its subscriptions (every topic
// false when down), before the Handler hears of it: whoever reads Stats
// while handling SessionUp sees the subscriptions.
func (c *Client) publish(up bool, topics map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Up = up
	for t := range c.stats.Subscriptions {
		c.stats.Subscriptions[t] = false
	}
	for t, ok := range topics {
		c.stats.Subscriptions[t] = ok
	}
}

func (c *Client) logUp(topics map[string]bool) {
	names := slices.Sorted(maps.Keys(topics))
	attrs := []any{"url", c.cfg.URL, "topics", names}
	if refused := slices.DeleteFunc(slices.Clone(names), func(t string) bool { return topics[t] }); len(refused) > 0 {
		attrs = append(attrs, "refused", refused) // only then: JSON logs would print null
	}
	c.log.Info("connected to the PBX", attrs...)
	c.lastFailure = ""
}

// logFailure logs why the attempt before retry failed and returns retry:
// a refused login every time, anything else once per change of stage,
// kind and PBX text (ARCHITECTURE.md, The WSI session).
func (c *Client) logFailure(e *Error, wasUp bool, retry time.Duration) time.Duration {
	if e == nil {
		return retry
	}
	attrs := []any{"err", e, "stage", e.Stage, "kind", e.Kind, "retry_in", retry.Round(time.Millisecond)}
	key, last := e.Stage+"/"+string(e.Kind)+"/"+e.PBXError, c.lastFailure
	c.lastFailure = key
	switch {
	case e.Kind == KindAuth:
		c.lastFailure = ""
		c.log.Error("the PBX refused the login; run portsip_exporter check with the same settings to see why",
			"pbx_error", e.PBXError, "retry_in", retry.Round(time.Second))
	case wasUp:
		c.lastFailure = ""
		c.log.Warn("connection to the PBX lost", attrs...)
	case key == last:
		c.log.Debug("still cannot connect to the PBX", attrs...)
	default:
		c.log.Warn("cannot connect to the PBX", attrs...)
	}
	return retry
}

// maxRefusals bounds the refusals remembered (see logRefusal).
const maxRefusals = 1024

// logRefusal logs a refused subscription at warn the first time the PBX
// gives that text for it, at debug after: a refused queue is refused
// again at every reconnect. The memory is forgotten when full.
func (c *Client) logRefusal(sub *subscription) {
	key, level := sub.topic+"/"+sub.queue, slog.LevelWarn
	if c.refusals[key] == sub.err {
		level = slog.LevelDebug
	}
	if len(c.refusals) >= maxRefusals {
		clear(c.refusals)
	}
	c.refusals[key] = sub.err
	c.log.Log(context.Background(), level, "the PBX refused a subscription", "topic", sub.topic, "queue", sub.queue, "error", sub.err)
}
