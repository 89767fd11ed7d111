// Package wsi speaks the PortSIP PBX WSI pub/sub protocol: tolerant
// decoding of what real PBXs send (Decode), and a Client that dials,
// authenticates, subscribes, keeps the session alive and reconnects,
// handing events and session boundaries to a Handler and keeping counters
// (Stats). It knows nothing about Prometheus. Config.Tap records a session;
// Client.Feed replays a recording through exactly the live path after the
// socket (ARCHITECTURE.md, The WSI session).
package wsi
