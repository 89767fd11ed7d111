package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/portsip-exporter/portsip_exporter/collector"
	"github.com/portsip-exporter/portsip_exporter/internal/secret"
	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// passwordEnv holds the PBX password when no --wsi.password-file is given.
// It is deliberately not a flag: command lines show up in ps and in shell
// history.
const passwordEnv = "PORTSIP_WSI_PASSWORD"

// wsiConfig is how to reach and log in to the PBX (--wsi.*). The rules
// are wsi.Config's; this maps its fields to flags.
//
// File flags here and below are plain strings rather than kong's path
// type, which turns an empty value (an unset variable in a compose file)
// into the working directory and then complains that it is one.
type wsiConfig struct {
	URL             string        `name:"url" env:"PORTSIP_WSI_URL" placeholder:"wss://HOST:8887/wsi" help:"WSI endpoint of the PBX (ws:// is accepted for tests)."`
	Username        string        `name:"username" env:"PORTSIP_WSI_USERNAME" help:"User to authenticate as; a system administrator when --wsi.domain is empty."`
	ExtensionNumber string        `name:"extension-number" env:"PORTSIP_WSI_EXTENSION_NUMBER" help:"Authenticate by extension number instead of user name (needs --wsi.domain)."`
	PasswordFile    string        `name:"password-file" env:"PORTSIP_WSI_PASSWORD_FILE" placeholder:"FILE" help:"File holding the password (a trailing newline is ignored). Alternatively set ${password_env}."`
	Domain          string        `name:"domain" env:"PORTSIP_WSI_DOMAIN" help:"SIP domain of a tenant user; empty means system administrator (global topics)."`
	Tenants         []string      `name:"tenant" env:"PORTSIP_WSI_TENANTS" sep:"," placeholder:"ID" help:"Tenant id (a number) to watch through the global topics (system administrator mode). Repeatable or comma-separated."`
	Queues          []string      `name:"queue" env:"PORTSIP_WSI_QUEUES" sep:"," placeholder:"NUMBER" help:"Tenant mode: queue numbers to watch; empty means every queue the PBX announces."`
	Extensions      []string      `name:"extension" env:"PORTSIP_WSI_EXTENSIONS" sep:"," placeholder:"NUMBER" help:"Tenant mode: extension numbers to watch."`
	PingInterval    time.Duration `name:"ping-interval" default:"${ping_interval}" help:"WebSocket ping period, ${min_ping_interval} to ${max_ping_interval}; a session silent for two periods is considered dead."`

	TLS wsiTLSConfig `embed:"" prefix:"tls."`

	// client is the validated wsi.Config, password loaded.
	client wsi.Config
}

type wsiTLSConfig struct {
	CAFile             string `name:"ca-file" placeholder:"FILE" help:"PEM file with the CA certificate(s) the PBX certificate is verified against, instead of the system roots."`
	InsecureSkipVerify bool   `name:"insecure-skip-verify" help:"Do not verify the PBX certificate. For tests only: anyone on the path can read the password."`
	ServerName         string `name:"server-name" placeholder:"NAME" help:"Name to verify the PBX certificate against, when it differs from the host in --wsi.url."`
}

// wsiVars are the defaults and bounds wsi owns, for the flags' help.
func wsiVars() map[string]string {
	// "1h", not "1h0m0s": kong parses either, people read the first.
	short := func(d time.Duration) string {
		s := d.String()
		if strings.HasSuffix(s, "m0s") {
			s = s[:len(s)-2]
		}
		if strings.HasSuffix(s, "h0m") {
			s = s[:len(s)-2]
		}
		return s
	}
	return map[string]string{
		"ping_interval":     short(wsi.DefaultPingInterval),
		"min_ping_interval": short(wsi.MinPingInterval),
		"max_ping_interval": short(wsi.MaxPingInterval),
	}
}

// wsiFlags names each wsi.Config field as the user sets it.
var wsiFlags = map[wsi.Field]string{
	wsi.FieldURL: "--wsi.url", wsi.FieldUsername: "--wsi.username", wsi.FieldExtensionNumber: "--wsi.extension-number",
	wsi.FieldPassword: passwordEnv, wsi.FieldPasswordFile: "--wsi.password-file", wsi.FieldDomain: "--wsi.domain",
	wsi.FieldTenants: "--wsi.tenant", wsi.FieldQueues: "--wsi.queue", wsi.FieldExtensions: "--wsi.extension",
	wsi.FieldCAFile: "--wsi.tls.ca-file", wsi.FieldServerName: "--wsi.tls.server-name",
	wsi.FieldInsecureSkipVerify: "--wsi.tls.insecure-skip-verify", wsi.FieldPingInterval: "--wsi.ping-interval",
}

// Validate checks the flags with wsi's rules and loads the password, so
// that every configuration mistake is reported before the first
// connection.
func (c *wsiConfig) Validate() error {
	env, envSet := os.LookupEnv(passwordEnv)
	switch {
	// An empty variable beside a file is what compose files and Helm
	// charts leave behind for an unused option: not a second password.
	case c.PasswordFile != "" && env != "":
		return invalid("--wsi.password-file and %s are both set: use one of them", passwordEnv)
	case c.PasswordFile == "" && envSet && env == "":
		return invalid("%s is set but empty", passwordEnv)
	}
	cfg := wsi.Config{
		URL:             c.URL,
		Username:        c.Username,
		ExtensionNumber: c.ExtensionNumber,
		Password:        env,
		PasswordFile:    c.PasswordFile,
		Domain:          c.Domain,
		Tenants:         c.Tenants,
		Queues:          c.Queues,
		Extensions:      c.Extensions,
		TLS:             wsi.TLSConfig{CAFile: c.TLS.CAFile, ServerName: c.TLS.ServerName, InsecureSkipVerify: c.TLS.InsecureSkipVerify},
		PingInterval:    c.PingInterval,
	}
	if err := cfg.Validate(); err != nil {
		var ce *wsi.ConfigError
		if !errors.As(err, &ce) {
			return invalid("WSI settings: %v", err)
		}
		return &validationError{msg: ce.Format(func(f wsi.Field) string {
			if flag, ok := wsiFlags[f]; ok {
				return flag
			}
			return "WSI " + string(f)
		})}
	}
	c.client = cfg
	return nil
}

// clientConfig is the wsi.Config these flags describe. Validate must have
// succeeded.
func (c *wsiConfig) clientConfig() wsi.Config { return c.client }

// redactor removes the password of every command from what the program
// prints.
func (c *cli) redactor() *secret.Redactor {
	return secret.NewRedactor(c.Run.WSI.client.Password, c.Check.WSI.client.Password, c.Record.WSI.client.Password)
}

// webConfig is the exporter's own HTTP endpoint (--web.*), as in every
// Prometheus exporter.
type webConfig struct {
	ListenAddresses []string `name:"listen-address" default:"${default_listen}" help:"Address to serve metrics on, [HOST]:PORT. Repeatable."`
	ConfigFile      string   `name:"config.file" placeholder:"FILE" help:"exporter-toolkit web configuration file enabling TLS and/or basic authentication (https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md)."`
	TelemetryPath   string   `name:"telemetry-path" default:"/metrics" help:"Path under which to expose metrics."`
	MaxRequests     int      `name:"max-requests" default:"40" help:"Most scrapes served at once; more get 503 at once, as node_exporter's."`
}

func (c *webConfig) Validate() error {
	if len(wsi.CleanList(c.ListenAddresses)) == 0 {
		return invalid("--web.listen-address: at least one address is required")
	}
	// A typo is a configuration error (exit 2, before anything starts);
	// only a port that is taken is left for the listener to find.
	for _, a := range wsi.CleanList(c.ListenAddresses) {
		_, port, err := net.SplitHostPort(a)
		if err == nil {
			_, err = net.LookupPort("tcp", port)
		}
		if err != nil {
			return invalid("--web.listen-address: %q is not [HOST]:PORT (e.g. :%s or 127.0.0.1:%s)", a, defaultPort, defaultPort)
		}
	}
	if !strings.HasPrefix(c.TelemetryPath, "/") || c.TelemetryPath == "/" {
		return invalid("--web.telemetry-path: must start with / and not be / itself, got %q", c.TelemetryPath)
	}
	// The path becomes a ServeMux pattern, where a space, "{" or "$" mean
	// something else (and some make it panic), and a "?" never matches.
	if !plainPath.MatchString(c.TelemetryPath) {
		return invalid("--web.telemetry-path: %q may only hold letters, digits, '-', '.', '_', '~' and '/'", c.TelemetryPath)
	}
	switch c.TelemetryPath {
	case healthyPath, readyPath:
		return invalid("--web.telemetry-path: %s is reserved", c.TelemetryPath)
	}
	// Unlike node_exporter's, 0 does not lift the limit: it is what keeps
	// a crowd of scrapers from stalling ingest and filling the memory.
	if c.MaxRequests <= 0 {
		return invalid("--web.max-requests: must be at least 1, got %d", c.MaxRequests)
	}
	if c.ConfigFile != "" {
		if err := web.Validate(c.ConfigFile); err != nil {
			// YAML's unmarshal errors span lines; the message is one.
			return invalid("--web.config.file: %s", oneLine(pathError(err).Error()))
		}
	}
	return nil
}

var plainPath = regexp.MustCompile(`^/[A-Za-z0-9._~/-]+$`)

// collectorConfig switches and bounds what the collector tracks
// (--collector.*).
type collectorConfig struct {
	AgentState     bool          `name:"agent-state" default:"true" negatable:"" help:"Expose one portsip_queue_agent_state series per agent."`
	ExtensionState bool          `name:"extension-state" default:"true" negatable:"" help:"Expose per-extension series (online, presence, call state)."`
	CallExpiry     time.Duration `name:"call-expiry" default:"4h" help:"Forget an active call that got no call_cdr after this long."`
	DefaultSLATime time.Duration `name:"default-sla-time" default:"20s" help:"A queue's SLA time until the PBX sends its own (sla_time_secs)."`

	// Bounds on what a runaway or hostile PBX can make the exporter keep;
	// what does not fit is counted in portsip_exporter_dropped_entities_total.
	MaxTenants         int `name:"max-tenants" default:"${max_tenants}" help:"Most tenants tracked."`
	MaxQueues          int `name:"max-queues" default:"${max_queues}" help:"Most queues tracked, all tenants together."`
	MaxCallersPerQueue int `name:"max-callers-per-queue" default:"${max_callers_per_queue}" help:"Most waiting callers tracked per queue."`
	MaxAgentsPerQueue  int `name:"max-agents-per-queue" default:"${max_agents_per_queue}" help:"Most agents tracked per queue."`
	MaxExtensions      int `name:"max-extensions" default:"${max_extensions}" help:"Most extensions tracked, all tenants together."`
	MaxActiveCalls     int `name:"max-active-calls" default:"${max_active_calls}" help:"Most active calls tracked, all tenants together."`
	MaxTrunkSeries     int `name:"max-trunk-series" default:"${max_trunk_series}" help:"Most portsip_trunk_calls_total series."`
	MaxLabelLength     int `name:"max-label-length" default:"${max_label_length}" help:"Longest label value taken from the PBX, in bytes; longer ones are cut."`
	MaxSeries          int `name:"max-series" default:"500000" help:"Most samples of the exporter's own series /metrics may ever hold, whatever the PBX sends: about 2.2x a PBX of 1,000 queues and 30,000 extensions; raise it for larger PBXs."`
}

func (c *collectorConfig) Validate() error {
	if c.CallExpiry <= 0 {
		return invalid("--collector.call-expiry: must be positive, got %s", c.CallExpiry)
	}
	if c.DefaultSLATime <= 0 {
		return invalid("--collector.default-sla-time: must be positive, got %s", c.DefaultSLATime)
	}
	for _, l := range []struct {
		name string
		v    int
	}{
		{"max-tenants", c.MaxTenants}, {"max-queues", c.MaxQueues},
		{"max-callers-per-queue", c.MaxCallersPerQueue}, {"max-agents-per-queue", c.MaxAgentsPerQueue},
		{"max-extensions", c.MaxExtensions}, {"max-active-calls", c.MaxActiveCalls},
		{"max-trunk-series", c.MaxTrunkSeries}, {"max-label-length", c.MaxLabelLength},
		{"max-series", c.MaxSeries},
	} {
		// Zero would silently mean the collector's default: refuse it.
		if l.v <= 0 {
			return invalid("--collector.%s: must be positive, got %d", l.name, l.v)
		}
	}
	return nil
}

// limitVars are the collector's default limits, for the flags' defaults.
func limitVars() map[string]string {
	d := collector.DefaultLimits
	return map[string]string{
		"max_tenants":           strconv.Itoa(d.Tenants),
		"max_queues":            strconv.Itoa(d.Queues),
		"max_callers_per_queue": strconv.Itoa(d.CallersPerQueue),
		"max_agents_per_queue":  strconv.Itoa(d.AgentsPerQueue),
		"max_extensions":        strconv.Itoa(d.Extensions),
		"max_active_calls":      strconv.Itoa(d.ActiveCalls),
		"max_trunk_series":      strconv.Itoa(d.TrunkSeries),
		"max_label_length":      strconv.Itoa(d.LabelLength),
	}
}

func (c *collectorConfig) config() collector.Config {
	return collector.Config{
		AgentState:     c.AgentState,
		ExtensionState: c.ExtensionState,
		CallExpiry:     c.CallExpiry,
		DefaultSLATime: c.DefaultSLATime,
		MaxSeries:      c.MaxSeries,
		Limits: collector.Limits{
			Tenants:         c.MaxTenants,
			Queues:          c.MaxQueues,
			CallersPerQueue: c.MaxCallersPerQueue,
			AgentsPerQueue:  c.MaxAgentsPerQueue,
			Extensions:      c.MaxExtensions,
			ActiveCalls:     c.MaxActiveCalls,
			TrunkSeries:     c.MaxTrunkSeries,
			LabelLength:     c.MaxLabelLength,
		},
	}
}

// logConfig is --log.*.
type logConfig struct {
	Level  string `name:"level" default:"info" enum:"debug,info,warn,error" help:"Only log messages with the given severity or above: ${enum}."`
	Format string `name:"format" default:"text" enum:"text,logfmt,json" help:"Log format: text (for people; coloured on a terminal), logfmt (key=value pairs) or json (one object per line)."`
}

// pathError shortens *fs.PathError messages to "<path>: <reason>" without
// the operation ("open"), which says nothing to an operator.
func pathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %v", pe.Path, pe.Err)
	}
	return err
}

// validationError is a configuration mistake. Its text names the flag and
// is the whole message the user sees.
type validationError struct{ msg string }

func (e *validationError) Error() string { return e.msg }

func invalid(format string, args ...any) error {
	return &validationError{msg: fmt.Sprintf(format, args...)}
}
