package wsi

import (
	"errors"
	"net"

	"github.com/gorilla/websocket"

	"github.com/portsip-exporter/portsip_exporter/internal/secret"
)

// Stages of a session, as counted by portsip_wsi_connection_errors_total.
const (
	StageDial      = "dial"      // TCP, TLS or WebSocket handshake
	StageAuth      = "auth"      // auth command refused or unanswered
	StageSubscribe = "subscribe" // every subscription refused, or unanswered
	StageRead      = "read"      // an established session broke
)

// Stages lists every stage, in a stable order.
var Stages = []string{StageDial, StageAuth, StageSubscribe, StageRead}

// Kind is what went wrong, decided where it happened: for a person to act
// on (check's report), and for the back-off (a refused login waits longer).
type Kind string

const (
	KindDNS         Kind = "dns"         // the PBX's host name does not resolve
	KindUnreachable Kind = "unreachable" // no TCP connection (refused, filtered, no route, the proxy)
	KindNoAnswer    Kind = "no_answer"   // connected, but no TLS or WebSocket handshake, or no auth reply, in time
	KindTLS         Kind = "tls"         // the TLS handshake failed: an untrusted certificate, another name, no TLS there
	KindNotWSI      Kind = "not_wsi"     // an answer, but no WebSocket upgrade: another path or port, ws:// to a TLS port
	KindAuth        Kind = "auth"        // the PBX refused the login, by a reply or by closing with a reason
	KindPermission  Kind = "permission"  // the PBX refused every subscription
	KindLost        Kind = "lost"        // the connection broke or went silent
)

// Error is a failed session attempt or a session that ended, with the stage
// and the kind of the failure. Its text never contains the password. Err
// wraps the cause: errors.As finds a TLS failure
// (*tls.CertificateVerificationError, x509.HostnameError, ...) or a
// *net.OpError behind a StageDial error.
type Error struct {
	Stage string
	Kind  Kind
	// PBXError is the PBX's own text when it sent one (a refused login or
	// subscription, a close frame's reason), redacted and bounded.
	PBXError string
	Err      error

	red *secret.Redactor
}

func (e *Error) Error() string { return e.red.String(e.Stage + ": " + e.Err.Error()) }
func (e *Error) Unwrap() error { return e.Err }

// dialKind says why a dial failed, from how far it got: a TCP connection,
// a TLS handshake, the first byte of an answer.
func dialKind(err, tlsErr error, connected, answered bool) Kind {
	var dns *net.DNSError
	switch {
	case !connected && errors.As(err, &dns):
		return KindDNS
	case !connected:
		return KindUnreachable
	case tlsErr != nil && isTimeout(tlsErr):
		return KindNoAnswer
	case tlsErr != nil:
		return KindTLS
	case answered || errors.Is(err, websocket.ErrBadHandshake):
		return KindNotWSI
	}
	return KindNoAnswer
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
