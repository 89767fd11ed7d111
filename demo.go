package main

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

type demoCmd struct {
	Web       webConfig       `embed:"" prefix:"web."`
	Collector collectorConfig `embed:"" prefix:"collector."`
	Seed      int64           `name:"demo.seed" default:"1" help:"Seed of the simulated traffic: the same seed plays the same day."`
}

// run starts a simulated PBX on loopback with live contact-centre traffic
// and runs the exporter against it as a system administrator, exactly as
// against a real PBX.
func (c *demoCmd) run(ctx context.Context, logger *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	pbx, err := startDemoPBX(ctx, c.Seed)
	if err != nil {
		return err
	}
	defer pbx.Close()

	logger.Info("demo: simulated PBX with live traffic", "wsi.url", pbx.URL, "tenants", pbx.Tenants, "seed", c.Seed)
	if u := metricsURL(c.Web); u != "" {
		logger.Info("demo: open "+u+" (Ctrl-C to stop)", "url", u)
	}

	return runExporter(ctx, logger, exporterConfig{
		client: wsi.Config{
			URL:          pbx.URL,
			Username:     pbx.Username,
			Password:     pbx.Password,
			Tenants:      pbx.Tenants,
			PingInterval: 30 * time.Second,
		},
		web:       c.Web,
		collector: c.Collector.config(),
	})
}

// metricsURL is where a person on this machine finds the metrics, or ""
// when it cannot be told from the flags (port 0, TLS from a web config).
func metricsURL(c webConfig) string {
	addrs := nonEmpty(c.ListenAddresses)
	if len(addrs) == 0 || c.ConfigFile != "" {
		return ""
	}
	host, port, err := net.SplitHostPort(addrs[0])
	if err != nil || port == "0" {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + c.TelemetryPath
}
