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

// cli is the whole command line. Flags live in one struct per concern,
// embedded with the prefix that names the concern. Each command has its
// own flags, so a command refuses the flags it has no use for; only
// --log.* and --version apply to all.
//
// A new command is a field here and a case in run.
type cli struct {
	Log     logConfig        `embed:"" prefix:"log."`
	Version kong.VersionFlag `help:"Print the version and exit."`

	// The exporter needs no command word. Its flags are the program's own
	// in --help (see printHelp); "run" still names it for scripts that
	// used it.
	Run    exportCmd `cmd:"" default:"withargs" hidden:"" help:"Run the exporter (the default command)."`
	Demo   demoCmd   `cmd:"" help:"Run the exporter against an embedded simulated PBX with live contact-centre traffic."`
	Check  checkCmd  `cmd:"" help:"Connect, authenticate and subscribe once, report what the PBX accepted, and exit 0 or 1."`
	Record recordCmd `cmd:"" help:"Keep a session with the PBX as the exporter does and write every frame it receives to a capture file."`
	Replay replayCmd `cmd:"" help:"Feed a capture through the exporter's decoder and collector and serve the metrics, or --print them."`
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
	// A command with an argument is named with it ("replay <file>").
	name, _, _ := strings.Cut(command, " ")
	switch name {
	case "demo":
		err = c.Demo.run(ctx, logger)
	case "check":
		return c.Check.run(ctx, logger, stdout)
	case "record":
		err = c.Record.run(ctx, logger, stdout)
	case "replay":
		err = c.Replay.run(ctx, logger, stdout)
	default:
		err = c.Run.run(ctx, logger)
	}
	if err != nil {
		logger.Error("exiting", "err", err)
		return exitFailed
	}
	return exitOK
}

// newParser is the kong parser of the whole command line.
func newParser(c *cli, stdout, stderr io.Writer) (*kong.Kong, error) {
	parser, err := kong.New(c,
		kong.Name(programName),
		kong.Description(description),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(exitError(code)) }),
		kong.Vars{
			"version":        versionString(),
			"default_listen": ":" + defaultPort,
			"password_env":   passwordEnv,
		}.CloneWith(limitVars()).CloneWith(wsiVars()),
		kong.Help(printHelp),
		kong.ConfigureHelp(kong.HelpOptions{NoAppDescFormat: true}),
	)
	if err != nil {
		return nil, err
	}
	groupFlags(parser.Model.Node)
	return parser, nil
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
	parser, err := newParser(&c, stdout, stderr)
	if err != nil {
		// The CLI struct itself is wrong: a programming error.
		fmt.Fprintf(stderr, "%s: internal error: %v\n", programName, err)
		return nil, "", exitFailed
	}
	args, err = commandFirst(parser.Model, args)
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\nRun %q for the commands and flags.\n", programName, err, programName+" --help")
		return nil, "", exitUsage
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
		fmt.Fprintf(stderr, "%s: error: %v\nRun %q for the flags.\n", programName, err, helpCommand(err))
		return nil, "", exitUsage
	}
	return &c, kctx.Command(), exitOK
}

// helpCommand is the --help that lists the flags of the command a parse
// error happened in.
func helpCommand(err error) string {
	var pe *kong.ParseError
	if errors.As(err, &pe) && pe.Context != nil {
		if sel := pe.Context.Selected(); sel != nil && !sel.Hidden {
			return sel.FullPath() + " --help"
		}
	}
	return programName + " --help"
}

func (c *exportCmd) run(ctx context.Context, logger *slog.Logger) error {
	return runExporter(ctx, logger, exporterConfig{
		client:    c.WSI.clientConfig(),
		web:       c.Web,
		collector: c.Collector.config(),
	})
}
