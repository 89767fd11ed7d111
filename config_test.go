package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portsip-exporter/portsip_exporter/collector"
	"github.com/portsip-exporter/portsip_exporter/wsi"
)

// clearEnv unsets every PORTSIP_* variable for the test, so the developer's
// shell cannot change what a test parses.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "PORTSIP_") {
			t.Setenv(k, "") // restores the original value after the test
			os.Unsetenv(k)
		}
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustParse(t *testing.T, args ...string) (*cli, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	c, cmd, code := parseArgs(args, &stdout, &stderr)
	if c == nil {
		t.Fatalf("parseArgs(%q): exit %d, stderr: %s", args, code, stderr.String())
	}
	return c, cmd
}

func TestFlagsGlobalMode(t *testing.T) {
	clearEnv(t)
	pw := writeFile(t, "pw", "s3cret\n")
	certPEM, _ := selfSigned(t)
	ca := writeFile(t, "ca.pem", string(certPEM))
	c, cmd := mustParse(t,
		"--wsi.url=wss://pbx.example.com:8887/wsi",
		"--wsi.username=admin",
		"--wsi.password-file="+pw,
		"--wsi.tenant=1,2", "--wsi.tenant=3",
		"--wsi.tls.ca-file="+ca, "--wsi.tls.server-name=pbx.internal",
		"--wsi.ping-interval=10s",
		"--web.listen-address=127.0.0.1:1234", "--web.listen-address=[::1]:1234",
		"--web.telemetry-path=/m", "--web.max-requests=5",
		"--no-collector.agent-state", "--collector.call-expiry=1h", "--collector.default-sla-time=45s", "--collector.max-series=1000",
		"--log.level=debug", "--log.format=json",
	)
	if cmd != "run" {
		t.Errorf("command = %q, want the default run", cmd)
	}
	got := connection(c.Run.WSI.clientConfig())
	want := wsi.Config{
		URL:          "wss://pbx.example.com:8887/wsi",
		Username:     "admin",
		Password:     "s3cret",
		PasswordFile: pw,
		Tenants:      []string{"1", "2", "3"},
		TLS:          wsi.TLSConfig{CAFile: ca, ServerName: "pbx.internal"},
		PingInterval: 10 * time.Second,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("client config\n got %+v\nwant %+v", got, want)
	}
	if w := []string{"127.0.0.1:1234", "[::1]:1234"}; !reflect.DeepEqual(c.Run.Web.ListenAddresses, w) {
		t.Errorf("listen addresses = %q, want %q", c.Run.Web.ListenAddresses, w)
	}
	if c.Run.Web.TelemetryPath != "/m" || c.Run.Web.MaxRequests != 5 {
		t.Errorf("web config = %+v", c.Run.Web)
	}
	wantCol := collector.Config{AgentState: false, ExtensionState: true, CallExpiry: time.Hour, DefaultSLATime: 45 * time.Second,
		MaxSeries: 1000, Limits: collector.DefaultLimits}
	if got := c.Run.Collector.config(); !reflect.DeepEqual(got, wantCol) {
		t.Errorf("collector config = %+v, want %+v", got, wantCol)
	}
	if c.Log != (logConfig{Level: "debug", Format: "json"}) {
		t.Errorf("log config = %+v", c.Log)
	}
}

// connection is the part of a wsi.Config the flags set.
func connection(c wsi.Config) wsi.Config {
	return wsi.Config{
		URL: c.URL, Username: c.Username, ExtensionNumber: c.ExtensionNumber, Password: c.Password,
		PasswordFile: c.PasswordFile, Domain: c.Domain, Tenants: c.Tenants, Queues: c.Queues,
		Extensions: c.Extensions, TLS: c.TLS, PingInterval: c.PingInterval,
	}
}

func TestEnvTenantMode(t *testing.T) {
	clearEnv(t)
	t.Setenv("PORTSIP_WSI_URL", "ws://127.0.0.1:1/wsi")
	t.Setenv("PORTSIP_WSI_EXTENSION_NUMBER", "101")
	t.Setenv("PORTSIP_WSI_DOMAIN", "sales.example.com")
	t.Setenv("PORTSIP_WSI_PASSWORD", "from-env")
	t.Setenv("PORTSIP_WSI_QUEUES", "8000,8001")
	t.Setenv("PORTSIP_WSI_EXTENSIONS", "101,102")
	c, _ := mustParse(t)
	got := connection(c.Run.WSI.clientConfig())
	want := wsi.Config{
		URL:             "ws://127.0.0.1:1/wsi",
		ExtensionNumber: "101",
		Password:        "from-env",
		Domain:          "sales.example.com",
		Queues:          []string{"8000", "8001"},
		Extensions:      []string{"101", "102"},
		PingInterval:    30 * time.Second,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("client config\n got %+v\nwant %+v", got, want)
	}

	// A flag wins over its environment variable.
	c, _ = mustParse(t, "--wsi.queue=9000")
	if q := c.Run.WSI.clientConfig().Queues; !reflect.DeepEqual(q, []string{"9000"}) {
		t.Errorf("queues = %q, want the flag's", q)
	}
}

func TestEnvTenantsAndPasswordFile(t *testing.T) {
	clearEnv(t)
	t.Setenv("PORTSIP_WSI_URL", "wss://pbx:8887/wsi")
	t.Setenv("PORTSIP_WSI_USERNAME", "admin")
	t.Setenv("PORTSIP_WSI_TENANTS", "11, 22,,33")
	t.Setenv("PORTSIP_WSI_PASSWORD_FILE", writeFile(t, "pw", "pa ss\r\n"))
	c, _ := mustParse(t, "check")
	got := c.Check.WSI.clientConfig()
	if !reflect.DeepEqual(got.Tenants, []string{"11", "22", "33"}) {
		t.Errorf("tenants = %q", got.Tenants)
	}
	if got.Password != "pa ss" {
		t.Errorf("password = %q, want the file's content without the line ending", got.Password)
	}
	if c.Check.Listen != 5*time.Second {
		t.Errorf("check.listen = %s, want the 5s default", c.Check.Listen)
	}
}

func TestDefaults(t *testing.T) {
	clearEnv(t)
	c, cmd := mustParse(t, "demo")
	if cmd != "demo" {
		t.Fatalf("command = %q", cmd)
	}
	wantWeb := webConfig{ListenAddresses: []string{":" + defaultPort}, TelemetryPath: "/metrics", MaxRequests: 40}
	if !reflect.DeepEqual(c.Demo.Web, wantWeb) {
		t.Errorf("web defaults = %+v, want %+v", c.Demo.Web, wantWeb)
	}
	want := collector.Config{AgentState: true, ExtensionState: true, CallExpiry: 4 * time.Hour,
		DefaultSLATime: collector.DefaultSLATime, MaxSeries: 500_000, Limits: collector.DefaultLimits}
	if got := c.Demo.Collector.config(); !reflect.DeepEqual(got, want) {
		t.Errorf("collector defaults = %+v, want %+v", got, want)
	}
	if c.Log != (logConfig{Level: "info", Format: "text"}) {
		t.Errorf("log defaults = %+v", c.Log)
	}
	if c.Demo.Seed != 1 {
		t.Errorf("demo.seed = %d", c.Demo.Seed)
	}
	// demo needs no PBX settings: the demo brings its own.
	c, _ = mustParse(t, "demo", "--demo.seed=7", "--no-collector.extension-state", "--collector.max-queues=5", "--collector.max-label-length=64")
	if c.Demo.Seed != 7 || c.Demo.Collector.ExtensionState {
		t.Errorf("demo flags not applied: %+v", c.Demo)
	}
	if l := c.Demo.Collector.config().Limits; l.Queues != 5 || l.LabelLength != 64 || l.Tenants != collector.DefaultLimits.Tenants {
		t.Errorf("limits = %+v, want queues 5, label length 64, the rest default", l)
	}
}

// TestBadConfiguration runs the whole program with each mistake and checks
// that it stops before connecting, with one line naming the flag.
func TestBadConfiguration(t *testing.T) {
	// A PBX stand-in that counts connections: none may arrive.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	defer func() { ln.Close(); <-done }()

	url := "ws://" + ln.Addr().String() + "/wsi"
	pw := writeFile(t, "pw", "secret\n")
	empty := writeFile(t, "empty", "\n")
	unreadable := filepath.Join(t.TempDir(), "missing")
	// A FIFO with no writer would hang the start past the first SIGTERM.
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	badWeb := writeFile(t, "web.yml", "basic_auth_users: [not a map\n")
	unknownWeb := writeFile(t, "unknown.yml", "basic_auth_user:\n  p: x\n")

	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // substring of the one line
	}{
		{"no url", []string{"--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + pw}, nil, "--wsi.url is required"},
		{"bad scheme", []string{"--wsi.url=https://pbx:8887/wsi", "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + pw}, nil, "--wsi.url: scheme must be wss://"},
		{"credentials in url", []string{"--wsi.url=https://a:secret@pbx/wsi", "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + pw}, nil, "--wsi.url: must not contain credentials"},
		{"credentials without scheme", []string{"--wsi.url=admin:hunter2@pbx:8887/wsi", "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + pw}, nil, "--wsi.url: must start with wss://"},
		{"host without scheme", []string{"--wsi.url=pbx.example.com:8887", "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + pw}, nil, "--wsi.url: must start with wss://"},
		{"ipv6 without brackets", []string{"--wsi.url=wss://::1:8887/wsi", "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + pw}, nil, "--wsi.url: an IPv6 address goes in brackets"},
		{"port out of range", []string{"--wsi.url=wss://pbx:88870/wsi", "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + pw}, nil, "--wsi.url: port 88870 is not between 1 and 65535"},
		{"fragment", []string{"--wsi.url=wss://pbx:8887/wsi#x", "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + pw}, nil, "--wsi.url: a #fragment never reaches the server"},
		{"global without tenants", []string{"--wsi.url=" + url, "--wsi.username=a", "--wsi.password-file=" + pw}, nil, "--wsi.tenant is required"},
		{"tenant not an id", []string{"--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1,acme", "--wsi.password-file=" + pw}, nil, `--wsi.tenant: "acme" is not a tenant id`},
		{"password file is a fifo", []string{"--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + fifo}, nil, "--wsi.password-file: " + fifo + ": not a regular file"},
		{"password file is a device", []string{"--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=/dev/zero"}, nil, "--wsi.password-file: /dev/zero: not a regular file"},
		{"no password", []string{"--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1"}, nil, "no password"},
		{"unreadable password file", []string{"--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + unreadable}, nil, "--wsi.password-file: " + unreadable},
		{"empty password file", []string{"--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + empty}, nil, "--wsi.password-file: " + empty + " is empty"},
		{"password twice", []string{"--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + pw}, map[string]string{"PORTSIP_WSI_PASSWORD": "x"}, "--wsi.password-file and PORTSIP_WSI_PASSWORD are both set"},
		{"extension without domain", []string{"--wsi.url=" + url, "--wsi.extension-number=101", "--wsi.tenant=1", "--wsi.password-file=" + pw}, nil, "--wsi.extension-number needs --wsi.domain"},
		{"username and extension", []string{"--wsi.url=" + url, "--wsi.username=a", "--wsi.extension-number=101", "--wsi.domain=d", "--wsi.password-file=" + pw}, nil, "--wsi.username and --wsi.extension-number are both set"},
		{"no user", []string{"--wsi.url=" + url, "--wsi.tenant=1", "--wsi.password-file=" + pw}, nil, "--wsi.username (or --wsi.extension-number with --wsi.domain) is required"},
		{"queues in global mode", []string{"--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1", "--wsi.queue=8000", "--wsi.password-file=" + pw}, nil, "--wsi.queue only applies with --wsi.domain"},
		{"extensions in global mode", []string{"--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + pw}, map[string]string{"PORTSIP_WSI_EXTENSIONS": "101"}, "--wsi.extension only applies with --wsi.domain"},
		{"tenants in tenant mode", []string{"--wsi.url=" + url, "--wsi.username=a", "--wsi.domain=d", "--wsi.tenant=1", "--wsi.password-file=" + pw}, nil, "--wsi.tenant only applies without --wsi.domain"},
		{"tls flags on ws", []string{"--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1", "--wsi.tls.insecure-skip-verify", "--wsi.password-file=" + pw}, nil, "--wsi.tls.insecure-skip-verify needs a wss:// --wsi.url"},
		{"missing ca file", []string{"--wsi.url=wss://pbx/wsi", "--wsi.username=a", "--wsi.tenant=1", "--wsi.tls.ca-file=" + unreadable, "--wsi.password-file=" + pw}, nil, "--wsi.tls.ca-file: " + unreadable},
		{"ca file without certificates", []string{"--wsi.url=wss://pbx/wsi", "--wsi.username=a", "--wsi.tenant=1", "--wsi.tls.ca-file=" + pw, "--wsi.password-file=" + pw}, nil, "--wsi.tls.ca-file: " + pw + " holds no PEM certificate"},
		{"tiny ping interval", []string{"--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1", "--wsi.ping-interval=1ms", "--wsi.password-file=" + pw}, nil, "--wsi.ping-interval: must be at least 1s"},
		{"huge ping interval", []string{"--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1", "--wsi.ping-interval=2000000h", "--wsi.password-file=" + pw}, nil, "--wsi.ping-interval: must be at least 1s and at most 1h"},
		{"bad web config", []string{"--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + pw, "--web.config.file=" + badWeb}, nil, "--web.config.file:"},
		{"listen address without port", []string{"demo", "--web.listen-address=garbage"}, nil, `--web.listen-address: "garbage" is not [HOST]:PORT`},
		{"listen address port out of range", []string{"demo", "--web.listen-address=127.0.0.1:99999"}, nil, `--web.listen-address: "127.0.0.1:99999" is not [HOST]:PORT`},
		{"unknown web config field", []string{"demo", "--web.config.file=" + unknownWeb}, nil, "--web.config.file: yaml: unmarshal errors: line 1: field basic_auth_user not found"},
		{"telemetry path with a space", []string{"demo", "--web.telemetry-path=/a b"}, nil, `--web.telemetry-path: "/a b" may only hold`},
		{"telemetry path with a wildcard", []string{"demo", "--web.telemetry-path=/m/{x"}, nil, `--web.telemetry-path: "/m/{x" may only hold`},
		{"telemetry path with a query", []string{"demo", "--web.telemetry-path=/m?x=1"}, nil, `--web.telemetry-path: "/m?x=1" may only hold`},
		{"bad telemetry path", []string{"--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + pw, "--web.telemetry-path=metrics"}, nil, "--web.telemetry-path: must start with /"},
		{"bad call expiry", []string{"--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + pw, "--collector.call-expiry=0s"}, nil, "--collector.call-expiry: must be positive"},
		{"password flag", []string{"--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1", "--wsi.password=hunter2"}, nil, "there is no --wsi.password flag, on purpose"},
		{"zero limit", []string{"demo", "--collector.max-extensions=0"}, nil, "--collector.max-extensions: must be positive"},
		{"zero SLA time", []string{"demo", "--collector.default-sla-time=0s"}, nil, "--collector.default-sla-time: must be positive"},
		{"check without tenants", []string{"check", "--wsi.url=" + url, "--wsi.username=a", "--wsi.password-file=" + pw}, nil, "--wsi.tenant is required"},
		{"bad log level", []string{"demo", "--log.level=loud"}, nil, "--log.level must be one of"},
		{"bad log format", []string{"demo", "--log.format=yaml"}, nil, `--log.format must be one of "text","logfmt","json"`},
		{"zero max requests", []string{"demo", "--web.max-requests=0"}, nil, "--web.max-requests: must be at least 1, got 0"},
		{"zero max series", []string{"demo", "--collector.max-series=0"}, nil, "--collector.max-series: must be positive"},
		{"mistyped command", []string{"chek", "--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + pw}, nil, `unknown command "chek", did you mean "check"?`},
		{"mistyped command after flags", []string{"--log.level", "debug", "dmeo"}, nil, `unknown command "dmeo", did you mean "demo"?`},
		{"unknown command", []string{"serve"}, nil, `unknown command "serve" (the exporter itself needs none; the others are demo, check, record, replay)`},
		{"record without file", []string{"record", "--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + pw}, nil, "--record.file is required"},
		{"record over a file", []string{"record", "--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + pw, "--record.file=" + pw}, nil, "--record.file: " + pw + " exists; choose another name, or add --record.force"},
		{"record into a directory", []string{"record", "--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + pw, "--record.file=" + filepath.Dir(pw), "--record.force"}, nil, "is a directory"},
		{"record over a device", []string{"record", "--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + pw, "--record.file=/dev/null", "--record.force"}, nil, "/dev/null is not a regular file"},
		{"negative record duration", []string{"record", "--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + pw, "--record.file=x", "--record.duration=-1s"}, nil, "--record.duration: must not be negative"},
		{"check over a file", []string{"check", "--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + pw, "--record.file=" + pw}, nil, "--record.file: " + pw + " exists"},
		{"replay without file", []string{"replay", "--print"}, nil, "replay needs the capture to replay: portsip_exporter replay FILE"},
		{"replay a missing file", []string{"replay", unreadable}, nil, "replay: " + unreadable + ": no such file or directory"},
		{"replay a file that is not a capture", []string{"replay", pw}, nil, "not a portsip_exporter capture"},
		{"negative replay speed", []string{"replay", pw, "--replay.speed=-1"}, nil, "--replay.speed: must be 0 (as fast as possible) or a positive factor"},
		// Each command refuses the flags it has no use for, before or
		// after its name.
		{"wsi flag to demo", []string{"demo", "--wsi.url=" + url}, nil, "unknown flag --wsi.url"},
		{"wsi flag before demo", []string{"--wsi.url", url, "demo"}, nil, "unknown flag --wsi.url"},
		{"web flag to check", []string{"check", "--wsi.url=" + url, "--wsi.username=a", "--wsi.tenant=1", "--wsi.password-file=" + pw, "--web.listen-address=:1"}, nil, "unknown flag --web.listen-address"},
		{"collector flag to check", []string{"check", "--collector.call-expiry=1h"}, nil, "unknown flag --collector.call-expiry"},
		{"web flag to record", []string{"record", "--web.listen-address=:1"}, nil, "unknown flag --web.listen-address"},
		{"replay flag to record", []string{"record", "--replay.speed=1"}, nil, "unknown flag --replay.speed"},
		{"wsi flag to replay", []string{"replay", pw, "--wsi.url=" + url}, nil, "unknown flag --wsi.url"},
		{"record flag to replay", []string{"replay", pw, "--record.file=x"}, nil, "unknown flag --record.file"},
		{"record flag to the exporter", []string{"--record.file=x"}, nil, "unknown flag --record.file"},
		{"print to demo", []string{"demo", "--print"}, nil, "unknown flag --print"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != exitUsage {
				t.Errorf("exit code = %d, want %d", code, exitUsage)
			}
			msg := stderr.String()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("stderr = %q, want it to contain %q", msg, tt.want)
			}
			if !strings.HasPrefix(msg, programName+": error: ") {
				t.Errorf("stderr = %q, want it to start with %q", msg, programName+": error: ")
			}
			// Kong's own errors get a second line pointing at --help; ours
			// are complete in one.
			if lines := strings.Count(msg, "\n"); lines != 1 && !strings.Contains(msg, "--help") {
				t.Errorf("stderr has %d lines, want 1: %q", lines, msg)
			}
			if strings.Contains(msg, "goroutine") || strings.Contains(msg, "panic") {
				t.Errorf("stderr looks like a crash: %q", msg)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
			if strings.Contains(msg, "hunter2") || strings.Contains(msg, "secret") {
				t.Errorf("stderr repeats a password: %q", msg)
			}
		})
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the PBX stand-in got %d connections from bad configurations, want 0", n)
	}
}

// help runs the program with args and returns what it printed, failing
// unless it exited 0.
func help(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("%q: exit %d, stderr %q", args, code, stderr.String())
	}
	return stdout.String()
}

// The top-level --help lists the exporter's own flags, as node_exporter's
// does, then the other commands; each command's help lists its flags and
// no other command's.
func TestHelp(t *testing.T) {
	clearEnv(t)
	top := help(t, "--help")
	for _, want := range []string{
		"Usage: portsip_exporter [flags]", "portsip_exporter <command> [flags]", "PORTSIP_WSI_PASSWORD",
		"--wsi.url=wss://HOST:8887/wsi", "$PORTSIP_WSI_URL", "--wsi.tenant", "$PORTSIP_WSI_TENANTS", "--wsi.tls.ca-file",
		"--web.listen-address=:" + defaultPort, "--web.config.file", "--web.max-requests=40",
		"--[no-]collector.agent-state", "--collector.max-series=500000",
		"--log.level", "--log.format", "logfmt", "--version",
		"PBX connection (WSI) flags:", "Web server flags:", "Collector flags:",
		"Commands:", "  demo", "  check", "Examples:",
	} {
		if !strings.Contains(top, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	// Flags first, then the commands, then the examples.
	if f, c, e := strings.Index(top, "--wsi.url"), strings.Index(top, "Commands:"), strings.Index(top, "Examples:"); !(f < c && c < e) {
		t.Errorf("--help order: flags at %d, commands at %d, examples at %d", f, c, e)
	}
	// The exporter is no command of its own in the list.
	if strings.Contains(top, "  run ") {
		t.Errorf("--help lists the hidden run command:\n%s", top)
	}
	// The password is an environment variable only: no flag may take it.
	if strings.Contains(top, "--wsi.password=") {
		t.Errorf("--help offers a password flag")
	}
	for _, args := range [][]string{{"run", "--help"}, {"help"}, {"-h"}} {
		if got := help(t, args...); got != top {
			t.Errorf("%q differs from --help:\n%s", args, got)
		}
	}

	for _, tt := range []struct {
		args          []string
		want, notWant []string
	}{
		{[]string{"demo", "--help"}, []string{"Usage: portsip_exporter demo", "--web.listen-address", "--web.max-requests", "--collector.max-series", "--demo.seed", "--log.format"}, []string{"--wsi.", "Examples:"}},
		{[]string{"check", "--help"}, []string{"Usage: portsip_exporter check", "--wsi.url", "--check.listen", "--log.level"}, []string{"--web.", "--collector."}},
		{[]string{"help", "check"}, []string{"Usage: portsip_exporter check"}, []string{"--web."}},
		{[]string{"--log.level=debug", "demo", "--help"}, []string{"Usage: portsip_exporter demo"}, []string{"--wsi."}},
	} {
		out := help(t, tt.args...)
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%q lacks %q", tt.args, w)
			}
		}
		for _, w := range tt.notWant {
			if strings.Contains(out, w) {
				t.Errorf("%q shows %q, which is not that command's", tt.args, w)
			}
		}
	}
}

func TestVersion(t *testing.T) {
	out := help(t, "--version")
	b := getBuildInfo()
	for _, want := range []string{programName, "version " + b.Version, "revision: " + b.Revision, b.GoVersion} {
		if !strings.Contains(out, want) {
			t.Errorf("--version output %q lacks %q", out, want)
		}
	}
}

// A parse error points at the help of the command it happened in.
func TestErrorPointsAtCommandHelp(t *testing.T) {
	clearEnv(t)
	for args, want := range map[string]string{
		"demo --nope":    `Run "portsip_exporter demo --help" for the flags.`,
		"check --nope":   `Run "portsip_exporter check --help" for the flags.`,
		"--nope":         `Run "portsip_exporter --help" for the flags.`,
		"run --nope":     `Run "portsip_exporter --help" for the flags.`,
		"chek":           `Run "portsip_exporter --help" for the commands and flags.`,
		"demo --wsi.url": `Run "portsip_exporter demo --help" for the flags.`,
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), strings.Fields(args), &stdout, &stderr); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
		if !strings.HasSuffix(stderr.String(), want+"\n") {
			t.Errorf("%q: stderr %q, want it to end with %q", args, stderr.String(), want)
		}
	}
}

// Flags may come before the command's name as well as after it.
func TestFlagsBeforeCommand(t *testing.T) {
	clearEnv(t)
	c, cmd := mustParse(t, "--log.level", "debug", "--web.listen-address=127.0.0.1:1234", "demo", "--demo.seed=3")
	if cmd != "demo" || c.Log.Level != "debug" || c.Demo.Seed != 3 || !reflect.DeepEqual(c.Demo.Web.ListenAddresses, []string{"127.0.0.1:1234"}) {
		t.Errorf("command %q, log %+v, demo %+v", cmd, c.Log, c.Demo)
	}
	// A flag's value that is a command's name is still the value.
	t.Setenv("PORTSIP_WSI_PASSWORD", "x")
	c, cmd = mustParse(t, "--wsi.url=ws://127.0.0.1:1/wsi", "--wsi.username", "check", "--wsi.tenant=1")
	if cmd != "run" || c.Run.WSI.Username != "check" {
		t.Errorf("command %q, user %q; want the exporter with user check", cmd, c.Run.WSI.Username)
	}
}

// An empty value is what deployment templates leave for an option not
// used: it must mean "not set", not the working directory or a second
// password.
func TestEmptyValuesMeanUnset(t *testing.T) {
	certPEM, _ := selfSigned(t)
	ca := writeFile(t, "ca.pem", string(certPEM))
	pw := writeFile(t, "pw", "from-file\n")
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		want string // the password loaded
	}{
		{"empty password file variable", map[string]string{"PORTSIP_WSI_PASSWORD_FILE": "", "PORTSIP_WSI_PASSWORD": "from-env"}, nil, "from-env"},
		{"empty password variable", map[string]string{"PORTSIP_WSI_PASSWORD": ""}, []string{"--wsi.password-file=" + pw}, "from-file"},
		{"empty file flags", map[string]string{"PORTSIP_WSI_PASSWORD": "from-env"}, []string{"--wsi.password-file=", "--wsi.tls.ca-file=", "--web.config.file="}, "from-env"},
		{"a ca file is still read", map[string]string{"PORTSIP_WSI_PASSWORD": "from-env"}, []string{"--wsi.tls.ca-file=" + ca}, "from-env"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := append([]string{"--wsi.url=wss://pbx.example.com:8887/wsi", "--wsi.username=admin", "--wsi.tenant=1"}, tt.args...)
			var stdout, stderr bytes.Buffer
			c, _, code := parseArgs(args, &stdout, &stderr)
			if c == nil {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if got := c.Run.WSI.clientConfig().Password; got != tt.want {
				t.Errorf("password = %q, want %q", got, tt.want)
			}
			if c.Run.Web.ConfigFile != "" {
				t.Errorf("web config file = %q, want none", c.Run.Web.ConfigFile)
			}
		})
	}
}

// URLs a user may reasonably write, accepted as the client will use them.
func TestURLForms(t *testing.T) {
	for in, want := range map[string]string{
		"wss://[2001:db8::1]:8887/wsi":        "wss://[2001:db8::1]:8887/wsi",
		" wss://pbx.example.com:8887/wsi\r\n": "wss://pbx.example.com:8887/wsi",
		"ws://127.0.0.1:8887/wsi?v=1":         "ws://127.0.0.1:8887/wsi?v=1",
		"wss://pbx.example.com/wsi":           "wss://pbx.example.com/wsi",
	} {
		clearEnv(t)
		t.Setenv("PORTSIP_WSI_PASSWORD", "x")
		t.Setenv("PORTSIP_WSI_URL", in)
		c, _ := mustParse(t, "--wsi.username=admin", "--wsi.tenant=1")
		if got := c.Run.WSI.clientConfig().URL; got != want {
			t.Errorf("URL %q became %q, want %q", in, got, want)
		}
	}
}

// A password or CA path pointing at the wrong, large file (a log, a disk
// image, /dev/zero) is refused with a message instead of read whole.
func TestLargeFilesRefused(t *testing.T) {
	const maxCAFile = 4 << 20
	big := writeFile(t, "big", strings.Repeat("x", maxCAFile+1))
	pw := writeFile(t, "pw", "secret\n")
	for flag, args := range map[string][]string{
		"--wsi.password-file": {"--wsi.password-file=" + big},
		"--wsi.tls.ca-file":   {"--wsi.password-file=" + pw, "--wsi.tls.ca-file=" + big},
	} {
		clearEnv(t)
		var stdout, stderr bytes.Buffer
		c, _, code := parseArgs(append([]string{"--wsi.url=wss://pbx.example.com:8887/wsi", "--wsi.username=admin", "--wsi.tenant=1"}, args...), &stdout, &stderr)
		if c != nil || code != exitUsage {
			t.Errorf("%s: a %d-byte file was accepted (exit %d)", flag, maxCAFile+1, code)
			continue
		}
		if want := flag + ": " + big + ": larger than"; !strings.Contains(stderr.String(), want) {
			t.Errorf("%s: stderr = %q, want it to contain %q", flag, stderr.String(), want)
		}
	}
}
