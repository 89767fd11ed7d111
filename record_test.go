package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi/wsitest"
)

// recording is the record command running in-process.
type recording struct {
	file           string
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	exited         chan int
}

func startRecording(t *testing.T, pbx *wsitest.Server, args ...string) *recording {
	t.Helper()
	r := &recording{file: filepath.Join(t.TempDir(), "pbx.jsonl"), stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan int, 1)}
	var ctx context.Context
	ctx, r.cancel = context.WithCancel(context.Background())
	t.Cleanup(r.cancel)
	args = append([]string{"record", "--wsi.url=" + pbx.URL, "--wsi.username=admin", "--wsi.tenant=" + tenantID,
		"--record.file=" + r.file, "--log.format=json"}, args...)
	go func() { r.exited <- run(ctx, args, r.stdout, r.stderr) }()
	return r
}

func (r *recording) content(t *testing.T) string {
	t.Helper()
	b, _ := os.ReadFile(r.file)
	return string(b)
}

// stop ends the recording as SIGINT does and returns its exit code.
func (r *recording) stop(t *testing.T) int {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

func (r *recording) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-r.exited:
		return code
	case <-time.After(15 * time.Second):
		t.Fatal("record did not stop")
	}
	return -1
}

// record keeps the exporter's session (reconnecting after a drop), writes
// what it receives as it comes, frames it cannot keep counted, and ends
// cleanly on SIGINT with a summary; its capture replays to what happened.
func TestRecordSession(t *testing.T) {
	clearEnv(t)
	t.Setenv("PORTSIP_WSI_PASSWORD", testPassword)
	pbx := newPBX(t, false)
	rec := startRecording(t, pbx)
	eventually(t, 10*time.Second, "the snapshots in the capture", func() bool {
		return strings.Contains(rec.content(t), `queue_status`)
	})
	pbx.Enqueue(tenantID, "8000", wsitest.Caller{Number: "5559876", Name: "Bob"})
	pbx.SendBinary([]byte{1, 2, 3})
	eventually(t, 10*time.Second, "the caller in the capture", func() bool { return strings.Contains(rec.content(t), "5559876") })
	pbx.DropSessions()
	eventually(t, 15*time.Second, "the second session in the capture", func() bool {
		return strings.Count(rec.content(t), `"session":"up"`) == 2 && strings.Count(rec.content(t), `queue_status`) == 2
	})
	if code := rec.stop(t); code != exitOK {
		t.Fatalf("exit %d after SIGINT:\n%s", code, rec.stderr.String())
	}

	summary := rec.stdout.String()
	if !strings.HasPrefix(summary, "Recorded ") || strings.Count(summary, "\n") != 1 ||
		!strings.Contains(summary, "2 sessions") || !strings.Contains(summary, "queue_caller_status x1") ||
		!strings.Contains(summary, "1 binary or oversized frames not recorded") {
		t.Errorf("summary %q", summary)
	}
	content := rec.content(t)
	if fi, err := os.Stat(rec.file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("capture mode %v, %v; want 0600", fi.Mode(), err)
	}
	for _, want := range []string{`"capture":"portsip_exporter"`, `"source":"record"`, `"session":"down","stage":"read"`,
		`"skipped":"binary_frame","count":1`, `"end":true`} {
		if !strings.Contains(content, want) {
			t.Errorf("the capture lacks %s:\n%s", want, content)
		}
	}
	if strings.Contains(content+rec.stderr.String(), testPassword) || strings.Contains(content, `"auth","username"`) {
		t.Errorf("the password or a command sent is in the capture or the logs")
	}

	out := replayPrint(t, rec.file)
	for series, want := range map[string]float64{
		`portsip_wsi_connection_attempts_total`:                                                   2,
		`portsip_wsi_connection_errors_total{stage="read"}`:                                       1,
		`portsip_wsi_invalid_messages_total{reason="binary_frame"}`:                               1,
		`portsip_queue_callers_total{queue="8000",reason="enqueue",tenant_id="` + tenantID + `"}`: 1,
		`portsip_queue_waiting_callers{kind="normal",queue="8000",tenant_id="` + tenantID + `"}`:  2,
		`portsip_up`: 1,
	} {
		if got := sampleValue(t, out, series); got != want {
			t.Errorf("replayed %s = %v, want %v", series, got, want)
		}
	}
}

// A refused login whose reason echoes the password: neither the capture
// nor the logs hold it. --record.force overwrites a capture, which is
// then 0600 whatever it was; --record.duration ends the recording by
// itself.
func TestRecordPasswordEchoed(t *testing.T) {
	clearEnv(t)
	t.Setenv("PORTSIP_WSI_PASSWORD", testPassword)
	pbx := newPBX(t, false)
	pbx.SetAuthError("wrong password " + testPassword + " for admin")
	rec := startRecording(t, pbx)
	eventually(t, 10*time.Second, "the refusal in the capture", func() bool {
		return strings.Contains(rec.content(t), `"stage":"auth"`)
	})
	if code := rec.stop(t); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	content, logs := rec.content(t), rec.stderr.String()
	if strings.Contains(content+logs, testPassword) {
		t.Fatalf("the password is in the capture or the logs:\n%s\n%s", content, logs)
	}
	if !strings.Contains(content, `wrong password <redacted> for admin`) || !strings.Contains(rec.stdout.String(), "the password removed from 1 frames") {
		t.Errorf("the refusal is not in the capture with the password removed:\n%s\n%s", content, rec.stdout.String())
	}

	os.Chmod(rec.file, 0o644)
	pbx.SetAuthError("")
	again := startRecording(t, pbx, "--record.file="+rec.file, "--record.force", "--record.duration=1s")
	if code := again.wait(t); code != exitOK {
		t.Fatalf("exit %d:\n%s", code, again.stderr.String())
	}
	if fi, _ := os.Stat(rec.file); fi.Mode().Perm() != 0o600 || strings.Contains(rec.content(t), "wrong password") {
		t.Errorf("overwritten capture: mode %v, old content kept: %v", fi.Mode().Perm(), strings.Contains(rec.content(t), "wrong password"))
	}
}

// check --record.file writes what check received: a capture that
// replays.
func TestCheckRecordFile(t *testing.T) {
	clearEnv(t)
	pbx := newPBX(t, false)
	t.Setenv("PORTSIP_WSI_PASSWORD", testPassword)
	file := filepath.Join(t.TempDir(), "first-contact.jsonl")
	code, out := runCheck(t, "--wsi.url="+pbx.URL, "--wsi.username=admin", "--wsi.tenant="+tenantID, "--record.file="+file, "--record.anonymize")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	wantLines(t, out, "OK: the exporter can run with these settings.", "Recorded ", " to "+file)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if c := string(b); !strings.Contains(c, `"source":"check"`) || !strings.Contains(c, `"anonymized":true`) || strings.Contains(c, "5551234") || strings.Contains(c, "Alice") {
		t.Errorf("capture:\n%s", c)
	}
	replayed := replayPrint(t, file)
	if got := sampleValue(t, replayed, `portsip_queue_waiting_callers{kind="normal",queue="8000",tenant_id="`+tenantID+`"}`); got != 1 {
		t.Errorf("the replayed check shows %v waiting callers, want the 1 the PBX had", got)
	}

	// A tenant user's recording replays in tenant mode: the tenant
	// topics, the logged-in tenant learnt from the events.
	tenantFile := filepath.Join(t.TempDir(), "tenant.jsonl")
	if code, _ := runCheck(t, "--wsi.url="+pbx.URL, "--wsi.username=boss", "--wsi.domain="+domain, "--record.file="+tenantFile); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	b, _ = os.ReadFile(tenantFile)
	if header, _, _ := strings.Cut(string(b), "\n"); !strings.Contains(header, `"mode":"tenant"`) || strings.Contains(header, "domain") {
		t.Errorf("tenant capture header %s, want the mode and no domain", header)
	}
	replayed = replayPrint(t, tenantFile)
	for series, want := range map[string]float64{
		`portsip_queue_waiting_callers{kind="normal",queue="8000",tenant_id="` + tenantID + `"}`: 1,
		`portsip_wsi_subscription_active{topic="cdr_events"}`:                                    1,
	} {
		if got := sampleValue(t, replayed, series); got != want {
			t.Errorf("replayed tenant capture: %s = %v, want %v", series, got, want)
		}
	}
}

// A capture that cannot be created ends record at once, exit 1, saying
// why.
func TestRecordCannotCreate(t *testing.T) {
	clearEnv(t)
	t.Setenv("PORTSIP_WSI_PASSWORD", testPassword)
	pbx := newPBX(t, false)
	missing := filepath.Join(t.TempDir(), "no", "such", "dir", "pbx.jsonl")
	rec := startRecording(t, pbx, "--record.file="+missing)
	if code := rec.wait(t); code != exitFailed || !strings.Contains(rec.stderr.String(), missing+": no such file or directory") {
		t.Errorf("exit %d:\n%s", code, rec.stderr.String())
	}
}
