package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// MaxLine is the longest line a Reader reads: the largest frame the client
// takes (wsi.DefaultMaxMessageSize) escaped at worst (six bytes for one),
// and room for the rest of the line. Longer lines are skipped whole.
const MaxLine = 6*wsi.DefaultMaxMessageSize + 4096

// Entry is one line after the header.
type Entry struct {
	Line   int // its number in the file, the header being 1
	Kind   Kind
	Time   time.Time
	Record wsi.Record // KindFrame, KindSession
	// KindSkipped: Count frames were not recorded for the reason Skipped.
	Skipped string
	Count   uint64
}

// LineError is a line that is not one of a capture: Next skipped it and
// may be called again.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// NotCaptureError says that a file is not a capture at all.
type NotCaptureError struct{ Reason string }

func (e *NotCaptureError) Error() string { return "not a portsip_exporter capture: " + e.Reason }

// Reader reads a capture.
type Reader struct {
	r      *bufio.Reader
	closer io.Closer
	header Header
	line   int
}

// Open opens the capture at path, plain or compressed with gzip, and reads
// its header. The error is a *NotCaptureError when the file is readable
// but not a capture.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s is a directory", path)
	}
	r, err := NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer = multiCloser{r.closer, f}
	return r, nil
}

// NewReader reads the header of the capture r holds, plain or compressed
// with gzip.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	cr := &Reader{r: br, closer: multiCloser{}}
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, &NotCaptureError{Reason: "gzip: " + err.Error()}
		}
		cr.r, cr.closer = bufio.NewReaderSize(zr, 64<<10), multiCloser{zr}
	}
	text, err := cr.readLine(maxHeader)
	switch {
	case errors.Is(err, io.EOF) && len(text) == 0:
		return nil, &NotCaptureError{Reason: "the file is empty"}
	case errors.Is(err, errLineTooLong):
		return nil, &NotCaptureError{Reason: "its first line is not a capture header"}
	case err != nil && !errors.Is(err, io.EOF):
		return nil, err
	}
	if err := json.Unmarshal(text, &cr.header); err != nil || cr.header.Capture != Magic {
		return nil, &NotCaptureError{Reason: "its first line is not a capture header (written by portsip_exporter record)"}
	}
	switch h := cr.header; {
	case h.Version > Version:
		return nil, &NotCaptureError{Reason: fmt.Sprintf("capture version %d, written by a newer portsip_exporter: this one reads version %d", h.Version, Version)}
	case h.Version < 1:
		return nil, &NotCaptureError{Reason: fmt.Sprintf("the header has no valid version (%d)", h.Version)}
	case h.Mode != ModeGlobal && h.Mode != ModeTenant:
		return nil, &NotCaptureError{Reason: fmt.Sprintf("the header's mode %q is neither %q nor %q", h.Mode, ModeGlobal, ModeTenant)}
	}
	return cr, nil
}

// Header is the capture's header.
func (r *Reader) Header() Header { return r.header }

// Close closes what Open opened.
func (r *Reader) Close() error { return r.closer.Close() }

// maxLine is MaxLine; tests lower it.
var maxLine = MaxLine

// maxHeader bounds the first line: a file that is not a capture is told
// so without reading it whole.
const maxHeader = 64 << 10

var errLineTooLong = errors.New("too long")

// Next returns the next line. At the end it returns io.EOF; for a line
// that is not one of a capture a *LineError, after which it may be
// called again; any other error is the file's.
func (r *Reader) Next() (Entry, error) {
	text, err := r.readLine(maxLine)
	if errors.Is(err, io.EOF) {
		if len(bytes.TrimSpace(text)) == 0 {
			return Entry{}, io.EOF
		}
		// A last line without its newline: a capture cut short while the
		// line was written. It is kept if it is whole.
		err = nil
	}
	if err != nil {
		if errors.Is(err, errLineTooLong) {
			return Entry{}, &LineError{Line: r.line, Err: fmt.Errorf("longer than %d bytes", maxLine)}
		}
		return Entry{}, err
	}
	e, err := parseLine(text)
	e.Line = r.line
	if err != nil {
		return e, &LineError{Line: r.line, Err: err}
	}
	return e, nil
}

func parseLine(text []byte) (Entry, error) {
	var l line
	if err := json.Unmarshal(text, &l); err != nil {
		if len(bytes.TrimSpace(text)) == 0 {
			return Entry{}, errors.New("empty line")
		}
		return Entry{}, fmt.Errorf("not a JSON object: %v", oneLine(err.Error()))
	}
	var e Entry
	t, err := time.Parse(time.RFC3339Nano, l.T)
	if err != nil {
		return Entry{}, fmt.Errorf(`no valid time ("t"): %q`, clip(l.T))
	}
	e.Time = t
	switch {
	case l.Frame != nil || l.FrameBase64 != nil:
		e.Kind = KindFrame
		e.Record = wsi.Record{Time: t, Frame: l.FrameBase64}
		if l.Frame != nil {
			e.Record.Frame = []byte(*l.Frame)
		}
	case l.Session == wsi.RecordUp || l.Session == wsi.RecordDown:
		e.Kind = KindSession
		e.Record = wsi.Record{Time: t, Session: l.Session, Topics: l.Topics, Stage: l.Stage, Reason: l.Reason}
	case l.Session != "":
		return Entry{}, fmt.Errorf("unknown session boundary %q", clip(l.Session))
	case l.Skipped != "":
		e.Kind, e.Skipped, e.Count = KindSkipped, l.Skipped, l.Count
	case l.End:
		e.Kind = KindEnd
	case l.Capture != "":
		return Entry{}, errors.New("a second header")
	default:
		e.Kind = KindUnknown
	}
	return e, nil
}

// readLine returns the next line without its newline; a line longer than
// max is read past and reported.
func (r *Reader) readLine(max int) ([]byte, error) {
	r.line++
	var long []byte
	tooLong := false
	for {
		chunk, err := r.r.ReadSlice('\n')
		switch {
		case tooLong:
		case long == nil && !errors.Is(err, bufio.ErrBufferFull):
			// The whole line was in the buffer: no copy.
			if err == nil {
				chunk = chunk[:len(chunk)-1]
			}
			return chunk, err
		case len(long)+len(chunk) > max:
			if max == maxHeader {
				return nil, errLineTooLong // not a capture: no need to read on
			}
			tooLong, long = true, nil
		default:
			long = append(long, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if tooLong {
			if err == nil || errors.Is(err, io.EOF) {
				err = errLineTooLong
			}
			return nil, err
		}
		if err == nil {
			long = long[:len(long)-1]
		}
		return long, err
	}
}

func oneLine(s string) string {
	return clip(string(bytes.Join(bytes.Fields([]byte(s)), []byte(" "))))
}

// clip keeps text from a file short in an error.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

type multiCloser []io.Closer

func (m multiCloser) Close() error {
	var errs []error
	for _, c := range m {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}
