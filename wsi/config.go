package wsi

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Config configures a Client: how to reach and log in to the PBX, what to
// watch, the session's timings. Validate checks it; durations and sizes
// not above zero take the defaults.
type Config struct {
	URL string // wss://pbx:8887/wsi (ws:// for tests)

	// Authentication: Username, or ExtensionNumber (which needs Domain).
	// Without Domain the user is a system administrator and the global
	// topics are used with Tenants; with Domain the tenant topics are used.
	Username        string
	ExtensionNumber string
	Password        string
	// PasswordFile, when set, holds the password (a trailing newline is
	// ignored); Validate reads it into Password.
	PasswordFile string
	Domain       string

	Tenants    []string // global mode: tenant ids; events of any other tenant are ignored
	Queues     []string // tenant mode: queue numbers; empty = learn them
	Extensions []string // tenant mode: extension numbers for extension_events

	TLS TLSConfig

	PingInterval     time.Duration // MinPingInterval..MaxPingInterval; a session silent for two periods is dead
	HandshakeTimeout time.Duration // dial + WebSocket handshake, and the auth reply
	SubscribeTimeout time.Duration // wait for subscribe replies before assuming accepted
	MaxMessageSize   int64         // larger frames are skipped as oversized

	// Back-off between attempts (see Client), started over after a session
	// stayed up HealthyAfter. A refused login backs off longer, as PBXs
	// lock accounts after repeated failed sign-ins.
	BackoffInitial      time.Duration
	BackoffMax          time.Duration
	HealthyAfter        time.Duration
	LoginBackoffInitial time.Duration
	LoginBackoffMax     time.Duration

	Logger *slog.Logger // default: discard; the Client redacts the password from it
	// Tap, when set, sees every Record in the order the session handled
	// them, from the goroutine running Run, Check or Feed.
	Tap func(Record)

	files loadedFiles // what Validate read, so a second Validate reads nothing
}

// TLSConfig is how the Client verifies a wss:// PBX.
type TLSConfig struct {
	// CAFile is a PEM bundle that replaces the system roots, for a PBX with
	// a private or self-signed CA.
	CAFile             string
	ServerName         string // expected name in the PBX's certificate; default the URL's host
	InsecureSkipVerify bool   // accept any certificate; New logs a warning
}

// Defaults of the zero Config fields, and the bounds of the ping period: a
// huge period would overflow the read deadline (two periods away) into the
// past, a tiny one floods the PBX.
const (
	DefaultPingInterval        = 30 * time.Second
	DefaultHandshakeTimeout    = 10 * time.Second
	DefaultSubscribeTimeout    = 5 * time.Second
	DefaultMaxMessageSize      = 16 << 20
	DefaultBackoffInitial      = time.Second
	DefaultBackoffMax          = time.Minute
	DefaultHealthyAfter        = time.Minute
	DefaultLoginBackoffInitial = time.Minute
	DefaultLoginBackoffMax     = 15 * time.Minute

	MinPingInterval = time.Second
	MaxPingInterval = time.Hour

	// Bounds on the files Validate reads: a mistyped path such as
	// /dev/zero or a log file must fail with a message, not fill memory.
	maxPasswordFile = 4 << 10
	maxCAFile       = 4 << 20 // the system bundles are about 200 KiB
)

// minPingInterval is MinPingInterval; the package's tests lower it.
var minPingInterval = MinPingInterval

// Field names a Config field in a ConfigError, as its Go name.
type Field string

// Fields a ConfigError may name.
const (
	FieldURL, FieldUsername, FieldExtensionNumber, FieldDomain Field = "URL", "Username", "ExtensionNumber", "Domain"
	FieldPassword, FieldPasswordFile, FieldPingInterval        Field = "Password", "PasswordFile", "PingInterval"
	FieldTenants, FieldQueues, FieldExtensions                 Field = "Tenants", "Queues", "Extensions"
	FieldCAFile, FieldServerName, FieldInsecureSkipVerify      Field = "TLS.CAFile", "TLS.ServerName", "TLS.InsecureSkipVerify"
)

// ConfigError is a configuration mistake. Its message names the fields it
// is about; Format lets a command line name its flags instead. It never
// contains the password or the URL (which may hold one by mistake).
type ConfigError struct {
	Field  Field   // the field at fault
	Fields []Field // every field the message names, in order, Field first
	msg    string  // with one %s per entry of Fields
}

func (e *ConfigError) Error() string { return e.Format(func(f Field) string { return string(f) }) }

// Format is the message with each field called by name(field).
func (e *ConfigError) Format(name func(Field) string) string {
	args := make([]any, len(e.Fields))
	for i, f := range e.Fields {
		args[i] = name(f)
	}
	return fmt.Sprintf(e.msg, args...)
}

// bad is a ConfigError about f; msg has a %s for f and one for each of
// also. Values from the user go in through quote, never as format verbs.
func bad(f Field, msg string, also ...Field) *ConfigError {
	return &ConfigError{Field: f, Fields: append([]Field{f}, also...), msg: msg}
}

// quote is v, shortened and quoted, safe to put into a ConfigError's msg.
func quote(v string) string { return esc(strconv.Quote(clip(v, 64))) }

// esc makes s safe to put into a ConfigError's msg.
func esc(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// Validate checks the Config, reads PasswordFile and TLS.CAFile (once: a
// later Validate of the same Config reads nothing), cleans the lists (see
// CleanList) and applies the defaults. Every error is a *ConfigError. New
// calls it.
func (c *Config) Validate() error {
	// Env files edited on Windows end lines in \r, and a stray space turns
	// the path into "/wsi%20" and the PBX's answer into a 404.
	c.URL = strings.TrimSpace(c.URL)
	u, err := c.checkURL()
	if err != nil {
		return err
	}
	switch {
	case c.Username != "" && c.ExtensionNumber != "":
		return bad(FieldUsername, "%s and %s are both set: authenticate with one of them", FieldExtensionNumber)
	case c.Username == "" && c.ExtensionNumber == "":
		return bad(FieldUsername, "%s (or %s with %s) is required", FieldExtensionNumber, FieldDomain)
	case c.ExtensionNumber != "" && c.Domain == "":
		return bad(FieldExtensionNumber, "%s needs %s: extension users belong to a tenant", FieldDomain)
	}
	c.Tenants, c.Queues, c.Extensions = CleanList(c.Tenants), CleanList(c.Queues), CleanList(c.Extensions)
	if err := c.checkMode(); err != nil {
		return err
	}
	if c.PingInterval != 0 && (c.PingInterval < minPingInterval || c.PingInterval > MaxPingInterval) {
		return bad(FieldPingInterval, fmt.Sprintf("%%s: must be at least %s and at most %s, got %s", minPingInterval, MaxPingInterval, c.PingInterval))
	}
	c.setDefaults()
	set := map[Field]bool{FieldCAFile: c.TLS.CAFile != "", FieldServerName: c.TLS.ServerName != "", FieldInsecureSkipVerify: c.TLS.InsecureSkipVerify}
	for _, f := range []Field{FieldCAFile, FieldServerName, FieldInsecureSkipVerify} {
		if set[f] && u.Scheme == "ws" {
			return bad(f, "%s needs a wss:// %s", FieldURL)
		}
	}
	if err := c.files.load(c); err != nil {
		return err
	}
	if c.PasswordFile != "" {
		c.Password = c.files.password
	}
	if c.Password == "" {
		return bad(FieldPassword, "no password: set %[2]s or %[1]s", FieldPasswordFile)
	}
	return nil
}

// checkURL never repeats the URL: "admin:secret@pbx:8887" parses as
// scheme "admin", and its error must not print the password.
func (c *Config) checkURL() (*url.URL, error) {
	const eg = " (e.g. wss://pbx.example.com:8887/wsi)"
	if c.URL == "" {
		return nil, bad(FieldURL, "%s is required"+eg)
	}
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		return nil, bad(FieldURL, "%s: not a valid URL"+eg)
	case u.User != nil:
		return nil, bad(FieldURL, "%s: must not contain credentials; use %s and %s", FieldUsername, FieldPasswordFile)
	case u.Opaque != "" || u.Scheme == "":
		return nil, bad(FieldURL, "%s: must start with wss:// (or ws://)"+eg)
	case u.Scheme != "ws" && u.Scheme != "wss":
		return nil, bad(FieldURL, "%s: scheme must be wss:// (or ws://), not "+quote(u.Scheme))
	case u.Host == "":
		return nil, bad(FieldURL, "%s: no host"+eg)
	case strings.Contains(u.Hostname(), ":") && !strings.HasPrefix(u.Host, "["):
		return nil, bad(FieldURL, "%s: an IPv6 address goes in brackets, e.g. wss://[2001:db8::1]:8887/wsi")
	case strings.Contains(c.URL, "#"):
		return nil, bad(FieldURL, "%s: a #fragment never reaches the server; remove it")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, bad(FieldURL, "%s: port "+esc(p)+" is not between 1 and 65535")
		}
	}
	return u, nil
}

// checkMode checks the lists against the login mode (see topics).
func (c *Config) checkMode() error {
	if c.Domain != "" {
		if len(c.Tenants) > 0 {
			return bad(FieldTenants, "%s only applies without %s (system administrator mode)", FieldDomain)
		}
		return nil
	}
	switch {
	case len(c.Tenants) == 0:
		return bad(FieldTenants, "%s is required without %s: a system administrator watches tenants through the global topics", FieldDomain)
	case len(c.Queues) > 0:
		return bad(FieldQueues, "%s only applies with %s (tenant mode); the global topics cover every queue of the tenants", FieldDomain)
	case len(c.Extensions) > 0:
		return bad(FieldExtensions, "%s only applies with %s (tenant mode); the global topics cover every extension of the tenants", FieldDomain)
	}
	for _, t := range c.Tenants {
		// A mistyped id subscribes nothing and looks like a quiet tenant.
		if len(t) > 20 || strings.Trim(t, "0123456789") != "" {
			return bad(FieldTenants, "%s: "+quote(t)+" is not a tenant id: the PBX's tenant ids are numbers, as in the tenant_id of its events")
		}
	}
	return nil
}

func (c *Config) setDefaults() {
	for d, def := range map[*time.Duration]time.Duration{
		&c.PingInterval: DefaultPingInterval, &c.HandshakeTimeout: DefaultHandshakeTimeout,
		&c.SubscribeTimeout: DefaultSubscribeTimeout, &c.BackoffInitial: DefaultBackoffInitial,
		&c.BackoffMax: DefaultBackoffMax, &c.HealthyAfter: DefaultHealthyAfter,
		&c.LoginBackoffInitial: DefaultLoginBackoffInitial, &c.LoginBackoffMax: DefaultLoginBackoffMax,
	} {
		if *d <= 0 {
			*d = def
		}
	}
	c.BackoffMax, c.LoginBackoffMax = max(c.BackoffMax, c.BackoffInitial), max(c.LoginBackoffMax, c.LoginBackoffInitial)
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
}

// topics is what the mode subscribes, in order: a system administrator
// the global topics with "tenants", a tenant user the tenant topics
// (queue_events once per queue).
func (c *Config) topics() []string {
	if c.Domain == "" {
		return []string{TopicGlobalQueueEvents, TopicGlobalQueueManagement, TopicGlobalExtensionEvents, TopicGlobalExtensionManagement, TopicGlobalCDREvents}
	}
	t := []string{TopicQueueManagementEvents, TopicCDREvents, TopicQueueEvents}
	if len(c.Extensions) > 0 {
		t = append(t, TopicExtensionEvents)
	}
	return t
}

// CleanList trims each entry and drops empty and repeated ones, keeping
// the order: "a,,b" or an empty variable must not smuggle in an id.
func CleanList(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// loadedFiles is what Validate read, by file name.
type loadedFiles struct {
	passwordFile, password string
	caFile                 string
	roots                  *x509.CertPool
}

func (l *loadedFiles) load(c *Config) error {
	if c.PasswordFile != "" && c.PasswordFile != l.passwordFile {
		b, err := readFile(FieldPasswordFile, c.PasswordFile, maxPasswordFile)
		if err != nil {
			return err
		}
		if l.password = strings.TrimRight(string(b), "\r\n"); l.password == "" {
			return bad(FieldPasswordFile, "%s: "+esc(c.PasswordFile)+" is empty")
		}
		l.passwordFile = c.PasswordFile
	}
	if c.TLS.CAFile != "" && c.TLS.CAFile != l.caFile {
		pem, err := readFile(FieldCAFile, c.TLS.CAFile, maxCAFile)
		if err != nil {
			return err
		}
		if l.roots = x509.NewCertPool(); !l.roots.AppendCertsFromPEM(pem) {
			return bad(FieldCAFile, "%s: "+esc(c.TLS.CAFile)+" holds no PEM certificate")
		}
		l.caFile = c.TLS.CAFile
	}
	return nil
}

// readFile reads a regular file of at most limit bytes. It opens without
// blocking and refuses anything else, so that a FIFO with no writer or a
// device cannot hang the start.
func readFile(f Field, name string, limit int64) ([]byte, error) {
	fail := func(why string) error { return bad(f, "%s: "+esc(name)+": "+why) }
	file, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is said once, and "open" says nothing
		}
		return nil, fail(esc(err.Error()))
	}
	defer file.Close()
	if fi, err := file.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fail("not a regular file")
	}
	b, err := io.ReadAll(io.LimitReader(file, limit+1))
	switch {
	case err != nil:
		return nil, fail("cannot be read")
	case int64(len(b)) > limit:
		return nil, fail(fmt.Sprintf("larger than %d bytes, so not the right file", limit))
	}
	return b, nil
}

// tlsConfig is the TLS configuration of a validated Config.
func (c *Config) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.TLS.ServerName,
		RootCAs:            c.files.roots,
		InsecureSkipVerify: c.TLS.InsecureSkipVerify, //nolint:gosec // an explicit, logged operator choice
	}
}
