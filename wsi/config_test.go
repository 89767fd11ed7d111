package wsi

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Every mistake is a *ConfigError naming the field at fault, with a
// message that never repeats the URL or the password.
func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	good := Config{URL: "wss://pbx:8887/wsi", Username: "boss", Password: password, Domain: domain}
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		field Field
		want  string
	}{
		{"no url", func(c *Config) { c.URL = " \r\n" }, FieldURL, "URL is required"},
		{"scheme", func(c *Config) { c.URL = "https://pbx:8887/wsi" }, FieldURL, `scheme must be wss:// (or ws://), not "https"`},
		{"credentials", func(c *Config) { c.URL = "wss://admin:" + password + "@pbx/wsi" }, FieldURL, "URL: must not contain credentials; use Username and PasswordFile"},
		{"no scheme", func(c *Config) { c.URL = "admin:" + password + "@pbx:8887/wsi" }, FieldURL, "must start with wss://"},
		{"no host", func(c *Config) { c.URL = "wss:///wsi" }, FieldURL, "no host"},
		{"ipv6", func(c *Config) { c.URL = "wss://::1:8887/wsi" }, FieldURL, "an IPv6 address goes in brackets"},
		{"port", func(c *Config) { c.URL = "wss://pbx:88870/wsi" }, FieldURL, "port 88870 is not between 1 and 65535"},
		{"fragment", func(c *Config) { c.URL = "wss://pbx:8887/wsi#x" }, FieldURL, "a #fragment never reaches the server"},
		{"no user", func(c *Config) { c.Username = "" }, FieldUsername, "Username (or ExtensionNumber with Domain) is required"},
		{"both users", func(c *Config) { c.ExtensionNumber = "101" }, FieldUsername, "Username and ExtensionNumber are both set"},
		{"extension without domain", func(c *Config) { c.Username, c.ExtensionNumber, c.Domain = "", "101", "" }, FieldExtensionNumber, "ExtensionNumber needs Domain"},
		{"global without tenants", func(c *Config) { c.Domain, c.Tenants = "", []string{" ", ""} }, FieldTenants, "Tenants is required without Domain"},
		{"global with queues", func(c *Config) { c.Domain, c.Tenants, c.Queues = "", []string{"1"}, []string{"8001"} }, FieldQueues, "Queues only applies with Domain"},
		{"global with extensions", func(c *Config) { c.Domain, c.Tenants, c.Extensions = "", []string{"1"}, []string{"101"} }, FieldExtensions, "Extensions only applies with Domain"},
		{"tenants with domain", func(c *Config) { c.Tenants = []string{"1"} }, FieldTenants, "Tenants only applies without Domain"},
		{"tenant not a number", func(c *Config) { c.Domain, c.Tenants = "", []string{"1", "acme%s"} }, FieldTenants, `Tenants: "acme%s" is not a tenant id`},
		{"tenant too long", func(c *Config) { c.Domain, c.Tenants = "", []string{strings.Repeat("9", 21)} }, FieldTenants, "is not a tenant id"},
		{"tiny ping", func(c *Config) { c.PingInterval = time.Millisecond / 2 }, FieldPingInterval, "PingInterval: must be at least"},
		{"huge ping", func(c *Config) { c.PingInterval = 2 * MaxPingInterval }, FieldPingInterval, "at most 1h0m0s, got 2h0m0s"},
		{"negative ping", func(c *Config) { c.PingInterval = -time.Second }, FieldPingInterval, "at least"},
		{"tls on ws", func(c *Config) { c.URL, c.TLS.ServerName = "ws://pbx/wsi", "pbx" }, FieldServerName, "TLS.ServerName needs a wss:// URL"},
		{"missing CA", func(c *Config) { c.TLS.CAFile = filepath.Join(dir, "nope.pem") }, FieldCAFile, "nope.pem: no such file or directory"},
		{"bad CA", func(c *Config) { c.TLS.CAFile = file("bad.pem", "not a certificate") }, FieldCAFile, "bad.pem holds no PEM certificate"},
		{"no password", func(c *Config) { c.Password = "" }, FieldPassword, "no password: set PasswordFile or Password"},
		{"empty password file", func(c *Config) { c.Password, c.PasswordFile = "", file("empty", "\r\n") }, FieldPasswordFile, "empty is empty"},
		{"huge password file", func(c *Config) { c.PasswordFile = file("big", strings.Repeat("x", maxPasswordFile+1)) }, FieldPasswordFile, "big: larger than 4096 bytes"},
		{"directory", func(c *Config) { c.PasswordFile = dir }, FieldPasswordFile, "not a regular file"},
		{"device", func(c *Config) { c.PasswordFile = "/dev/zero" }, FieldPasswordFile, "/dev/zero: not a regular file"},
		// A FIFO with no writer would block the open, and the start, for ever.
		{"fifo", func(c *Config) { c.PasswordFile = fifo }, FieldPasswordFile, "fifo: not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.field == FieldPingInterval {
				minPingInterval = MinPingInterval
				defer func() { minPingInterval = time.Millisecond }()
			}
			cfg := good
			tc.edit(&cfg)
			err := cfg.Validate()
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want a *ConfigError on %s saying %q", err, tc.field, tc.want)
			}
			if strings.Contains(err.Error(), password) {
				t.Fatalf("error %q contains the password", err)
			}
			if _, err := New(cfg); err == nil {
				t.Fatal("New accepted what Validate refuses")
			}
		})
	}
	if _, err := New(good); err != nil {
		t.Fatalf("New(valid config): %v", err)
	}
}

// A command line names its flags; the message is written once, in wsi.
func TestConfigErrorFormat(t *testing.T) {
	cfg := Config{URL: "wss://pbx/wsi", ExtensionNumber: "101", Password: "x"}
	var ce *ConfigError
	if err := cfg.Validate(); !errors.As(err, &ce) {
		t.Fatalf("Validate: %v", err)
	}
	flags := map[Field]string{FieldExtensionNumber: "--wsi.extension-number", FieldDomain: "--wsi.domain"}
	if got, want := ce.Format(func(f Field) string { return flags[f] }), "--wsi.extension-number needs --wsi.domain: extension users belong to a tenant"; got != want {
		t.Errorf("Format = %q, want %q", got, want)
	}
}

// Validate cleans the lists, reads each file once however often it runs,
// and takes the password from the file without its line ending.
func TestConfigValidateNormalisesAndReadsOnce(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("pa ss\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{URL: " wss://pbx:8887/wsi\r\n", Username: "admin", PasswordFile: pw, Tenants: []string{"11", " 22", "", "11", "33 "}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.URL != "wss://pbx:8887/wsi" || cfg.Password != "pa ss" || strings.Join(cfg.Tenants, ",") != "11,22,33" {
		t.Errorf("after Validate: URL %q, password %q, tenants %q", cfg.URL, cfg.Password, cfg.Tenants)
	}
	if cfg.PingInterval != DefaultPingInterval || cfg.LoginBackoffMax != DefaultLoginBackoffMax {
		t.Errorf("defaults not applied: ping %v, login back-off %v", cfg.PingInterval, cfg.LoginBackoffMax)
	}
	// What a library user may get wrong beyond the command line: a
	// negative timeout takes the default, a cap below its start is raised.
	odd := Config{URL: "ws://pbx/wsi", Username: "a", Password: "b", Domain: "d", HandshakeTimeout: -1, BackoffInitial: time.Hour}
	if err := odd.Validate(); err != nil || odd.HandshakeTimeout != DefaultHandshakeTimeout || odd.BackoffMax != time.Hour {
		t.Errorf("Validate: %v, handshake timeout %v, maximum back-off %v", err, odd.HandshakeTimeout, odd.BackoffMax)
	}
	if err := os.Remove(pw); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil || cfg.Password != "pa ss" {
		t.Errorf("a second Validate read the file again: %v, password %q", err, cfg.Password)
	}
}
