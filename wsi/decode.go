package wsi

import "errors"

// Reasons a frame is rejected, as counted by portsip_wsi_invalid_messages_total.
const (
	ReasonMalformedJSON = "malformed_json" // not a JSON object
	ReasonInvalidEvent  = "invalid_event"  // no event_type/command, or a key of the wrong type
	ReasonBinaryFrame   = "binary_frame"   // a binary WebSocket frame
	ReasonOversized     = "oversized"      // larger than the configured limit
)

// InvalidReasons lists every reason, in a stable order.
var InvalidReasons = []string{ReasonMalformedJSON, ReasonInvalidEvent, ReasonBinaryFrame, ReasonOversized}

// DecodeError says why a frame was rejected.
type DecodeError struct {
	Reason string // one of the Reason* constants
	Err    error
}

func (e *DecodeError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *DecodeError) Unwrap() error { return e.Err }

// Decode decodes one text frame. Exactly one of the results is non-nil: an
// event, a command reply, or a *DecodeError.
//
// TODO(issue 2): implement.
func Decode(data []byte) (Event, *Reply, error) {
	return nil, nil, &DecodeError{Reason: ReasonMalformedJSON, Err: errors.New("not implemented")}
}
