package wsi

import (
	"context"
	"errors"
	"iter"
	"strings"
	"time"
)

// Record is one thing a session handled: a text frame as read, or a
// session boundary. Config.Tap sees them live; Feed takes them back.
type Record struct {
	Time time.Time // when the frame was read, or the boundary passed
	// Frame is a text frame, verbatim (a Tap may keep it). Nothing the
	// client sends is ever in a Record, so neither is the password.
	Frame []byte
	// Session is "" for a frame, else RecordUp or RecordDown.
	Session string
	Topics  map[string]bool // up: each topic's outcome
	// Down: how the attempt ended. Every attempt ends with one, those
	// that failed before any frame included. Stage is the Stage* it failed
	// at, "" when it was stopped (Run's context, Check's listen window);
	// Reason is the error's text, redacted.
	Stage, Reason string
}

// Session boundaries in a Record.
const (
	RecordUp   = "up"
	RecordDown = "down"
)

func (c *Client) tap(r Record) {
	if c.cfg.Tap != nil {
		c.cfg.Tap(r)
	}
}

func (c *Client) tapDown(err error) {
	r := Record{Time: time.Now(), Session: RecordDown}
	var e *Error
	if errors.As(err, &e) {
		r.Stage, err = e.Stage, e.Err
	}
	if err != nil {
		r.Reason = c.red.String(err.Error())
	}
	c.tap(r)
}

// errFeedEnd ends a fed session where the recording ends or was stopped:
// the session stays as it was, up included.
var errFeedEnd = errors.New("end of the recording")

// NewReplay returns a Client for Feed that never connects. Of cfg, only
// the mode (Domain: any value means tenant mode; Tenants, Queues,
// Extensions), Logger and Tap are used.
func NewReplay(cfg Config) (*Client, error) {
	cfg.URL, cfg.Username, cfg.ExtensionNumber, cfg.Password, cfg.PasswordFile = "ws://replay.invalid/wsi", "replay", "", "-", ""
	cfg.TLS = TLSConfig{}
	return New(cfg)
}

// Feed runs recorded Records through exactly the path a live frame takes
// after the socket; an up record stands for a subscribe timeout, a down
// record for the end of an attempt, and an event's Received is its
// Record's Time, so that Stats count as they did live. Feed returns when
// records run out or ctx is done, leaving the last session as it was.
// records is read from another goroutine; it should stop when ctx is done.
func (c *Client) Feed(ctx context.Context, records iter.Seq[Record], h Handler) error {
	in, done, fed := make(chan frame, 16), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(fed)
		defer close(in)
		for r := range records {
			f := frame{up: r.Session == RecordUp}
			switch {
			case r.Session == RecordDown:
				f.err = errFeedEnd
				if r.Stage != "" {
					f.err = c.fail(r.Stage, KindLost, errors.New(strings.TrimPrefix(r.Reason, r.Stage+": ")))
				}
			case !f.up:
				if !c.deliver(in, done, r.Frame, r.Time) {
					return
				}
				continue
			}
			if !send(in, done, f) {
				return
			}
		}
	}()
	defer func() { close(done); <-fed }()
	for {
		var first frame
		ok := false
		select {
		case <-ctx.Done():
		case first, ok = <-in:
		}
		if !ok {
			return nil
		}
		s := c.newSession(nil, in, done)
		s.first, s.readErr = &first, errFeedEnd
		if _, _, err := c.attempt(ctx, h, 0, s); ctx.Err() != nil || s.ended || errors.Is(err, errFeedEnd) {
			continue
		}
		// An attempt that ended on what it read (a refusal) is followed
		// by its recorded end: not a second failure.
		for f := range in {
			if f.err != nil {
				break
			}
		}
	}
}
