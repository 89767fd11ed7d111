package capture

import (
	"time"
)

// Magic and Version head every capture.
const (
	Magic   = "portsip_exporter"
	Version = 1
)

// Modes of the recorded client, as in Header.Mode.
const (
	ModeGlobal = "global" // a system administrator on the global_* topics
	ModeTenant = "tenant" // a tenant user (--wsi.domain) on the tenant topics
)

// Header is a capture's first line: what the recorded client watched, so
// that a replay decodes and filters as it did.
type Header struct {
	Capture string    `json:"capture"` // Magic
	Version int       `json:"version"` // Version
	Time    time.Time `json:"t"`       // when the recording started
	// Source is what wrote the capture: "record", "check", or a test.
	Source string `json:"source,omitempty"`
	// Exporter is the version of the program that wrote it.
	Exporter   string   `json:"exporter,omitempty"`
	Mode       string   `json:"mode"`
	Tenants    []string `json:"tenants,omitempty"`
	Queues     []string `json:"queues,omitempty"`
	Extensions []string `json:"extensions,omitempty"`
	// Anonymized: people's names and numbers are pseudonyms.
	Anonymized bool `json:"anonymized,omitempty"`
}

// Kind is the kind of a line after the header.
type Kind int

// The kinds of line a Reader returns.
const (
	KindUnknown Kind = iota // a kind this version does not know: skip it
	KindFrame               // Entry.Record is a frame
	KindSession             // Entry.Record is a session boundary
	KindSkipped             // Entry.Skipped frames of Entry.Count were not recorded
	KindEnd                 // the recording was stopped cleanly
)

// Reasons of a skipped line: the wsi client's reasons of the frames it
// cannot hand to the Tap.
const (
	SkippedBinary    = "binary_frame"
	SkippedOversized = "oversized"
)

// line is every kind of line; which keys are set tells the kind. The
// header is written from Header and read into it.
type line struct {
	T           string          `json:"t"`
	Frame       *string         `json:"frame,omitempty"`
	FrameBase64 []byte          `json:"frame_base64,omitempty"`
	Session     string          `json:"session,omitempty"`
	Topics      map[string]bool `json:"topics,omitempty"`
	Stage       string          `json:"stage,omitempty"`
	Reason      string          `json:"reason,omitempty"`
	Skipped     string          `json:"skipped,omitempty"`
	Count       uint64          `json:"count,omitempty"`
	End         bool            `json:"end,omitempty"`
	Frames      uint64          `json:"frames,omitempty"`
	Bytes       uint64          `json:"bytes,omitempty"`
	Capture     string          `json:"capture,omitempty"`
}

// formatTime is how every line writes its time.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
