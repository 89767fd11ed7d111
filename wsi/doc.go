// Package wsi speaks the PortSIP PBX WSI pub/sub protocol: typed messages,
// tolerant decoding of what real PBXs send, and a Client that dials,
// authenticates, subscribes, keeps the session alive and reconnects.
//
// The package knows nothing about Prometheus: it hands decoded events and
// session boundaries to a Handler and keeps a few counters (Stats).
// Config.Validate holds every connection rule; a failure is an *Error with
// the Stage and the Kind of it; the password is redacted (package
// internal/secret) from whatever the client prints, logs or returns.
//
// Record and replay: Config.Tap sees every text frame a session reads,
// verbatim with its receive time, and each session boundary, in the order
// the session handled them. Client.Feed (on a Client from NewReplay) takes
// those Records back through exactly the path a live frame takes after
// the socket: the decoding, the counting, the tenant filter, the session
// state machine and the Handler calls. There is no second path to keep in
// step with the first.
package wsi
