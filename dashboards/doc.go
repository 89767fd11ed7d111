// Package dashboards holds the Grafana dashboards for portsip_exporter as
// JSON, ready to import or provision (see README.md). The Go tests here
// check their structure against the exporter's metric catalogue and run
// every query on a real Prometheus fed by the demo PBX.
package dashboards
