// Package reliability proves the assembled exporter under faults and load:
// the real wsi.Client feeding the real collector.Collector, scraped over
// HTTP as main.go serves it, against the simulated PBX of wsi/wsitest and
// raw TCP listeners for faults below WebSocket.
//
// The attacks of a PBX written to break the exporter (attacks_test.go)
// run against the built program, with a PBX of their own
// (hostile_pbx_test.go); each is named after the finding it replays, and
// the README's Reliability section lists them.
//
// It holds tests only. The million-event soak and the attacks are built
// without the race detector (it distorts both speed and memory, and the
// attacked program is built without it anyway) and run in .ci/run's plain
// run of the package.
package reliability
