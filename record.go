package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/portsip-exporter/portsip_exporter/capture"
	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// recordCmd keeps a session with the PBX as the exporter does and writes
// what it receives to a capture, for replay.
type recordCmd struct {
	WSI      wsiConfig     `embed:"" prefix:"wsi."`
	Capture  captureFlags  `embed:"" prefix:"record."`
	Duration time.Duration `name:"record.duration" default:"0s" help:"Stop after this long; 0 records until SIGINT or SIGTERM."`
}

// captureFlags say where and how a command records what the PBX sends
// (--record.*): record's, and check's.
type captureFlags struct {
	File      string `name:"file" placeholder:"FILE" help:"File to write the capture to (JSON Lines, mode 0600). Required by record."`
	Anonymize bool   `name:"anonymize" help:"Replace the names, numbers and e-mail addresses of callers, callees and users with pseudonyms (the same one for the same input throughout the file)."`
	Force     bool   `name:"force" help:"Overwrite the file if it exists."`
}

func (c *captureFlags) Validate() error {
	if c.File == "" {
		return nil
	}
	fi, err := os.Stat(c.File)
	switch {
	case err == nil && fi.IsDir():
		return invalid("--record.file: %s is a directory", c.File)
	case err == nil && !c.Force:
		return invalid("--record.file: %s exists; choose another name, or add --record.force to overwrite it", c.File)
	case err == nil && !fi.Mode().IsRegular():
		return invalid("--record.file: %s is not a regular file", c.File)
	}
	return nil
}

func (c *recordCmd) Validate() error {
	if c.Capture.File == "" {
		return invalid("--record.file is required: the file to write the capture to")
	}
	if c.Duration < 0 {
		return invalid("--record.duration: must not be negative, got %s", c.Duration)
	}
	return nil
}

// run records until ctx is done or the duration has passed, then prints a
// one-line summary to w.
func (c *recordCmd) run(ctx context.Context, logger *slog.Logger, w io.Writer) error {
	cfg := c.WSI.clientConfig()
	cfg.Logger = logger.With("component", "wsi")
	if c.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Duration)
		defer cancel()
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	rec, err := newRecorder(c.Capture, &cfg, "record", stop)
	if err != nil {
		return err
	}
	client, err := wsi.New(cfg)
	if err != nil {
		rec.close()
		return fmt.Errorf("WSI client: %w", err)
	}
	rec.client = client
	if len(cfg.Password) < 8 {
		logger.Warn("the password is short: record removes it wherever it occurs in a frame, and a short one may also be part of the PBX's data, which then changes too")
	}
	logger.Info("recording the PBX's session", "file", c.Capture.File, "anonymize", c.Capture.Anonymize, "duration", c.Duration)
	started := time.Now()
	// The session is the exporter's: same client, reconnects and
	// subscriptions; nothing is done with the events but count them.
	err = client.Run(ctx, nopHandler{})
	if cerr := rec.close(); cerr != nil {
		return fmt.Errorf("writing %s: %w", c.Capture.File, cerr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(w, recordSummary(c.Capture.File, rec.w.Summary(), client.Stats(), time.Since(started)))
	return nil
}

type nopHandler struct{}

func (nopHandler) SessionUp(wsi.Session) {}
func (nopHandler) HandleEvent(wsi.Event) {}
func (nopHandler) SessionDown(err error) {}

// recorder writes what a client's Tap sees to a capture, with the frames
// the Tap cannot see (binary, oversized) counted from the client's Stats.
type recorder struct {
	w      *capture.Writer
	client *wsi.Client // set once the client exists; the Tap is called after
	seen   map[string]uint64
	stop   func() // stops the client when the file cannot be written
}

// newRecorder creates flags.File and sets cfg.Tap to write to it.
func newRecorder(flags captureFlags, cfg *wsi.Config, source string, stop func()) (*recorder, error) {
	w, err := capture.Create(flags.File, flags.Force, captureHeader(*cfg, source), capture.Options{
		Secrets:   []string{cfg.Password},
		Anonymize: flags.Anonymize,
	})
	if err != nil {
		return nil, fmt.Errorf("--record.file: %w", pathError(err))
	}
	r := &recorder{w: w, seen: map[string]uint64{}, stop: stop}
	cfg.Tap = r.tap
	return r, nil
}

func captureHeader(cfg wsi.Config, source string) capture.Header {
	b := getBuildInfo()
	h := capture.Header{Time: time.Now(), Source: source, Exporter: b.Version + " (" + b.Revision + ")",
		Mode: capture.ModeGlobal, Tenants: wsi.CleanList(cfg.Tenants)}
	if cfg.Domain != "" {
		h.Mode, h.Tenants = capture.ModeTenant, nil
		h.Queues, h.Extensions = wsi.CleanList(cfg.Queues), wsi.CleanList(cfg.Extensions)
	}
	return h
}

func (r *recorder) tap(rec wsi.Record) {
	r.skipped(rec.Time)
	if r.w.Record(rec) != nil {
		r.stop()
	}
}

// skipped writes the binary and oversized frames read since the last
// line, which the Tap never sees.
func (r *recorder) skipped(at time.Time) {
	if r.client == nil {
		return
	}
	st := r.client.Stats()
	for _, reason := range []string{capture.SkippedBinary, capture.SkippedOversized} {
		if n := st.InvalidMessages[reason]; n > r.seen[reason] {
			if r.w.Skipped(at, reason, n-r.seen[reason]) != nil {
				r.stop()
			}
			r.seen[reason] = n
		}
	}
}

func (r *recorder) close() error {
	r.skipped(time.Now())
	return r.w.Close(time.Now())
}

// recordSummary is the line record prints at the end.
func recordSummary(file string, s capture.Summary, st wsi.Stats, d time.Duration) string {
	var types []string
	for _, t := range slices.Sorted(maps.Keys(st.Events)) {
		if st.Events[t] > 0 {
			types = append(types, fmt.Sprintf("%s x%d", t, st.Events[t]))
		}
	}
	events := "no events"
	if len(types) > 0 {
		events = "events: " + strings.Join(types, ", ")
	}
	var notes []string
	for _, r := range slices.Sorted(maps.Keys(st.Ignored)) {
		if st.Ignored[r] > 0 {
			notes = append(notes, fmt.Sprintf("%d ignored (%s)", st.Ignored[r], r))
		}
	}
	if s.Skipped > 0 {
		notes = append(notes, fmt.Sprintf("%d binary or oversized frames not recorded", s.Skipped))
	}
	if s.Redacted > 0 {
		notes = append(notes, fmt.Sprintf("the password removed from %d frames", s.Redacted))
	}
	if len(notes) > 0 {
		events += "; " + strings.Join(notes, ", ")
	}
	return fmt.Sprintf("Recorded %d frames (%s) in %s, %d %s, to %s; %s.", s.Frames, byteSize(s.Bytes),
		d.Round(time.Second), s.Sessions, plural(int(s.Sessions), "session", "sessions"), file, events)
}

// byteSize is a size for people.
func byteSize(n uint64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 10<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
