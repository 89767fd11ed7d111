package capture

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/portsip-exporter/portsip_exporter/internal/secret"
	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// Options are what a Writer does to a frame before writing it.
type Options struct {
	// Secrets (the password) are removed from every frame and reason, in
	// whatever form the PBX may send them back (see scrubFrame).
	Secrets []string
	// Anonymize replaces people's names and numbers with pseudonyms
	// (AnonymizedKeys).
	Anonymize bool
	// Key is the pseudonyms' key; nil draws a random one, which is never
	// written anywhere, so that the pseudonyms of one capture cannot be
	// tried against a list of numbers. Tests set it to get the same file
	// twice.
	Key []byte
}

// Summary is what a Writer wrote.
type Summary struct {
	Frames   uint64 // frame lines
	Bytes    uint64 // bytes of the frames as received
	Sessions uint64 // up lines
	Skipped  uint64 // frames counted in skipped lines
	// Redacted counts frames that held a secret, or a value of a key named
	// like one, and were written without it.
	Redacted uint64
}

// Writer writes a capture. Each line goes to the file in one write as it
// comes, so a capture cut short by a kill loses at most the line being
// written. Its methods are safe for concurrent use; the first error
// sticks and is returned by every later call.
type Writer struct {
	mu     sync.Mutex
	w      io.Writer
	f      *os.File // when Create opened it
	buf    bytes.Buffer
	enc    *json.Encoder // into buf
	scrub  *scrubber
	red    *secret.Redactor
	sum    Summary
	err    error
	closed bool
}

// ErrExists is returned by Create when the file exists and force is off.
var ErrExists = errors.New("the file exists (force overwriting it, or choose another name)")

// Create creates the file at path with mode 0600 and writes h. An existing
// file is refused unless force, and then only a regular file is
// overwritten (never a device or a directory), its mode set to 0600.
func Create(path string, force bool, h Header, opt Options) (*Writer, error) {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%s is not a regular file", path)
		}
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrExists)
	}
	if err != nil {
		return nil, err
	}
	// An overwritten file keeps its mode: a capture is never readable by
	// others, whoever made the file before.
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, err
	}
	w, err := NewWriter(f, h, opt)
	if err != nil {
		f.Close()
		return nil, err
	}
	w.f = f
	return w, nil
}

// NewWriter writes h to w and returns a Writer of the lines after it.
// h.Capture and h.Version are set; h.Anonymized follows opt.
func NewWriter(w io.Writer, h Header, opt Options) (*Writer, error) {
	key := opt.Key
	if opt.Anonymize && key == nil {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
	}
	cw := &Writer{w: w, red: secret.NewRedactor(opt.Secrets...)}
	cw.enc = json.NewEncoder(&cw.buf)
	cw.enc.SetEscapeHTML(false) // "<redacted>" stays readable
	cw.scrub = newScrubber(opt.Secrets, opt.Anonymize, key, h.Queues, h.Extensions)
	h.Capture, h.Version, h.Anonymized = Magic, Version, opt.Anonymize
	h.Time = h.Time.UTC()
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if err := cw.writeLocked(h); err != nil {
		return nil, err
	}
	return cw, nil
}

// Record writes a wsi.Record: a frame, or a session boundary. It is what a
// wsi.Config.Tap calls.
func (w *Writer) Record(r wsi.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	switch r.Session {
	case "":
		w.sum.Frames++
		w.sum.Bytes += uint64(len(r.Frame))
		frame, redacted := w.scrub.frame(r.Frame)
		if redacted {
			w.sum.Redacted++
		}
		return w.writeFrameLocked(r.Time, frame)
	case wsi.RecordUp:
		w.sum.Sessions++
		return w.writeLocked(line{T: formatTime(r.Time), Session: r.Session, Topics: r.Topics})
	default:
		return w.writeLocked(line{T: formatTime(r.Time), Session: r.Session, Stage: r.Stage, Reason: w.red.String(r.Reason)})
	}
}

// Skipped writes that n frames read at t could not be recorded, for the
// reason (SkippedBinary, SkippedOversized).
func (w *Writer) Skipped(t time.Time, reason string, n uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil || n == 0 {
		return w.err
	}
	w.sum.Skipped += n
	return w.writeLocked(line{T: formatTime(t), Skipped: reason, Count: n})
}

// Close writes the end line at t and closes the file Create opened
// (syncing it first). A Writer of NewWriter leaves its io.Writer open.
func (w *Writer) Close(t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err == nil {
		w.err = w.writeLocked(line{T: formatTime(t), End: true, Frames: w.sum.Frames, Bytes: w.sum.Bytes})
	}
	if w.f != nil {
		if err := w.f.Sync(); err != nil && w.err == nil {
			w.err = err
		}
		if err := w.f.Close(); err != nil && w.err == nil {
			w.err = err
		}
	}
	return w.err
}

// Summary is what has been written so far.
func (w *Writer) Summary() Summary {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sum
}

// Err is the first error writing, nil while all is well.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

var bom = []byte("\xef\xbb\xbf")

func (w *Writer) writeFrameLocked(t time.Time, frame []byte) error {
	w.buf.Reset()
	w.buf.WriteString(`{"t":"`)
	w.buf.WriteString(formatTime(t))
	if utf8.Valid(frame) {
		w.buf.WriteString(`","frame":`)
		n := w.buf.Len()
		w.enc.Encode(string(frame)) // a string cannot fail
		w.buf.Truncate(w.buf.Len() - 1)
		if bytes.Contains(w.buf.Bytes()[n:], bom) {
			// Escaped, so that a person reading the file sees it.
			enc := bytes.ReplaceAll(w.buf.Bytes()[n:], bom, []byte(`\ufeff`))
			w.buf.Truncate(n)
			w.buf.Write(enc)
		}
	} else {
		// A JSON string holds only UTF-8: encoding/json would replace the
		// invalid bytes, and the frame would not be verbatim.
		w.buf.WriteString(`","frame_base64":`)
		w.enc.Encode(frame)
		w.buf.Truncate(w.buf.Len() - 1)
	}
	w.buf.WriteString("}\n")
	return w.flushLocked()
}

func (w *Writer) writeLocked(v any) error {
	w.buf.Reset()
	if err := w.enc.Encode(v); err != nil {
		return err
	}
	return w.flushLocked()
}

// flushLocked writes the line in buf in one write.
func (w *Writer) flushLocked() error {
	if w.err != nil {
		return w.err
	}
	if _, err := w.w.Write(w.buf.Bytes()); err != nil {
		w.err = err
	}
	if w.buf.Cap() > 1<<20 {
		w.buf = bytes.Buffer{} // one huge frame must not pin its buffer
		w.enc = json.NewEncoder(&w.buf)
		w.enc.SetEscapeHTML(false)
	}
	return w.err
}
