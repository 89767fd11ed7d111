// Package wsitest is a simulated PortSIP PBX: a real WSI WebSocket server on
// loopback with tenants, users and roles, permission checks, snapshots on
// subscribe, an API that changes PBX state and publishes the vendor-shaped
// events, fault injection, and a contact-centre traffic model (Traffic).
//
// It is to this project what net/http/httptest is to Go: tests, benchmarks
// and the exporter's demo mode run against it.
//
// Where the vendor's documentation is silent the server makes these
// choices, which a client must cope with anyway:
//
//   - Every command gets one reply {"command","id","status"} (plus "error"
//     when status is -1), with ids counted per session from "1"; commands
//     other than auth before a successful auth are refused with
//     "not authenticated".
//   - A subscribe naming a refused topic is refused as a whole with
//     "permission denied: <topic>". Accepted filters add up over
//     subscribes; an empty queues or extensions list means all of them.
//     After the reply come the snapshots of what this subscribe named. A
//     queue created or changed later sends its queue_status to the
//     subscribers of every queue of its tenant.
//   - A subscriber that reads slowly holds publishers back rather than
//     losing events; one that takes nothing for 10 s is dropped.
//
// Faults are injected with SendRaw, SendBinary, DropSessions, Stop and
// Resume, SetPingReplies, SetAuthError, SetAuthReplies,
// SetSubscribeReplies and SetDenied; tests await their effects with
// WaitFor and the counters (Connections, AuthAttempts, Pings,
// Subscriptions).
//
// Where the vendor's page is silent or contradicts itself, the server can
// speak each plausible reading: SetQuirks (or TrafficConfig.Quirks) turns
// them on one by one (Quirks documents each); the zero Quirks takes the
// vendor's samples at their word. Quirks change the frames, never what happened: the truth
// accessors QueueTruth, ExtensionTruth and CallTruth return what the PBX
// really did, in true time and in the exporter's vocabulary, so that a
// test compares an exporter's numbers with it rather than with a second
// reading of the same frames.
//
// Traffic drives a Server with a contact centre on a simulated clock
// (Step, or Run on the wall clock); Tap and Frames give its frames
// without a network, and TrafficConfig.Scenario plays an Incident over
// it.
package wsitest

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Role is what a user may do on the PBX.
type Role int

const (
	// SystemAdmin authenticates without a domain and may subscribe only
	// the global_* topics, naming the tenants.
	SystemAdmin Role = iota
	// TenantAdmin may subscribe every tenant topic of its tenant.
	TenantAdmin
	// ExtensionUser may subscribe extension_events, and queue_events for
	// the queues listed in User.Queues.
	ExtensionUser
)

// User is an account that may authenticate.
type User struct {
	Username string // auth by username (all roles)
	// ExtensionNumber lets a tenant user authenticate by extension number.
	ExtensionNumber string
	Password        string
	Role            Role
	// TenantID is the tenant of a tenant user; the user authenticates
	// with that tenant's Domain.
	TenantID string
	// Queues are the queue numbers an ExtensionUser is agent or manager
	// of: it may subscribe queue_events for those only.
	Queues []string
	// Denied topics are refused with a permission error although the role
	// allows them, as a PBX does for a user without the right permission.
	Denied []string
}

// Subscription is one accepted topic of a live session.
type Subscription struct {
	Username   string
	Topic      string
	Tenants    []string // global topics
	Queues     []string // queue_events; empty = every queue
	Extensions []string // extension_events; empty = every extension
}

// AuthError is the error text the vendor documents for a refused auth.
const AuthError = "access_token , username , domain or password error"

const (
	// Path is the URL path the server answers on, as a v22 PBX does.
	Path = "/wsi"

	sessionQueue = 1024             // frames buffered per session before publishers wait
	writeTimeout = 10 * time.Second // a session that cannot take a frame this long is dropped
	readLimit    = 1 << 20          // commands are small
)

// Server is a simulated PBX. Its methods are safe for concurrent use.
type Server struct {
	// URL is ws://127.0.0.1:PORT/wsi (wss:// after StartTLS), set by Start.
	URL string
	// Now is the clock of the timestamps in events; default time.Now.
	// Set it before the server is used.
	Now func() time.Time

	certPEM []byte
	tlsCfg  *tls.Config

	pingReplies      atomic.Bool
	subscribeReplies atomic.Bool
	authReplies      atomic.Bool

	// mu guards the PBX state and the sessions. It is held while an event
	// is queued to every session, so that each session sees the snapshot
	// and the events after it in the order the state changed.
	mu        sync.Mutex
	closed    bool
	started   bool
	addr      string       // host:port, kept across Stop and Resume
	listener  net.Listener // nil before Start
	httpSrv   *http.Server // nil while stopped
	users     []*User      // pointers: sessions keep theirs across AddUser
	tenants   map[string]*tenant
	tenantIDs []string // in the order added
	sessions  map[*session]struct{}
	authError string
	nextID    uint64
	// tap, when set, sees every published frame whoever subscribed:
	// what a system administrator subscribed to everything receives.
	tap    func(frame []byte)
	quirks Quirks
	held   []heldFrame // copies due after the next frame (Quirks.Duplicates)

	connections  int
	authAttempts int
	pings        atomic.Int64 // atomic: the ping handler must not wait for mu

	wg   sync.WaitGroup // the accept loop and every session goroutine
	quit chan struct{}  // closed by Close: releases publishers waiting on a stuck session
	stop sync.Once
}

// NewServer returns a started server on 127.0.0.1.
func NewServer() *Server {
	s := NewUnstartedServer()
	s.Start()
	return s
}

// NewTLSServer returns a server started with TLS (wss://) and a self-signed
// certificate for 127.0.0.1; CACertPEM returns it for clients to trust.
func NewTLSServer() *Server {
	s := NewUnstartedServer()
	s.StartTLS()
	return s
}

// NewUnstartedServer returns a server that is not listening yet, so that
// users, tenants and state can be set up first. Call Start or StartTLS.
func NewUnstartedServer() *Server {
	s := &Server{
		Now:      time.Now,
		tenants:  make(map[string]*tenant),
		sessions: make(map[*session]struct{}),
		quit:     make(chan struct{}),
	}
	s.pingReplies.Store(true)
	s.subscribeReplies.Store(true)
	s.authReplies.Store(true)
	return s
}

// Start listens on a free port of 127.0.0.1 and serves ws://.
func (s *Server) Start() { s.start(nil) }

// StartTLS listens on a free port of 127.0.0.1 and serves wss://.
func (s *Server) StartTLS() {
	cert, pem, err := selfSignedCert()
	if err != nil {
		panic("wsitest: " + err.Error())
	}
	s.certPEM = pem
	s.start(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
}

func (s *Server) start(tlsCfg *tls.Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		panic("wsitest: server already started")
	}
	s.started = true
	s.tlsCfg = tlsCfg
	if err := s.listenLocked("127.0.0.1:0"); err != nil {
		panic("wsitest: failed to listen: " + err.Error())
	}
	scheme := "ws://"
	if tlsCfg != nil {
		scheme = "wss://"
	}
	s.addr = s.listener.Addr().String()
	s.URL = scheme + s.addr + Path
}

func (s *Server) listenLocked(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if s.tlsCfg != nil {
		ln = tls.NewListener(ln, s.tlsCfg)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(Path, s.serveWS)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		// Failed TLS handshakes are what some tests are about, not news.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	s.listener, s.httpSrv = ln, srv
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = srv.Serve(ln)
	}()
	return nil
}

// Addr is the listening address, host:port.
func (s *Server) Addr() string { return s.addr }

// CACertPEM is the PEM certificate of a TLS server (nil without TLS), to
// be trusted by clients (the exporter's --wsi.tls.ca-file).
func (s *Server) CACertPEM() []byte { return s.certPEM }

// Stop takes the PBX down as a restart does: the listener closes (dials
// are refused) and every session drops. The state is kept; Resume brings
// the PBX back on the same address, possibly after the test changed it.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, ln := s.httpSrv, s.listener
	s.httpSrv = nil // from now on serveWS turns away handshakes in flight
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
		// srv.Close misses a listener whose Serve goroutine has not run
		// yet; the port must be free when Stop returns.
		_ = ln.Close()
	}
	s.DropSessions()
}

// Resume listens again on the address Stop released.
func (s *Server) Resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("wsitest: server closed")
	}
	if !s.started {
		return errors.New("wsitest: server not started")
	}
	if s.httpSrv != nil {
		return nil // not stopped
	}
	return s.listenLocked(s.addr)
}

// Close stops listening, closes every session and waits for all the
// server's goroutines to end.
func (s *Server) Close() {
	s.stop.Do(func() { close(s.quit) })
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.Stop()
	s.wg.Wait()
}

// ---- fault injection ----

// SendRaw sends frame as a text frame to every session, whatever it
// subscribed, bypassing the state.
func (s *Server) SendRaw(frame []byte) { s.broadcast(websocket.TextMessage, frame) }

// SendBinary sends frame as a binary frame to every session.
func (s *Server) SendBinary(frame []byte) { s.broadcast(websocket.BinaryMessage, frame) }

func (s *Server) broadcast(typ int, frame []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sess := range s.sessions {
		sess.send(outFrame{typ: typ, data: frame})
	}
}

// DropSessions closes every connection abruptly: no close frame, as when a
// PBX restarts or a network path dies.
func (s *Server) DropSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sess := range s.sessions {
		sess.close()
	}
}

// SetDenied replaces the topics a user (every user of that name) is
// refused, as when an administrator changes its permissions: the next
// subscribes are refused them; subscriptions already accepted stay.
func (s *Server) SetDenied(username string, topics ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if u.Username == username {
			u.Denied = append([]string(nil), topics...)
		}
	}
}

// SetPingReplies(false) makes the server go silent: it answers no pings
// and sends no frames (they are discarded) while TCP stays open, as a hung
// PBX does. SetPingReplies(true) restores normal service.
func (s *Server) SetPingReplies(on bool) { s.pingReplies.Store(on) }

// SetAuthError makes every auth fail with text as the PBX's error; ""
// accepts valid credentials again.
func (s *Server) SetAuthError(text string) {
	s.mu.Lock()
	s.authError = text
	s.mu.Unlock()
}

// SetAuthReplies(false) leaves auth commands unanswered (the session stays
// unauthenticated), to exercise a client's auth timeout.
func (s *Server) SetAuthReplies(on bool) { s.authReplies.Store(on) }

// SetSubscribeReplies(false) makes the server accept subscriptions and
// push the snapshots without sending a reply: the reply is undocumented
// and some PBXs may not send one.
func (s *Server) SetSubscribeReplies(on bool) { s.subscribeReplies.Store(on) }

// ---- observation ----

// Connections is the number of WebSocket sessions accepted so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connections
}

// Sessions is the number of sessions open now.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for sess := range s.sessions {
		if !sess.isClosed() {
			n++
		}
	}
	return n
}

// AuthAttempts is the number of auth commands received so far.
func (s *Server) AuthAttempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authAttempts
}

// Pings is the number of WebSocket pings received so far.
func (s *Server) Pings() int { return int(s.pings.Load()) }

// Subscriptions lists the accepted subscriptions of the open sessions,
// sorted by user and topic.
func (s *Server) Subscriptions() []Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Subscription
	for sess := range s.sessions {
		if sess.isClosed() || sess.user == nil {
			continue
		}
		for _, sub := range sess.subs {
			out = append(out, Subscription{
				Username:   sess.user.Username,
				Topic:      sub.topic,
				Tenants:    sortedKeys(sub.tenants),
				Queues:     sortedKeys(sub.queues),
				Extensions: sortedKeys(sub.exts),
			})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Username != out[j].Username {
			return out[i].Username < out[j].Username
		}
		return out[i].Topic < out[j].Topic
	})
	return out
}

// WaitFor polls cond until it returns true or ctx is done, so that tests
// await a condition instead of sleeping.
func (s *Server) WaitFor(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ---- sessions ----

var upgrader = websocket.Upgrader{
	// A PBX serves any origin; the exporter sends none.
	CheckOrigin: func(*http.Request) bool { return true },
}

type outFrame struct {
	typ  int
	data []byte
}

type session struct {
	s    *Server
	conn *websocket.Conn
	out  chan outFrame
	done chan struct{}
	once sync.Once

	// guarded by s.mu
	user    *User
	subs    map[string]*subscription // by topic
	replyID int
}

func (sess *session) close() {
	sess.once.Do(func() {
		close(sess.done)
		// No close frame: a dropped session is what the tests want, and
		// a closing server owes its peers nothing more.
		_ = sess.conn.Close()
	})
}

func (sess *session) isClosed() bool {
	select {
	case <-sess.done:
		return true
	default:
		return false
	}
}

// send queues a frame; it waits while the queue is full, which a stuck
// peer ends by hitting the write timeout. Called with s.mu held.
func (sess *session) send(f outFrame) {
	if !sess.s.pingReplies.Load() {
		return // a hung PBX sends nothing
	}
	select {
	case sess.out <- f:
	case <-sess.done:
	case <-sess.s.quit:
	}
}

func (sess *session) sendJSON(v any) {
	sess.send(outFrame{typ: websocket.TextMessage, data: mustMarshal(v)})
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered with an HTTP error
	}
	sess := &session{
		s:    s,
		conn: conn,
		out:  make(chan outFrame, sessionQueue),
		done: make(chan struct{}),
		subs: make(map[string]*subscription),
	}
	s.mu.Lock()
	if s.closed || s.httpSrv == nil {
		s.mu.Unlock()
		_ = conn.Close()
		return
	}
	s.connections++
	s.sessions[sess] = struct{}{}
	s.wg.Add(2)
	s.mu.Unlock()

	go sess.writeLoop()
	sess.readLoop()
}

func (sess *session) writeLoop() {
	defer sess.s.wg.Done()
	defer sess.close()
	for {
		select {
		case <-sess.done:
			return
		case f := <-sess.out:
			if !sess.s.pingReplies.Load() {
				continue // a hung PBX sends nothing
			}
			_ = sess.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := sess.conn.WriteMessage(f.typ, f.data); err != nil {
				return
			}
		}
	}
}

func (sess *session) readLoop() {
	s := sess.s
	defer s.wg.Done()
	defer func() {
		sess.close()
		s.mu.Lock()
		delete(s.sessions, sess)
		s.mu.Unlock()
	}()
	sess.conn.SetReadLimit(readLimit)
	sess.conn.SetPingHandler(func(data string) error {
		s.pings.Add(1)
		if !s.pingReplies.Load() {
			return nil
		}
		err := sess.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeTimeout))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return err
	})
	for {
		typ, data, err := sess.conn.ReadMessage()
		if err != nil {
			return
		}
		if typ != websocket.TextMessage {
			sess.reply("", "commands are JSON text frames")
			continue
		}
		sess.handle(data)
	}
}
