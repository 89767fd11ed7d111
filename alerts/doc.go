// Package alerts holds the Prometheus alerting and recording rules for
// portsip_exporter (portsip.rules.yml) and their promtool unit tests
// (portsip.rules_test.yml). The Go tests here check the rules against the
// design contract and run promtool; see README.md for how to load them.
package alerts
