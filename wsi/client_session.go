package wsi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// frame is a decoded text frame on its way from the reader goroutine to
// the session loop: exactly one of ev and reply is set.
type frame struct {
	ev    Event
	reply *Reply
	size  int // bytes of the frame this object took
}

// subscription is one subscribe command and its outcome. queue_events is
// subscribed one queue per command, so one refused queue (an agent who
// left it) does not take the others down.
type subscription struct {
	topic   string
	queue   string // queue_events only
	decided bool   // has an outcome: replied, or assumed accepted
	ok      bool
	replied bool
	err     string // the PBX's error text when refused
	removed bool   // unsubscribed (queue destroyed)
}

func (s *subscription) key() string {
	if s.queue != "" {
		return s.topic + "/" + s.queue
	}
	return s.topic
}

// session is one WebSocket connection to the PBX. The goroutine that
// opened it runs the protocol (auth, subscriptions, queue discovery) and
// calls the Handler; a reader goroutine reads and decodes frames; a pinger
// goroutine sends pings. Only the session goroutine writes data frames;
// pings and the close frame go through WriteControl, which gorilla allows
// concurrently with one other writer.
type session struct {
	c    *Client
	conn *websocket.Conn
	up   bool

	frames  chan frame
	done    chan struct{} // closed by close(): stops the pinger and the reader
	readErr error         // set by the reader before it closes frames
	wg      sync.WaitGroup
	closed  bool

	subs     []*subscription
	pending  []*subscription // sent and not yet replied, in order: replies come in order
	sawReply bool            // the PBX replied to a subscribe in this session
	queues   map[string]*subscription
	early    []Event // events read while subscribing, delivered after SessionUp
	earlyLen int     // bytes of the frames held in early

	buf bytes.Buffer // reader's frame buffer
}

// open dials, authenticates and subscribes. On success the session is up
// and its goroutines run; on failure everything is closed again and the
// error is an *Error (or ctx's error when ctx was cancelled). When the
// subscriptions failed the closed session is returned too, for its
// outcomes.
func (c *Client) open(ctx context.Context) (*session, error) {
	c.countAttempt()
	c.log.Debug("connecting to the PBX", "url", redactURL(c.cfg.URL))
	conn, err := c.dial(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &Error{Stage: StageDial, Err: err}
	}
	s := &session{
		c:      c,
		conn:   conn,
		frames: make(chan frame, 16),
		done:   make(chan struct{}),
		queues: map[string]*subscription{},
	}
	s.start()
	if err := s.auth(ctx); err != nil {
		s.close()
		return nil, err
	}
	if err := s.subscribeAll(ctx); err != nil {
		s.close()
		return s, err
	}
	return s, nil
}

func (c *Client) dial(ctx context.Context) (*websocket.Conn, error) {
	// The timeout is ours, not gorilla's HandshakeTimeout: gorilla cancels
	// its own derived context on return, which would close the connection
	// through the AfterFunc below.
	dctx, cancel := context.WithTimeout(ctx, c.cfg.HandshakeTimeout)
	defer cancel()
	// gorilla bounds the upgrade by a deadline only, so a cancel of ctx
	// would wait for it; closing the TCP connection on cancel makes
	// shutdown prompt even against a PBX that never answers the upgrade.
	var stop func() bool
	d := websocket.Dialer{
		Proxy:           http.ProxyFromEnvironment,
		TLSClientConfig: c.tls,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				stop = context.AfterFunc(ctx, func() { conn.Close() })
			}
			return conn, err
		},
	}
	conn, resp, err := d.DialContext(dctx, c.cfg.URL, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if stop != nil && !stop() && err == nil {
		// The context ended just as the handshake completed.
		conn.Close()
		err = dctx.Err()
	}
	switch {
	case err == nil:
		return conn, nil
	case errors.Is(err, websocket.ErrBadHandshake) && resp != nil:
		return nil, fmt.Errorf("%w (HTTP %s): is this the WSI endpoint, e.g. wss://pbx:8887/wsi?", err, resp.Status)
	case ctx.Err() == nil && (dctx.Err() != nil || isTimeout(err)):
		return nil, fmt.Errorf("no WebSocket handshake within %s: %w", c.cfg.HandshakeTimeout, err)
	}
	return nil, err
}

func (s *session) start() {
	ping := s.c.cfg.PingInterval
	s.conn.SetPongHandler(func(string) error {
		return s.conn.SetReadDeadline(time.Now().Add(2 * ping))
	})
	s.conn.SetPingHandler(func(data string) error {
		_ = s.conn.SetReadDeadline(time.Now().Add(2 * ping))
		// A failed pong means a broken connection, which the next read
		// reports with a better error than this write would.
		_ = s.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(s.c.cfg.HandshakeTimeout))
		return nil
	})
	s.wg.Add(2)
	go s.readLoop()
	go s.pingLoop()
}

// close ends the session: a close frame (best effort), the connection, and
// waits for the reader and the pinger.
func (s *session) close() {
	if s.closed {
		return
	}
	s.closed = true
	close(s.done)
	_ = s.conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	s.conn.Close()
	s.wg.Wait()
}

func (s *session) pingLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.c.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			if err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.c.cfg.HandshakeTimeout)); err != nil {
				// The reader sees the broken connection, or the missing
				// pongs, and ends the session.
				s.c.log.Debug("ping failed", "err", err)
			}
		}
	}
}

// readLoop reads frames until the connection fails. A frame that cannot be
// used (binary, oversized, undecodable) is counted and skipped: one bad
// frame never ends a session. Valid frames go to the session loop, which
// blocks the reader when the Handler is slow: back-pressure, not loss.
func (s *session) readLoop() {
	defer s.wg.Done()
	defer close(s.frames)
	c := s.c
	limit := c.cfg.MaxMessageSize
	for {
		// Set before every read, not only on frames: a slow Handler must
		// not make a live PBX look dead.
		_ = s.conn.SetReadDeadline(time.Now().Add(2 * c.cfg.PingInterval))
		typ, r, err := s.conn.NextReader()
		if err != nil {
			s.readErr = s.readError(err)
			return
		}
		if typ == websocket.BinaryMessage {
			if _, err := io.Copy(io.Discard, r); err != nil {
				s.readErr = s.readError(err)
				return
			}
			c.countInvalid(ReasonBinaryFrame)
			c.log.Debug("binary frame skipped")
			continue
		}
		s.buf.Reset()
		n, err := s.buf.ReadFrom(io.LimitReader(r, limit+1))
		if err == nil && n > limit {
			var rest int64
			rest, err = io.Copy(io.Discard, r)
			n += rest
			if err == nil {
				c.countInvalid(ReasonOversized)
				c.log.Debug("oversized frame skipped", "bytes", n, "limit", limit)
			}
		}
		if err != nil {
			s.readErr = s.readError(err)
			return
		}
		if n > limit {
			s.shrink()
			continue
		}
		if !s.deliver(s.buf.Bytes(), time.Now()) {
			return
		}
		s.shrink()
	}
}

// deliver decodes a text frame and hands each of its objects to the
// session loop; false when the session is closing. The framing is
// undocumented, so a frame holding several objects is read as several
// frames rather than lost whole (see decodeNext). Events are counted where
// the Handler gets them, not here: a frame read just before the session
// ends may never reach it.
func (s *session) deliver(data []byte, received time.Time) bool {
	for more := true; more; more = len(data) > 0 {
		f := frame{size: len(data)}
		var err error
		f.ev, f.reply, data, err = decodeNext(data)
		f.size -= len(data)
		if err != nil {
			reason := ReasonMalformedJSON
			var de *DecodeError
			if errors.As(err, &de) {
				reason = de.Reason
			}
			s.c.countInvalid(reason)
			s.c.log.Debug("invalid frame skipped", "reason", reason, "err", err)
			continue
		}
		if f.ev != nil {
			f.ev.Head().Received = received
		} else if f.reply == nil {
			continue
		}
		select {
		case s.frames <- f:
		case <-s.done:
			return false
		}
	}
	return true
}

// shrink drops a buffer grown by an unusually large frame, so one burst
// does not pin megabytes for the life of the session.
func (s *session) shrink() {
	if s.buf.Cap() > 1<<20 {
		s.buf = bytes.Buffer{}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *session) readError(err error) error {
	if isTimeout(err) {
		return fmt.Errorf("no frame or pong from the PBX for %s (two ping periods): %w", 2*s.c.cfg.PingInterval, err)
	}
	return err
}

// next waits for the next frame, until the timer fires or ctx is done.
// timeout is false when the timer fired; err is set when the connection
// failed or ctx was cancelled.
func (s *session) next(ctx context.Context, timer <-chan time.Time) (f frame, timeout bool, err error) {
	select {
	case <-ctx.Done():
		return frame{}, false, ctx.Err()
	case <-timer:
		return frame{}, true, nil
	case f, ok := <-s.frames:
		if !ok {
			return frame{}, false, s.readErr
		}
		return f, false, nil
	}
}

func (s *session) write(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.c.cfg.HandshakeTimeout))
	return s.conn.WriteMessage(websocket.TextMessage, data)
}

type authCommand struct {
	Command         string `json:"command"`
	Username        string `json:"username,omitempty"`
	ExtensionNumber string `json:"extension_number,omitempty"`
	Password        string `json:"password"`
	Domain          string `json:"domain,omitempty"`
}

func (s *session) auth(ctx context.Context) error {
	cfg := &s.c.cfg
	fail := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &Error{Stage: StageAuth, PBXError: s.c.redact(closeText(err)), Err: err}
	}
	if err := s.write(authCommand{
		Command:         "auth",
		Username:        cfg.Username,
		ExtensionNumber: cfg.ExtensionNumber,
		Password:        cfg.Password,
		Domain:          cfg.Domain,
	}); err != nil {
		return fail(fmt.Errorf("sending auth: %w", err))
	}
	timer := time.NewTimer(cfg.HandshakeTimeout)
	defer timer.Stop()
	for {
		f, timeout, err := s.next(ctx, timer.C)
		switch {
		case timeout:
			return fail(fmt.Errorf("no auth reply within %s", cfg.HandshakeTimeout))
		case err != nil:
			return fail(fmt.Errorf("waiting for the auth reply: %w", err))
		case f.reply == nil || f.reply.Command != "auth":
			s.c.log.Debug("frame before the auth reply ignored", "frame", describe(f))
			continue
		case f.reply.OK():
			return nil
		}
		text := s.c.redact(f.reply.Error)
		if text == "" {
			text = fmt.Sprintf("status %d", f.reply.Status)
		}
		return &Error{Stage: StageAuth, PBXError: text, Err: fmt.Errorf("the PBX refused authentication: %s", text)}
	}
}

// closeText is the reason a PBX gave in its close frame, if it sent one:
// a PBX may refuse a command by closing the session with the reason.
func closeText(err error) string {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Text
	}
	return ""
}

// redact removes the password from text the PBX sent back, in case a PBX
// ever echoes it: the password must never reach a log or an error.
func (c *Client) redact(text string) string {
	if c.cfg.Password == "" {
		return text
	}
	return strings.ReplaceAll(text, c.cfg.Password, "<redacted>")
}

func describe(f frame) string {
	if f.ev != nil {
		return "event " + f.ev.Head().EventType
	}
	if f.reply != nil {
		return "reply to " + f.reply.Command
	}
	return "nothing"
}

// maxEarlyEvents and maxEarlyBytes bound the events held while waiting
// for subscribe replies; a PBX that streams this much has accepted
// something. The byte bound keeps a PBX sending large frames from making
// the client hold thousands of them.
const (
	maxEarlyEvents = 4096
	maxEarlyBytes  = 64 << 20
)

type subscribeCommand struct {
	Command    string   `json:"command"`
	Topics     []string `json:"topics"`
	Tenants    []string `json:"tenants,omitempty"`
	Queues     []string `json:"queues,omitempty"`
	Extensions []string `json:"extensions,omitempty"`
}

// subscribeAll sends the mode's subscriptions and waits until each has an
// outcome. The reply to subscribe is undocumented: a reply decides its
// subscription; without one, the first event (from a PBX that has replied
// to nothing) or SubscribeTimeout means accepted.
func (s *session) subscribeAll(ctx context.Context) error {
	c := s.c
	cfg := &c.cfg
	var err error
	if c.global {
		for _, t := range []string{TopicGlobalQueueEvents, TopicGlobalQueueManagement, TopicGlobalExtensionEvents, TopicGlobalExtensionManagement, TopicGlobalCDREvents} {
			if err == nil {
				err = s.subscribe(&subscription{topic: t}, subscribeCommand{Tenants: cfg.Tenants})
			}
		}
	} else {
		err = s.subscribe(&subscription{topic: TopicQueueManagementEvents}, subscribeCommand{})
		if err == nil {
			err = s.subscribe(&subscription{topic: TopicCDREvents}, subscribeCommand{})
		}
		if err == nil && len(cfg.Extensions) > 0 {
			err = s.subscribe(&subscription{topic: TopicExtensionEvents}, subscribeCommand{Extensions: cfg.Extensions})
		}
		for _, q := range cfg.Queues {
			if err == nil {
				err = s.subscribeQueue(q)
			}
		}
	}
	fail := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &Error{Stage: StageSubscribe, PBXError: c.redact(closeText(err)), Err: err}
	}
	if err != nil {
		return fail(fmt.Errorf("sending subscribe: %w", err))
	}

	timer := time.NewTimer(cfg.SubscribeTimeout)
	defer timer.Stop()
	for !s.decided() {
		f, timeout, err := s.next(ctx, timer.C)
		switch {
		case timeout:
			c.log.Debug("no reply to subscribe, assuming accepted", "timeout", cfg.SubscribeTimeout)
			s.assumeAccepted()
		case err != nil:
			return fail(fmt.Errorf("waiting for subscribe replies: %w", err))
		case f.reply != nil:
			s.handleReply(f.reply)
		default:
			// Events flow. A PBX that has not replied to any subscribe by
			// now does not reply; one that did replies to each, in order,
			// so wait for the rest (the PBX pushes each topic's snapshot
			// right after its reply), holding the events for SessionUp.
			s.early = append(s.early, f.ev)
			s.earlyLen += f.size
			if !s.sawReply || len(s.early) >= maxEarlyEvents || s.earlyLen >= c.maxEarlyBytes {
				s.assumeAccepted()
			}
		}
	}
	var refusals []string
	for _, sub := range s.subs {
		if sub.ok {
			s.up = true
			return nil
		}
		refusals = append(refusals, sub.err)
	}
	text := strings.Join(refusals, "; ")
	return &Error{Stage: StageSubscribe, PBXError: text, Err: fmt.Errorf("the PBX refused every subscription: %s", text)}
}

func (s *session) subscribe(sub *subscription, cmd subscribeCommand) error {
	cmd.Command = "subscribe"
	cmd.Topics = []string{sub.topic}
	if err := s.write(cmd); err != nil {
		return err
	}
	if s.up {
		// Optimistic after the session is up: a refusal flips it back.
		sub.decided, sub.ok = true, true
	}
	s.subs = append(s.subs, sub)
	if !s.up || s.sawReply {
		// A PBX that never replied to a subscribe does not reply: queueing
		// more would only grow the queue with every learnt queue.
		s.pending = append(s.pending, sub)
	}
	return nil
}

func (s *session) subscribeQueue(q string) error {
	sub := &subscription{topic: TopicQueueEvents, queue: q}
	if err := s.subscribe(sub, subscribeCommand{Queues: []string{q}}); err != nil {
		return err
	}
	s.queues[q] = sub
	return nil
}

func (s *session) unsubscribeQueue(q string) error {
	sub := s.queues[q]
	delete(s.queues, q)
	sub.removed = true
	s.subs = slices.DeleteFunc(s.subs, func(x *subscription) bool { return x == sub })
	return s.write(subscribeCommand{Command: "unsubscribe", Topics: []string{TopicQueueEvents}, Queues: []string{q}})
}

func (s *session) decided() bool {
	for _, sub := range s.subs {
		if !sub.decided {
			return false
		}
	}
	return true
}

func (s *session) assumeAccepted() {
	for _, sub := range s.subs {
		if !sub.decided {
			sub.decided, sub.ok = true, true
		}
	}
}

// handleReply decides the subscriptions a subscribe reply is about (see
// replied). Anything else is logged and otherwise ignored: the PBX's
// replies are undocumented, and an unexpected one must never end a session.
func (s *session) handleReply(r *Reply) {
	c := s.c
	var subs []*subscription
	if r.Command == "subscribe" {
		subs = s.replied(r)
	}
	if len(subs) == 0 {
		c.log.Debug("reply from the PBX ignored", "command", r.Command, "id", r.ID, "status", r.Status, "error", c.redact(r.Error), "topics", r.Topics)
		return
	}
	s.sawReply = true
	for _, sub := range subs {
		s.decide(sub, r)
	}
	if s.up {
		c.setSubscriptions(s.topics())
	}
}

// replied takes from pending the subscriptions a subscribe reply answers.
// Requests carry no id, so the reply cannot say which command it answers;
// in order of trust:
//   - a reply that names topics answers the oldest waiting subscription of
//     each, whatever order the PBX replies in;
//   - a refusal whose text names a waiting topic answers that one, for a
//     PBX that replies to refusals only;
//   - any other reply answers the oldest waiting subscription, the order
//     a PBX that replies to every command in turn keeps.
func (s *session) replied(r *Reply) []*subscription {
	var picked []int
	for _, t := range r.Topics {
		if i := slices.IndexFunc(s.pending, func(sub *subscription) bool { return sub.topic == t }); i >= 0 && !slices.Contains(picked, i) {
			picked = append(picked, i)
		}
	}
	if len(r.Topics) == 0 && r.Error != "" {
		if i := slices.IndexFunc(s.pending, func(sub *subscription) bool { return namesTopic(r.Error, sub.topic) }); i >= 0 {
			picked = append(picked, i)
		}
	}
	if len(r.Topics) == 0 && len(picked) == 0 && len(s.pending) > 0 {
		picked = append(picked, 0)
	}
	var subs []*subscription
	for _, i := range picked {
		subs = append(subs, s.pending[i])
	}
	s.pending = slices.DeleteFunc(s.pending, func(sub *subscription) bool { return slices.Contains(subs, sub) })
	return subs
}

// namesTopic reports whether text holds topic as a word of its own:
// "queue_events" is not named by "global_queue_events".
func namesTopic(text, topic string) bool {
	word := func(c byte) bool {
		return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
	}
	for i := 0; ; {
		j := strings.Index(text[i:], topic)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(topic)
		if (start == 0 || !word(text[start-1])) && (end == len(text) || !word(text[end])) {
			return true
		}
		i = start + 1
	}
}

// decide records the PBX's answer to one subscription.
func (s *session) decide(sub *subscription, r *Reply) {
	c := s.c
	sub.decided, sub.replied = true, true
	sub.ok = r.OK()
	if sub.ok {
		sub.err = ""
		delete(c.lastRefusal, sub.key())
		c.log.Debug("subscription accepted", "topic", sub.topic, "queue", sub.queue)
	} else {
		sub.err = c.redact(r.Error)
		if sub.err == "" {
			sub.err = fmt.Sprintf("status %d", r.Status)
		}
		level := slog.LevelWarn
		if c.lastRefusal[sub.key()] == sub.err {
			level = slog.LevelDebug
		}
		c.lastRefusal[sub.key()] = sub.err
		c.log.Log(context.Background(), level, "the PBX refused a subscription", "topic", sub.topic, "queue", sub.queue, "error", sub.err)
	}
}

// topics is each topic's outcome: accepted when any of its subscriptions
// was (queue_events has one per queue).
func (s *session) topics() map[string]bool {
	m := map[string]bool{}
	for _, sub := range s.subs {
		if sub.removed || !sub.decided {
			continue
		}
		m[sub.topic] = m[sub.topic] || sub.ok
	}
	return m
}

// serve runs an up session: it delivers the events read while subscribing,
// then every frame, until the connection fails, ctx is done or stop fires.
func (s *session) serve(ctx context.Context, h Handler, stop <-chan time.Time) error {
	early := s.early
	s.early, s.earlyLen = nil, 0
	for _, ev := range early {
		if err := s.handleEvent(ev, h); err != nil {
			return err
		}
	}
	for {
		f, timeout, err := s.next(ctx, stop)
		switch {
		case timeout:
			return nil
		case err != nil:
			if ctx.Err() != nil {
				return err
			}
			return &Error{Stage: StageRead, Err: err}
		case f.reply != nil:
			s.handleReply(f.reply)
		default:
			if err := s.handleEvent(f.ev, h); err != nil {
				return err
			}
		}
	}
}

// maxLearntQueues bounds the queues one session subscribes on its own, so
// a PBX announcing queue after queue cannot grow the client without end.
const maxLearntQueues = 10000

// handleEvent learns queues when the Config names none, then hands the
// event on and counts it.
func (s *session) handleEvent(ev Event, h Handler) error {
	c := s.c
	if tenant := ev.Head().TenantID; c.global && tenant != "" && !c.tenants[tenant] {
		// A PBX that ignores the tenants filter would otherwise make an
		// exporter sharded by tenant report another shard's tenants twice.
		c.countOtherTenant()
		c.log.Debug("event for a tenant not subscribed dropped", "event_type", ev.Head().EventType, "tenant_id", tenant)
		return nil
	}
	if qm, ok := ev.(*QueueManagement); ok && s.c.learn && qm.QueueNumber != "" {
		var err error
		switch _, known := s.queues[qm.QueueNumber]; {
		case qm.EventType == TypeQueueDestroy && known:
			err = s.unsubscribeQueue(qm.QueueNumber)
			s.c.setSubscriptions(s.topics())
		case qm.EventType != TypeQueueDestroy && !known && len(s.queues) < maxLearntQueues:
			err = s.subscribeQueue(qm.QueueNumber)
			s.c.setSubscriptions(s.topics())
		case qm.EventType != TypeQueueDestroy && !known:
			s.c.log.Debug("queue not subscribed: too many queues", "queue", qm.QueueNumber, "limit", maxLearntQueues)
		}
		if err != nil {
			return &Error{Stage: StageRead, Err: fmt.Errorf("subscribing queue %s: %w", qm.QueueNumber, err)}
		}
	}
	h.HandleEvent(ev)
	// Counted once the Handler has it, so that Stats.Events never runs
	// ahead of what the Handler applied.
	c.countEvent(ev, ev.Head().Received)
	return nil
}
