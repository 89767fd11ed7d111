// Package wsi speaks the PortSIP PBX WSI pub/sub protocol: tolerant
// decoding of what real PBXs send (Decode), and a Client that dials,
// authenticates, subscribes, keeps the session alive and reconnects. It
// knows nothing about Prometheus: it hands events and session boundaries
// to a Handler and keeps counters (Stats).
//
// Config.Tap records every frame a session reads and each session
// boundary; Client.Feed (on a Client from NewReplay) takes those Records
// back through exactly the path a live frame takes after the socket, so
// there is no second path to keep in step. ARCHITECTURE.md describes the
// session's state machine and the decoder's design.
package wsi
