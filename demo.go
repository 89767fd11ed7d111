package main

import (
	"context"
	"log/slog"
	"net"
	"os"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"

	"github.com/portsip-exporter/portsip_exporter/wsi"
	"github.com/portsip-exporter/portsip_exporter/wsi/wsitest"
)

type demoCmd struct {
	Web       webConfig       `embed:"" prefix:"web."`
	Collector collectorConfig `embed:"" prefix:"collector."`
	Seed      int64           `name:"demo.seed" default:"1" help:"Seed of the simulated traffic: the same seed plays the same day."`
	Quirks    bool            `name:"demo.quirks" help:"The simulated PBX speaks every other reading of the vendor's silent spots (skewed clock, repeated keys, duplicates, other versions' spellings, ...): watch portsip_wsi_quirks_total move."`
	Scenario  string          `name:"demo.scenario" enum:"calm,incident" default:"calm" help:"Traffic: calm, or an incident that meets every queue, extension and call alert's condition within 15 minutes, then the session alerts' (one of: calm, incident)."`
}

// run starts a simulated PBX on loopback with live contact-centre traffic
// and runs the exporter against it as a system administrator, exactly as
// against a real PBX.
func (c *demoCmd) run(ctx context.Context, logger *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	pbx, err := startDemoPBX(ctx, demoOptions{seed: c.Seed, quirks: c.Quirks, scenario: wsitest.Scenario(c.Scenario)})
	if err != nil {
		return err
	}
	defer pbx.Close()

	logger.Info("demo: simulated PBX with live traffic", "wsi.url", pbx.URL, "tenants", pbx.Tenants, "seed", c.Seed,
		"scenario", c.Scenario, "quirks", c.Quirks)
	if c.Quirks {
		logger.Info("demo: the PBX speaks every quirk, and refuses the system administrator every global topic but extension management until " +
			adminRefusedFor.String() + " after the start")
	}
	if c.Scenario == string(wsitest.Incident) {
		logger.Info("demo: incident from 2m after the start: queue, extension and call alerts within 15m; dropped sessions from 15m, a refused topic from 18m, the PBX down from 23m30s to 26m30s")
	}

	return runExporter(ctx, logger, exporterConfig{
		client: wsi.Config{
			URL:          pbx.URL,
			Username:     pbx.Username,
			Password:     pbx.Password,
			Tenants:      pbx.Tenants,
			PingInterval: wsi.DefaultPingInterval,
		},
		web:       c.Web,
		collector: c.Collector.config(),
		listening: func(addrs []net.Addr) {
			u := metricsURL(addrs[0], c.Web)
			logger.Info("demo: metrics at "+u+" (Ctrl-C to stop)", "url", u)
		},
	})
}

// metricsURL is where a person on this machine finds the metrics.
func metricsURL(addr net.Addr, c webConfig) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String() + c.TelemetryPath
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	scheme := "http"
	if tlsEnabled(c.ConfigFile) {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + c.TelemetryPath
}

// tlsEnabled reports whether a web config file turns TLS on.
func tlsEnabled(configFile string) bool {
	if configFile == "" {
		return false
	}
	b, err := os.ReadFile(configFile)
	if err != nil {
		return false
	}
	var cfg web.Config
	return yaml.Unmarshal(b, &cfg) == nil && cfg.TLSConfig.IsEnabled()
}
