package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/portsip-exporter/portsip_exporter/collector"
	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// shutdownTimeout is how long in-flight scrapes may take to finish after
// SIGTERM.
const shutdownTimeout = 10 * time.Second

// exporterConfig is everything the exporter (and the demo) runs with.
type exporterConfig struct {
	client    wsi.Config
	web       webConfig
	collector collector.Config
	// listening, when set, is told the addresses once they accept
	// connections (the demo prints where to look).
	listening func([]net.Addr)
}

// runExporter serves metrics and keeps the WSI session until ctx is
// cancelled, then closes the session and lets in-flight scrapes finish.
func runExporter(ctx context.Context, logger *slog.Logger, cfg exporterConfig) error {
	b := getBuildInfo()
	logger.Info("starting "+programName, "version", b.Version, "revision", b.Revision, "go", b.GoVersion)
	// The client logs session changes (once per change, not per retry)
	// and the insecure TLS switch itself.
	cfg.client.Logger = logger.With("component", "wsi")
	client, err := wsi.New(cfg.client)
	if err != nil {
		return fmt.Errorf("WSI client: %w", err)
	}
	// Label values from the PBX lose the password as logs and errors do.
	cfg.collector.Redactor = client.Redactor()
	col := collector.New(cfg.collector, client)
	return serve(ctx, logger, col, cfg.web, cfg.listening, func(ctx context.Context) {
		// Run returns only once ctx is cancelled: it reconnects forever.
		if err := client.Run(ctx, col); err != nil {
			logger.Error("WSI client stopped", "err", err)
		}
	})
}

// serve serves col, with the process's own metrics, on the web flags
// while ingest runs beside it, until ctx is cancelled; then it stops
// ingest and lets in-flight scrapes finish. The exporter ingests from the
// PBX, replay from a capture.
func serve(ctx context.Context, logger *slog.Logger, col snapshotter, webCfg webConfig,
	listening func([]net.Addr), ingest func(ctx context.Context)) error {
	reg := newRegistry(getBuildInfo())

	// Open every listener before anything else so a taken port fails the
	// start instead of leaving a half-running exporter.
	listeners, err := listen(webCfg.ListenAddresses)
	if err != nil {
		return err
	}

	var ready atomic.Bool
	mux, err := newMux(col, reg, webCfg, logger, &ready)
	if err != nil {
		closeAll(listeners)
		return err
	}
	conns := newConnLimiter(connectionLimit())
	logger.Debug("HTTP connections bounded", "max", conns.max)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ingest(ctx)
	}()

	servers := make([]*http.Server, len(listeners))
	serveErr := make(chan error, len(listeners))
	for i, l := range listeners {
		// One http.Server per listener: web.Serve rewrites server.Handler
		// to add authentication, which must not race between listeners.
		servers[i] = newServer(mux, conns, logger)
		flags := &web.FlagConfig{
			WebListenAddresses: &[]string{l.Addr().String()},
			WebSystemdSocket:   new(bool),
			WebConfigFile:      &webCfg.ConfigFile,
		}
		go func() {
			err := web.Serve(conns.listener(l), servers[i], flags, logger)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			serveErr <- err
		}()
	}
	ready.Store(true)
	if listening != nil {
		addrs := make([]net.Addr, len(listeners))
		for i, l := range listeners {
			addrs[i] = l.Addr()
		}
		listening(addrs)
	}

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case runErr = <-serveErr:
		// A listener failed (e.g. its TLS files became unreadable); the
		// exporter cannot be scraped, so stop rather than limp on.
		if runErr == nil {
			runErr = errors.New("HTTP server stopped")
		}
	}
	ready.Store(false)
	cancel()

	shutdownCtx, stop := context.WithTimeout(context.Background(), shutdownTimeout)
	defer stop()
	for _, s := range servers {
		if err := s.Shutdown(shutdownCtx); err != nil {
			logger.Warn("HTTP shutdown", "err", err)
			s.Close()
		}
	}
	// A listener whose web.Serve failed before serving is still open.
	closeAll(listeners)
	wg.Wait()
	return runErr
}

func listen(addrs []string) ([]net.Listener, error) {
	var ls []net.Listener
	for _, a := range wsi.CleanList(addrs) {
		l, err := net.Listen("tcp", a)
		if err != nil {
			closeAll(ls)
			return nil, listenError(a, err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// listenError says what to do when addr cannot be listened on.
func listenError(addr string, err error) error {
	reason := err
	var se *os.SyscallError
	if errors.As(err, &se) {
		reason = se.Err // "address already in use", without "listen tcp ...: bind:"
	}
	var hint string
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		hint = "another program (another exporter, or this one already running?) listens there: stop it, or choose another address"
		if host, port, err := net.SplitHostPort(addr); err == nil {
			if n, err := strconv.Atoi(port); err == nil && n > 0 && n < 65535 {
				hint += ", e.g. --web.listen-address=" + net.JoinHostPort(host, strconv.Itoa(n+1))
			}
		}
	case errors.Is(err, syscall.EACCES):
		hint = "ports below 1024 need privileges; choose a port such as " + defaultPort
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		hint = "no interface of this machine has that address; leave the host out (:" + defaultPort + ") to listen on all of them"
	default:
		return fmt.Errorf("--web.listen-address=%s: %w", addr, err)
	}
	return fmt.Errorf("--web.listen-address=%s: %w: %s", addr, reason, hint)
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

// newRegistry holds what /metrics serves beside the Collector's families:
// the Go runtime's and the process's, and the build information.
func newRegistry(b buildInfo) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newBuildInfo(b),
	)
	return reg
}

// newBuildInfo is portsip_exporter_build_info with exactly the labels the
// README documents (prometheus/common's version collector adds more).
func newBuildInfo(b buildInfo) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "portsip_exporter_build_info",
		Help: "A metric with a constant '1' value labeled by version, revision and goversion from which portsip_exporter was built.",
		ConstLabels: prometheus.Labels{
			"version":   b.Version,
			"revision":  b.Revision,
			"goversion": b.GoVersion,
		},
	})
	g.Set(1)
	return g
}
