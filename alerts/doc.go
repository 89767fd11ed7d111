// Package alerts holds the Prometheus alerting and recording rules for
// portsip_exporter (portsip.rules.yml), their promtool unit tests
// (portsip.rules_test.yml), an example Alertmanager configuration
// (alertmanager.yml) and a Prometheus configuration for the demo
// (prometheus.yml). The Go tests here check them against the alert
// table of README.md, run promtool and amtool, and run the whole alerting
// path end to end; see README.md for how to load them, and ARCHITECTURE.md,
// "Rules and dashboards", for how they aggregate.
package alerts
