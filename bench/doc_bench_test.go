// Package bench holds the benchmarks that cross packages: raw frames
// through the decoder into the collector, and the whole path over a
// loopback WebSocket, each next to the naive consumer a user would write
// by hand (encoding/json into map[string]any), measured in the same run.
// BENCHMARKS.md at the repository root has the results and how to run them.
package bench
