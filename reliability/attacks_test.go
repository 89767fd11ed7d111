//go:build !race

package reliability

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/portsip-exporter/portsip_exporter/internal/e2e"
	"github.com/portsip-exporter/portsip_exporter/internal/secret"
)

// Each test here is one finding of the issue "Hold under hostile load",
// named after it, replayed against the built program by a PBX written for
// the attack (binary_test.go, hostile_pbx_test.go). After the attack the
// program must serve /metrics with portsip_up in under 2 s, have stayed
// under 512 MiB, not show the password anywhere, keep applying what the
// PBX sends, and show only plausible values (assertHolds, flows).

// cdrFrame is a call_cdr of tenant with a talk time of talk seconds.
func cdrFrame(tenant, session, talk string) string {
	return fmt.Sprintf(`{"event_type":"call_cdr","tenant_id":%q,"session_id":%q,"call_id":"1","direction":"in",`+
		`"call_status":"answered","talk_duration":%s,"ended_time":%d}`, tenant, session, talk, time.Now().Unix())
}

// flows proves that ingest flows: a call the PBX reports now is counted,
// and its 42 s of talk move the talk time's sum by 42 (a sum frozen by a
// huge value would not move). The first call also makes the tenant's call
// series, and in tenant mode makes tenantID the logged-in tenant.
func (p *program) flows(pbx *hostilePBX) {
	p.t.Helper()
	before := p.scrape()
	calls, _ := before.value("portsip_calls_total", "tenant_id", tenantID, "direction", "inbound", "status", "answered")
	talk, _ := before.value("portsip_call_talk_seconds", "tenant_id", tenantID, "direction", "inbound")
	p.flowN++
	pbx.send(cdrFrame(tenantID, fmt.Sprint("flow-", p.flowN), "42"))
	p.await("the call reported after the attack", func(pg page) bool {
		c, _ := pg.value("portsip_calls_total", "tenant_id", tenantID, "direction", "inbound", "status", "answered")
		s, _ := pg.value("portsip_call_talk_seconds", "tenant_id", tenantID, "direction", "inbound")
		return c == calls+1 && s-talk == 42 // not s == talk+42: in float64, 2^63+42 is 2^63
	})
}

// startAttack starts a hostile PBX serving every connection and the
// program against it, and waits for the session.
func startAttack(t *testing.T, m mode, extra ...string) (*hostilePBX, *program) {
	t.Helper()
	pbx := startHostilePBX(t, nil)
	p := startProgram(t, pbx.URL, m, 0, extra...)
	p.awaitUp()
	p.flows(pbx)
	return pbx, p
}

// "10,000 new queue ids, each with 64 new agent states and caller reasons
// (20,000 frames, 2.6 s) took RSS to 2.2 GB, and every scrape since,
// portsip_up included, is a 503 after 10 s."
func TestAttackQueueIDsTimesAgentStatesAndReasons(t *testing.T) {
	pbx, p := startAttack(t, globalMode)
	var agents, reasons strings.Builder
	for i := range 64 {
		if i > 0 {
			agents.WriteByte(',')
			reasons.WriteByte(',')
		}
		fmt.Fprintf(&agents, `{"agent_extension_number":"%d","state":"STATE_%d"}`, 100+i, i)
		fmt.Fprintf(&reasons, `{"session_id":"s%d","reason":"reason_%d"}`, i, i)
	}
	start := time.Now()
	for q := range 10_000 {
		id := fmt.Sprint(900_000_000_000 + q)
		pbx.send(`{"event_type":"queue_agent_status","tenant_id":"` + tenantID + `","queue_id":"` + id + `","updated_agents":[` + agents.String() + `]}`)
		pbx.send(`{"event_type":"queue_caller_status","tenant_id":"` + tenantID + `","queue_id":"` + id + `","updated_callers":[` + reasons.String() + `]}`)
	}
	// Frames are applied in order: once the call sent after them is
	// counted, so are they.
	p.flows(pbx)
	t.Logf("20,000 frames sent and applied in %v", time.Since(start).Round(time.Millisecond))
	pg := p.assertHolds()
	if v, _ := pg.value("portsip_exporter_dropped_entities_total", "entity", "series"); v == 0 {
		t.Errorf("the budget refused nothing: the attack did not reach it")
	}
}

// "In tenant mode tenant_id is not filtered: 1,000 tenants x 64 directions
// x 64 statuses in call_cdr gave 4.1 M series and 4.3 GB." Only the
// logged-in tenant's events are applied (every other one is counted as
// other_tenant), and its 64 x 64 stay within the budget.
func TestAttackTenantModeCDRTenantsTimesDirectionsTimesStatuses(t *testing.T) {
	const tenants, values = 1000, 64
	// At debug level every ignored event is logged: 4 M lines.
	pbx, p := startAttack(t, tenantMode, "--log.level=info")
	start := time.Now()
	var frame []byte
	for tn := range tenants {
		tenant := tenantID
		if tn > 0 {
			tenant = fmt.Sprint(800_000_000_000_000_000 + tn)
		}
		// One frame per tenant and direction, its 64 statuses as
		// objects one after the other, which the decoder reads as
		// events of their own.
		for d := range values {
			frame = frame[:0]
			for s := range values {
				frame = append(frame, `{"event_type":"call_cdr","tenant_id":"`...)
				frame = append(frame, tenant...)
				frame = append(frame, `","session_id":"a`...)
				frame = strconv.AppendInt(frame, int64(d*values+s), 10)
				frame = append(frame, `","direction":"dir_`...)
				frame = strconv.AppendInt(frame, int64(d), 10)
				frame = append(frame, `","call_status":"status_`...)
				frame = strconv.AppendInt(frame, int64(s), 10)
				frame = append(frame, `"}`...)
			}
			pbx.send(string(frame))
		}
	}
	p.flows(pbx)
	t.Logf("%d call_cdr sent and applied in %v", tenants*values*values, time.Since(start).Round(time.Millisecond))
	pg := p.assertHolds()
	if v, _ := pg.value("portsip_wsi_events_ignored_total", "reason", "other_tenant"); v != (tenants-1)*values*values {
		t.Errorf("other_tenant = %v, want %d", v, (tenants-1)*values*values)
	}
	if strings.Contains(pg.body, `tenant_id="800000000000000`) {
		t.Errorf("another tenant's series on /metrics")
	}
}

// "One 16,000,000-byte call_cdr whose call_targets is [{},{},...] became
// 5.3 M 248-byte structs nothing reads: 2.1 GB peak for one frame, 5.6 GB
// for four, and no counter moved. The same holds for agents,
// waiting_list, updated_callers and status." removed_agents' bare numbers
// are the decoder's worst case (2 bytes on the wire, 16 in memory).
func TestAttack16MBFramesOfEmptyArrayEntries(t *testing.T) {
	pbx, p := startAttack(t, globalMode)
	const size = 16_000_000
	frame := func(head, array, entry string) string {
		var b strings.Builder
		b.Grow(size)
		b.WriteString(head + `,"` + array + `":[`)
		for b.Len() < size-len(entry)-3 {
			b.WriteString(entry + ",")
		}
		b.WriteString(entry + "]}")
		return b.String()
	}
	before := p.scrape()
	events := func(pg page) float64 {
		var n float64
		for _, typ := range []string{"call_cdr", "queue_status", "queue_caller_status", "queue_agent_status", "extension_status"} {
			v, _ := pg.value("portsip_wsi_events_total", "event_type", typ)
			n += v
		}
		return n
	}
	h := `{"event_type":"%s","tenant_id":"` + tenantID + `","queue_id":"` + queueID + `","queue_number":"` + queue + `"`
	frames := []string{
		frame(fmt.Sprintf(h, "queue_status"), "agents", "{}"),
		frame(fmt.Sprintf(h, "queue_status"), "waiting_list", "{}"),
		frame(fmt.Sprintf(h, "queue_caller_status"), "updated_callers", "{}"),
		frame(fmt.Sprintf(h, "queue_agent_status"), "removed_agents", "1"),
		frame(`{"event_type":"extension_status","tenant_id":"`+tenantID+`"`, "status", "{}"),
	}
	for i := range 4 {
		frames = append(frames, frame(`{"event_type":"call_cdr","tenant_id":"`+tenantID+`","session_id":"big`+fmt.Sprint(i)+`"`, "call_targets", "{}"))
	}
	for _, f := range frames {
		pbx.send(f)
	}
	p.flows(pbx) // one more call_cdr
	pg := p.assertHolds()
	if got := events(pg) - events(before) - 1; got != float64(len(frames)) {
		t.Errorf("%v of the %d frames counted as events", got, len(frames))
	}
}

// "The password reaches the log at warn level when the PBX puts it in a
// WebSocket close reason (websocket: close 1008 (policy violation): bad
// password ...), at the auth and subscribe stages." The first session is
// closed so at subscribe, the second serves, the third is closed so at
// auth (a refused login: the next try would be a minute away).
func TestAttackPasswordInCloseReasonAtAuthAndSubscribe(t *testing.T) {
	t.Parallel()
	refused := make(chan struct{})
	var served *hostileConn
	var mu sync.Mutex
	pbx := startHostilePBX(t, func(n int, c *hostileConn) {
		switch n {
		case 1:
			if c.login() {
				if _, ok := c.command(); ok {
					c.closeWith(websocket.ClosePolicyViolation, "not subscribed: bad password "+hostilePassword)
				}
			}
		case 2:
			mu.Lock()
			served = c
			mu.Unlock()
			c.serve()
		default:
			if _, ok := c.command(); ok {
				c.closeWith(websocket.ClosePolicyViolation, "bad password "+hostilePassword)
				close(refused)
			}
		}
		c.command() // until the client goes
	})
	p := startProgram(t, pbx.URL, globalMode, 0)
	p.awaitUp()
	p.flows(pbx)
	mu.Lock()
	served.conn.Close()
	mu.Unlock()
	select {
	case <-refused:
	case <-time.After(awaitTimeout):
		t.Fatal("the exporter did not log in again after the session was dropped")
	}
	e2e.WaitFor(t, "the refused login logged", awaitTimeout, func() bool {
		return strings.Contains(p.proc.Log(), "the PBX refused the login")
	}, p.proc)
	if !strings.Contains(p.proc.Log(), `not subscribed: bad password `+secret.Redacted) {
		t.Errorf("the subscribe stage's close reason is not logged, redacted:\n%s", p.proc.Tail(20))
	}
	p.assertHolds()
}

// "200 scrapers against a 5 MB state gave 356 of 416 scrapes a 503, froze
// ingest for about 30 s while the PBX sent 150,000 events, and took RSS to
// 3.2 GB (timed-out handlers keep running)."
func TestAttack200ConcurrentScrapers(t *testing.T) {
	pbx, p := startAttack(t, globalMode)
	// 30,000 extensions: a 6 MB page.
	var status strings.Builder
	status.WriteString(`{"event_type":"extension_status","tenant_id":"` + tenantID + `","status":[`)
	for i := range 30_000 {
		if i > 0 {
			status.WriteByte(',')
		}
		fmt.Fprintf(&status, `{"extension":"%d","online":true,"presence":"AVAILABLE","call_status":""}`, 10_000+i)
	}
	status.WriteString("]}")
	pbx.send(status.String())
	pg := p.await("the 30,000 extensions", func(pg page) bool {
		v, _ := pg.value("portsip_extensions", "tenant_id", tenantID)
		return v == 30_000
	})
	t.Logf("a page of %d bytes", len(pg.body))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, busy, failed atomic.Int64
	var once sync.Once
	halt := func() { once.Do(func() { close(stop) }); wg.Wait() }
	t.Cleanup(halt) // also when the test fails midway
	// Scrapers as Prometheus asks, reading what they get and no more.
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 200}}
	defer client.CloseIdleConnections()
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodGet, "http://"+p.addr+"/metrics", nil)
				req.Header.Set("Accept-Encoding", "gzip")
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					ok.Add(1)
				case http.StatusServiceUnavailable:
					busy.Add(1)
				default:
					failed.Add(1)
				}
			}
		}()
	}
	// Meanwhile the PBX sends 150,000 events; each must be applied.
	start := time.Now()
	before := pg
	calls, _ := before.value("portsip_wsi_events_total", "event_type", "extension_call")
	for i := range 150_000 {
		state := []string{"ON_CALL", ""}[i%2]
		pbx.send(fmt.Sprintf(`{"event_type":"extension_call","tenant_id":"%s","extension":"%d","call_status":"%s"}`, tenantID, 10_000+i%30_000, state))
	}
	applied := time.Now()
	p.await("the 150,000 events applied", func(pg page) bool {
		v, _ := pg.value("portsip_wsi_events_total", "event_type", "extension_call")
		applied = time.Now()
		return v == calls+150_000
	})
	halt()
	took := applied.Sub(start)
	t.Logf("150,000 events applied in %v under 200 scrapers: %d scrapes answered, %d refused with 503, %d failed",
		took.Round(time.Millisecond), ok.Load(), busy.Load(), failed.Load())
	if took > 30*time.Second {
		t.Errorf("150,000 events took %v to apply under 200 scrapers", took)
	}
	if ok.Load() == 0 || failed.Load() > 0 {
		t.Errorf("%d scrapes answered, %d failed: want answers and no failure", ok.Load(), failed.Load())
	}
	p.flows(pbx)
	p.assertHolds()
}

// "No idle timeout: 20,000 idle connections used every file descriptor,
// and the exporter could then not reconnect to the PBX (dial: socket: too
// many open files)." The exporter runs under ulimit -n 1024, as it often
// does.
func TestAttack20000IdleConnections(t *testing.T) {
	pbx := startHostilePBX(t, nil)
	p := startProgram(t, pbx.URL, globalMode, 1024)
	p.awaitUp()
	p.flows(pbx)
	var closed atomic.Int32
	var wg sync.WaitGroup
	conns := make(chan net.Conn, 20_000)
	start := time.Now()
	for range 20_000 {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns <- c
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Read(make([]byte, 1)); err != nil {
				closed.Add(1)
			}
			c.Close() // as a client does when the server hangs up
		}()
	}
	t.Cleanup(func() {
		close(conns)
		for c := range conns {
			c.Close()
		}
		wg.Wait()
	})
	t.Logf("dialled in %v, %d closed", time.Since(start), closed.Load())
	e2e.WaitFor(t, "the idle connections beyond the bound closed", awaitTimeout, func() bool {
		return closed.Load() >= 20_000-512
	}, p.proc)
	t.Logf("closed in %v", time.Since(start))
	// The PBX drops the session: the exporter must be able to dial it.
	sessions := pbx.sessions()
	pbx.mu.Lock()
	for _, c := range pbx.conns {
		c.conn.Close()
	}
	pbx.mu.Unlock()
	e2e.WaitFor(t, "the exporter to reconnect", awaitTimeout, func() bool { return pbx.sessions() > sessions }, p.proc)
	p.awaitUp()
	p.flows(pbx)
	p.assertHolds()
	if strings.Contains(p.proc.Log(), "too many open files") {
		t.Errorf("the exporter ran out of descriptors")
	}
}

// "One talk_duration of 9223372036854775807 froze
// portsip_call_talk_seconds_sum forever ...; the same through a leave
// timestamp breaks speed of answer. A waiting_list timestamp of "1" shows
// a 56-year oldest wait and pages PortsipQueueLongWait."
func TestAttackTalkDurationOf2To63AndTimestampOf1(t *testing.T) {
	pbx, p := startAttack(t, globalMode)
	now := time.Now().Unix()
	pbx.send(cdrFrame(tenantID, "huge", "9223372036854775807"))
	pbx.send(`{"event_type":"queue_status","tenant_id":"` + tenantID + `","queue_id":"` + queueID + `","queue_number":"` + queue +
		`","waiting_list":[{"session_id":"w1","timestamp":"1"},{"session_id":"w2","timestamp":"` + fmt.Sprint(now) + `"}]}`)
	pbx.send(`{"event_type":"queue_caller_status","tenant_id":"` + tenantID + `","queue_id":"` + queueID +
		`","updated_callers":[{"session_id":"w2","reason":"agent_answered","timestamp":"9223372036854775807"}]}`)
	// flows compares the page before its call with the page after, so the
	// attack must be applied before it looks: else the huge call lands in
	// between and is counted with the flow's call.
	p.await("the three implausible values refused", func(pg page) bool {
		v, _ := pg.value("portsip_wsi_events_ignored_total", "reason", "implausible")
		return v == 3
	})
	p.flows(pbx)
	pg := p.assertHolds()
	if v, _ := pg.value("portsip_wsi_events_ignored_total", "reason", "implausible"); v != 3 {
		t.Errorf("implausible = %v, want 3", v)
	}
	if v, _ := pg.value("portsip_queue_oldest_wait_seconds", "queue", queue); v > 60 {
		t.Errorf("oldest wait %v s", v)
	}
	if v, _ := pg.value("portsip_queue_wait_seconds", "queue", queue, "outcome", "answered"); v > 60 {
		t.Errorf("answered callers waited %v s in all", v)
	}
}

// "In the WSI session, strings from the PBX are not bounded: 4 MiB queue
// numbers kept 493 MB for the session, 8 MiB numbers made 8 MB log lines."
// In tenant mode, where the exporter subscribes each queue it learns.
func TestAttack4MiBAnd8MiBQueueNumbers(t *testing.T) {
	pbx, p := startAttack(t, tenantMode)
	for i, size := range []int{4 << 20, 4 << 20, 4 << 20, 4 << 20, 8 << 20, 8 << 20} {
		number := strings.Repeat("8", size-1) + fmt.Sprint(i)
		pbx.send(`{"event_type":"queue_created","tenant_id":"` + tenantID + `","queue_number":"` + number + `"}`)
	}
	p.flows(pbx)
	pg := p.assertHolds()
	for _, line := range strings.Split(p.proc.Log(), "\n") {
		if len(line) > 4096 {
			t.Fatalf("a log line of %d bytes: %.200s...", len(line), line)
		}
	}
	for _, line := range strings.Split(pg.body, "\n") {
		if len(line) > 4096 {
			t.Fatalf("a /metrics line of %d bytes: %.200s...", len(line), line)
		}
	}
}

// "Refusal texts are kept for the process's life": every queue the PBX
// announces is refused with a text of its own, 1 KiB long.
func TestAttackRefusalTexts(t *testing.T) {
	pbx := startHostilePBX(t, func(n int, c *hostileConn) {
		text := strings.Repeat("no! ", 256)
		c.subscribeReply = func(cmd map[string]any) string {
			queues, _ := cmd["queues"].([]any)
			if len(queues) == 0 {
				return `{"command":"subscribe","status":0}`
			}
			return fmt.Sprintf(`{"command":"subscribe","status":-1,"error":"%s %v"}`, text, queues[0])
		}
		c.serve()
	})
	p := startProgram(t, pbx.URL, tenantMode, 0)
	p.awaitUp()
	p.flows(pbx)
	// More than the refusals the session remembers (1,024).
	for q := range 1500 {
		pbx.send(fmt.Sprintf(`{"event_type":"queue_created","tenant_id":"%s","queue_number":"%d"}`, tenantID, 10_000+q))
	}
	e2e.WaitFor(t, "the last refusal logged", 2*awaitTimeout, func() bool {
		return strings.Contains(p.proc.Log(), `"queue":"11499"`)
	}, p.proc)
	p.flows(pbx)
	p.assertHolds()
	for _, line := range strings.Split(p.proc.Log(), "\n") {
		if len(line) > 4096 {
			t.Fatalf("a log line of %d bytes: %.200s...", len(line), line)
		}
	}
}

// "The pending-subscription list of a PBX that stops replying grows
// without end": after the first subscriptions the PBX answers no more,
// and announces 12,000 queues (more than the session learns, 10,000), which
// the exporter subscribes one by one.
func TestAttackPendingSubscriptionsOfAPBXThatStopsReplying(t *testing.T) {
	var replies atomic.Int32
	pbx := startHostilePBX(t, func(n int, c *hostileConn) {
		c.subscribeReply = func(cmd map[string]any) string {
			if queues, _ := cmd["queues"].([]any); len(queues) > 0 {
				return ""
			}
			replies.Add(1)
			return `{"command":"subscribe","status":0}`
		}
		c.serve()
	})
	p := startProgram(t, pbx.URL, tenantMode, 0)
	p.awaitUp()
	p.flows(pbx)
	for q := range 12_000 {
		pbx.send(fmt.Sprintf(`{"event_type":"queue_created","tenant_id":"%s","queue_number":"%d"}`, tenantID, 10_000+q))
	}
	p.flows(pbx)
	p.assertHolds()
}

// "Events of tenants not configured are dropped without a metric (and
// events with no tenant_id create a phantom tenant_id="" on every shard)."
func TestAttackOtherTenantAndNoTenantEvents(t *testing.T) {
	pbx, p := startAttack(t, globalMode)
	for i := range 1000 {
		pbx.send(fmt.Sprintf(`{"event_type":"extension_call","tenant_id":"999","extension":"%d","call_status":"ON_CALL"}`, i))
		pbx.send(fmt.Sprintf(`{"event_type":"extension_call","extension":"%d","call_status":"ON_CALL"}`, i))
	}
	p.flows(pbx)
	pg := p.assertHolds()
	for reason, want := range map[string]float64{"other_tenant": 1000, "no_tenant": 1000} {
		if v, _ := pg.value("portsip_wsi_events_ignored_total", "reason", reason); v != want {
			t.Errorf("%s = %v, want %v", reason, v, want)
		}
	}
	if strings.Contains(pg.body, `tenant_id=""`) || strings.Contains(pg.body, `tenant_id="999"`) {
		t.Errorf("an ignored event's tenant has series")
	}
}

// "A PBX trickling one fragmented message a byte a second with pongs
// between keeps portsip_up 1 with no events for ten minutes."
func TestAttackTrickledFragmentedMessage(t *testing.T) {
	t.Parallel()
	pbx := startHostilePBX(t, func(n int, c *hostileConn) {
		if n > 1 {
			c.serve()
			return
		}
		if !c.login() {
			return
		}
		for range globalTopics {
			if _, ok := c.command(); !ok || !c.send(`{"command":"subscribe","status":0}`) {
				return
			}
		}
		go c.answer() // and pings
		raw := c.conn.UnderlyingConn()
		// A text frame that is not the last, then continuations of one
		// byte, one a second: the message never ends.
		c.wmu.Lock()
		_, err := raw.Write([]byte{0x01, 1, '{'})
		c.wmu.Unlock()
		for err == nil {
			select {
			case <-c.done:
				return
			case <-time.After(time.Second):
			}
			c.wmu.Lock()
			_, err = raw.Write([]byte{0x00, 1, ' '})
			c.wmu.Unlock()
		}
	})
	p := startProgram(t, pbx.URL, globalMode, 0, "--wsi.ping-interval=1s")
	// The first session ends two ping periods after the message began;
	// the second serves.
	e2e.WaitFor(t, "a second session", awaitTimeout, func() bool { return pbx.sessions() >= 2 }, p.proc)
	p.awaitUp()
	p.flows(pbx)
	pg := p.assertHolds()
	if v, _ := pg.value("portsip_wsi_connection_errors_total", "stage", "read"); v < 1 {
		t.Errorf("the trickling session did not end with a read error")
	}
	if !strings.Contains(p.proc.Log(), "did not arrive whole") {
		t.Errorf("the log does not say why the session ended:\n%s", p.proc.Tail(20))
	}
}

// "A FIFO as --wsi.password-file hangs the start past the first SIGTERM."
func TestAttackFIFOAsPasswordFile(t *testing.T) {
	t.Parallel()
	bin := exporterBinary(t)
	fifo := filepath.Join(t.TempDir(), "password")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	cmd := exec.Command(bin, "--wsi.url=ws://127.0.0.1:1/wsi", "--wsi.username=admin", "--wsi.tenant="+tenantID,
		"--wsi.password-file="+fifo, "--web.listen-address="+e2e.FreeAddr(t))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(out.String(), "--wsi.password-file") {
			t.Errorf("exit %v, output %q: want status 2 naming --wsi.password-file", err, out.String())
		}
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("still starting 5 s later with a FIFO as the password file")
	}
}

// "The handshake-timeout warning repeats instead of logging once": a PBX
// whose server accepts connections and never answers. The handshake
// times out after 10 s; the second attempt's failure is the same and is
// logged at debug level only.
func TestAttackHandshakeTimeoutWarnsOnce(t *testing.T) {
	t.Parallel()
	addr, _ := e2e.SilentListener(t)
	p := startProgram(t, "ws://"+addr+"/wsi", globalMode, 0)
	e2e.WaitFor(t, "a second handshake timeout", time.Minute, func() bool {
		return strings.Contains(p.proc.Log(), "still cannot connect to the PBX")
	}, p.proc)
	if n := strings.Count(p.proc.Log(), `"level":"WARN","msg":"cannot connect to the PBX"`); n != 1 {
		t.Errorf("the failure is warned %d times, want once:\n%s", n, p.proc.Tail(10))
	}
	pg := p.assertHolds()
	if v, _ := pg.value("portsip_up"); v != 0 {
		t.Errorf("portsip_up = %v", v)
	}
}

// "No text that reaches ... a metric ... ever contains the password": a
// PBX that puts it in every label value it sends, a queue's name and
// number, a tenant's name, a trunk, an extension, an agent state, a
// presence, a direction.
func TestAttackPasswordAsLabelValues(t *testing.T) {
	pbx, p := startAttack(t, globalMode)
	pw, _ := json.Marshal(hostilePassword)
	q := string(pw[1 : len(pw)-1]) // as it goes into a JSON string
	pbx.send(`{"event_type":"queue_status","tenant_id":"` + tenantID + `","queue_id":"` + q + `","queue_number":"8` + q +
		`","queue_name":"` + q + `","agents":[{"agent_extension_number":"` + q + `","state":"` + q + `"}]}`)
	pbx.send(`{"event_type":"extension_status","tenant_id":"` + tenantID + `","status":[{"extension":"sip:` + q +
		`@x","online":true,"presence":"` + q + `","call_status":"` + q + `"}]}`)
	pbx.send(`{"event_type":"call_cdr","tenant_id":"` + tenantID + `","session_id":"pw","tenant_name":"` + q +
		`","trunk_name":"` + q + `:1","direction":"` + q + `","call_status":"` + q + `","ended_reason":"` + q + `"}`)
	p.flows(pbx)
	pg := p.assertHolds()
	for _, want := range []string{`queue="8` + secret.Redacted + `"`, `tenant_name="` + secret.Redacted + `"`, `trunk="` + secret.Redacted + `"`} {
		if !strings.Contains(pg.body, want) {
			t.Errorf("no series with %s: the attack did not reach the labels", want)
		}
	}
}
