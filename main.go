// Command portsip_exporter keeps one WebSocket session with a PortSIP PBX's
// WSI server and exposes what the PBX pushes (queues, agents, extensions,
// calls) as Prometheus metrics.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"
)

const (
	programName = "portsip_exporter"
	// defaultPort lies in the Prometheus exporter range. That range has been
	// fully allocated since 2023, so no unique port was available; the README
	// says so.
	defaultPort = "9887"
)

// Exit codes: 0 success, 1 the program ran and failed (check found a
// problem, the listener could not be opened), 2 the configuration is wrong.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

const description = `Prometheus exporter for the PortSIP PBX.

Keeps one WebSocket session with the PBX's WSI server (wss://PBX:8887/wsi), turns the pushed queue, agent, extension and call events into metrics, and serves them on --web.listen-address.

Run "check" first against a real PBX: it reports what the PBX accepts.

The password is read from --wsi.password-file or the PORTSIP_WSI_PASSWORD environment variable; it is never a flag.

Examples:

  # See it working against a simulated PBX, then open http://localhost:9887/metrics
  portsip_exporter demo

  # Test the connection to a real PBX as a system administrator
  PORTSIP_WSI_PASSWORD=... portsip_exporter check --wsi.url=wss://pbx.example.com:8887/wsi --wsi.username=admin --wsi.tenant=1234567890

  # Export two tenants
  portsip_exporter --wsi.url=wss://pbx.example.com:8887/wsi --wsi.username=admin --wsi.password-file=/run/secrets/portsip --wsi.tenant=1234567890,9876543210

  # Export one tenant as its administrator
  portsip_exporter --wsi.url=wss://pbx.example.com:8887/wsi --wsi.username=supervisor --wsi.domain=sales.example.com --wsi.password-file=/run/secrets/portsip`

// cli is the whole command line. Flags live in one struct per concern,
// embedded with the prefix that names the concern.
type cli struct {
	Log     logConfig        `embed:"" prefix:"log."`
	Version kong.VersionFlag `help:"Print the version and exit."`

	Run   exportCmd `cmd:"" default:"withargs" help:"Run the exporter. The default command: \"portsip_exporter run --help\" lists its flags, which work without \"run\" too."`
	Demo  demoCmd   `cmd:"" help:"Run the exporter against an embedded simulated PBX with live contact-centre traffic."`
	Check checkCmd  `cmd:"" help:"Connect, authenticate and subscribe once, report what the PBX accepted, and exit 0 or 1."`
}

type exportCmd struct {
	WSI       wsiConfig       `embed:"" prefix:"wsi."`
	Web       webConfig       `embed:"" prefix:"web."`
	Collector collectorConfig `embed:"" prefix:"collector."`
}

// exitError ends the program from inside kong (after --help, --version)
// without os.Exit, so that run can be called in-process by tests.
type exitError int

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal starts a graceful shutdown, which may wait for
		// slow scrapes. Restoring the default handling lets a second
		// Ctrl-C end the program at once, as an impatient operator expects.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program: it parses args, runs the chosen command until
// ctx is cancelled, and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, command, code := parseArgs(args, stdout, stderr)
	if c == nil {
		return code
	}

	logger := slog.New(c.redactor().Handler(newLogger(stderr, c.Log).Handler()))
	var err error
	switch command {
	case "demo":
		err = c.Demo.run(ctx, logger)
	case "check":
		return c.Check.run(ctx, logger, stdout)
	default:
		err = c.Run.run(ctx, logger)
	}
	if err != nil {
		logger.Error("exiting", "err", err)
		return exitFailed
	}
	return exitOK
}

// parseArgs parses and validates the command line. A nil cli means the
// program is done (help, version, or an error already printed) with code.
func parseArgs(args []string, stdout, stderr io.Writer) (_ *cli, command string, code int) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--wsi.password" || strings.HasPrefix(a, "--wsi.password=") {
			// Say why, and do not echo the value.
			fmt.Fprintf(stderr, "%s: error: there is no --wsi.password flag, on purpose (command lines are visible to every user of the machine): use --wsi.password-file or %s\n", programName, passwordEnv)
			return nil, "", exitUsage
		}
	}

	var c cli
	parser, err := kong.New(&c,
		kong.Name(programName),
		kong.Description(description),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(exitError(code)) }),
		kong.Vars{
			"version":        versionString(),
			"default_listen": ":" + defaultPort,
			"password_env":   passwordEnv,
		}.CloneWith(limitVars()).CloneWith(wsiVars()),
		kong.ConfigureHelp(kong.HelpOptions{NoAppDescFormat: true}),
	)
	if err != nil {
		// The CLI struct itself is wrong: a programming error.
		fmt.Fprintf(stderr, "%s: internal error: %v\n", programName, err)
		return nil, "", exitFailed
	}
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(exitError)
			if !ok {
				panic(r)
			}
			code = int(e)
		}
	}()

	kctx, err := parser.Parse(args)
	if err != nil {
		// Our own validation errors name the flag and what to do: print
		// them alone, without kong's "<command>: " prefix.
		var ve *validationError
		if errors.As(err, &ve) {
			fmt.Fprintf(stderr, "%s: error: %v\n", programName, ve)
			return nil, "", exitUsage
		}
		fmt.Fprintf(stderr, "%s: error: %v\nRun %q for the flags.\n", programName, err, programName+" --help")
		return nil, "", exitUsage
	}
	return &c, kctx.Command(), exitOK
}

func (c *exportCmd) run(ctx context.Context, logger *slog.Logger) error {
	return runExporter(ctx, logger, exporterConfig{
		client:    c.WSI.clientConfig(),
		web:       c.Web,
		collector: c.Collector.config(),
	})
}
