package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi"
	"github.com/portsip-exporter/portsip_exporter/wsi/wsitest"
)

var globalTopics = []string{
	wsi.TopicGlobalQueueEvents, wsi.TopicGlobalQueueManagement, wsi.TopicGlobalExtensionEvents,
	wsi.TopicGlobalExtensionManagement, wsi.TopicGlobalCDREvents,
}

// runCheck runs "check" in-process with a short listen window.
func runCheck(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"check", "--check.listen=300ms", "--log.level=error"}, args...), &stdout, &stderr)
	if strings.Contains(stdout.String()+stderr.String(), testPassword) {
		t.Errorf("the password appears in check's output")
	}
	t.Logf("check %s\n%s", strings.Join(args, " "), stdout.String())
	return code, stdout.String()
}

func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("check output lacks %q:\n%s", w, out)
		}
	}
}

func TestCheckSuccess(t *testing.T) {
	clearEnv(t)
	pbx := newPBX(t, false)
	t.Setenv("PORTSIP_WSI_PASSWORD", testPassword)

	code, out := runCheck(t, "--wsi.url="+pbx.URL, "--wsi.username=admin", "--wsi.tenant="+tenantID)
	if code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
	wantLines(t, out, "ok      connected", "ok      authenticated", "ok      subscribed",
		"OK: the exporter can run with these settings.",
		`system administrator "admin"`,
		// The snapshots pushed on subscribe are reported per topic.
		"queue_status x1", "extension_status x1", "queue_created x1")
	for _, topic := range globalTopics {
		if !strings.Contains(out, topic+"  ") || !strings.Contains(out, "accepted") {
			t.Errorf("check output does not report %s as accepted:\n%s", topic, out)
		}
	}
}

func TestCheckTenantAdmin(t *testing.T) {
	clearEnv(t)
	pbx := newPBX(t, false)
	t.Setenv("PORTSIP_WSI_PASSWORD", testPassword)
	code, out := runCheck(t, "--wsi.url="+pbx.URL, "--wsi.username=boss", "--wsi.domain="+domain)
	if code != 0 {
		t.Errorf("exit code = %d, want 0:\n%s", code, out)
	}
	wantLines(t, out, `user "boss" in domain `+domain, wsi.TopicQueueManagementEvents, wsi.TopicCDREvents, "OK")
}

func TestCheckFailures(t *testing.T) {
	clearEnv(t)
	t.Setenv("PORTSIP_WSI_PASSWORD", testPassword)

	t.Run("unreachable", func(t *testing.T) {
		// A port that was free a moment ago: nothing listens there.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		code, out := runCheck(t, "--wsi.url=ws://"+addr+"/wsi", "--wsi.username=admin", "--wsi.tenant=1")
		if code != 1 {
			t.Errorf("exit code = %d, want 1", code)
		}
		wantLines(t, out, "FAILED (unreachable)", "connection refused", "firewall")
		if strings.Contains(out, "ok      connected") {
			t.Errorf("reports a connection that never happened:\n%s", out)
		}
	})

	t.Run("auth refused", func(t *testing.T) {
		pbx := newPBX(t, false)
		t.Setenv("PORTSIP_WSI_PASSWORD", "not-the-password")
		code, out := runCheck(t, "--wsi.url="+pbx.URL, "--wsi.username=admin", "--wsi.tenant="+tenantID)
		if code != 1 {
			t.Errorf("exit code = %d, want 1", code)
		}
		wantLines(t, out, "ok      connected", "FAILED (auth): the PBX refused the login: "+wsitest.AuthError, "--wsi.password-file")
		if strings.Contains(out, "not-the-password") {
			t.Errorf("the password appears in check's output")
		}
	})

	t.Run("auth refused, the PBX echoing the password", func(t *testing.T) {
		pbx := newPBX(t, false)
		pbx.SetAuthError("wrong password " + testPassword + " for admin")
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"check", "--check.listen=300ms", "--log.level=debug",
			"--wsi.url=" + pbx.URL, "--wsi.username=admin", "--wsi.tenant=" + tenantID}, &stdout, &stderr)
		if code != 1 || !strings.Contains(stdout.String(), "FAILED (auth): the PBX refused the login: wrong password <redacted> for admin") {
			t.Errorf("exit code %d, report:\n%s", code, stdout.String())
		}
		if strings.Contains(stdout.String()+stderr.String(), testPassword) {
			t.Errorf("the password got out:\n%s\n%s", stdout.String(), stderr.String())
		}
	})

	t.Run("every topic refused", func(t *testing.T) {
		pbx := newPBX(t, false)
		pbx.AddUser(wsitest.User{Username: "viewer", Password: testPassword, Role: wsitest.SystemAdmin, Denied: globalTopics})
		code, out := runCheck(t, "--wsi.url="+pbx.URL, "--wsi.username=viewer", "--wsi.tenant="+tenantID)
		if code != 1 {
			t.Errorf("exit code = %d, want 1", code)
		}
		wantLines(t, out, "ok      authenticated", "FAILED (permission)", "permission denied", "system administrator")
	})

	t.Run("one topic refused", func(t *testing.T) {
		pbx := newPBX(t, false)
		pbx.AddUser(wsitest.User{Username: "nocdr", Password: testPassword, Role: wsitest.SystemAdmin, Denied: []string{wsi.TopicGlobalCDREvents}})
		code, out := runCheck(t, "--wsi.url="+pbx.URL, "--wsi.username=nocdr", "--wsi.tenant="+tenantID)
		if code != 0 {
			t.Errorf("exit code = %d, want 0: the other topics work", code)
		}
		wantLines(t, out, "refused: permission denied: "+wsi.TopicGlobalCDREvents, "OK, with gaps: "+wsi.TopicGlobalCDREvents+" refused")
	})

	t.Run("TLS untrusted", func(t *testing.T) {
		pbx := newPBX(t, true)
		code, out := runCheck(t, "--wsi.url="+pbx.URL, "--wsi.username=admin", "--wsi.tenant="+tenantID)
		if code != 1 {
			t.Errorf("exit code = %d, want 1", code)
		}
		wantLines(t, out, "FAILED (TLS)", "--wsi.tls.ca-file")
		if pbx.AuthAttempts() != 0 {
			t.Errorf("the password was sent to an untrusted PBX (%d auth attempts)", pbx.AuthAttempts())
		}

		// The PBX's CA makes it trusted.
		ca := writeFile(t, "ca.pem", string(pbx.CACertPEM()))
		code, out = runCheck(t, "--wsi.url="+pbx.URL, "--wsi.username=admin", "--wsi.tenant="+tenantID, "--wsi.tls.ca-file="+ca)
		if code != 0 {
			t.Errorf("with --wsi.tls.ca-file: exit code = %d, want 0:\n%s", code, out)
		}
	})

	t.Run("TLS name mismatch", func(t *testing.T) {
		pbx := newPBX(t, true)
		ca := writeFile(t, "ca.pem", string(pbx.CACertPEM()))
		code, out := runCheck(t, "--wsi.url="+pbx.URL, "--wsi.username=admin", "--wsi.tenant="+tenantID,
			"--wsi.tls.ca-file="+ca, "--wsi.tls.server-name=pbx.example.com")
		if code != 1 {
			t.Errorf("exit code = %d, want 1", code)
		}
		wantLines(t, out, "FAILED (TLS)", "--wsi.tls.server-name")
	})

	t.Run("plain ws to a TLS server", func(t *testing.T) {
		pbx := newPBX(t, true)
		code, out := runCheck(t, "--wsi.url=ws://"+pbx.Addr()+"/wsi", "--wsi.username=admin", "--wsi.tenant="+tenantID)
		if code != 1 {
			t.Errorf("exit code = %d, want 1", code)
		}
		wantLines(t, out, "FAILED (not a WSI endpoint)", "try wss://")
	})
}

func TestCheckExtensionUser(t *testing.T) {
	clearEnv(t)
	pbx := newPBX(t, false)
	pbx.AddUser(wsitest.User{ExtensionNumber: "101", Password: testPassword, Role: wsitest.ExtensionUser, TenantID: tenantID, Queues: []string{"8000"}})
	t.Setenv("PORTSIP_WSI_PASSWORD", testPassword)
	code, out := runCheck(t, "--wsi.url="+pbx.URL, "--wsi.extension-number=101", "--wsi.domain="+domain, "--wsi.queue=8000")
	if code != 0 {
		t.Errorf("exit code = %d, want 0: its queue works", code)
	}
	// An agent may watch its queue, not the tenant's CDRs or queue list.
	wantLines(t, out, "extension 101 in domain "+domain, "queue_status x1",
		"refused: permission denied: "+wsi.TopicCDREvents, "OK, with gaps", "tenant administrator")
}

// A name that does not resolve is named alone, as the user would look it
// up, without the port. Built by hand: tests ask no DNS server.
func TestCheckUnresolvableHost(t *testing.T) {
	cfg := wsi.Config{URL: "wss://pbx.invalid:8887/wsi", Username: "admin", Tenants: []string{"1"}}
	err := &wsi.Error{Stage: wsi.StageDial, Kind: wsi.KindDNS, Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: &net.DNSError{Err: "no such host", Name: "pbx.invalid", IsNotFound: true}}}
	var out bytes.Buffer
	if code := writeCheckReport(&out, cfg, time.Second, nil, err, nil); code != exitFailed {
		t.Errorf("exit code = %d, want %d", code, exitFailed)
	}
	wantLines(t, out.String(), "FAILED (unreachable)", "The host name pbx.invalid does not resolve")
}

// A server that accepts the connection and then says nothing is not a
// firewall problem; a dial that times out is.
func TestCheckSilentServer(t *testing.T) {
	cfg := wsi.Config{URL: "ws://127.0.0.1:8887/wsi", Username: "admin", Tenants: []string{"1"}}
	for kind, want := range map[wsi.Kind][]string{
		wsi.KindNoAnswer:    {"FAILED (no answer)", "accepted the connection but did not complete the WebSocket handshake", "try wss://"},
		wsi.KindUnreachable: {"FAILED (unreachable)", "firewall"},
	} {
		err := &wsi.Error{Stage: wsi.StageDial, Kind: kind, Err: fmt.Errorf("no WebSocket handshake within 10s: %w",
			&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded})}
		var out bytes.Buffer
		if code := writeCheckReport(&out, cfg, time.Second, nil, err, nil); code != exitFailed {
			t.Errorf("%s: exit code = %d, want %d", kind, code, exitFailed)
		}
		wantLines(t, out.String(), want...)
	}
}

// The same against a real listener that accepts and never answers.
func TestCheckSilentListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	defer func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	}()

	cfg := wsi.Config{URL: "ws://" + ln.Addr().String() + "/wsi", Username: "admin", Password: testPassword,
		Tenants: []string{"1"}, HandshakeTimeout: 300 * time.Millisecond}
	client, err := wsi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Check(context.Background(), 0, nil)
	var out bytes.Buffer
	if code := writeCheckReport(&out, cfg, 0, res, err, nil); code != exitFailed {
		t.Errorf("exit code = %d, want %d", code, exitFailed)
	}
	wantLines(t, out.String(), "FAILED (no answer)", "try wss://")
}

// The vendor's page says both that a system administrator may subscribe
// the global queue, extension and CDR topics and that it may subscribe
// extension management only. A PBX of the second reading: the session is
// up with that one topic, the exporter says portsip_up 1 and which topics
// are missing, and check reports the gaps.
func TestSystemAdminWithExtensionManagementOnly(t *testing.T) {
	clearEnv(t)
	pbx := newPBX(t, false)
	refused := []string{wsi.TopicGlobalQueueEvents, wsi.TopicGlobalQueueManagement, wsi.TopicGlobalExtensionEvents, wsi.TopicGlobalCDREvents}
	pbx.AddUser(wsitest.User{Username: "sysadmin", Password: testPassword, Role: wsitest.SystemAdmin, Denied: refused})
	t.Setenv("PORTSIP_WSI_PASSWORD", testPassword)
	args := []string{"--wsi.url=" + pbx.URL, "--wsi.username=sysadmin", "--wsi.tenant=" + tenantID}

	code, out := runCheck(t, args...)
	if code != 0 {
		t.Errorf("exit code = %d, want 0: extension management works", code)
	}
	wantLines(t, out, "OK, with gaps: "+strings.Join(slices.Sorted(slices.Values(refused)), ", ")+" refused", "--wsi.domain")
	if strings.Contains(out, "WARNING: nothing arrived for tenant") {
		t.Errorf("warned of a silent tenant although no topic that pushes a snapshot was accepted:\n%s", out)
	}

	e := startExporter(t, args...)
	var metrics string
	eventually(t, 10*time.Second, "portsip_up 1 with one topic", func() bool {
		_, metrics = get(t, httpClient(nil), "http://"+e.addr+"/metrics")
		return strings.Contains(metrics, "\nportsip_up 1\n") &&
			strings.Contains(metrics, `portsip_wsi_subscription_active{topic="`+wsi.TopicGlobalExtensionManagement+`"} 1`)
	})
	for _, topic := range refused {
		if want := `portsip_wsi_subscription_active{topic="` + topic + `"} 0`; !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// check reports what a first contact should know beyond the topics: a
// configured tenant that sent nothing (a mistyped id looks exactly like
// that), the quirks of the PBX's reading of the protocol, and the events
// it ignored.
func TestCheckNotes(t *testing.T) {
	clearEnv(t)
	pbx := newPBX(t, false)
	t.Setenv("PORTSIP_WSI_PASSWORD", testPassword)
	const typo = "794493068765036545"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		if pbx.WaitFor(ctx, func() bool { return len(pbx.Subscriptions()) == len(globalTopics) }) == nil {
			// The vendor's own extension_created sample repeats a key.
			pbx.SendRaw([]byte(`{"event_type":"extension_created","extension_number":"1001","username":"a","username":"a","tenant_id":"` + tenantID + `"}`))
			pbx.SendRaw([]byte(`{"event_type":"extension_created","extension_number":"1002","tenant_id":"42"}`))
		}
	}()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"check", "--check.listen=1s", "--wsi.url=" + pbx.URL, "--wsi.username=admin", "--wsi.tenant=" + tenantID + "," + typo}, &stdout, &stderr)
	<-sent
	out := stdout.String()
	if code != 0 {
		t.Errorf("exit code = %d, want 0:\n%s", code, out)
	}
	wantLines(t, out, "WARNING: nothing arrived for tenant "+typo+" within 1s", "Quirks: duplicate_key x1", "Ignored: other_tenant x1")
	if strings.Contains(out, "nothing arrived for tenant "+tenantID) {
		t.Errorf("warned of the tenant that sent its snapshots:\n%s", out)
	}
}
