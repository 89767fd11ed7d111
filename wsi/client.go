package wsi

import (
	"context"
	"errors"
	"log/slog"
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
	CAFile             string // PEM bundle added to the system roots... (see client.go doc)
	ServerName         string
	InsecureSkipVerify bool
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

	Tenants    []string // global mode: tenant ids
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
	Events             map[string]uint64 // by event type; unknown types under TypeOther
	LastEvent          time.Time         // zero before the first event
	Subscriptions      map[string]bool   // topic -> active in the current session; all false when down
}

// Client keeps one WSI session and reconnects it forever.
type Client struct {
	cfg Config
}

// New validates cfg and returns a Client. It does not connect.
func New(cfg Config) (*Client, error) {
	return nil, errors.New("TODO(issue 2)")
}

// Run connects and keeps a session until ctx is cancelled, handing events
// to h. It returns nil after ctx is cancelled and every goroutine it
// started has ended.
func (c *Client) Run(ctx context.Context, h Handler) error {
	return errors.New("TODO(issue 2)")
}

// Stats returns a snapshot of the counters. Safe for concurrent use.
func (c *Client) Stats() Stats { return Stats{} }

// CheckResult is what one Check attempt saw.
type CheckResult struct {
	Topics map[string]TopicResult // by topic subscribed
}

// TopicResult is one topic's subscription outcome in a Check.
type TopicResult struct {
	Accepted bool
	Replied  bool           // false: the PBX sent no reply (assumed accepted)
	Error    string         // the PBX's error text when refused
	Events   map[string]int // event types received on the topic within the listen window
}

// Check makes one attempt (no reconnect): connects, authenticates,
// subscribes, then listens for the given duration. A failure is an *Error
// whose Stage says where it failed.
func (c *Client) Check(ctx context.Context, listen time.Duration) (*CheckResult, error) {
	return nil, errors.New("TODO(issue 2)")
}
