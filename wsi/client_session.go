package wsi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// frame is one object of a text frame (an event or a reply) on its way
// from the reader, or Feed, to the session goroutine; or, alone, raw: a
// whole frame for the Tap, ahead of its objects; or err or up: a
// recording's session boundaries.
type frame struct {
	ev    Event
	reply *Reply
	size  int // bytes of the frame this object took
	raw   []byte
	at    time.Time // when the frame was read
	err   error
	up    bool
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
}

// session is one connection to the PBX (conn.go), or one recorded attempt
// (Feed: conn is nil). The goroutine that opened it runs the protocol
// (ARCHITECTURE.md, The WSI session).
type session struct {
	c    *Client
	conn *websocket.Conn
	up   bool

	frames  chan frame
	done    chan struct{} // closed by close(): stops the pinger and the reader
	readErr error         // set by the reader before it closes frames
	first   *frame        // Feed: the frame that started this attempt
	ended   bool          // Feed: the attempt's recorded end was read
	wg      sync.WaitGroup

	subs     []*subscription
	pending  []*subscription // sent and not yet replied, in order: replies come in order
	sawReply bool            // the PBX replied to a subscribe in this session
	queues   map[string]*subscription
	early    []Event // events read while subscribing, delivered after SessionUp
	earlyLen int     // bytes of the frames held in early

	// The reader's own: its buffer, and whether a message is half read.
	buf       bytes.Buffer
	inMessage bool
}

func (c *Client) newSession(conn *websocket.Conn, frames chan frame, done chan struct{}) *session {
	return &session{c: c, conn: conn, frames: frames, done: done, queues: map[string]*subscription{}}
}

// deliver sends a text frame read at `at` to out, whole for the Tap (a
// clone: the reader's buffer is reused), then each of its objects (see
// decodeNext); false once done is closed. The live reader and Feed both
// read through here.
func (c *Client) deliver(out chan<- frame, done <-chan struct{}, data []byte, at time.Time) bool {
	if c.cfg.Tap != nil && !send(out, done, frame{raw: bytes.Clone(data), at: at}) {
		return false
	}
	for more := true; more; more = len(data) > 0 {
		f := frame{size: len(data), at: at}
		var err error
		f.ev, f.reply, data, err = decodeNext(data)
		f.size -= len(data)
		if err != nil {
			reason := err.(*DecodeError).Reason
			c.count(c.stats.InvalidMessages, reason)
			c.log.Debug("invalid frame skipped", "reason", reason, "err", c.text(err.Error()))
			continue
		}
		if f.ev != nil {
			f.ev.Head().Received = at
		}
		if !send(out, done, f) {
			return false
		}
	}
	return true
}

// send sends f to out unless done is closed first.
func send(out chan<- frame, done <-chan struct{}, f frame) bool {
	select {
	case out <- f:
		return true
	case <-done:
		return false
	}
}

// next waits for the next event, reply or recorded mark, until the timer
// fires (timeout) or ctx is done. It hands every frame to the Tap as the
// session takes it, so that a recording keeps the session's order.
func (s *session) next(ctx context.Context, timer <-chan time.Time) (f frame, timeout bool, err error) {
	for {
		ok := true
		if s.first != nil {
			f, s.first = *s.first, nil
		} else {
			select {
			case <-ctx.Done():
				return frame{}, false, ctx.Err()
			case <-timer:
				return frame{}, true, nil
			case f, ok = <-s.frames:
			}
		}
		switch {
		case !ok:
			return frame{}, false, s.readErr
		case f.raw != nil:
			s.c.tap(Record{Time: f.at, Frame: f.raw})
		case f.err != nil:
			s.ended = true
			return frame{}, false, f.err
		}
		if f.ev != nil || f.reply != nil || f.up {
			return f, false, nil
		}
	}
}

// after is a timer of d; a fed session's timers never fire, its
// recording says when the live ones did.
func (s *session) after(d time.Duration) <-chan time.Time {
	if s.conn == nil {
		return nil
	}
	return time.After(d)
}

func (s *session) write(v any) error {
	if s.conn == nil {
		return nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.c.cfg.HandshakeTimeout))
	return s.conn.WriteMessage(websocket.TextMessage, data)
}

// broke is the error of a session that ended while waiting for the PBX:
// a close frame that refuses the command waited for is of kind refusal,
// anything else KindLost. A recorded end (Feed) is kept as it was.
func (s *session) broke(ctx context.Context, stage string, refusal Kind, err error) error {
	// A write fails this way once the reader has answered the PBX's close
	// frame: the PBX's reason is the reader's error.
	for errors.Is(err, websocket.ErrCloseSent) {
		_, _, err = s.next(ctx, nil)
	}
	var e *Error
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &e) || errors.Is(err, errFeedEnd):
		return err
	}
	e = s.c.fail(stage, KindLost, err)
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		e.PBXError = ce.Text
		switch ce.Code {
		case websocket.CloseGoingAway, websocket.CloseAbnormalClosure, websocket.CloseInternalServerErr,
			websocket.CloseServiceRestart, websocket.CloseTryAgainLater, websocket.CloseNoStatusReceived:
		default: // a PBX may refuse by closing with a reason; not to restart or for overload
			e.Kind = refusal
		}
	}
	return e
}

type authCommand struct {
	Command         string `json:"command"`
	Username        string `json:"username,omitempty"`
	ExtensionNumber string `json:"extension_number,omitempty"`
	Password        string `json:"password"`
	Domain          string `json:"domain,omitempty"`
}

func (s *session) auth(ctx context.Context) error {
	c := s.c
	if err := s.write(authCommand{"auth", c.cfg.Username, c.cfg.ExtensionNumber, c.cfg.Password, c.cfg.Domain}); err != nil {
		return s.broke(ctx, StageAuth, KindAuth, fmt.Errorf("sending auth: %w", err))
	}
	timer := s.after(c.cfg.HandshakeTimeout)
	for {
		f, timeout, err := s.next(ctx, timer)
		switch {
		case timeout:
			return c.fail(StageAuth, KindNoAnswer, fmt.Errorf("no auth reply within %s", c.cfg.HandshakeTimeout))
		case err != nil:
			return s.broke(ctx, StageAuth, KindAuth, fmt.Errorf("waiting for the auth reply: %w", err))
		case f.reply == nil || f.reply.Command != "auth":
			continue // a PBX may push before it replies
		case f.reply.OK():
			return nil
		}
		return c.refused(StageAuth, KindAuth, "authentication", c.refusal(f.reply))
	}
}

// refused is the *Error of the PBX refusing what, saying text.
func (c *Client) refused(stage string, kind Kind, what, text string) *Error {
	return &Error{Stage: stage, Kind: kind, PBXError: text, Err: errors.New("the PBX refused " + what + ": " + text), red: c.red}
}

// refusal is the PBX's text for a refused command, made safe to keep.
func (c *Client) refusal(r *Reply) string {
	if t := c.text(r.Error); t != "" {
		return t
	}
	return fmt.Sprintf("status %d", r.Status)
}

// Bounds on what a session holds for a PBX that sends too much
// (ARCHITECTURE.md, The WSI session).
const (
	maxEarlyEvents  = 4096
	maxEarlyBytes   = 64 << 20
	maxPending      = 256
	maxLearntQueues = 10000
	maxQueueNumber  = 64
)

type subscribeCommand struct {
	Command    string   `json:"command"`
	Topics     []string `json:"topics"`
	Tenants    []string `json:"tenants,omitempty"`
	Queues     []string `json:"queues,omitempty"`
	Extensions []string `json:"extensions,omitempty"`
}

// subscribeAll sends the mode's subscriptions and waits until each has an
// outcome. The reply to subscribe is undocumented: without one, the first
// event or SubscribeTimeout means accepted (ARCHITECTURE.md, The WSI
// session).
func (s *session) subscribeAll(ctx context.Context) error {
	c := s.c
	for _, t := range c.cfg.topics() {
		queues := []string{""}
		if t == TopicQueueEvents {
			queues = c.cfg.Queues
		}
		for _, q := range queues {
			if err := s.subscribe(t, q); err != nil {
				return s.broke(ctx, StageSubscribe, KindPermission, fmt.Errorf("sending subscribe: %w", err))
			}
		}
	}
	timer := s.after(c.cfg.SubscribeTimeout)
	for !s.decided() {
		f, timeout, err := s.next(ctx, timer)
		switch {
		case timeout || f.up:
			c.log.Debug("no reply to subscribe, assuming accepted", "timeout", c.cfg.SubscribeTimeout)
			s.assumeAccepted()
		case err != nil:
			return s.broke(ctx, StageSubscribe, KindPermission, fmt.Errorf("waiting for subscribe replies: %w", err))
		case f.reply != nil:
			s.handleReply(f.reply)
		default:
			// Events flow: held for SessionUp while a PBX that replied
			// to a subscribe may still reply to the others.
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
	return c.refused(StageSubscribe, KindPermission, "every subscription", clip(strings.Join(refusals, "; "), maxText))
}

// subscribe sends one subscription: a topic, or queue_events for one
// queue.
func (s *session) subscribe(topic, queue string) error {
	cmd, sub := subscribeCommand{Command: "subscribe", Topics: []string{topic}}, &subscription{topic: topic, queue: queue}
	switch {
	case s.c.global:
		cmd.Tenants = s.c.cfg.Tenants
	case topic == TopicExtensionEvents:
		cmd.Extensions = s.c.cfg.Extensions
	case queue != "":
		cmd.Queues, s.queues[queue] = []string{queue}, sub
	}
	if err := s.write(cmd); err != nil {
		return err
	}
	if s.up {
		// Optimistic after the session is up: a refusal flips it back.
		sub.decided, sub.ok = true, true
	}
	s.subs = append(s.subs, sub)
	// Only a PBX that replies gets its replies awaited, and at most
	// maxPending: the oldest go.
	if !s.up || s.sawReply {
		if len(s.pending) >= maxPending {
			s.pending = slices.Delete(s.pending, 0, 1)
		}
		s.pending = append(s.pending, sub)
	}
	return nil
}

func (s *session) unsubscribeQueue(q string) error {
	sub := s.queues[q]
	delete(s.queues, q)
	delete(s.c.refusals, sub.topic+"/"+q)
	isSub := func(x *subscription) bool { return x == sub }
	s.subs = slices.DeleteFunc(s.subs, isSub)
	s.pending = slices.DeleteFunc(s.pending, isSub)
	return s.write(subscribeCommand{Command: "unsubscribe", Topics: []string{TopicQueueEvents}, Queues: []string{q}})
}

func (s *session) decided() bool {
	return !slices.ContainsFunc(s.subs, func(sub *subscription) bool { return !sub.decided })
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
		c.log.Debug("reply from the PBX ignored", "command", c.text(r.Command), "id", c.text(r.ID), "status", r.Status,
			"error", c.text(r.Error), "topics", c.text(strings.Join(r.Topics, ",")))
		return
	}
	s.sawReply = true
	for _, sub := range subs {
		sub.decided, sub.replied, sub.ok = true, true, r.OK()
		sub.err = ""
		if !sub.ok {
			sub.err = c.refusal(r)
			c.logRefusal(sub)
		} else {
			delete(c.refusals, sub.topic+"/"+sub.queue)
		}
	}
	s.publish()
}

// replied takes from pending the subscriptions a subscribe reply answers:
// the topics it names, else the topic its error names, else the oldest
// (ARCHITECTURE.md, The WSI session).
func (s *session) replied(r *Reply) (subs []*subscription) {
	take := func(match func(*subscription) bool) {
		if i := slices.IndexFunc(s.pending, match); i >= 0 {
			subs, s.pending = append(subs, s.pending[i]), slices.Delete(s.pending, i, i+1)
		}
	}
	for i, t := range r.Topics {
		if !slices.Contains(r.Topics[:i], t) {
			take(func(sub *subscription) bool { return sub.topic == t })
		}
	}
	if len(r.Topics) == 0 && r.Error != "" {
		// As a word of its own: "global_queue_events" names not queue_events.
		take(func(sub *subscription) bool { return regexp.MustCompile(`\b` + sub.topic + `\b`).MatchString(r.Error) })
	}
	if len(r.Topics) == 0 && len(subs) == 0 {
		take(func(*subscription) bool { return true })
	}
	return subs
}

// publish makes an up session's subscriptions the Stats'.
func (s *session) publish() {
	if s.up {
		s.c.publish(true, s.topics())
	}
}

// topics is each topic's outcome: accepted when any of its subscriptions
// was (queue_events has one per queue).
func (s *session) topics() map[string]bool {
	m := map[string]bool{}
	for _, sub := range s.subs {
		if sub.decided {
			m[sub.topic] = m[sub.topic] || sub.ok
		}
	}
	return m
}

// errStopped ends a session whose listen window is over (Check).
var errStopped = errors.New("stopped")

// serve runs an up session: it delivers the events read while subscribing,
// then every frame, until the connection fails, ctx is done or listen
// (when not 0) has passed.
func (s *session) serve(ctx context.Context, h Handler, listen time.Duration) error {
	early := s.early
	s.early, s.earlyLen = nil, 0
	for _, ev := range early {
		if err := s.handleEvent(ev, h); err != nil {
			return err
		}
	}
	var timer <-chan time.Time
	if listen > 0 {
		timer = time.After(listen)
	}
	for {
		f, timeout, err := s.next(ctx, timer)
		switch {
		case timeout:
			return errStopped
		case err != nil:
			return s.broke(ctx, StageRead, KindLost, err)
		case f.reply != nil:
			s.handleReply(f.reply)
		case f.ev != nil:
			if err := s.handleEvent(f.ev, h); err != nil {
				return err
			}
		}
	}
}

// handleEvent drops the events of tenants not watched, learns queues when
// the Config names none, then hands the event on and counts it.
func (s *session) handleEvent(ev Event, h Handler) error {
	c := s.c
	head := ev.Head()
	if reason := c.ignored(head.TenantID); reason != "" {
		// A PBX that ignores the tenants filter would otherwise make an
		// exporter sharded by tenant report another shard's tenants twice.
		c.count(c.stats.Ignored, reason)
		c.log.Debug("event ignored", "reason", reason, "event_type", clip(head.EventType, 64), "tenant_id", clip(head.TenantID, 64))
		return nil
	}
	if qm, ok := ev.(*QueueManagement); ok && c.learn && qm.QueueNumber != "" {
		var err error
		switch _, known := s.queues[qm.QueueNumber]; {
		case qm.EventType == TypeQueueDestroy && known:
			err = s.unsubscribeQueue(qm.QueueNumber)
		case known || qm.EventType == TypeQueueDestroy:
		case len(s.queues) >= maxLearntQueues || len(qm.QueueNumber) > maxQueueNumber:
			c.log.Debug("queue not subscribed: too many queues, or too long a number", "queue", clip(qm.QueueNumber, maxQueueNumber))
		default:
			err = s.subscribe(TopicQueueEvents, qm.QueueNumber)
		}
		s.publish()
		if err != nil {
			return c.fail(StageRead, KindLost, fmt.Errorf("subscribing queue %s: %w", c.text(qm.QueueNumber), err))
		}
	}
	h.HandleEvent(ev)
	// Counted once the Handler has it, so that Stats.Events never runs
	// ahead of what the Handler applied.
	c.countEvent(ev)
	return nil
}

// maxTenantID bounds the logged-in tenant's id (tenant mode).
const maxTenantID = 64

// ignored is why the events of tenant are not applied, or "".
func (c *Client) ignored(tenant string) string {
	switch {
	case tenant == "":
		return IgnoredNoTenant
	case c.global:
		if !c.tenants[tenant] {
			return IgnoredOtherTenant
		}
	case c.tenant == "" && len(tenant) <= maxTenantID:
		c.tenant = tenant
	case tenant != c.tenant:
		return IgnoredOtherTenant
	}
	return ""
}
