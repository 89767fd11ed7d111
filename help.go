package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
)

// description heads --help. It is printed as written (NoAppDescFormat),
// so its lines are wrapped here.
const description = `Prometheus exporter for the PortSIP PBX.

Keeps one WebSocket session with the PBX's WSI server (wss://PBX:8887/wsi),
turns the pushed queue, agent, extension and call events into metrics, and
serves them on --web.listen-address. Run "check" first against a real PBX:
it reports what the PBX accepts.

The password is read from --wsi.password-file or the PORTSIP_WSI_PASSWORD
environment variable; it is never a flag.`

// examples close the top-level --help, after the flags and commands.
const examples = `Examples:

  # See it working against a simulated PBX, then open http://localhost:9887/metrics
  portsip_exporter demo

  # Test the connection to a real PBX as a system administrator
  PORTSIP_WSI_PASSWORD=... portsip_exporter check --wsi.url=wss://pbx.example.com:8887/wsi --wsi.username=admin --wsi.tenant=1234567890

  # Export two tenants
  portsip_exporter --wsi.url=wss://pbx.example.com:8887/wsi --wsi.username=admin --wsi.password-file=/run/secrets/portsip --wsi.tenant=1234567890,9876543210

  # Export one tenant as its administrator
  portsip_exporter --wsi.url=wss://pbx.example.com:8887/wsi --wsi.username=supervisor --wsi.domain=sales.example.com --wsi.password-file=/run/secrets/portsip

  # Record what the PBX sends for an hour, callers' names and numbers replaced by pseudonyms
  portsip_exporter record --wsi.url=wss://pbx.example.com:8887/wsi --wsi.username=admin --wsi.password-file=/run/secrets/portsip --wsi.tenant=1234567890 --record.file=pbx.jsonl --record.duration=1h --record.anonymize

  # The metrics that recording gives, as the exporter would have shown them at its end
  portsip_exporter replay pbx.jsonl --print
`

// flagGroups head the flags of each concern in --help, by prefix.
var flagGroups = []*kong.Group{
	{Key: "wsi", Title: "PBX connection (WSI) flags:"},
	{Key: "web", Title: "Web server flags:"},
	{Key: "collector", Title: "Collector flags:"},
	{Key: "record", Title: "Recording flags:"},
}

// groupFlags puts every flag of every command under the heading of its
// prefix, so that a new command's flags are grouped without tags.
func groupFlags(n *kong.Node) {
	for _, f := range n.Flags {
		for _, g := range flagGroups {
			if strings.HasPrefix(f.Name, g.Key+".") {
				f.Group = g
			}
		}
	}
	for _, child := range n.Children {
		groupFlags(child)
	}
}

// printHelp is kong's help, except at the top level: there the exporter's
// flags, which belong to the hidden default command, are listed as the
// program's own (as node_exporter lists its flags), followed by the other
// commands and the examples. "run --help" shows the same.
func printHelp(opts kong.HelpOptions, kctx *kong.Context) error {
	app := kctx.Model
	if sel := kctx.Selected(); sel != nil && sel != app.DefaultCmd {
		return kong.DefaultHelpPrinter(opts, kctx)
	}
	// The program exits after help, so changing the model to print it
	// is safe: the exporter's flags join the program's, and the path is
	// cut to the top level.
	app.Flags = append(slices.Clone(app.DefaultCmd.Flags), app.Flags...)
	kctx.Path = kctx.Path[:1]
	fmt.Fprintf(kctx.Stdout, "Usage: %[1]s [flags]\n       %[1]s <command> [flags]\n", app.Name)
	opts.NoAppSummary = true
	if err := kong.DefaultHelpPrinter(opts, kctx); err != nil {
		return err
	}
	_, err := io.WriteString(kctx.Stdout, "\n"+examples)
	return err
}

// commandFirst finds the command word among args and moves it to the
// front, so that flags may also come before it ("--log.level=debug check"
// is "check --log.level=debug"). The exporter takes no arguments, so any
// word that is not a flag or a flag's value must be a command: one that
// is not is refused with the nearest command's name.
func commandFirst(app *kong.Application, args []string) ([]string, error) {
	takesValue := map[string]bool{}
	var visit func(*kong.Node)
	visit = func(n *kong.Node) {
		for _, f := range n.Flags {
			v := !f.IsBool() && !f.IsCounter()
			takesValue["--"+f.Name] = v
			if f.Tag.Negatable != "" {
				takesValue["--no-"+f.Name] = false
			}
			if f.Short != 0 {
				takesValue["-"+string(f.Short)] = v
			}
		}
		for _, child := range n.Children {
			visit(child)
		}
	}
	visit(app.Node)

	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return args, nil
		case strings.HasPrefix(a, "-") && strings.Contains(a, "="):
		case strings.HasPrefix(a, "-"):
			v, known := takesValue[a]
			if !known {
				return args, nil // kong names the unknown flag
			}
			if v {
				i++
			}
		case a == "help":
			// As --help: "help demo" is "demo --help".
			rest := slices.Concat(args[:i], args[i+1:], []string{"--help"})
			return commandFirst(app, rest)
		default:
			var names []string
			for _, cmd := range app.Children {
				if cmd.Type != kong.CommandNode {
					continue
				}
				if cmd.Name == a || slices.Contains(cmd.Aliases, a) {
					return slices.Concat(args[i:i+1], args[:i], args[i+1:]), nil
				}
				if !cmd.Hidden {
					names = append(names, cmd.Name)
				}
			}
			if s := nearest(a, names); s != "" {
				return nil, fmt.Errorf("unknown command %q, did you mean %q?", a, s)
			}
			return nil, fmt.Errorf("unknown command %q (the exporter itself needs none; the others are %s)", a, strings.Join(names, ", "))
		}
	}
	return args, nil
}

// nearest is the name a mistyped word most likely meant: one it starts,
// or one at most two edits away; "" if none is.
func nearest(word string, names []string) string {
	best, bestDist := "", 3
	for _, n := range names {
		d := editDistance(word, n)
		if word != "" && strings.HasPrefix(n, word) {
			d = 0
		}
		if d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
