package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/portsip-exporter/portsip_exporter/capture"
	"github.com/portsip-exporter/portsip_exporter/collector"
	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// replayCmd feeds a capture through the exporter's own decoder and
// collector, with the recorded receive times as the clock.
type replayCmd struct {
	File      string          `arg:"" name:"file" placeholder:"FILE" help:"Capture to replay (written by record or check --record.file; gzip-compressed too)."`
	Web       webConfig       `embed:"" prefix:"web."`
	Collector collectorConfig `embed:"" prefix:"collector."`
	Speed     float64         `name:"replay.speed" default:"0" help:"Pace of the replay: 0 as fast as possible, 1 as recorded, 2 twice as fast, ..."`
	Print     bool            `name:"print" help:"Print the metrics as they are after the last frame to stdout and exit, instead of serving them."`
}

func (c *replayCmd) Validate() error {
	if c.Speed < 0 || math.IsNaN(c.Speed) || math.IsInf(c.Speed, 0) {
		return invalid("--replay.speed: must be 0 (as fast as possible) or a positive factor, got %v", c.Speed)
	}
	if c.File == "" {
		return invalid("replay needs the capture to replay: %s replay FILE", programName)
	}
	r, err := capture.Open(c.File)
	if err != nil {
		return invalid("replay: %s", pathError(err))
	}
	defer r.Close()
	if _, err := wsi.NewReplay(replayClientConfig(r.Header())); err != nil {
		return invalid("replay: %s: the header names no client this exporter can replay: %v", c.File, err)
	}
	return nil
}

// replayClientConfig is the recorded client's mode, from a capture's
// header: what decides the subscriptions and the tenant filter.
func replayClientConfig(h capture.Header) wsi.Config {
	cfg := wsi.Config{Tenants: h.Tenants, Queues: h.Queues, Extensions: h.Extensions}
	if h.Mode == capture.ModeTenant {
		cfg.Domain, cfg.Tenants = "replay.invalid", nil // any domain means tenant mode
	}
	return cfg
}

// run replays the capture: with --print it writes the metrics after the
// last frame to stdout; else it serves them as the exporter does, through
// the replay and after it, until ctx is done.
func (c *replayCmd) run(ctx context.Context, logger *slog.Logger, stdout io.Writer) error {
	r, err := capture.Open(c.File)
	if err != nil {
		return err
	}
	defer r.Close()
	rp, err := newReplayer(r, c.Speed, logger)
	if err != nil {
		return err
	}
	cfg := c.Collector.config()
	cfg.Now = rp.clock.now
	col := collector.New(cfg, rp)
	h := r.Header()
	logger.Info("replaying "+c.File, "recorded", h.Time, "source", h.Source, "by", h.Exporter, "mode", h.Mode,
		"tenants", h.Tenants, "anonymized", h.Anonymized, "speed", c.Speed)

	if c.Print {
		if err := rp.run(ctx, col); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return errInterrupted
		}
		reg := prometheus.NewRegistry()
		if err := reg.Register(col); err != nil {
			return err
		}
		return writeExposition(stdout, reg)
	}
	var replayErr error
	err = serve(ctx, logger, col, c.Web, func(addrs []net.Addr) {
		logger.Info("serving the replay at " + metricsURL(addrs[0], c.Web))
	}, func(ctx context.Context) {
		switch replayErr = rp.run(ctx, col); {
		case replayErr != nil:
			logger.Error("the replay stopped; serving the metrics as they were then (Ctrl-C to stop)", "err", replayErr)
		case ctx.Err() == nil:
			logger.Info("end of the capture: serving the metrics as they were at its end (Ctrl-C to stop)")
		}
	})
	return errors.Join(err, replayErr)
}

// errInterrupted ends a --print stopped before the end of the capture.
var errInterrupted = errors.New("interrupted before the end of the capture")

// writeExposition writes what reg gathers in the text format.
func writeExposition(w io.Writer, reg prometheus.Gatherer) error {
	mfs, err := reg.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}

// replayer feeds a capture to a replay client. It is the collector's
// StatsSource: the client's counts plus the frames the capture says were
// not recorded.
type replayer struct {
	r      *capture.Reader
	client *wsi.Client
	clock  *replayClock
	speed  float64
	log    *slog.Logger

	mu      sync.Mutex
	skipped map[string]uint64 // by reason
	err     error             // the file's, not a line's

	// read by run only
	bad      int // lines skipped
	complete bool
	unknown  bool
}

func newReplayer(r *capture.Reader, speed float64, logger *slog.Logger) (*replayer, error) {
	h := r.Header()
	rp := &replayer{r: r, clock: newReplayClock(h.Time, speed), speed: speed, log: logger, skipped: map[string]uint64{}}
	cfg := replayClientConfig(h)
	cfg.Tap = rp.clock.tap
	client, err := wsi.NewReplay(cfg)
	if err != nil {
		return nil, err
	}
	rp.client = client
	return rp, nil
}

// Stats is the client's, with the capture's skipped frames added to
// the invalid messages they were counted as live.
func (rp *replayer) Stats() wsi.Stats {
	st := rp.client.Stats()
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if st.InvalidMessages == nil {
		st.InvalidMessages = map[string]uint64{}
	}
	for reason, n := range rp.skipped {
		st.InvalidMessages[reason] += n
	}
	return st
}

// maxBadLines are reported one by one; the rest are counted.
const maxBadLines = 10

// run feeds the whole capture (or until ctx is done) to h.
func (rp *replayer) run(ctx context.Context, h wsi.Handler) error {
	err := rp.client.Feed(ctx, rp.records(ctx), h)
	rp.clock.finish()
	rp.mu.Lock()
	err = errors.Join(err, rp.err)
	rp.mu.Unlock()
	if err != nil {
		return err
	}
	if rp.bad > maxBadLines {
		rp.log.Warn(fmt.Sprintf("%d more lines of the capture were skipped", rp.bad-maxBadLines))
	}
	if !rp.complete && ctx.Err() == nil {
		rp.log.Warn("the capture has no end line: the recording was cut short (killed, or it crashed); everything up to its last whole line was replayed")
	}
	return nil
}

// records reads the capture, paced by the speed, skipping bad lines.
// Feed reads it from its own goroutine.
func (rp *replayer) records(ctx context.Context) func(yield func(wsi.Record) bool) {
	return func(yield func(wsi.Record) bool) {
		var first time.Time
		var wallStart time.Time
		for ctx.Err() == nil {
			e, err := rp.r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			var le *capture.LineError
			if errors.As(err, &le) {
				rp.bad++
				if rp.bad <= maxBadLines {
					rp.log.Warn("capture line skipped", "line", le.Line, "err", le.Err)
				}
				continue
			}
			if err != nil {
				rp.mu.Lock()
				rp.err = fmt.Errorf("reading the capture: %w", err)
				rp.mu.Unlock()
				return
			}
			rp.clock.saw(e.Time)
			switch e.Kind {
			case capture.KindSkipped:
				rp.mu.Lock()
				rp.skipped[e.Skipped] += e.Count
				rp.mu.Unlock()
				continue
			case capture.KindEnd:
				rp.complete = true
				continue
			case capture.KindUnknown:
				if !rp.unknown {
					rp.log.Info("lines of a kind this version does not know are skipped", "line", e.Line)
				}
				rp.unknown = true
				continue
			}
			if rp.speed > 0 {
				if first.IsZero() {
					first, wallStart = e.Time, rp.clock.wall()
					rp.clock.start(first, wallStart)
				}
				due := wallStart.Add(time.Duration(float64(e.Time.Sub(first)) / rp.speed))
				rp.clock.next(e.Time)
				if !sleepUntil(ctx, due) {
					return
				}
			}
			r := e.Record
			switch {
			case r.Session == wsi.RecordDown && r.Stage != "":
				rp.clock.down(r.Time)
				rp.log.Info("the recorded session ended", "at", r.Time, "stage", r.Stage, "reason", r.Reason)
			case r.Session == wsi.RecordUp:
				rp.log.Info("the recorded session came up", "at", r.Time)
			}
			if !yield(r) {
				return
			}
		}
	}
}

// sleepUntil waits until t or ctx is done; false if ctx is.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// replayClock is the collector's clock in a replay: the recorded receive
// time of what the client handles. The client's Tap tells it, in the
// order the session handles frames and boundaries: a frame's time is its
// record's; an attempt's end is the time of its recorded down line (the
// Tap of a replay sees the boundaries at the time they are replayed, so
// the recorded ones are kept here, in order). With a speed, time flows
// between frames as it did, never past the next record.
type replayClock struct {
	mu        sync.Mutex
	at        time.Time   // recorded time of what was handled last
	downs     []time.Time // times of the recorded down lines with a stage, in order
	nDown     int         // down records the Tap has seen
	last      time.Time   // the latest time in the capture read so far
	done      bool
	speed     float64
	first     time.Time // the first record's time and when it was due, with a speed
	wallStart time.Time
	limit     time.Time // with a speed: the next record's time
	wall      func() time.Time
}

func newReplayClock(start time.Time, speed float64) *replayClock {
	return &replayClock{at: start, speed: speed, wall: time.Now}
}

func (c *replayClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.speed == 0 || c.done || c.wallStart.IsZero() {
		return c.at
	}
	t := c.first.Add(time.Duration(float64(c.wall().Sub(c.wallStart)) * c.speed))
	if t.After(c.limit) {
		t = c.limit
	}
	if t.Before(c.at) {
		t = c.at
	}
	return t
}

// tap is the replay client's Tap.
func (c *replayClock) tap(r wsi.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case r.Session == "":
		c.at = r.Time
	case r.Session == wsi.RecordDown && r.Stage != "":
		// Every recorded down line with a stage ends one replayed attempt,
		// in order: a refused login ends it on the refusal, read just
		// before.
		if c.nDown < len(c.downs) {
			c.at = c.downs[c.nDown]
		}
		c.nDown++
	}
}

// down notes the time of a recorded down line with a stage, before it is
// fed.
func (c *replayClock) down(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.downs = append(c.downs, t)
	if n := c.nDown; n > 0 && n <= len(c.downs) {
		// Forget those handled; keep the slice short on a long capture.
		c.downs, c.nDown = c.downs[n:], 0
	}
}

// saw notes a time read from the capture.
func (c *replayClock) saw(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.last) {
		c.last = t
	}
}

func (c *replayClock) start(first, wall time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.first, c.wallStart = first, wall
}

func (c *replayClock) next(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.limit = t
}

// finish stops the clock at the end of the recording: its last line.
func (c *replayClock) finish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	if c.last.After(c.at) {
		c.at = c.last
	}
}
