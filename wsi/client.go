package wsi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Stages of a session, as counted by portsip_wsi_connection_errors_total.
const (
	StageDial      = "dial"      // TCP, TLS or WebSocket handshake
	StageAuth      = "auth"      // auth command refused or unanswered
	StageSubscribe = "subscribe" // every subscription refused, or unanswered
	StageRead      = "read"      // an established session broke
)

// Stages lists every stage, in a stable order.
var Stages = []string{StageDial, StageAuth, StageSubscribe, StageRead}

// Error is a failed session attempt or a session that ended, with the stage
// it failed at. It never contains the password.
//
// Err wraps the cause, so errors.As finds a TLS failure
// (*tls.CertificateVerificationError, x509.HostnameError,
// tls.RecordHeaderError, ...) or a *net.OpError behind a StageDial error.
type Error struct {
	Stage string
	// PBXError is the PBX's own error text when it sent one (auth, subscribe).
	PBXError string
	Err      error
}

func (e *Error) Error() string { return e.Stage + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// TLSConfig is how the Client verifies a wss:// PBX.
type TLSConfig struct {
	// CAFile is a PEM bundle that replaces the system roots, for a PBX with
	// a private or self-signed CA.
	CAFile             string
	ServerName         string // expected name in the PBX's certificate; default the URL's host
	InsecureSkipVerify bool   // accept any certificate; New logs a warning
}

// Config configures a Client. Zero durations take the defaults.
type Config struct {
	URL string // ws:// or wss://

	// Authentication: Username, or ExtensionNumber (which needs Domain).
	// Without Domain the user is a system administrator and the global
	// topics are used with Tenants; with Domain the tenant topics are used.
	Username        string
	ExtensionNumber string
	Password        string
	Domain          string

	Tenants    []string // global mode: tenant ids; events of any other tenant are dropped (Stats.OtherTenantEvents)
	Queues     []string // tenant mode: queue numbers; empty = learn them
	Extensions []string // tenant mode: extension numbers for extension_events

	TLS TLSConfig

	PingInterval     time.Duration // default 30s; dead after two periods of silence
	HandshakeTimeout time.Duration // dial + WebSocket handshake, and the auth reply; default 10s
	SubscribeTimeout time.Duration // wait for subscribe replies before assuming accepted; default 5s
	MaxMessageSize   int64         // larger frames are skipped as oversized; default 16 MiB

	BackoffInitial time.Duration // default 1s
	BackoffMax     time.Duration // default 60s
	// HealthyAfter is how long a session must stay up for the back-off to
	// start again from BackoffInitial; default 60s.
	HealthyAfter time.Duration

	Logger *slog.Logger // default: discard
}

// Defaults of the zero Config fields.
const (
	DefaultPingInterval     = 30 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultSubscribeTimeout = 5 * time.Second
	DefaultMaxMessageSize   = 16 << 20
	DefaultBackoffInitial   = time.Second
	DefaultBackoffMax       = 60 * time.Second
	DefaultHealthyAfter     = 60 * time.Second
)

// Session describes an established session (connected, authenticated,
// subscribed).
type Session struct {
	// Topics maps each topic the client subscribed to whether the PBX
	// accepted it (true also when the PBX sent no reply).
	Topics map[string]bool
}

// Handler receives what a Client reads. The Client calls it from one
// goroutine, in order, never concurrently.
type Handler interface {
	// SessionUp: the session is connected, authenticated and subscribed.
	// The PBX's snapshots follow as events.
	SessionUp(Session)
	// HandleEvent receives each decoded event.
	HandleEvent(Event)
	// SessionDown: the session that was up ended, with the reason.
	SessionDown(err error)
}

// Stats are the Client's counters since it was created. They never reset.
type Stats struct {
	Up                 bool
	ConnectionAttempts uint64
	ConnectionErrors   map[string]uint64 // by Stage*
	InvalidMessages    map[string]uint64 // by Reason*
	Events             map[string]uint64 // handed to the Handler, by event type; unknown types under TypeOther
	// OtherTenantEvents counts the events a PBX sent for a tenant not in
	// Config.Tenants (global mode), which are dropped.
	OtherTenantEvents uint64
	LastEvent         time.Time       // zero before the first event
	Subscriptions     map[string]bool // topic -> active in the current session; all false when down
}

// Client keeps one WSI session and reconnects it forever.
//
// Reconnects back off exponentially from BackoffInitial to BackoffMax with
// equal jitter (each delay is uniform in [d/2, d)); failed authentication
// and subscription back off the same way. Run and Check must not be called
// concurrently on one Client; Stats may be called at any time.
type Client struct {
	cfg     Config
	log     *slog.Logger
	tls     *tls.Config
	global  bool            // system administrator: global_* topics with tenants
	tenants map[string]bool // global mode: Config.Tenants, to drop the events of others
	learn   bool            // tenant mode without Queues: learn them from queue_management_events
	topics  []string        // every topic this client may subscribe, for Stats

	// sleep waits d or until ctx is done, reporting whether d passed.
	// Tests replace it to observe back-off without waiting for real.
	sleep func(ctx context.Context, d time.Duration) bool
	// maxEarlyBytes is maxEarlyBytes; tests lower it.
	maxEarlyBytes int

	mu    sync.Mutex
	stats Stats

	// Only touched by the goroutine running Run or Check: what was logged
	// last, so repeated identical failures go to debug.
	lastFailure string
	lastRefusal map[string]string // subscription key -> PBX error text
}

// New validates cfg and returns a Client. It does not connect.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("invalid WSI URL: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return nil, fmt.Errorf("WSI URL %q: scheme must be ws or wss", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("WSI URL %q has no host", u.Redacted())
	}
	switch {
	case cfg.Username != "" && cfg.ExtensionNumber != "":
		return nil, errors.New("set either a username or an extension number, not both")
	case cfg.Username == "" && cfg.ExtensionNumber == "":
		return nil, errors.New("a username or an extension number is required")
	case cfg.ExtensionNumber != "" && cfg.Domain == "":
		return nil, errors.New("authenticating by extension number needs a domain")
	}
	cfg.Tenants = cleanList(cfg.Tenants)
	cfg.Queues = cleanList(cfg.Queues)
	cfg.Extensions = cleanList(cfg.Extensions)
	global := cfg.Domain == ""
	if global {
		if len(cfg.Tenants) == 0 {
			return nil, errors.New("a system administrator (no domain) needs at least one tenant id for the global topics")
		}
		if len(cfg.Queues) > 0 || len(cfg.Extensions) > 0 {
			return nil, errors.New("queues and extensions select tenant topics and need a domain; the global topics cover every queue and extension of the tenants")
		}
	} else if len(cfg.Tenants) > 0 {
		return nil, errors.New("tenant ids are only used by a system administrator (no domain)")
	}

	for _, d := range []struct {
		v    *time.Duration
		def  time.Duration
		name string
	}{
		{&cfg.PingInterval, DefaultPingInterval, "ping interval"},
		{&cfg.HandshakeTimeout, DefaultHandshakeTimeout, "handshake timeout"},
		{&cfg.SubscribeTimeout, DefaultSubscribeTimeout, "subscribe timeout"},
		{&cfg.BackoffInitial, DefaultBackoffInitial, "initial back-off"},
		{&cfg.BackoffMax, DefaultBackoffMax, "maximum back-off"},
		{&cfg.HealthyAfter, DefaultHealthyAfter, "healthy-after duration"},
	} {
		if *d.v < 0 {
			return nil, fmt.Errorf("%s must not be negative", d.name)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.BackoffMax < cfg.BackoffInitial {
		return nil, fmt.Errorf("maximum back-off %s is shorter than the initial %s", cfg.BackoffMax, cfg.BackoffInitial)
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}

	c := &Client{
		cfg:           cfg,
		log:           cfg.Logger,
		global:        global,
		learn:         !global && len(cfg.Queues) == 0,
		sleep:         sleepCtx,
		maxEarlyBytes: maxEarlyBytes,
		lastRefusal:   map[string]string{},
		tenants:       map[string]bool{},
	}
	for _, t := range cfg.Tenants {
		c.tenants[t] = true
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.tls, err = tlsConfig(cfg.TLS); err != nil {
		return nil, err
	}
	if cfg.TLS.InsecureSkipVerify {
		c.log.Warn("TLS certificate verification of the PBX is disabled: anyone on the path can impersonate it and read the password", "url", u.Redacted())
	}

	if global {
		c.topics = []string{TopicGlobalQueueEvents, TopicGlobalQueueManagement, TopicGlobalExtensionEvents, TopicGlobalExtensionManagement, TopicGlobalCDREvents}
	} else {
		c.topics = []string{TopicQueueManagementEvents, TopicQueueEvents, TopicCDREvents}
		if len(cfg.Extensions) > 0 {
			c.topics = append(c.topics, TopicExtensionEvents)
		}
	}
	c.stats = Stats{
		ConnectionErrors: zeroCounts(Stages),
		InvalidMessages:  zeroCounts(InvalidReasons),
		Events:           zeroCounts(append(slices.Clone(KnownEventTypes), TypeOther)),
		Subscriptions:    map[string]bool{},
	}
	for _, t := range c.topics {
		c.stats.Subscriptions[t] = false
	}
	return c, nil
}

func tlsConfig(t TLSConfig) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // an explicit, logged operator choice
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA file %s: no PEM certificate found", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// cleanList drops empty and repeated entries, keeping the order.
func cleanList(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func zeroCounts(keys []string) map[string]uint64 {
	m := make(map[string]uint64, len(keys))
	for _, k := range keys {
		m[k] = 0
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
	bo := newBackoff(c.cfg.BackoffInitial, c.cfg.BackoffMax)
	for ctx.Err() == nil {
		upFor, err := c.runSession(ctx, h)
		if ctx.Err() != nil {
			break
		}
		if upFor >= c.cfg.HealthyAfter {
			bo.reset()
		}
		delay := bo.next()
		c.logFailure(err, upFor > 0, delay)
		if !c.sleep(ctx, delay) {
			break
		}
	}
	return nil
}

// runSession makes one attempt and, when it comes up, serves the session
// until it ends. upFor is how long it was up (0 when it never came up).
func (c *Client) runSession(ctx context.Context, h Handler) (upFor time.Duration, err error) {
	s, err := c.open(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.countError(err)
		}
		return 0, err
	}
	upAt := time.Now()
	c.logUp(s)
	c.setUp(true, s.topics())
	h.SessionUp(Session{Topics: s.topics()})
	err = s.serve(ctx, h, nil)
	s.close()
	c.setUp(false, nil)
	if ctx.Err() != nil {
		h.SessionDown(ctx.Err())
		return time.Since(upAt), ctx.Err()
	}
	c.countError(err)
	h.SessionDown(err)
	return time.Since(upAt), err
}

// Stats returns a snapshot of the counters. Safe for concurrent use.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.ConnectionErrors = cloneMap(s.ConnectionErrors)
	s.InvalidMessages = cloneMap(s.InvalidMessages)
	s.Events = cloneMap(s.Events)
	s.Subscriptions = cloneMap(s.Subscriptions)
	return s
}

func cloneMap[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (c *Client) countAttempt() {
	c.mu.Lock()
	c.stats.ConnectionAttempts++
	c.mu.Unlock()
}

func (c *Client) countError(err error) {
	var e *Error
	if !errors.As(err, &e) {
		return
	}
	c.mu.Lock()
	c.stats.ConnectionErrors[e.Stage]++
	c.mu.Unlock()
}

func (c *Client) countInvalid(reason string) {
	c.mu.Lock()
	c.stats.InvalidMessages[reason]++
	c.mu.Unlock()
}

func (c *Client) countOtherTenant() {
	c.mu.Lock()
	c.stats.OtherTenantEvents++
	c.mu.Unlock()
}

func (c *Client) countEvent(ev Event, at time.Time) {
	t := ev.Head().EventType
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, known := c.stats.Events[t]; !known || t == TypeOther {
		// Unknown types arrive as *Unknown; anything not in the catalogue
		// is "other" so a hostile PBX cannot grow the map.
		t = TypeOther
	}
	c.stats.Events[t]++
	c.stats.LastEvent = at
}

// setUp records the session state; topics is the current subscription
// outcome (nil when down: every topic false).
func (c *Client) setUp(up bool, topics map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Up = up
	c.setSubscriptionsLocked(topics)
}

func (c *Client) setSubscriptions(topics map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stats.Up {
		c.setSubscriptionsLocked(topics)
	}
}

func (c *Client) setSubscriptionsLocked(topics map[string]bool) {
	for t := range c.stats.Subscriptions {
		c.stats.Subscriptions[t] = false
	}
	for t, ok := range topics {
		c.stats.Subscriptions[t] = ok
	}
}

func (c *Client) logUp(s *session) {
	var accepted, refused []string
	for t, ok := range s.topics() {
		if ok {
			accepted = append(accepted, t)
		} else {
			refused = append(refused, t)
		}
	}
	slices.Sort(accepted)
	slices.Sort(refused)
	attrs := []any{"url", redactURL(c.cfg.URL), "topics", accepted}
	if len(refused) > 0 {
		attrs = append(attrs, "refused", refused)
	}
	c.log.Info("connected to the PBX", attrs...)
	c.lastFailure = ""
}

// logFailure logs a failed attempt or a lost session once per change of
// state: an identical failure to the previous one goes to debug, so a PBX
// that stays down for hours does not flood the log.
func (c *Client) logFailure(err error, wasUp bool, retry time.Duration) {
	if err == nil {
		return
	}
	attrs := []any{"err", err, "retry_in", retry.Round(time.Millisecond)}
	var e *Error
	if errors.As(err, &e) {
		attrs = append(attrs, "stage", e.Stage)
	}
	if wasUp {
		c.log.Warn("connection to the PBX lost", attrs...)
		c.lastFailure = ""
		return
	}
	key := failureKey(err)
	if key == c.lastFailure {
		c.log.Debug("still cannot connect to the PBX", attrs...)
		return
	}
	c.lastFailure = key
	c.log.Warn("cannot connect to the PBX", attrs...)
}

// localAddr matches the "127.0.0.1:54321->" part of network errors, which
// changes with every attempt although the failure is the same.
var localAddr = regexp.MustCompile(`\S+->`)

func failureKey(err error) string { return localAddr.ReplaceAllString(err.Error(), "") }

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Redacted()
}
