package wsi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/portsip-exporter/portsip_exporter/internal/secret"
)

// A password with what JSON, Go quoting and URLs each escape differently.
const oddPassword = `pa"ss\wörd<&>`

// forms are the ways oddPassword may be spelt in text.
var forms = []string{oddPassword, `pa\"ss\\wörd<&>`, `pa\"ss\\wörd\u003c\u0026\u003e`, `pa\"ss\\w\u00f6rd<&>`, "pa%22ss%5Cw%C3%B6rd%3C%26%3E"}

// The PBX sends the password back through every path the client has to
// the outside, and it reaches none of them: close reasons at auth, at
// subscribe and in a session, error replies (one echoing the whole auth
// command, JSON-escaped), debug logs of ignored events and replies, the
// errors returned, the Tap's reasons.
func TestPasswordEchoedThroughEveryPath(t *testing.T) {
	quoted, _ := json.Marshal(oddPassword)
	pw := string(quoted[1 : len(quoted)-1]) // as it goes into a JSON frame
	closeWith := func(c *foreignConn, reason string) {
		_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, reason), time.Now().Add(time.Second))
		c.wait()
	}
	accept := func(c *foreignConn, reply string) bool {
		if !c.auth(`{"command":"auth","status":0}`) {
			return false
		}
		for range globalTopics {
			if _, ok := c.cmd(); !ok || !c.send(reply) {
				return false
			}
		}
		return true
	}
	var conns atomic.Int32
	url := startForeignPBX(t, func(c *foreignConn) {
		c.password = oddPassword
		switch conns.Add(1) {
		case 1:
			if _, ok := c.cmd(); ok {
				closeWith(c, "bad password "+oddPassword)
			}
		case 2:
			if c.auth(`{"command":"auth","status":0}`) {
				if _, ok := c.cmd(); ok {
					closeWith(c, "not for "+oddPassword)
				}
			}
		case 3:
			_, sent, err := c.conn.ReadMessage()
			echo, _ := json.Marshal(map[string]any{"command": "auth", "status": -1, "error": "bad request: " + string(sent)})
			if err == nil && c.send(string(echo)) {
				c.wait()
			}
		case 4:
			if accept(c, `{"command":"subscribe","status":-1,"error":"no, `+pw+`"}`) {
				c.wait()
			}
		case 5:
			if accept(c, `{"command":"subscribe","status":0}`) &&
				c.send(`{"event_type":"queue_created","queue_number":"1","tenant_id":"`+pw+`"}`) &&
				c.send(`{"event_type":"`+pw+`","tenant_id":"`+foreignTenant+`"}`) &&
				c.send(`{"command":"`+pw+`","id":"`+pw+`","status":1,"error":"`+pw+`","topics":["`+pw+`"]}`) &&
				c.send(`{"event_type":"queue_created","tenant_id":"`+pw+``) {
				closeWith(c, "bye "+oddPassword)
			}
		default:
			if accept(c, `{"command":"subscribe","status":0}`) {
				c.wait()
			}
		}
	})
	var logs logBuffer
	cfg := foreignConfig(url)
	cfg.Password = oddPassword
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var mu sync.Mutex
	var outside []string
	keep := func(s string) { mu.Lock(); outside = append(outside, s); mu.Unlock() }
	cfg.Tap = func(r Record) { keep(r.Reason) }
	c := newClient(t, cfg)
	for range 2 {
		_, err := c.Check(context.Background(), time.Millisecond, nil)
		var e *Error
		if !errors.As(err, &e) || e.PBXError == "" {
			t.Fatalf("Check: %v, want the PBX's close reason", err)
		}
		keep(err.Error())
		keep(e.PBXError)
	}
	h := &handler{}
	run(t, c, h)
	waitFor(t, "the last session", func() bool { return conns.Load() >= 6 && c.Stats().Up })
	h.mu.Lock()
	for _, err := range h.downs {
		keep(err.Error())
	}
	h.mu.Unlock()
	keep(logs.String())
	st := c.Stats()
	if st.ConnectionErrors[StageAuth] != 2 || st.ConnectionErrors[StageSubscribe] != 2 || st.ConnectionErrors[StageRead] != 1 || st.Ignored[IgnoredOtherTenant] != 1 {
		t.Fatalf("the PBX's script did not play out: %+v", st)
	}
	all := strings.Join(outside, "\n")
	for _, f := range forms {
		if strings.Contains(all, f) {
			t.Fatalf("%q got out:\n%s", f, all)
		}
	}
	for _, want := range []string{"bad password " + secret.Redacted, "not for " + secret.Redacted, "bye " + secret.Redacted, "no, " + secret.Redacted} {
		if !strings.Contains(all, want) {
			t.Errorf("%q is not in what the client said: the test did not reach that path\n%s", want, all)
		}
	}
}
