// Package reliability proves the assembled exporter under faults and load:
// the real wsi.Client feeding the real collector.Collector, scraped over
// HTTP as main.go serves it, against the simulated PBX of wsi/wsitest and
// raw TCP listeners for faults below WebSocket.
//
// It holds tests only. The million-event soak is built without the race
// detector (it distorts both speed and memory) and runs as its own step
// of .ci/run.
package reliability
