package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/portsip-exporter/portsip_exporter/collector"
	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// passwordEnv holds the PBX password when no --wsi.password-file is given.
// It is deliberately not a flag: command lines show up in ps and in shell
// history.
const passwordEnv = "PORTSIP_WSI_PASSWORD"

// wsiConfig is how to reach and log in to the PBX (--wsi.*).
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
	Tenants         []string      `name:"tenant" env:"PORTSIP_WSI_TENANTS" sep:"," placeholder:"ID" help:"Tenant id to watch through the global topics (system administrator mode). Repeatable or comma-separated."`
	Queues          []string      `name:"queue" env:"PORTSIP_WSI_QUEUES" sep:"," placeholder:"NUMBER" help:"Tenant mode: queue numbers to watch; empty means every queue the PBX announces."`
	Extensions      []string      `name:"extension" env:"PORTSIP_WSI_EXTENSIONS" sep:"," placeholder:"NUMBER" help:"Tenant mode: extension numbers to watch."`
	PingInterval    time.Duration `name:"ping-interval" default:"30s" help:"WebSocket ping period, 1s to 1h; a session silent for two periods is considered dead."`

	TLS wsiTLSConfig `embed:"" prefix:"tls."`

	// password is loaded by Validate from the file or the environment.
	password string
}

type wsiTLSConfig struct {
	CAFile             string `name:"ca-file" placeholder:"FILE" help:"PEM file with the CA certificate(s) the PBX certificate is verified against, instead of the system roots."`
	InsecureSkipVerify bool   `name:"insecure-skip-verify" help:"Do not verify the PBX certificate. For tests only: anyone on the path can read the password."`
	ServerName         string `name:"server-name" placeholder:"NAME" help:"Name to verify the PBX certificate against, when it differs from the host in --wsi.url."`
}

// Validate checks the combination of flags and loads the password, so that
// every configuration mistake is reported before the first connection.
func (c *wsiConfig) Validate() error {
	// Env files edited on Windows end lines in \r, and a stray space turns
	// the path into "/wsi%20" and the PBX's answer into a 404.
	c.URL = strings.TrimSpace(c.URL)
	if c.URL == "" {
		return invalid("--wsi.url is required (e.g. --wsi.url=wss://pbx.example.com:8887/wsi or PORTSIP_WSI_URL)")
	}
	// No message below repeats the URL: "admin:secret@pbx:8887" parses as
	// scheme "admin", and its error must not print the password.
	u, err := url.Parse(c.URL)
	if err != nil {
		return invalid("--wsi.url: not a valid URL (e.g. wss://pbx.example.com:8887/wsi)")
	}
	if u.User != nil {
		return invalid("--wsi.url: must not contain credentials; use --wsi.username and --wsi.password-file")
	}
	if u.Opaque != "" || u.Scheme == "" {
		return invalid("--wsi.url: must start with wss:// (or ws://), e.g. wss://pbx.example.com:8887/wsi")
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return invalid("--wsi.url: scheme must be wss:// (or ws://), not %s://", u.Scheme)
	}
	if u.Host == "" {
		return invalid("--wsi.url: no host (e.g. wss://pbx.example.com:8887/wsi)")
	}
	if strings.Contains(u.Hostname(), ":") && !strings.HasPrefix(u.Host, "[") {
		return invalid("--wsi.url: an IPv6 address goes in brackets, e.g. wss://[2001:db8::1]:8887/wsi")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return invalid("--wsi.url: port %s is not between 1 and 65535", p)
		}
	}
	if strings.Contains(c.URL, "#") {
		return invalid("--wsi.url: a #fragment never reaches the server; remove it")
	}

	switch {
	case c.Username != "" && c.ExtensionNumber != "":
		return invalid("--wsi.username and --wsi.extension-number are both set: authenticate with one of them")
	case c.Username == "" && c.ExtensionNumber == "":
		return invalid("--wsi.username (or --wsi.extension-number with --wsi.domain) is required")
	case c.ExtensionNumber != "" && c.Domain == "":
		return invalid("--wsi.extension-number needs --wsi.domain: extension users belong to a tenant")
	}

	if c.Domain == "" {
		if len(nonEmpty(c.Tenants)) == 0 {
			return invalid("--wsi.tenant is required without --wsi.domain: a system administrator watches tenants through the global topics")
		}
		if len(nonEmpty(c.Queues)) > 0 {
			return invalid("--wsi.queue only applies with --wsi.domain (tenant mode); the global topics cover every queue of the tenants")
		}
		if len(nonEmpty(c.Extensions)) > 0 {
			return invalid("--wsi.extension only applies with --wsi.domain (tenant mode); the global topics cover every extension of the tenants")
		}
	} else if len(nonEmpty(c.Tenants)) > 0 {
		return invalid("--wsi.tenant only applies without --wsi.domain (system administrator mode)")
	}

	// Above an hour a dead session goes unnoticed for hours, and twice a
	// huge value overflows into a read deadline in the past.
	if c.PingInterval < time.Second || c.PingInterval > time.Hour {
		return invalid("--wsi.ping-interval: must be at least 1s and at most 1h, got %s", c.PingInterval)
	}
	if c.TLS.CAFile != "" {
		pem, err := readSmallFile(c.TLS.CAFile, maxCAFile)
		if err != nil {
			return invalid("--wsi.tls.ca-file: %v", pathError(err))
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return invalid("--wsi.tls.ca-file: %s holds no PEM certificate", c.TLS.CAFile)
		}
	}
	if u.Scheme == "ws" && (c.TLS.CAFile != "" || c.TLS.ServerName != "" || c.TLS.InsecureSkipVerify) {
		return invalid("--wsi.tls.* flags need a wss:// --wsi.url")
	}

	if err := c.loadPassword(); err != nil {
		return err
	}
	// The client checks the same things; anything it still refuses is a
	// configuration error too and must stop the start.
	if _, err := wsi.New(c.clientConfig()); err != nil {
		return invalid("WSI settings: %v", err)
	}
	return nil
}

func (c *wsiConfig) loadPassword() error {
	env, envSet := os.LookupEnv(passwordEnv)
	switch {
	// An empty variable beside a file is what compose files and Helm
	// charts leave behind for an unused option: not a second password.
	case c.PasswordFile != "" && env != "":
		return invalid("--wsi.password-file and %s are both set: use one of them", passwordEnv)
	case c.PasswordFile != "":
		b, err := readSmallFile(c.PasswordFile, maxPasswordFile)
		if err != nil {
			return invalid("--wsi.password-file: %v", pathError(err))
		}
		c.password = strings.TrimRight(string(b), "\r\n")
		if c.password == "" {
			return invalid("--wsi.password-file: %s is empty", c.PasswordFile)
		}
	case envSet:
		if env == "" {
			return invalid("%s is set but empty", passwordEnv)
		}
		c.password = env
	default:
		return invalid("no password: set --wsi.password-file (or PORTSIP_WSI_PASSWORD_FILE) or %s", passwordEnv)
	}
	return nil
}

// clientConfig is the wsi.Config these flags describe. Validate must have
// succeeded.
func (c *wsiConfig) clientConfig() wsi.Config {
	return wsi.Config{
		URL:             c.URL,
		Username:        c.Username,
		ExtensionNumber: c.ExtensionNumber,
		Password:        c.password,
		Domain:          c.Domain,
		Tenants:         nonEmpty(c.Tenants),
		Queues:          nonEmpty(c.Queues),
		Extensions:      nonEmpty(c.Extensions),
		TLS: wsi.TLSConfig{
			CAFile:             c.TLS.CAFile,
			ServerName:         c.TLS.ServerName,
			InsecureSkipVerify: c.TLS.InsecureSkipVerify,
		},
		PingInterval: c.PingInterval,
	}
}

// webConfig is the exporter's own HTTP endpoint (--web.*), as in every
// Prometheus exporter.
type webConfig struct {
	ListenAddresses []string `name:"listen-address" default:"${default_listen}" help:"Address to serve metrics on, [HOST]:PORT. Repeatable."`
	ConfigFile      string   `name:"config.file" placeholder:"FILE" help:"exporter-toolkit web configuration file enabling TLS and/or basic authentication (https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md)."`
	TelemetryPath   string   `name:"telemetry-path" default:"/metrics" help:"Path under which to expose metrics."`
}

func (c *webConfig) Validate() error {
	if len(nonEmpty(c.ListenAddresses)) == 0 {
		return invalid("--web.listen-address: at least one address is required")
	}
	// A typo is a configuration error (exit 2, before anything starts);
	// only a port that is taken is left for the listener to find.
	for _, a := range nonEmpty(c.ListenAddresses) {
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
}

func (c *collectorConfig) Validate() error {
	if c.CallExpiry <= 0 {
		return invalid("--collector.call-expiry: must be positive, got %s", c.CallExpiry)
	}
	for _, l := range []struct {
		name string
		v    int
	}{
		{"max-tenants", c.MaxTenants}, {"max-queues", c.MaxQueues},
		{"max-callers-per-queue", c.MaxCallersPerQueue}, {"max-agents-per-queue", c.MaxAgentsPerQueue},
		{"max-extensions", c.MaxExtensions}, {"max-active-calls", c.MaxActiveCalls},
		{"max-trunk-series", c.MaxTrunkSeries}, {"max-label-length", c.MaxLabelLength},
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
	Format string `name:"format" default:"text" enum:"text,json" help:"Log format: text (coloured on a terminal) or json (one object per line)."`
}

// nonEmpty drops empty and blank entries, which "a,,b" or an empty
// environment variable would otherwise smuggle in as ids.
func nonEmpty(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Bounds on the files read at start: a mistyped path such as /dev/zero or
// a log file must fail with a message, not fill the memory.
const (
	maxPasswordFile = 4 << 10
	maxCAFile       = 4 << 20 // the system bundles are about 200 KiB
)

// readSmallFile reads a file of at most limit bytes.
func readSmallFile(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes, so not the right file", name, limit)
	}
	return b, nil
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
